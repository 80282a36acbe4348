"""One entry of a centre's configuration at a time (the admin API, admin/api.py).

An entry is what a provisioning file's ``[[services]]``, ``[[counters]]``, ``[[staff]]``
or ``[[devices]]`` entry says. It is checked with core/fields.py (the file's checks and
words), written with core/provisioning.py's per-entry functions (the file's code), in
the caller's transaction; each change is audited (who, the entry before and after,
without secrets) under the action ``configured``, and told to the devices it concerns as
a targeted change (core/roles.py: ``service_changed``, ``counter_changed``,
``device_changed``, ``device_revoked``, ``staff_changed``; the centre's settings stay a
whole ``configured``, which every device follows with a new snapshot). A refusal raises
before anything is written, and the store undoes the operation whatever it had done.

An admin also sees and ends the open sessions of the centre's staff (:func:`sessions`,
:func:`end_sessions`); every process then closes their sockets (gateway/sessions.py).

``PUT`` replaces the entry: a field left out takes the file's default, except the
secrets (an account keeps its password, a device its token) and a staff photo (kept).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from . import models as m
from . import provisioning as p
from . import views
from .auth import hash_password
from .clock import iso
from .errors import QueueError
from .fields import (
    KEYS,
    FieldRefused,
    Known,
    check_centre_rules,
    check_counter_refs,
    check_device_refs,
    check_entry,
    check_staff_refs,
)
from .permissions import STAFF_ROLES, Principal
from .roles import (
    AGENCY_CHANGED,
    CONFIGURED,
    COUNTER_CHANGED,
    DEVICE_CHANGED,
    DEVICE_REVOKED,
    SERVICE_CHANGED,
    SESSIONS_ENDED,
    STAFF_CHANGED,
    change_record,
)
from .store import Tx

# table -> (its rows, their key column (fields.KEYS), what one is called (vi, en))
TABLES = {
    "agencies": (m.agencies, m.agencies.c.code, ("cơ quan", "agency")),
    "services": (m.services, m.services.c.code, ("lĩnh vực", "service")),
    "counters": (m.counters, m.counters.c.number, ("quầy", "counter")),
    "staff": (m.staff, m.staff.c.username, ("cán bộ", "staff member")),
    "devices": (m.devices, m.devices.c.name, ("thiết bị", "device")),
}
SESSION = ("phiên đăng nhập", "session")
EVERYWHERE = ("quản lý tài khoản quản trị toàn hệ thống", "manage installation-wide admins")


def put(
    tx: Tx,
    principal: Principal,
    centre_id: int,
    table: str,
    key,
    body,
    password: tuple[str, str] | None = None,
) -> dict:
    """Create or update the entry of ``table`` whose key is ``key`` (from the address)
    with ``body``'s fields. The answer: the entry as the export writes it, whether it was
    created, what changed, and a generated password or token (the only time it is shown).
    ``password``: for staff, ``(password, its hash)``, hashed before the transaction (it
    is slow): the body's password, or one to give a new account that comes without."""
    conn = tx.conn
    key_field = KEYS[table]
    rows, key_col, _what = TABLES[table]
    if not isinstance(body, dict):
        raise QueueError("bad_request", "bad_payload")
    entry = dict(body)
    if key_field in entry and entry[key_field] != key:
        raise FieldRefused(
            key_field,
            f"“{key_field}” phải giống trong địa chỉ ({key})",
            f"'{key_field}' must be the address's ({key})",
        )
    entry[key_field] = key
    if table == "staff" and "photo" in entry:
        raise FieldRefused(
            "photo",
            "ảnh của cán bộ chưa đặt được qua API này: hãy dùng tệp cấu hình",
            "a staff photo cannot be set through this API yet: use the provisioning file",
        )
    check_entry(table, entry)
    known = _known(conn, centre_id)
    shown: dict = {}
    summary = p.Summary()
    before = p.entries(conn, centre_id, table, key)
    if table == "agencies":
        if entry.get("active") is False:
            _unused(conn, centre_id, key)
        p.apply_agency(conn, centre_id, entry, summary)
    elif table == "services":
        p.apply_service(conn, centre_id, entry, summary)
    elif table == "counters":
        check_counter_refs(entry, known)
        if entry.get("active") is False:
            _closed(conn, centre_id, key)
        p.apply_counter(conn, centre_id, entry, _ids(conn, centre_id, "services"), summary)
    elif table == "staff":
        check_staff_refs(entry, known)
        _may_touch(conn, principal, key, entry["role"])
        if entry.get("home", known.own) == known.own and "password" not in entry:
            exists = conn.execute(sa.select(rows.c.id).where(key_col == key)).first()
            if exists is None:
                given = password or new_password()
                entry["password"] = shown["password"] = given[0]
        if password is not None and entry.get("password") == password[0]:
            entry["_password_hash"] = password[1]
        p.apply_staff(
            conn, centre_id, entry, known.own, _ids(conn, centre_id, "counters"), summary, False
        )
    else:
        check_device_refs(entry, known)
        if "token" not in entry:
            row = _row(conn, centre_id, table, key)
            if row is None or not row.active:
                entry["token"] = shown["token"] = secrets.token_urlsafe(24)
        counter_ids = _ids(conn, centre_id, "counters")
        device_id = p.apply_device(conn, centre_id, entry, counter_ids, summary)
        _set_printed(conn, centre_id, device_id, entry.get("kiosks", []), summary)
    after = p.entries(conn, centre_id, table, key)
    _record(tx, principal, centre_id, table, key, "put", before, after, summary)
    return {
        "ok": True,
        "created": not before,
        "changes": summary.lines() if summary.changed else [],
        "entry": after[0],
        **shown,
    }


