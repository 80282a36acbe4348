"""What the doors share in one server process: the engine, the store, the hub, settings.
The gateway asks core functions (auth, views) what it needs; it runs no SQL itself."""

from __future__ import annotations

from dataclasses import dataclass, field

from core import auth, views
from core.engine import QueueEngine
from core.store import Store

from .hub import ChangeHub


@dataclass
class ServerContext:
    store: Store
    engine: QueueEngine
    hub: ChangeHub
    public_url: str | None = None
    event_rate: float = 20.0  # events a connection may send per second, sustained
    event_burst: float = 40.0
    throttle: auth.LoginThrottle = field(default_factory=auth.LoginThrottle)
    offload: object = None

    def lookup_device(self, token: str):
        """(device row or None, whether the token is a staff session token instead)."""
        return self.store.read(lambda conn: auth.identify_device(conn, token))

    def lookup_staff_counter(self, token: str, number: int):
        """(staff row, counter row) for a clerk connecting to counter ``number``."""
        return self.store.read(lambda conn: auth.staff_at_counter(conn, token, number))

    def device_counter_ids(self, device_id: int) -> list[int]:
        return self.store.read(lambda conn: auth.device_counter_ids(conn, device_id))

    def service_codes(self, counter_ids) -> frozenset[str]:
        return self.store.read(lambda conn: views.service_codes(conn, counter_ids))

    def check_password(self, stored: str, password: str) -> bool:
        """The slow hash comparison, off the event loop when the server has a thread pool."""
        if self.offload is None:
            return auth.password_matches(stored, password)
        return self.offload(auth.password_matches, stored, password)
