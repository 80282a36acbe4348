"""What the doors share in one server process: the engine, the store, the hub, settings.
The gateway asks core functions (auth, views) what it needs; it runs no SQL itself."""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def read(self, view, *args):
        """``view(conn, *args)`` (a core.views read) in one read transaction."""
        return self.store.read(lambda conn: view(conn, *args))

    # One read per connection: a hall of devices reconnecting at once after a restart
    # costs one thread-pool round trip each, not three.
    def lookup_device(self, token: str, binding: bool = False):
        """The active device owning ``token`` (or None), and with ``binding`` also its
        counters and their service codes."""

        def read(conn):
            device = auth.device_for_token(conn, token)
            if not binding:
                return device
            return device, *(_binding(conn, device.id) if device else ((), None))

        return self.store.read(read)

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


def _binding(conn, device_id: int) -> tuple[list[int], frozenset[str] | None]:
    ids = auth.device_counter_ids(conn, device_id)
    return ids, (views.service_codes(conn, ids) if ids else None)