def new_password() -> tuple[str, str]:
    """A password for a new account that comes without one (shown once), and its hash."""
    password = secrets.token_urlsafe(9)
    return password, hash_password(password)


def put_centre(tx: Tx, principal: Principal, centre_id: int, body) -> dict:
    """Replace the centre's settings (a ``[centre]`` table: a setting left out takes its
    default). Its code is its key and stays."""
    conn = tx.conn
    if not isinstance(body, dict):
        raise QueueError("bad_request", "bad_payload")
    entry = dict(body)
    before = p.centre_entry(conn, centre_id)
    code = before["code"]
    if entry.get("code", code) != code:
        raise FieldRefused(
            "code",
            f"“code” là mã của trung tâm ({code}), không đổi được",
            f"'code' is the centre's ({code}) and cannot change",
        )
    entry["code"] = code
    check_entry("centre", entry)
    check_centre_rules(entry)
    summary = p.Summary()
    p.apply_centre(conn, entry, summary)
    after = p.centre_entry(conn, centre_id)
    _record(tx, principal, centre_id, "centre", code, "put", [before], [after], summary)
    return {"ok": True, "changes": summary.lines() if summary.changed else [], "entry": after}


def retire(tx: Tx, principal: Principal, centre_id: int, table: str, key) -> dict:
    """Retire an entry: a service, counter or device becomes inactive (its history and
    reports stay; a device's token stops working); an account this centre owns is
    deactivated and its sessions end; an account lent by another centre loses its role
    and counters here. Retiring what is retired already changes nothing."""
    conn = tx.conn
    rows, _key_col, what = TABLES[table]
    row = _row(conn, centre_id, table, key)
    if row is None:
        raise QueueError("not_found", "unknown_entry", what=what, name=str(key)[:64])
    summary = p.Summary()
    before = p.entries(conn, centre_id, table, key)
    label = f"{p.LABELS[table]} {key}"
    if table == "staff":
        if row.id == principal.staff_id:
            raise QueueError("conflict", "retire_self")
        role = conn.execute(
            sa.select(m.staff_roles.c.role).where(
                m.staff_roles.c.staff_id == row.id, m.staff_roles.c.centre_id == centre_id
            )
        ).scalar()
        _may_touch(conn, principal, key, role)
        here = sa.select(m.counters.c.id).where(m.counters.c.centre_id == centre_id)
        sc, sr = m.staff_counters, m.staff_roles
        conn.execute(sc.delete().where(sc.c.staff_id == row.id, sc.c.counter_id.in_(here)))
        if role is not None:
            conn.execute(sr.delete().where(sr.c.staff_id == row.id, sr.c.centre_id == centre_id))
            summary.updated.append(f"{label} (role)")
        if row.centre_id == centre_id and row.active:
            p.retire(conn, rows, row.id, summary, label)
    elif row.active:
        if table == "agencies":
            _unused(conn, centre_id, key)
        if table == "counters":
            _closed(conn, centre_id, key)
        if table == "devices":  # nothing printed by it, nor for it
            _set_printed(conn, centre_id, row.id, [], summary)
            if row.printed_by is not None:
                p.set_printer(conn, centre_id, row.name, None, summary)
        p.retire(conn, rows, row.id, summary, label)
    _record(tx, principal, centre_id, table, key, "delete", before, [], summary)
    return {"ok": True, "changes": summary.lines() if summary.changed else []}


