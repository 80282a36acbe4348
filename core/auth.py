"""Who is connecting: device tokens, staff logins and their session tokens."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from . import models as m
from .errors import QueueError
from .limits import Counts, MemoryCounts
from .permissions import Principal, principal_of, require
from .store import Store, Tx

SESSION_HOURS = 12


def token_hash(token: str) -> str:
    """Device and session tokens are random secrets: a plain digest is enough to store."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# scrypt's cost (N=2**15, r=8, p=3), in werkzeug's "scrypt:N:r:p$salt$hex" format (which this
# reads and writes; hashes with other parameters, werkzeug's default 2**15:8:1 included, are
# checked with their own). N and r fix the memory, 128 * N * r = 32 MiB a check, which a small
# centre PC can spare for the one or two checks run at once (gateway/guard.py bounds them); p=3
# is OWASP's equivalent of its floor (N=2**17, 128 MiB) at that memory, about 0.16 s of one core
# a check on the 2-core reference machine: nothing for a clerk logging in twice a day, and a
# guess costs the same to whoever took a copy of the database.
SCRYPT = (32768, 8, 3)


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


def dummy_hash() -> str:
    """A hash no password matches, at the current cost: checked for an unknown or inactive
    username, so that such a login takes as long as a wrong password for a real one."""
    return "scrypt:{}:{}:{}${}${}".format(*SCRYPT, "x" * 16, "0" * 128)


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


def devices_for_tokens(conn: Connection, tokens) -> dict[str, Row]:
    """The active devices owning these tokens, by token (a token nobody owns is absent)."""
    by_hash = {token_hash(t): t for t in tokens}
    rows = conn.execute(_DEVICES_BY_HASH, {"hashes": list(by_hash)})
    return {by_hash[row.token_hash]: row for row in rows}


# Built once: a statement built per look-up leaves its parts to the collector.
_DEVICES_BY_HASH = sa.select(m.devices).where(
    m.devices.c.token_hash.in_(sa.bindparam("hashes", expanding=True)),
    m.devices.c.active.is_(True),
)


def device_by_id(conn: Connection, device_id: int) -> Row | None:
    """The active device ``device_id`` (None once revoked)."""
    d = m.devices
    return conn.execute(sa.select(d).where(d.c.id == device_id, d.c.active.is_(True))).first()


def revoked_device(conn: Connection, token: str, kind: str) -> bool:
    """Whether ``token`` was the token of a device of ``kind`` that has been revoked (its
    connection is refused saying so, not as an unknown token)."""
    d = m.devices
    found = conn.execute(
        sa.select(d.c.id).where(
            d.c.token_hash == token_hash(token), d.c.kind == kind, d.c.active.is_(False)
        )
    ).first()
    return found is not None


def device_counter_ids(conn: Connection, device_id: int) -> list[int]:
    dc = m.device_counters
    return list(
        conn.execute(sa.select(dc.c.counter_id).where(dc.c.device_id == device_id)).scalars()
    )


def devices_counter_ids(conn: Connection, device_ids) -> dict[int, list[int]]:
    """The counters each of these devices is bound to (a device bound to none is absent)."""
    out: dict[int, list[int]] = {}
    for device_id, counter_id in conn.execute(_DEVICE_COUNTERS, {"ids": list(device_ids)}):
        out.setdefault(device_id, []).append(counter_id)
    return out


_DEVICE_COUNTERS = sa.select(m.device_counters.c.device_id, m.device_counters.c.counter_id).where(
    m.device_counters.c.device_id.in_(sa.bindparam("ids", expanding=True))
)


_STAFF_BY_SESSION = (
    sa.select(m.staff, m.staff_sessions.c.expires_at, m.staff_sessions.c.token_hash.label("digest"))
    .join(m.staff_sessions, m.staff_sessions.c.staff_id == m.staff.c.id)
    .where(m.staff_sessions.c.token_hash.in_(sa.bindparam("digests", expanding=True)))
)


