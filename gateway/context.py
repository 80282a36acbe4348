"""What the doors share in one server process: the engine, the store, the hub, settings.
The gateway asks core functions (auth, views) what it needs; it runs no SQL itself."""

from __future__ import annotations

from dataclasses import dataclass, field

import gevent
from gevent.event import AsyncResult

from core import auth, views
from core.engine import QueueEngine
from core.store import Store

from .hub import ChangeHub
from .metrics import Metrics


@dataclass
class ServerContext:
    store: Store
    engine: QueueEngine
    hub: ChangeHub
    public_url: str | None = None
    event_rate: float = 20.0  # events a connection may send per second, sustained
    event_burst: float = 40.0
    offload: object = None
    secret_key: str = ""  # the app's: signs keys such as the boards' announcement key
    limits: object = None  # core.limits.Counts: shared by the processes when Redis is set
    budget: object = None  # gateway.limits.Budget: each device's work (docs/security.md)
    presence: object = None  # gateway.presence.PresenceLoop: renews devices' presence
    presence_s: float = 15.0  # its interval (core/presence.py)
    metrics: Metrics = field(default_factory=Metrics)  # this process's (gateway/metrics.py)
    _lookups: DeviceLookups | None = field(default=None, repr=False)

    def read(self, view, *args):
        """``view(conn, *args)`` (a core.views read) in one read transaction."""
        return self.store.read(lambda conn: view(conn, *args))

    def lookup_device(self, token: str, binding: bool = False):
        """The active device owning ``token`` (or None), and with ``binding`` also its
        counters and their service codes. Under gevent, devices connecting together are
        looked up together (:class:`DeviceLookups`)."""
        if self.offload is None:
            return self.store.read(lambda conn: lookup_devices(conn, [(token, binding)]))[
                (token, binding)
            ]
        if self._lookups is None:
            self._lookups = DeviceLookups(self.store)
        return self._lookups(token, binding)

    def device_revoked(self, token: str, kind: str) -> bool:
        """Whether ``token`` was a revoked device's of ``kind`` (asked after a refusal)."""
        return self.store.read(lambda conn: auth.revoked_device(conn, token, kind))

    def device_binding(self, device_id: int) -> tuple[list[int], frozenset[str] | None]:
        """The counters a device is bound to and the codes of their services (None: not
        bound, so all of them)."""
        return self.store.read(lambda conn: _binding(conn, device_id))

    def counter_service_codes(self, counter_id: int) -> frozenset[str]:
        return self.store.read(lambda conn: views.service_codes(conn, [counter_id]))

    def lookup_staff_counter(self, token: str, number: int, centre: str | None = None):
        """(principal, its role, counter row, the counter's service codes) for staff
        connecting to counter ``number`` (of the centre whose code is ``centre``)."""

        def read(conn):
            principal, role, counter = auth.staff_at_counter(conn, token, number, centre)
            return principal, role, counter, views.service_codes(conn, [counter.id])

        return self.store.read(read)


def lookup_devices(conn, asked) -> dict[tuple[str, bool], object]:
    """For each (token, binding) asked: the active device owning the token (or None), and
    with ``binding`` (device, its counters' ids, their service codes or None when bound to
    none); three statements whatever the number asked."""
    devices = auth.devices_for_tokens(conn, {token for token, _ in asked})
    bound = [devices[t].id for t, binding in asked if binding and t in devices]
    counters = auth.devices_counter_ids(conn, bound) if bound else {}
    serving = {c for ids in counters.values() for c in ids}
    codes = views.service_codes_by_counter(conn, serving) if serving else {}
    out = {}
    for token, binding in asked:
        device = devices.get(token)
        if not binding:
            out[(token, binding)] = device
            continue
        ids = counters.get(device.id, []) if device else []
        served = frozenset().union(*(codes.get(c, ()) for c in ids)) if ids else None
        out[(token, binding)] = (device, ids, served)
    return out


class DeviceLookups:
    """Device tokens looked up in batches: those asked while a read is in flight wait for
    the next read, which looks them all up in three statements. A hall of boards
    reconnecting at once (their process killed) costs a read per batch, not per device."""

    def __init__(self, store: Store):
        self.store = store
        self._asked: dict[tuple[str, bool], AsyncResult] = {}
        self._reading = False

    def __call__(self, token: str, binding: bool):
        key = (token, binding)
        result = self._asked.get(key)
        if result is None:
            result = self._asked[key] = AsyncResult()
        if not self._reading:
            self._reading = True
            gevent.spawn(self._read)
        return result.get()

    def _read(self) -> None:
        try:
            while self._asked:
                asked, self._asked = self._asked, {}
                try:
                    found = self.store.read(
                        lambda conn, keys=list(asked): lookup_devices(conn, keys)
                    )
                except Exception as e:  # noqa: BLE001 - a lost database: each asker is told
                    for result in asked.values():
                        result.set_exception(e)
                    continue
                for key, result in asked.items():
                    result.set(found[key])
        finally:
            self._reading = False


def _binding(conn, device_id: int) -> tuple[list[int], frozenset[str] | None]:
    ids = auth.device_counter_ids(conn, device_id)
    return ids, (views.service_codes(conn, ids) if ids else None)