def export(conn, centre_id: int) -> tuple[str, str]:
    """The centre's code and its configuration as a provisioning file's text."""
    data = p.export(conn, centre_id)
    return data["centre"]["code"], p.to_toml(data)


# -- helpers ------------------------------------------------------------------------------
def _row(conn, centre_id: int, table: str, key):
    """The entry's row: a service, counter or device of the centre; an account this centre
    owns or one holding a role here."""
    rows, key_col, _w = TABLES[table]
    if table != "staff":
        mine = sa.select(rows).where(rows.c.centre_id == centre_id, key_col == key)
        return conn.execute(mine).first()
    sr = m.staff_roles
    held = sa.select(sr.c.staff_id).where(sr.c.centre_id == centre_id)
    return conn.execute(
        sa.select(rows).where(
            key_col == key, sa.or_(rows.c.centre_id == centre_id, rows.c.id.in_(held))
        )
    ).first()


def _ids(conn, centre_id: int, table: str) -> dict:
    """The centre's services' ids by code, or its active counters' ids by number."""
    rows, key_col, _w = TABLES[table]
    query = sa.select(key_col, rows.c.id).where(rows.c.centre_id == centre_id)
    if table == "counters":
        query = query.where(rows.c.active.is_(True))
    return dict(conn.execute(query).all())


def _known(conn, centre_id: int) -> Known:
    d = m.devices
    own = conn.execute(sa.select(m.centres.c.code).where(m.centres.c.id == centre_id)).scalar()
    devices = conn.execute(
        sa.select(d.c.id, d.c.name, d.c.kind, d.c.printed_by).where(
            d.c.centre_id == centre_id, d.c.active.is_(True)
        )
    ).all()
    names = {r.id: r.name for r in devices}
    return Known(
        own=own,
        services=set(_ids(conn, centre_id, "services")),
        counters=set(_ids(conn, centre_id, "counters")),
        devices={r.name: r.kind for r in devices},
        printers={r.name: names[r.printed_by] for r in devices if r.printed_by in names},
    )


def _unused(conn, centre_id: int, code: str) -> None:
    """An agency is retired only when no active service is its: a centre's services are
    moved to another agency, or retired, first (never retired along with it)."""
    s, a = m.services, m.agencies
    codes = conn.execute(
        sa.select(s.c.code)
        .join(a, a.c.id == s.c.agency_id)
        .where(a.c.centre_id == centre_id, a.c.code == code, s.c.active.is_(True))
        .order_by(s.c.id)
    ).scalars()
    used = ", ".join(codes)
    if used:
        raise FieldRefused(
            "active",
            f"cơ quan “{code}” còn lĩnh vực đang dùng: {used}. Hãy chuyển các lĩnh vực đó"
            " sang cơ quan khác hoặc ngừng chúng trước",
            f"agency '{code}' still has active services: {used}. Move them to another"
            " agency or retire them first",
            "conflict",
        )


