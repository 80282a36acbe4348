"""Who is connecting: device tokens, staff logins and their session tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from . import models as m
from .errors import QueueError
from .store import Store, Tx

SESSION_HOURS = 12
DEVICE_KINDS = ("kiosk", "display", "rating", "agent")
STAFF_ROLES = ("clerk", "manager", "admin")


def token_hash(token: str) -> str:
    """Device and session tokens are random secrets: a plain digest is enough to store."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# scrypt's cost (2**15, 8, 1): ~32 MB and tens of milliseconds per check, as werkzeug's
# default, whose "scrypt:N:r:p$salt$hex" format this reads and writes.
SCRYPT = (32768, 8, 1)


def _derive(method: str, password: str, salt: str) -> str:
    name, *params = method.split(":")
    secret, salt_b = password.encode("utf-8", "surrogatepass"), salt.encode()
    if name == "scrypt":
        n, r, p = (int(x) for x in params) if params else SCRYPT
        return hashlib.scrypt(secret, salt=salt_b, n=n, r=r, p=p, maxmem=132 * n * r * p).hex()
    if name == "pbkdf2":
        digest, rounds = (params + ["600000"])[:2] if params else ("sha256", "600000")
        return hashlib.pbkdf2_hmac(digest, secret, salt_b, int(rounds)).hex()
    raise ValueError(f"unknown password hash method {name!r}")


def hash_password(password: str) -> str:
    method = "scrypt:{}:{}:{}".format(*SCRYPT)
    salt = secrets.token_urlsafe(12)
    return f"{method}${salt}${_derive(method, password, salt)}"


def password_matches(stored: str, password: str) -> bool:
    try:
        method, salt, expected = stored.split("$", 2)
        return hmac.compare_digest(_derive(method, password, salt), expected)
    except ValueError:
        return False


def device_for_token(conn: Connection, token: str) -> Row | None:
    d = m.devices
    return conn.execute(
        sa.select(d).where(d.c.token_hash == token_hash(token), d.c.active.is_(True))
    ).first()


def device_counter_ids(conn: Connection, device_id: int) -> list[int]:
    dc = m.device_counters
    return list(
        conn.execute(sa.select(dc.c.counter_id).where(dc.c.device_id == device_id)).scalars()
    )


def staff_for_token(conn: Connection, token: str) -> Row:
    """The active staff member owning a session token, or raise unauthorized."""
    ss, st = m.staff_sessions, m.staff
    row = conn.execute(
        sa.select(st, ss.c.expires_at)
        .join(ss, ss.c.staff_id == st.c.id)
        .where(ss.c.token_hash == token_hash(token))
    ).first()
    if row is None or not row.active:
        raise QueueError("unauthorized", "auth_invalid")
    if row.expires_at <= m.utcnow():
        raise QueueError("unauthorized", "auth_expired")
    return row


def staff_counter_ids(conn: Connection, staff_id: int) -> list[int]:
    sc = m.staff_counters
    return list(conn.execute(sa.select(sc.c.counter_id).where(sc.c.staff_id == staff_id)).scalars())


def staff_at_counter(conn: Connection, token: str, number: int) -> tuple[Row, Row]:
    """(staff, counter) for a clerk with session ``token`` taking counter ``number``.
    A device's token is as unknown here as a made-up one: a refusal never tells what else
    a token would open."""
    staff = staff_for_token(conn, token)
    counter = counter_by_number(conn, staff.centre_id, number)
    allowed = staff_counter_ids(conn, staff.id)
    if allowed and counter.id not in allowed:
        raise QueueError(
            "forbidden", "auth_counter_forbidden", username=staff.username, number=number
        )
    return staff, counter


def counter_by_number(conn: Connection, centre_id: int, number: int) -> Row:
    c = m.counters
    counter = conn.execute(
        sa.select(c).where(c.c.centre_id == centre_id, c.c.number == number)
    ).first()
    if counter is None:
        raise QueueError("not_found", "unknown_counter", number=number)
    return counter


class LoginThrottle:
    """Refuses a username or an address after ``limit`` failures within ``window_s``.

    Held in memory of each server process: a restart forgets it, which is acceptable for
    slowing down guessing; the per-address key also stops spraying many usernames.
    """

    def __init__(self, limit: int = 5, window_s: int = 300):
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> int:
        now = time.monotonic()
        wait = 0
        with self._lock:
            for key in keys:
                recent = [t for t in self._failures.get(key, []) if now - t < self.window_s]
                self._failures[key] = recent
                if len(recent) >= self.limit:
                    wait = max(wait, int(self.window_s - (now - recent[0])) + 1)
        return wait

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, []).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


def login(
    store: Store,
    throttle: LoginThrottle,
    username: str,
    password: str,
    address: str,
    check=password_matches,
) -> dict:
    """Check a staff member's password and open a session; returns the token (shown once).

    ``check`` lets the server run the deliberately slow hash comparison off its event loop.
    """
    keys = (f"user:{username.lower()}", f"addr:{address}")
    wait = throttle.retry_after(*keys)
    if wait:
        raise QueueError("rate_limited", "login_throttled", seconds=wait)
    st = m.staff
    staff = store.read(
        lambda conn: conn.execute(sa.select(st).where(st.c.username == username)).first()
    )
    if staff is None or not staff.active or not check(staff.password_hash, password):
        throttle.failed(*keys)
        raise QueueError("unauthorized", "login_failed")
    throttle.succeeded(*keys)
    token = secrets.token_urlsafe(32)

    def op(tx: Tx) -> dict:
        expires = tx.now + timedelta(hours=SESSION_HOURS)
        tx.conn.execute(
            m.staff_sessions.insert().values(
                staff_id=staff.id,
                token_hash=token_hash(token),
                created_at=tx.now,
                expires_at=expires,
            )
        )
        return {"expires_at": expires.isoformat(timespec="seconds")}

    result = store.write(op, centre_id=staff.centre_id, actor=f"staff:{staff.id}")
    return {"token": token, **result}