def staff_for_tokens(conn: Connection, tokens) -> dict[str, Row | QueueError]:
    """For each session token: the active staff member owning it, or the QueueError
    refusing it (unauthorized); one statement for any number of tokens."""
    digests = {token: token_hash(token) for token in tokens}
    wanted = sorted(set(digests.values()))
    rows = {r.digest: r for r in conn.execute(_STAFF_BY_SESSION, {"digests": wanted})}
    now = m.utcnow()
    out: dict[str, Row | QueueError] = {}
    for token, digest in digests.items():
        row = rows.get(digest)
        if row is None or not row.active:
            out[token] = QueueError("unauthorized", "auth_invalid")
        elif row.expires_at <= now:
            out[token] = QueueError("unauthorized", "auth_expired")
        else:
            out[token] = row
    return out


def staff_for_token(conn: Connection, token: str) -> Row:
    """The active staff member owning a session token, or raise unauthorized."""
    return _raised(staff_for_tokens(conn, [token])[token])


def _raised(value):
    if isinstance(value, QueueError):
        raise value
    return value


def logout(store: Store, token: str) -> None:
    """End a staff session (the token stops working at once); unknown tokens are ignored."""

    def op(tx: Tx) -> dict:
        ss = m.staff_sessions
        tx.conn.execute(ss.delete().where(ss.c.token_hash == token_hash(token)))
        return {}

    store.write(op, centre_id=0, actor="logout")


_GRANTS = sa.select(
    m.staff_roles.c.staff_id, m.staff_roles.c.centre_id, m.staff_roles.c.role
).where(m.staff_roles.c.staff_id.in_(sa.bindparam("ids", expanding=True)))


def staff_grants(conn: Connection, staff_id: int) -> list[tuple[int, str]]:
    """The (centre id, role) pairs an account holds."""
    return grants_of(conn, [staff_id]).get(staff_id, [])


def grants_of(conn: Connection, staff_ids) -> dict[int, list[tuple[int, str]]]:
    """Each account's (centre id, role) pairs (none: absent)."""
    out: dict[int, list[tuple[int, str]]] = {}
    for staff_id, centre_id, role in conn.execute(_GRANTS, {"ids": sorted(set(staff_ids))}):
        out.setdefault(staff_id, []).append((centre_id, role))
    return out


def end_sessions(conn: Connection, staff_id: int) -> None:
    """End every session of a staff member (a password changed, deactivated): their tokens
    stop working at once, and their open sockets are closed (gateway/sessions.py)."""
    ss = m.staff_sessions
    conn.execute(ss.delete().where(ss.c.staff_id == staff_id))


SEEN_EVERY_S = 60  # how often an open page's session is marked seen (gateway/sessions.py)


def seen(store: Store, digests: list[str]) -> None:
    """Mark these sessions seen now (their pages are connected), where the mark is older
    than :data:`SEEN_EVERY_S`: a few rows a minute, one statement."""
    if not digests:
        return

    def op(tx: Tx) -> dict:
        ss = m.staff_sessions
        stale = tx.now - timedelta(seconds=SEEN_EVERY_S)
        tx.conn.execute(
            ss.update()
            .where(
                ss.c.token_hash.in_(digests),
                sa.or_(ss.c.seen_at.is_(None), ss.c.seen_at < stale),
            )
            .values(seen_at=tx.now)
        )
        return {}

    store.write(op, centre_id=0, actor="sessions")


def live_sessions(conn: Connection, digests: list[str]) -> set[str]:
    """Which of these session token digests still open a session (not ended, not
    expired, their staff member active)."""
    ss, st = m.staff_sessions, m.staff
    if not digests:
        return set()
    rows = conn.execute(
        sa.select(ss.c.token_hash)
        .join(st, st.c.id == ss.c.staff_id)
        .where(ss.c.token_hash.in_(digests), ss.c.expires_at > m.utcnow(), st.c.active.is_(True))
    )
    return set(rows.scalars())


