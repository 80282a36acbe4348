"""What the doors share in one server process: the engine, the store, the hub, settings."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from core import auth
from core import models as m
from core.engine import QueueEngine
from core.errors import QueueError
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

        def read(conn):
            device = auth.device_for_token(conn, token)
            if device is not None:
                return device, False
            ss = m.staff_sessions
            staff = conn.execute(
                sa.select(ss.c.id).where(ss.c.token_hash == auth.token_hash(token))
            ).first()
            return None, staff is not None

        return self.store.read(read)

    def lookup_staff_counter(self, token: str, number: int):
        """(staff row, counter row) for a clerk connecting to counter ``number``."""

        def read(conn):
            try:
                staff = auth.staff_for_token(conn, token)
            except QueueError as e:
                device = auth.device_for_token(conn, token) if e.key == "auth_invalid" else None
                if device is not None:
                    raise QueueError(
                        "forbidden", "auth_wrong_role", kind=device.kind, wanted="counter"
                    ) from None
                raise
            c = m.counters
            counter = conn.execute(
                sa.select(c).where(c.c.centre_id == staff.centre_id, c.c.number == number)
            ).first()
            if counter is None:
                raise QueueError("not_found", "unknown_counter", number=number)
            allowed = auth.staff_counter_ids(conn, staff.id)
            if allowed and counter.id not in allowed:
                raise QueueError(
                    "forbidden", "auth_counter_forbidden", username=staff.username, number=number
                )
            return staff, counter

        return self.store.read(read)

    def device_counter_ids(self, device_id: int) -> list[int]:
        return self.store.read(lambda conn: auth.device_counter_ids(conn, device_id))

    def check_password(self, stored: str, password: str) -> bool:
        """The slow hash comparison, off the event loop when the server has a thread pool."""
        if self.offload is None:
            return auth.password_matches(stored, password)
        return self.offload(auth.password_matches, stored, password)
