"""What the doors share in one server process: the engine, the store, the hub, settings.
The gateway asks core functions (auth, views) what it needs; it runs no SQL itself."""

from __future__ import annotations

from dataclasses import dataclass, field

import gevent
from gevent.event import AsyncResult

from core import auth, views
from core.engine import QueueEngine
from core.errors import QueueError
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
    _lookups: Gathered | None = field(default=None, repr=False)
    _staff_lookups: Gathered | None = field(default=None, repr=False)

    def read(self, view, *args):
        """``view(conn, *args)`` (a core.views read) in one read transaction."""
        return self.store.read(lambda conn: view(conn, *args))

    def lookup_device(self, token: str, binding: bool = False):
        """The active device owning ``token`` (or None), and with ``binding`` also its
        counters and their service codes. Devices connecting together are looked up
        together: three statements per batch."""
        if self._lookups is None:
            self._lookups = self.gathered(lambda conn, asked: lookup_devices(conn, list(asked)))
        return self._lookups((token, binding))

    def gathered(self, read_many, most: int = 500, readers: int = 1) -> Gathered:
        """Reads of ``read_many`` gathered while ``readers`` are in flight
        (:class:`Gathered`)."""
        return Gathered(self.store, read_many, most, self.offload is None, readers)

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
        connecting to counter ``number`` (of the centre whose code is ``centre``); clerks
        reconnecting together are looked up together."""
        if self._staff_lookups is None:
            self._staff_lookups = self.gathered(lookup_staff_counters)
        return self._staff_lookups((token, number, centre))


def lookup_staff_counters(conn, asked) -> dict[tuple, object]:
    """For each (token, counter number, centre code) asked: (principal, role, counter,
    service codes), or the QueueError refusing it."""
    found = auth.staff_at_counters(conn, asked)
    taken = [v[2].id for v in found.values() if not isinstance(v, QueueError)]
    codes = views.service_codes_by_counter(conn, taken) if taken else {}
    return {
        key: v if isinstance(v, QueueError) else (*v, frozenset(codes.get(v[2].id, ())))
        for key, v in found.items()
    }


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


class Gathered:
    """Reads asked for together, done together: the keys asked while a read is in flight
    wait for the next read (``readers`` may be in flight), which reads them all in one
    transaction with
    ``read_many(conn, {key: arg})`` (-> {key: value}; a value that is an exception is
    raised to that key's asker alone), ``most`` at a time. A hall of
    devices reconnecting at once (their process killed) costs a read per batch, not per
    device. A key asked again before its read has begun shares it. ``alone``: each read
    at once on its own (no gevent hub to gather under: the in-process test app)."""

    def __init__(
        self, store: Store, read_many, most: int = 500, alone: bool = False, readers: int = 1
    ):
        self.store = store
        self.read_many = read_many
        self.most = most
        self.alone = alone
        self.readers = readers  # reads in flight at most (each on its own connection)
        self._asked: dict = {}  # key -> (arg, AsyncResult)
        self._reading = 0

    def __call__(self, key, arg=None):
        if self.alone:
            value = self.store.read(lambda conn: self.read_many(conn, {key: arg}))[key]
            if isinstance(value, BaseException):
                raise value
            return value
        asked = self._asked.get(key)
        if asked is None:
            asked = self._asked[key] = (arg, AsyncResult())
        if self._reading < self.readers:
            self._reading += 1
            gevent.spawn(self._read)
        return asked[1].get()

    def _read(self) -> None:
        try:
            while self._asked:
                keys = list(self._asked)[: self.most]
                batch = {key: self._asked.pop(key) for key in keys}
                args = {key: arg for key, (arg, _) in batch.items()}
                try:
                    found = self.store.read(lambda conn, args=args: self.read_many(conn, args))
                except Exception as e:  # noqa: BLE001 - a lost database: each asker is told
                    for _, result in batch.values():
                        result.set_exception(e)
                    continue
                for key, (_, result) in batch.items():
                    value = found[key]
                    if isinstance(value, BaseException):
                        result.set_exception(value)
                    else:
                        result.set(value)
        finally:
            self._reading -= 1


def _binding(conn, device_id: int) -> tuple[list[int], frozenset[str] | None]:
    ids = auth.device_counter_ids(conn, device_id)
    return ids, (views.service_codes(conn, ids) if ids else None)