def active_devices(conn: Connection, ids: list[int]) -> dict[int, str]:
    """The token digest of each of these devices that is active (not revoked)."""
    d = m.devices
    found: dict[int, str] = {}
    for i in range(0, len(ids), 900):  # a hall of thousands: under SQLite's 999 parameters
        rows = conn.execute(
            sa.select(d.c.id, d.c.token_hash).where(
                d.c.id.in_(ids[i : i + 900]), d.c.active.is_(True)
            )
        )
        found.update(rows.all())
    return found


def principal_by_id(conn: Connection, staff_id: int) -> Principal | None:
    """The active account ``staff_id`` with the roles it holds now (None: deactivated)."""
    st = m.staff
    staff = conn.execute(sa.select(st).where(st.c.id == staff_id, st.c.active.is_(True))).first()
    return None if staff is None else principal_of(staff, staff_grants(conn, staff.id))


def principal_for_token(conn: Connection, token: str) -> Principal:
    """The staff account owning session ``token`` with the roles it holds (unauthorized
    if none)."""
    return _raised(principals_for_tokens(conn, [token])[token])


def principals_for_tokens(conn: Connection, tokens) -> dict[str, Principal | QueueError]:
    """:func:`principal_for_token` for many tokens in two statements (a refusal as the
    value)."""
    found = staff_for_tokens(conn, tokens)
    grants = grants_of(conn, [r.id for r in found.values() if not isinstance(r, QueueError)])
    return {
        token: r if isinstance(r, QueueError) else principal_of(r, grants.get(r.id, []))
        for token, r in found.items()
    }


def staff_centre_id(conn: Connection, principal: Principal, code: str | None, permission: str):
    """The centre a staff request acts in, ``(centre id, the role held there)``: the one
    whose ``code`` is given, else the account's own; ``permission`` must be held there."""
    return _acting_centre(principal, code, permission, centre_ids_by_code(conn, [code]))


_CENTRE_IDS = sa.select(m.centres.c.code, m.centres.c.id).where(
    m.centres.c.code.in_(sa.bindparam("codes", expanding=True))
)


def centre_ids_by_code(conn: Connection, codes) -> dict[str, int]:
    wanted = sorted({c for c in codes if c is not None})
    return dict(conn.execute(_CENTRE_IDS, {"codes": wanted}).all()) if wanted else {}


def _acting_centre(principal: Principal, code, permission: str, ids_by_code: dict[str, int]):
    centre_id = principal.home_centre_id
    if code is not None:
        centre_id = ids_by_code.get(code)
        if centre_id is None:
            raise QueueError("not_found", "unknown_centre", centre=code[:32])
    return centre_id, require(principal, permission, centre_id)


def staff_counter_ids(conn: Connection, staff_id: int, centre_id: int) -> list[int]:
    """The counters of a centre that an account is assigned to (none: any of them)."""
    sc, c = m.staff_counters, m.counters
    return list(
        conn.execute(
            sa.select(sc.c.counter_id)
            .join(c, c.c.id == sc.c.counter_id)
            .where(sc.c.staff_id == staff_id, c.c.centre_id == centre_id)
        ).scalars()
    )


def principal_for_username(conn: Connection, username: str) -> Principal:
    st = m.staff
    staff = conn.execute(sa.select(st).where(st.c.username == username)).one()
    return principal_of(staff, staff_grants(conn, staff.id))


def take_counter(
    conn: Connection, principal: Principal, number: int, centre: str | None = None
) -> tuple[str, Row]:
    """(the role held there, the counter) for staff taking counter ``number`` of their
    centre (or of the centre whose code is ``centre``)."""
    return _raised(take_counters(conn, [(principal, number, centre)])[0])


_ACTIVE_COUNTERS = sa.select(m.counters).where(
    m.counters.c.centre_id.in_(sa.bindparam("ids", expanding=True)), m.counters.c.active.is_(True)
)
_ASSIGNED = (
    sa.select(m.staff_counters.c.staff_id, m.counters.c.centre_id, m.staff_counters.c.counter_id)
    .join(m.counters, m.counters.c.id == m.staff_counters.c.counter_id)
    .where(m.staff_counters.c.staff_id.in_(sa.bindparam("ids", expanding=True)))
)


