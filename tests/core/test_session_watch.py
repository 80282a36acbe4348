"""The periodic credential check (gateway/sessions.py) on a real store: every session
each round, the devices a slice at a time in turn, all of them after a change."""

from __future__ import annotations

from types import SimpleNamespace

import sqlalchemy as sa

from core import models as m
from core.store import Store
from gateway import sessions


class Door:
    namespace = "/display"

    def __init__(self, clients):
        self.clients = clients


def _client(device_id, digest):
    return SimpleNamespace(
        session=None, device_token=digest, actor=SimpleNamespace(kind="device", id=device_id)
    )


def test_the_periodic_check_reads_the_devices_in_turn_and_all_after_a_change(tmp_path, monkeypatch):
    store = Store(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    store.migrate()
    n = 12
    with store.engine.begin() as c:
        c.execute(m.centres.insert().values(id=1, code="C", name="C", timezone="Asia/Ho_Chi_Minh"))
        c.execute(
            m.devices.insert(),
            [
                dict(
                    id=i, centre_id=1, name=f"d{i}", kind="display", token_hash=f"t{i}", active=True
                )
                for i in range(1, n + 1)
            ],
        )
    door = Door({f"sid{i}": _client(i, f"t{i}") for i in range(1, n + 1)})
    closed = []

    def disconnect(sid, namespace):
        closed.append(sid)
        door.clients.pop(sid)

    server = SimpleNamespace(disconnect=disconnect)
    watch = sessions.SessionWatch(SimpleNamespace(server=server), store, [door], interval_s=0)
    monkeypatch.setattr(sessions, "PERIODIC_DEVICES", 5)
    with store.engine.begin() as c:  # two revoked, one at each end
        c.execute(m.devices.update().where(m.devices.c.id.in_([1, 12])).values(active=False))

    read = []
    real = sessions.auth.active_devices
    monkeypatch.setattr(
        sessions.auth, "active_devices", lambda conn, ids: read.append(list(ids)) or real(conn, ids)
    )
    watch.check(changed=False)
    assert read[-1] == [1, 2, 3, 4, 5] and closed == ["sid1"]
    watch.check(changed=False)
    watch.check(changed=False)
    assert read[-2:] == [[6, 7, 8, 9, 10], [11, 12, 2, 3, 4]]  # sid1 is gone
    assert sorted(closed) == ["sid1", "sid12"]
    closed.clear()
    with store.engine.begin() as c:
        c.execute(m.devices.update().where(m.devices.c.id == 7).values(token_hash="other"))
    watch.check()  # after a change: every device at once
    assert read[-1] == list(range(2, n)) and closed == ["sid7"]
    store.dispose()


def test_the_periodic_check_marks_the_open_sessions_seen_once_a_minute(tmp_path, monkeypatch):
    """The admin's list of sessions says when each was last seen: the sessions whose
    pages are open here, marked by the periodic check at most every SEEN_EVERY_S."""
    from datetime import timedelta

    store = Store(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    store.migrate()
    long_ago = m.utcnow() - timedelta(hours=1)
    ss = m.staff_sessions
    with store.engine.begin() as c:
        c.execute(m.centres.insert().values(id=1, code="C", name="C", timezone="Asia/Ho_Chi_Minh"))
        c.execute(
            m.staff.insert().values(
                id=1, centre_id=1, username="a", password_hash="!", full_name="A", active=True
            )
        )
        c.execute(
            ss.insert(),
            [
                dict(
                    staff_id=1,
                    token_hash=digest,
                    created_at=long_ago,
                    expires_at=long_ago + timedelta(hours=12),
                    seen_at=long_ago,
                )
                for digest in ("open", "closed")
            ],
        )
    door = Door(
        {
            "sid": SimpleNamespace(
                session="open", device_token=None, actor=SimpleNamespace(kind="staff")
            )
        }
    )
    watch = sessions.SessionWatch(SimpleNamespace(server=None), store, [door], interval_s=0)

    def seen():
        query = sa.select(ss.c.token_hash, ss.c.seen_at).order_by(ss.c.id)
        return dict(store.read(lambda conn: conn.execute(query).all()))

    watch.check(changed=False)
    marked = seen()
    assert marked["open"] > long_ago and marked["closed"] == long_ago
    watch.check(changed=False)  # within the minute: not again
    assert seen() == marked
    monkeypatch.setattr(sessions.auth, "SEEN_EVERY_S", 0)
    watch.check()  # after a change: only the check, no mark
    assert seen() == marked
    watch.check(changed=False)
    assert seen()["open"] > marked["open"]
    store.dispose()
