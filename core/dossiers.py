"""Dossier records (hồ sơ): what a centre received, is processing and returned, and the
visits that touched each one, so its reports can say "7,267 received, 5,516 returned,
99.7 % on time" (../shared/design.md, facts of the field).

A dossier is known by its code within a centre (the national form, e.g.
``H15.50.05.13-261008-0975``). Visits and dossiers are many-to-many through
``ticket_dossiers`` (ticket, code): one visit may submit one dossier and collect another,
and a dossier is touched by several visits. Finishing a visit with a code updates the
dossier as the visit's outcome implies (:data:`VISIT_STATUS`); the province's one-stop
system creates and updates dossiers in bulk through the integration API
(gateway/dossier_api.py). Overdue is derived, never stored: past its due time and not
returned (or returned after it).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import models as m
from . import views
from .acting import Actor
from .clock import zone
from .errors import QueueError
from .roles import change_record
from .store import Store, Tx

STATUSES = (
    "received",
    "processing",
    "supplement_requested",
    "result_ready",
    "returned",
    "cancelled",
)
SUBMITTED_VIA = ("in_person", "online", "post")

# What a visit finished with a dossier code says about that dossier, by its outcome. A
# visit that only guided the citizen (or "other") links the code and changes nothing.
VISIT_STATUS = {
    "received": "received",  # a new dossier submitted at the counter
    "supplemented": "processing",  # the papers asked for came: back in processing
    "returned": "returned",  # the result handed over
}

DOSSIER_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_/]{2,63}$")

_d = m.dossiers


def check_codes(codes) -> list[str]:
    """Dossier codes as a clerk scans or types them: trimmed, once each, each well-formed."""
    codes = list(dict.fromkeys(d.strip() for d in (codes or [])))
    for code in codes:
        if not DOSSIER_CODE.match(code):
            raise QueueError(
                "bad_request",
                "bad_value",
                field="dossiers",
                why=(
                    f"mã hồ sơ “{code[:64]}” sai dạng",
                    f"dossier code '{code[:64]}' is malformed",
                ),
            )
    return codes


def record_visit(conn: Connection, centre_id: int, code: str, outcome, now, procedure) -> None:
    """Bring the dossier ``code`` in line with a visit that finished with ``outcome``:
    created if new (in person, at the counter), its status moved, returned_at set."""
    status = VISIT_STATUS.get(outcome)
    if status is None:
        return
    row = conn.execute(
        sa.select(_d.c.id, _d.c.status).where(_d.c.centre_id == centre_id, _d.c.code == code)
    ).first()
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status == "returned":
        values["returned_at"] = now
    if row is None:
        conn.execute(
            _d.insert().values(
                centre_id=centre_id,
                code=code,
                procedure=procedure,
                submitted_via="in_person",
                received_at=now,
                created_at=now,
                **values,
            )
        )
    elif row.status != status:
        conn.execute(_d.update().where(_d.c.id == row.id).values(**values))


# -- the integration API's items ----------------------------------------------------------
FIELDS = {
    "code": str,
    "procedure": str,
    "field": str,
    "applicant_name": str,
    "applicant_phone": str,  # kept as its last four digits only (phone_tail)
    "receipt_pin": str,
    "submitted_via": str,
    "received_at": datetime,
    "due_at": datetime,
    "status": str,
    "returned_at": datetime,
}
REQUIRED = ("code", "status")
TEXT_MAX = 255
MAX_ITEMS = 500


def _bad(index: int, field: str, vi: str, en: str) -> QueueError:
    return QueueError("bad_request", "bad_value", field=f"dossiers[{index}].{field}", why=(vi, en))


def _when(index: int, field: str, value: Any, tz) -> datetime:
    """An ISO 8601 time with its offset, or a date in the centre's zone (its last second:
    a due date is met all day)."""
    if not isinstance(value, str):
        raise _bad(index, field, "phải là ngày giờ ISO 8601", "must be an ISO 8601 time")
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(23, 59, 59), tzinfo=tz)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(index, field, "không phải ngày giờ ISO 8601", "not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise _bad(index, field, "thiếu múi giờ (vd +07:00)", "needs its offset (e.g. +07:00)")
    return parsed


def parse_items(payload: Any, code_pattern, tz) -> list[dict]:
    """Check a bulk upsert's body, ``{"dossiers": [...]}``; the first problem is named."""
    if not isinstance(payload, dict) or set(payload) != {"dossiers"}:
        raise QueueError("bad_request", "bad_payload")
    items = payload["dossiers"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise QueueError(
            "bad_request",
            "bad_value",
            field="dossiers",
            why=(f"1 đến {MAX_ITEMS} hồ sơ mỗi lần", f"1 to {MAX_ITEMS} dossiers at a time"),
        )
    out, seen = [], set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _bad(i, "*", "phải là một đối tượng", "must be an object")
        for key in item:
            if key not in FIELDS:
                raise _bad(i, key, "trường không được hỗ trợ", "unknown field")
        for key in REQUIRED:
            if key not in item:
                raise _bad(i, key, "bắt buộc", "required")
        clean: dict[str, Any] = {}
        for key, value in item.items():
            if value is None and key not in REQUIRED:
                clean[key] = None
            elif FIELDS[key] is datetime:
                clean[key] = _when(i, key, value, tz)
            elif not isinstance(value, str) or not value.strip() or len(value) > TEXT_MAX:
                raise _bad(i, key, f"chuỗi 1-{TEXT_MAX} ký tự", f"a string of 1-{TEXT_MAX}")
            else:
                clean[key] = value.strip()
        if not code_pattern.match(clean["code"]):
            raise _bad(i, "code", "mã hồ sơ sai dạng", "malformed dossier code")
        if clean["code"] in seen:
            raise _bad(i, "code", "trùng trong cùng yêu cầu", "repeated in this request")
        seen.add(clean["code"])
        if clean["status"] not in STATUSES:
            raise _bad(i, "status", "một trong: " + ", ".join(STATUSES), ", ".join(STATUSES))
        if "applicant_phone" in clean:
            phone = clean.pop("applicant_phone")
            digits = "".join(ch for ch in phone or "" if ch.isdigit())
            if phone is not None and len(digits) < 4:
                raise _bad(i, "applicant_phone", "ít nhất 4 chữ số", "at least 4 digits")
            clean["phone_tail"] = digits[-4:] if phone is not None else None
        pin = clean.get("receipt_pin")
        if pin is not None and not (4 <= len(pin) <= 16 and pin.isalnum()):
            raise _bad(i, "receipt_pin", "4-16 chữ hoặc số", "4-16 letters or digits")
        if clean.get("submitted_via") not in (None, *SUBMITTED_VIA):
            raise _bad(i, "submitted_via", ", ".join(SUBMITTED_VIA), ", ".join(SUBMITTED_VIA))
        out.append(clean)
    return out


def upsert(conn: Connection, centre_id: int, items: list[dict], now) -> dict:
    """Create or update by code; fields absent from an item keep their value. Returns the
    counts and the codes that changed (nothing changes for an item as it already is)."""
    codes = [i["code"] for i in items]
    existing = {
        r.code: r
        for r in conn.execute(
            sa.select(_d).where(_d.c.centre_id == centre_id, _d.c.code.in_(codes))
        )
    }
    created, updated = [], []
    for item in items:
        row = existing.get(item["code"])
        if row is None:
            conn.execute(
                _d.insert().values(centre_id=centre_id, created_at=now, updated_at=now, **item)
            )
            created.append(item["code"])
            continue
        changed = {k: v for k, v in item.items() if getattr(row, k) != v}
        if changed:
            conn.execute(_d.update().where(_d.c.id == row.id).values(updated_at=now, **changed))
            updated.append(item["code"])
    return {
        "created": len(created),
        "updated": len(updated),
        "unchanged": len(items) - len(created) - len(updated),
        "codes": created + updated,
    }


def overdue(row, now: datetime) -> bool:
    """Past its due time and not returned, or returned after it."""
    if row.due_at is None or row.status == "cancelled":
        return False
    if row.returned_at is not None:
        return row.returned_at > row.due_at
    return now > row.due_at


def view(conn: Connection, centre_id: int, code: str, now: datetime, tz) -> dict | None:
    """One dossier with the visits that touched it (the integration API's read)."""
    from .clock import iso

    row = conn.execute(sa.select(_d).where(_d.c.centre_id == centre_id, _d.c.code == code)).first()
    if row is None:
        return None
    t, td, c = m.tickets, m.ticket_dossiers, m.counters
    visits = conn.execute(
        sa.select(t.c.number, t.c.outcome, t.c.finished_at, c.c.number.label("counter"))
        .join(td, td.c.ticket_id == t.c.id)
        .outerjoin(c, c.c.id == t.c.counter_id)
        .where(td.c.code == code, t.c.centre_id == centre_id)
        .order_by(t.c.finished_at)
    )
    return {
        **{k: getattr(row, k) for k in ("code", "procedure", "field", "applicant_name")},
        "submitted_via": row.submitted_via,
        "status": row.status,
        **{k: iso(getattr(row, k), tz) for k in ("received_at", "due_at", "returned_at")},
        "overdue": overdue(row, now),
        "visits": [
            {
                "ticket": v.number,
                "counter": v.counter,
                "outcome": v.outcome,
                "finished_at": iso(v.finished_at, tz),
            }
            for v in visits
        ],
    }


def _initials(name: str | None) -> str | None:
    """ "Nguyễn Thị Lan" -> "Nguyễn T. L.": enough for its holder to recognise, not to
    name a stranger."""
    if not name:
        return None
    first, *rest = name.split()
    return " ".join([first, *(w[0] + "." for w in rest)])


def factor_matches(row, factor: str | None) -> bool:
    """Whether ``factor`` is the dossier's second factor: the last four digits of the
    applicant's phone or the code printed on the receipt (a dossier with neither never
    shows personal data)."""
    import hmac

    factor = (factor or "").strip()
    if not factor:
        return False
    return any(
        known and hmac.compare_digest(factor.upper().encode(), known.upper().encode())
        for known in (row.phone_tail, row.receipt_pin)
    )


def public_view(
    conn: Connection, centre_code: str, code: str, now: datetime, factor: str | None = None
) -> dict | None:
    """What the citizen's look-up shows of one centre's dossier: from its code alone, the
    status, the procedure and whether it is late; with its second factor
    (:func:`factor_matches`) also the applicant's initials and the dates. ``checked`` says
    whether a factor was given and matched (None: none given)."""
    from .clock import iso

    r = conn.execute(
        sa.select(_d, m.centres.c.name.label("centre_name"), m.centres.c.timezone)
        .join(m.centres, m.centres.c.id == _d.c.centre_id)
        .where(m.centres.c.code == centre_code, _d.c.code == code)
    ).first()
    if r is None:
        return None
    out = {
        "code": r.code,
        "centre": r.centre_name,
        "procedure": r.procedure,
        "field": r.field,
        "status": r.status,
        "overdue": overdue(r, now),
        "checked": None if not factor else factor_matches(r, factor),
    }
    if out["checked"]:
        out["applicant"] = _initials(r.applicant_name)
        out.update(
            {k: iso(getattr(r, k), r.timezone) for k in ("received_at", "due_at", "returned_at")}
        )
    return out


# -- the province's one-stop system, through the integration API; the citizen's look-up ----
def upsert_dossiers(store: Store, actor: Actor, payload) -> dict:
    """Create or update dossiers by code, in one transaction; idempotent (the same
    payload again changes nothing and records nothing)."""
    tz = store.read(lambda conn: zone(views.centre(conn, actor.centre_id).timezone))
    items = parse_items(payload, DOSSIER_CODE, tz)

    def op(tx: Tx) -> dict:
        tx.lock_centre(actor.centre_id)
        result = upsert(tx.conn, actor.centre_id, items, tx.now)
        codes = result.pop("codes")
        if codes:
            tx.change(
                actor.centre_id,
                "dossiers_updated",
                actor.key,
                change=change_record("dossiers_updated"),
                details={"codes": codes, **result},
            )
        return result

    return store.write(op, centre_id=actor.centre_id, actor=actor.key)


def dossier(store: Store, centre_id: int, code: str) -> dict | None:
    """One dossier of a centre with the visits that touched it (None: unknown)."""

    def read(conn):
        tz = views.centre(conn, centre_id).timezone
        return view(conn, centre_id, code, m.utcnow(), tz)

    return store.read(read)


def dossier_status(store: Store, centre: str, code: str, factor: str | None = None) -> dict | None:
    """The citizen's look-up of one centre's dossier (personal data only with its second
    factor: :func:`public_view`)."""
    return store.read(lambda conn: public_view(conn, centre, code, m.utcnow(), factor))