def take_counters(conn: Connection, wants) -> list[tuple[str, Row] | QueueError]:
    """:func:`take_counter` for each (principal, number, centre code or None) of
    ``wants``, in order (a refusal as the value); three statements for any number."""
    wants = list(wants)
    by_code = centre_ids_by_code(conn, [code for _, _, code in wants])
    acting: list = []
    for principal, _number, code in wants:
        try:
            acting.append(_acting_centre(principal, code, "counter.operate", by_code))
        except QueueError as e:
            acting.append(e)
    centre_ids = sorted({a[0] for a in acting if not isinstance(a, QueueError)})
    rows = conn.execute(_ACTIVE_COUNTERS, {"ids": centre_ids}) if centre_ids else ()
    counters = {(c.centre_id, c.number): c for c in rows}
    assigned: dict[tuple[int, int], set[int]] = {}
    staff_ids = sorted({p.staff_id for p, _, _ in wants})
    for staff_id, centre_id, counter_id in conn.execute(_ASSIGNED, {"ids": staff_ids}):
        assigned.setdefault((staff_id, centre_id), set()).add(counter_id)
    out: list[tuple[str, Row] | QueueError] = []
    for (principal, number, _code), act in zip(wants, acting, strict=True):
        if isinstance(act, QueueError):
            out.append(act)
            continue
        centre_id, role = act
        counter = counters.get((centre_id, number))
        allowed = assigned.get((principal.staff_id, centre_id))  # none: any counter
        if counter is None:  # retired ones included (core/admin.py)
            out.append(QueueError("not_found", "unknown_counter", number=number))
        elif allowed and counter.id not in allowed:
            out.append(
                QueueError(
                    "forbidden",
                    "auth_counter_forbidden",
                    username=principal.username,
                    number=number,
                )
            )
        else:
            out.append((role, counter))
    return out


def staff_at_counter(
    conn: Connection, token: str, number: int, centre: str | None = None
) -> tuple[Principal, str, Row]:
    """(principal, its role there, counter) for staff with session ``token`` taking a
    counter (:func:`take_counter`). A device's token is as unknown here as a made-up one:
    a refusal never tells what else a token would open."""
    key = (token, number, centre)
    return _raised(staff_at_counters(conn, [key])[key])


def staff_at_counters(conn: Connection, asked) -> dict[tuple, tuple | QueueError]:
    """:func:`staff_at_counter` for each (token, number, centre) asked (a refusal as the
    value): five statements for a hall of clerks reconnecting at once."""
    asked = list(dict.fromkeys(asked))
    principals = principals_for_tokens(conn, {token for token, _, _ in asked})
    valid = [k for k in asked if not isinstance(principals[k[0]], QueueError)]
    taken = take_counters(conn, [(principals[t], n, c) for t, n, c in valid])
    out: dict[tuple, tuple | QueueError] = {k: principals[k[0]] for k in asked}
    for key, result in zip(valid, taken, strict=True):
        out[key] = result if isinstance(result, QueueError) else (principals[key[0]], *result)
    return out


def counter_by_number(conn: Connection, centre_id: int, number: int) -> Row:
    c = m.counters
    counter = conn.execute(
        sa.select(c).where(c.c.centre_id == centre_id, c.c.number == number, c.c.active.is_(True))
    ).first()
    if counter is None:  # retired ones included (core/admin.py)
        raise QueueError("not_found", "unknown_counter", number=number)
    return counter