def _closed(conn, centre_id: int, number: int) -> None:
    """A counter is retired only when closed: a clerk at it closes it first."""
    c = m.counters
    status = conn.execute(
        sa.select(c.c.status).where(c.c.centre_id == centre_id, c.c.number == number)
    ).scalar()
    if status not in (None, "closed"):
        raise QueueError("conflict", "retire_open_counter", number=number)


def _set_printed(conn, centre_id: int, agent_id: int, kiosks: list, summary) -> None:
    """Make ``kiosks`` exactly the kiosks this agent prints for."""
    d = m.devices
    printed = conn.execute(
        sa.select(d.c.name).where(d.c.centre_id == centre_id, d.c.printed_by == agent_id)
    ).scalars()
    for name in set(printed) - set(kiosks):
        p.set_printer(conn, centre_id, name, None, summary)
    for name in kiosks:
        p.set_printer(conn, centre_id, name, agent_id, summary)


def _may_touch(conn, principal: Principal, username: str, role: str | None) -> None:
    """Only an installation-wide admin grants an installation-wide role, or changes an
    account that holds one (a centre's admin would otherwise take the province's)."""
    if principal.everywhere is not None:
        return
    sr, st = m.staff_roles, m.staff
    held = conn.execute(
        sa.select(sr.c.role).join(st, st.c.id == sr.c.staff_id).where(st.c.username == username)
    ).scalars()
    if any(STAFF_ROLES[r].everywhere for r in [role, *held] if r in STAFF_ROLES):
        raise QueueError("forbidden", "permission_denied", what=EVERYWHERE)


def _record(tx: Tx, principal, centre_id, table, key, op, before, after, summary) -> None:
    """Audit the change (who, the entry before and after) and tell the centre's devices;
    the centre no longer matches the last file applied to it, which applies in full again."""
    if not summary.changed:
        return
    heard = _heard(tx.conn, centre_id, table, key, op, before, after)
    tx.change(
        centre_id,
        CONFIGURED,
        f"staff:{principal.staff_id}",
        change=heard,
        details={
            "by": principal.username,
            "entity": table,
            "key": key,
            "op": op,
            "before": before[0] if before else None,
            "after": after[0] if after else None,
            "summary": summary.lines(),
        },
    )
    c = m.centres
    tx.conn.execute(c.update().where(c.c.id == centre_id).values(provisioned_digest=None))
    if table == "staff":
        by = {"by": principal.username, "username": heard["staff"]["username"]}
        p.tell_elsewhere(tx, f"staff:{principal.staff_id}", centre_id, heard, by)
    if table == "agencies" and before and after:
        renamed = {k: (before[0].get(k), after[0].get(k)) for k in ("name", "name_en")}
        if any(old != new for old, new in renamed.values()):
            _renamed(tx, principal, centre_id, key, renamed)


def _renamed(tx: Tx, principal, centre_id: int, code: str, renamed: dict) -> None:
    """An agency's new name reaches every kiosk and counter at once: a ``service_changed``
    of each of its active services (each audited beside the agency's change)."""
    s, a = m.services, m.agencies
    services = tx.conn.execute(
        sa.select(s.c.code)
        .join(a, a.c.id == s.c.agency_id)
        .where(a.c.centre_id == centre_id, a.c.code == code, s.c.active.is_(True))
        .order_by(s.c.id)
    ).scalars()
    for service in list(services):
        tx.change(
            centre_id,
            CONFIGURED,
            f"staff:{principal.staff_id}",
            change=_heard(tx.conn, centre_id, "services", service, "put", [], []),
            details={
                "by": principal.username,
                "entity": "agencies",
                "key": code,
                "op": "renamed",
                "service": service,
                "before": {k: old for k, (old, _new) in renamed.items()},
                "after": {k: new for k, (_old, new) in renamed.items()},
                "summary": [f"service {service} (agency)"],
            },
        )


