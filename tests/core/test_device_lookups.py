"""Devices connecting together are looked up together (gateway/context.py): what each
asker gets is what a lookup of its token alone gives, and a crowd asking at once costs a
read per batch, not per device. Run in a child process under gevent, as the server."""

from __future__ import annotations

from harness.centre import CENTRE
from harness.process import gevent_child

CHILD = r"""
from gevent import monkey
monkey.patch_all()
import json, sys
import gevent
from core import provisioning
from core.store import Store
from gateway.context import Gathered, lookup_devices

pool = gevent.get_hub().threadpool
store = Store(sys.argv[1], offload=lambda fn, *a: pool.apply(fn, a))
store.migrate()
provisioning.provision(store, sys.argv[2])
reads = []
read = store.read
def counted(fn):
    reads.append(1)
    return read(fn)
store.read = counted

asked = [("test-display-token-0001", True), ("test-display-token-0003", True),
         ("test-kiosk-token-0001", False), ("no-such-token", False), ("no-such-token", True)]
alone = {key: read(lambda conn, key=key: lookup_devices(conn, [key])[key]) for key in asked}
lookups = Gathered(store, lambda conn, asked: lookup_devices(conn, list(asked)))
crowd = [gevent.spawn(lookups, asked[i % len(asked)]) for i in range(200)]
gevent.joinall(crowd, timeout=30)

def shown(found):
    if found is None or not isinstance(found, tuple):
        return found and found.name
    device, ids, codes = found
    return [device and device.name, len(ids), sorted(codes) if codes is not None else None]

print(json.dumps({
    "same": all(shown(g.value) == shown(alone[asked[i % len(asked)]]) for i, g in enumerate(crowd)),
    "alone": {f"{t}:{b}": shown(v) for (t, b), v in alone.items()},
    "reads": len(reads),
}))
"""


def test_devices_asked_together_are_looked_up_in_a_few_reads_each_as_alone(tmp_path):
    out = gevent_child(CHILD, f"sqlite:///{tmp_path / 'lookups.sqlite3'}", str(CENTRE))
    assert out["same"], out
    assert out["alone"] == {
        "test-display-token-0001:True": ["Bảng sảnh", 0, None],  # bound to no counter
        "test-display-token-0003:True": ["Bảng quầy 3", 1, ["DD"]],  # counter 3's service
        "test-kiosk-token-0001:False": "Kiosk A",
        "no-such-token:False": None,
        "no-such-token:True": [None, 0, None],
    }
    assert out["reads"] <= 3, out  # 200 asked at once: one read, two at most