class LoginThrottle:
    """Growing delays after failed logins, for an account at an address and for an address.

    Keys are never an account alone: failures from one address never make a clerk at
    another wait (an outsider cannot lock anyone out). An account at an address may fail
    ``free_account`` times, an address (many usernames) ``free_address`` times; after that
    each further attempt must wait ``base_s`` seconds, doubling with each failure up to
    ``max_delay_s``. An entry is forgotten ``forget_s`` after its last failure (or its delay,
    if longer).

    An attempt counts as a failure from the moment it is let through (``attempt``), so a
    burst of simultaneous guesses is throttled as if they came one after another; the wait
    runs from when the failure is known (``failed``); a success clears the account's entry
    and takes that attempt back from the address's.

    The counts live in ``counts`` (core/limits.py): this process's memory, at most
    ``max_entries`` entries (the least recently failed go first, so spraying usernames
    cannot grow it), or Redis, shared by the server's processes (gateway/limits.py).
    """

    def __init__(
        self,
        free_account: int = 4,
        free_address: int = 20,
        base_s: float = 1.0,
        max_delay_s: float = 300.0,
        forget_s: float = 900.0,
        max_entries: int = 10_000,
        clock=time.time,
        counts: Counts | None = None,
    ):
        self.free = {"account": free_account, "address": free_address}
        self.base_s = base_s
        self.max_delay_s = max_delay_s
        self.forget_s = forget_s
        self.clock = clock
        self.counts = counts if counts is not None else MemoryCounts(max_entries)
        self._ttl = forget_s + max_delay_s
        self._lock = threading.Lock()

    @staticmethod
    def keys(username: str, address: str) -> tuple[str, str]:
        return f"login:account:{address}:{username.lower()}", f"login:address:{address}"

    def __len__(self) -> int:
        return len(self.counts)

    def _delay(self, key: str, failures: int) -> float:
        over = failures - self.free[key.split(":")[1]]
        if over < 0:
            return 0.0
        return min(self.max_delay_s, self.base_s * 2 ** min(over, 32))

    def _wait(self, key: str, now: float) -> float:
        entry = self.counts.get(key)
        if entry is None:
            return 0.0
        failures, last = entry
        delay = self._delay(key, failures)
        if now - last > max(self.forget_s, delay):
            self.counts.drop(key)
            return 0.0
        return max(0.0, delay - (now - last))

    def retry_after(self, *keys: str) -> int:
        """Seconds before these keys may try again (0: now)."""
        now = self.clock()
        wait = max((self._wait(k, now) for k in keys), default=0.0)
        return math.ceil(wait)

    def attempt(self, *keys: str) -> int:
        """Let an attempt through (0), counted as a failure until ``succeeded`` or
        ``forgive``; or the seconds to wait, counting nothing."""
        now = self.clock()
        with self._lock:
            wait = max((self._wait(k, now) for k in keys), default=0.0)
            if wait > 0:
                return math.ceil(wait)
            for key in keys:
                self.counts.add(key, 1, now, self._ttl)
        return 0

    def failed(self, *keys: str) -> None:
        """The attempt let through failed: the wait runs from now."""
        now = self.clock()
        for key in keys:
            self.counts.add(key, 0, now, self._ttl)

    def forgive(self, *keys: str) -> None:
        """Take one attempt back (it did not fail: the check could not be made)."""
        for key in keys:
            self.counts.add(key, -1, None, self._ttl)

    def succeeded(self, account_key: str, address_key: str) -> None:
        self.counts.drop(account_key)
        self.forgive(address_key)


def login(
    store: Store,
    throttle: LoginThrottle,
    username: str,
    password: str,
    address: str,
    check=password_matches,
) -> dict:
    """Check a staff member's password and open a session; returns the token (shown once).

    ``check`` lets the server run the deliberately slow hash comparison off its event loop
    (and bound how many run at once). Every attempt let through the throttle costs one
    check, whether the username exists or not.
    """
    keys = throttle.keys(username, address)
    wait = throttle.attempt(*keys)
    if wait:
        raise QueueError("rate_limited", "login_throttled", seconds=wait)
    st = m.staff
    try:
        staff = store.read(
            lambda conn: conn.execute(sa.select(st).where(st.c.username == username)).first()
        )
        known = staff is not None and staff.active
        matches = check(staff.password_hash if known else dummy_hash(), password)
    except BaseException:
        throttle.forgive(*keys)  # the database or the check failed: not a wrong password
        raise
    if not (known and matches):
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
                address=address[:64],
                seen_at=tx.now,
            )
        )
        return {"expires_at": expires.isoformat(timespec="seconds")}

    result = store.write(op, centre_id=staff.centre_id, actor=f"staff:{staff.id}")
    return {"token": token, **result}