def _heard(conn, centre_id: int, table: str, key, op: str, before, after) -> dict:
    """The change the devices are told: only those it concerns hear it (core/roles.py)."""
    if table == "centre":
        return change_record(CONFIGURED)
    if table == "agencies":
        row = _row(conn, centre_id, table, key)
        agency = {"code": row.code, "name": row.name, "active": bool(row.active)}
        return change_record(AGENCY_CHANGED, {"agency": agency})
    if table == "services":
        service, summary = views.kiosk_service(conn, centre_id, key)
        return change_record(
            SERVICE_CHANGED,
            {"service": service},
            services=[key],
            summaries=[summary] if service["active"] else [],
        )
    row = _row(conn, centre_id, table, key)
    if table == "counters":
        codes = sorted({c for e in (*before, *after) for c in e.get("services", [])})
        return change_record(
            COUNTER_CHANGED,
            {
                "counter": {
                    "id": row.id,
                    "number": row.number,
                    "name": row.name,
                    "active": bool(row.active),
                }
            },
            counters=[row.id],
            services=codes,
            summaries=views.service_summaries(conn, centre_id, codes),
        )
    if table == "devices":
        kind = DEVICE_REVOKED if op == "delete" else DEVICE_CHANGED
        device = {"id": row.id, "name": row.name, "kind": row.kind, "active": bool(row.active)}
        return change_record(kind, {"device": device})
    st = m.staff  # a lent account that lost its role here is no longer the centre's row
    row = conn.execute(sa.select(st.c.id, st.c.username).where(st.c.username == key)).one()
    return change_record(STAFF_CHANGED, {"staff": {"id": row.id, "username": row.username}})


# -- sessions -----------------------------------------------------------------------------
def _sessions_query(centre_id: int):
    """The open sessions of the accounts this centre owns or gives a role."""
    ss, st, sr = m.staff_sessions, m.staff, m.staff_roles
    held = sa.select(sr.c.staff_id).where(sr.c.centre_id == centre_id)
    return (
        sa.select(
            ss.c.id,
            ss.c.created_at,
            ss.c.expires_at,
            ss.c.seen_at,
            ss.c.address,
            st.c.id.label("staff_id"),
            st.c.username,
            st.c.full_name,
            sr.c.role,
        )
        .join(st, st.c.id == ss.c.staff_id)
        .outerjoin(sr, (sr.c.staff_id == st.c.id) & (sr.c.centre_id == centre_id))
        .where(
            sa.or_(st.c.centre_id == centre_id, st.c.id.in_(held)),
            ss.c.expires_at > m.utcnow(),
            st.c.active.is_(True),
        )
        .order_by(st.c.username, ss.c.created_at)
    )


def sessions(conn, centre_id: int, current: str | None = None) -> dict:
    """The open sessions of the centre's staff: who, their role here, since when, last
    seen when, until when (the centre's time), from which address (``seen`` and
    ``address`` null for a session opened before they were kept); ``current`` (a token
    digest) marks the caller's own."""
    tz = views.centre(conn, centre_id).timezone
    ss = m.staff_sessions
    mine = None
    if current is not None:
        mine = conn.execute(sa.select(ss.c.id).where(ss.c.token_hash == current)).scalar()
    return {
        "ok": True,
        "sessions": [
            {
                "id": r.id,
                "username": r.username,
                "full_name": r.full_name,
                "role": r.role,
                "since": iso(r.created_at, tz),
                "seen": iso(r.seen_at, tz),
                "expires": iso(r.expires_at, tz),
                "address": r.address,
                "current": r.id == mine,
            }
            for r in conn.execute(_sessions_query(centre_id))
        ],
    }


def end_sessions(
    tx: Tx, principal: Principal, centre_id: int, *, session_id=None, username=None
) -> dict:
    """End one open session (``session_id``) or every session of an account
    (``username``) of the centre's staff: their tokens stop working at once and every
    server process closes their sockets (the ``sessions_ended`` change). Audited."""
    conn = tx.conn
    query = _sessions_query(centre_id)
    if session_id is not None:
        query = query.where(m.staff_sessions.c.id == session_id)
        what, name = SESSION, session_id
    else:
        query = query.where(m.staff.c.username == username)
        what, name = TABLES["staff"][2], username
        if _row(conn, centre_id, "staff", username) is None:
            raise QueueError("not_found", "unknown_entry", what=what, name=str(name)[:64])
    rows = conn.execute(query).all()
    if session_id is not None and not rows:
        raise QueueError("not_found", "unknown_entry", what=what, name=str(name)[:64])
    for account in {(r.staff_id, r.username) for r in rows}:
        _may_touch(conn, principal, account[1], None)
    if not rows:
        return {"ok": True, "ended": 0}
    ss = m.staff_sessions
    conn.execute(ss.delete().where(ss.c.id.in_([r.id for r in rows])))
    for staff_id, account in sorted({(r.staff_id, r.username) for r in rows}):
        ended = [r for r in rows if r.staff_id == staff_id]
        heard = change_record(SESSIONS_ENDED, {"staff": {"id": staff_id, "username": account}})
        details = {
            "by": principal.username,
            "username": account,
            "sessions": [
                {"id": r.id, "since": r.created_at.isoformat(timespec="seconds")} for r in ended
            ],
        }
        p.tell_elsewhere(tx, f"staff:{principal.staff_id}", centre_id, heard, details)
        tx.change(
            centre_id, SESSIONS_ENDED, f"staff:{principal.staff_id}", change=heard, details=details
        )
    return {"ok": True, "ended": len(rows)}


# -- what the admin pages read (issue 18, second slice) ----------------------------------
def config(conn, centre_id: int) -> dict:
    """The centre's configuration as the export says it (no secrets), for the admin pages:
    each account this centre owns says whether it has a photo; retired devices and
    deactivated accounts follow, ``"active": false`` (a ``PUT`` brings one back)."""
    data = p.export(conn, centre_id)
    st = m.staff
    with_photo = set(
        conn.execute(
            sa.select(st.c.username).where(st.c.centre_id == centre_id, st.c.photo.is_not(None))
        ).scalars()
    )
    for entry in data["staff"]:
        entry["has_photo"] = entry["username"] in with_photo
    # What the export leaves out: retired devices and deactivated accounts, to bring back.
    d = m.devices
    data["devices"] += [
        {"name": r.name, "kind": r.kind, "active": False}
        for r in conn.execute(
            sa.select(d.c.name, d.c.kind)
            .where(d.c.centre_id == centre_id, d.c.active.is_(False))
            .order_by(d.c.id)
        )
    ]
    data["staff"] += [
        {"username": r.username, "full_name": r.full_name, "active": False, "has_photo": False}
        for r in conn.execute(
            sa.select(st.c.username, st.c.full_name)
            .where(st.c.centre_id == centre_id, st.c.active.is_(False))
            .order_by(st.c.id)
        )
    ]
    return data


AUDIT_LIMIT = 200  # rows one page of the audit may ask for
_ACTION = re.compile(r"[a-z_]{1,32}")


def audit(
    conn,
    centre_id: int,
    *,
    actor: str | None = None,
    kind: str | None = None,
    first: str | None = None,
    last: str | None = None,
    before: str | None = None,
    limit: str | None = None,
) -> dict:
    """The centre's audit log, newest first: who (``actor``: a username, or an actor as
    the log writes it, ``device:3``), what (``kind``: the change, ``configured`` for the
    configuration), when (``first``/``last``: days YYYY-MM-DD in the centre's time zone,
    both included). ``before``: the ``seq`` the previous page ended at; ``limit`` rows
    a page (50 unless said, at most :data:`AUDIT_LIMIT`). Times are the centre's."""
    a, c = m.audit_log, m.centres
    tz = conn.execute(sa.select(c.c.timezone).where(c.c.id == centre_id)).scalar()
    zone = ZoneInfo(tz)
    query = sa.select(a.c.seq, a.c.at, a.c.action, a.c.actor, a.c.details).where(
        a.c.centre_id == centre_id
    )
    if actor:
        if ":" not in actor:
            staff_id = conn.execute(
                sa.select(m.staff.c.id).where(m.staff.c.username == actor)
            ).scalar()
            actor = f"staff:{staff_id}" if staff_id is not None else None
        query = query.where(a.c.actor == actor) if actor else query.where(sa.false())
    if kind:
        if not _ACTION.fullmatch(kind):
            raise FieldRefused(
                "kind",
                "“kind” phải là tên một thay đổi, ví dụ configured",
                "'kind' must name a change, e.g. configured",
            )
        query = query.where(a.c.action == kind)
    for name, value, bound in (("from", first, 0), ("to", last, 1)):
        if not value:
            continue
        try:
            if len(value) != 10:
                raise ValueError(value)
            day = date.fromisoformat(value) + timedelta(days=bound)
        except ValueError:
            raise FieldRefused(
                name,
                f"“{name}” phải là một ngày dạng YYYY-MM-DD",
                f"'{name}' must be a date as YYYY-MM-DD",
            ) from None
        moment = datetime.combine(day, time(), zone)
        query = query.where(a.c.at >= moment if bound == 0 else a.c.at < moment)
    size = _whole("limit", limit, 50, 1, AUDIT_LIMIT)
    if before is not None and before != "":
        query = query.where(a.c.seq < _whole("before", before, 0, 1, 2**62))
    rows = conn.execute(query.order_by(a.c.seq.desc()).limit(size + 1)).all()
    more = len(rows) > size
    rows = rows[:size]
    names = _actor_names(conn, {r.actor for r in rows})
    return {
        "timezone": tz,
        "rows": [
            {
                "seq": r.seq,
                "at": r.at.astimezone(zone).isoformat(timespec="seconds"),
                "kind": r.action,
                "actor": r.actor,
                "who": names.get(r.actor, r.actor),
                "details": r.details,
            }
            for r in rows
        ],
        "next": rows[-1].seq if more else None,
    }


def _whole(name: str, text: str | None, default: int, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise FieldRefused(
            name,
            f"“{name}” phải là một số nguyên từ {low} đến {high}",
            f"'{name}' must be a whole number from {low} to {high}",
        )
    return int(text)


def _actor_names(conn, actors: set[str]) -> dict[str, str]:
    """``staff:3`` -> "username (full name)", ``device:5`` -> the device's name."""
    ids = {"staff": [], "device": []}
    for actor in actors:
        kind, _, number = actor.partition(":")
        if kind in ids and number.isdigit():
            ids[kind].append(int(number))
    out = {}
    st, d = m.staff, m.devices
    if ids["staff"]:
        for r in conn.execute(
            sa.select(st.c.id, st.c.username, st.c.full_name).where(st.c.id.in_(ids["staff"]))
        ):
            out[f"staff:{r.id}"] = f"{r.username} ({r.full_name})"
    if ids["device"]:
        for r in conn.execute(sa.select(d.c.id, d.c.name).where(d.c.id.in_(ids["device"]))):
            out[f"device:{r.id}"] = r.name
    return out


def put_photo(tx: Tx, principal: Principal, centre_id: int, username: str, jpeg: bytes | None):
    """Set (or, with ``None``, remove) the photo of an account this centre owns: the JPEG
    made as a provisioning file's photo is (core/provisioning.py ``photo_jpeg``)."""
    conn = tx.conn
    st = m.staff
    row = conn.execute(
        sa.select(st).where(st.c.username == username, st.c.centre_id == centre_id)
    ).first()
    if row is None or not row.active:
        raise QueueError("not_found", "unknown_entry", what=TABLES["staff"][2], name=username[:64])
    _may_touch(conn, principal, username, None)
    digest = hashlib.sha256(jpeg).hexdigest()[:16] if jpeg else None
    summary = p.Summary()
    if digest != row.photo_digest:
        conn.execute(st.update().where(st.c.id == row.id).values(photo=jpeg, photo_digest=digest))
        summary.updated.append(f"staff {username} (photo)")
    before = [{"username": username, "photo": row.photo_digest}]
    after = [{"username": username, "photo": digest}]
    _record(tx, principal, centre_id, "staff", username, "photo", before, after, summary)
    return {"ok": True, "changes": summary.lines() if summary.changed else [], "photo": digest}
