"""What devices are shown: ticket and counter views, and each role's snapshot.

Reads only. A snapshot is a role's whole state at the centre's ``seq``; between
snapshots devices apply the change batches (protocol v2), whose events reuse the views
built here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from . import auth, estimates, rating
from . import models as m
from .clock import business_date, day_start, iso, zone
from .hours import HoursError, OpeningHours
from .lifecycle import AT_COUNTER, WAITING, counter_actions, manager_actions
from .ordering import QUEUE_MEMBERS
from .permissions import Principal
from .roles import public_event

PROTOCOL = 2
RECENT_CALLS = 10
OFFICE_MAX_COUNTERS = 6  # a board showing this many counters or fewer: the "office" layout
QUEUE_LIST_LIMIT = 300  # waiting tickets listed in a counter's snapshot

_t, _s, _c, _a = m.tickets, m.services, m.counters, m.agencies
_served_by = _c.alias("served_by")
# The ids of a statement built once for many rows (counters, centres) at a time.
_IDS = sa.bindparam("ids", expanding=True)
_target = _c.alias("target")

# A ticket with what its views need: service code and name, the numbers of the counter
# serving it and of the counter it is sent to.
TICKET_DETAIL = (
    sa.select(
        _t,
        _s.c.code.label("service_code"),
        _s.c.name.label("service_name"),
        _s.c.name_en.label("service_name_en"),
        _a.c.name_en.label("agency_en"),
        _s.c.avg_service_s,
        _served_by.c.number.label("counter_number"),
        _target.c.number.label("target_number"),
        m.centres.c.timezone,
    )
    .join(_s, _s.c.id == _t.c.service_id)
    .join(_a, _a.c.id == _s.c.agency_id)
    .join(m.centres, m.centres.c.id == _t.c.centre_id)
    .outerjoin(_served_by, _served_by.c.id == _t.c.counter_id)
    .outerjoin(_target, _target.c.id == _t.c.target_counter_id)
)


def ticket_brief(t: Mapping) -> dict:
    return {
        "id": t["id"],
        "number": t["number"],
        "service": {"code": t["service_code"], "name": t["service_name"]},
    }


def ticket_view(t: Mapping, tz: str) -> dict:
    """A ticket as every role sees it (t: a TICKET_DETAIL row's mapping)."""
    return {
        **ticket_brief(t),
        "status": t["status"],
        "priority": t["priority"],
        "issued_at": iso(t["issued_at"], tz),
        "called_at": iso(t["called_at"], tz),
        "started_at": iso(t["started_at"], tz),
        "counter": t["counter_number"],
        "target_counter": t["target_number"],
        # The booked slot's start, for an appointment checked in in its window.
        "appointment": iso(t.get("booked_for"), tz),
    }


def counter_view(c: Mapping) -> dict:
    return {
        "number": c["number"],
        "name": c["name"],
        "status": c["status"],
        "pause_reason": c["pause_reason"],
    }


def centre(conn: Connection, centre_id: int) -> Row:
    return conn.execute(sa.select(m.centres).where(m.centres.c.id == centre_id)).one()


def centres(conn: Connection) -> list[dict]:
    """Every centre of the installation (the start page lists them)."""
    q = sa.select(m.centres.c.id, m.centres.c.code, m.centres.c.name, m.centres.c.name_en).order_by(
        m.centres.c.name
    )
    return [dict(r._mapping) for r in conn.execute(q)]


# Built once: a statement made per call costs more Python than SQLite takes to run it.
_CURRENT = (
    TICKET_DETAIL.where(_t.c.counter_id == sa.bindparam("counter_id"), _t.c.status.in_(AT_COUNTER))
    .order_by(_t.c.called_at.desc())
    .limit(1)
)


def current_ticket(conn: Connection, counter_id: int) -> Row | None:
    """The counter's current ticket (called or being served), with its details."""
    return conn.execute(_CURRENT, {"counter_id": counter_id}).first()


def service_codes(conn: Connection, counter_ids) -> frozenset[str]:
    """Codes of the services the given counters serve."""
    return frozenset(code for _, code in conn.execute(_COUNTER_CODES, {"ids": list(counter_ids)}))


def service_codes_by_counter(conn: Connection, counter_ids) -> dict[int, set[str]]:
    """Codes of the services each of these counters serves."""
    out: dict[int, set[str]] = {}
    for counter_id, code in conn.execute(_COUNTER_CODES, {"ids": list(counter_ids)}):
        out.setdefault(counter_id, set()).add(code)
    return out


# Built once (a statement built per call leaves its parts to the collector): each
# counter's services' codes.
_COUNTER_CODES = (
    sa.select(m.counter_services.c.counter_id, _s.c.code)
    .join(m.counter_services, m.counter_services.c.service_id == _s.c.id)
    .where(m.counter_services.c.counter_id.in_(sa.bindparam("ids", expanding=True)))
)


# A service's row with its agency's names (``agency``, ``agency_en``), as pages show it.
SERVICE_ROWS = sa.select(_s, _a.c.name.label("agency"), _a.c.name_en.label("agency_en")).join(
    _a, _a.c.id == _s.c.agency_id
)


def services(conn: Connection, centre_id: int, ids=None, active_only=False) -> list[Row]:
    q = SERVICE_ROWS.where(_s.c.centre_id == centre_id).order_by(_s.c.id)
    if ids is not None:
        q = q.where(_s.c.id.in_(list(ids)))
    if active_only:
        q = q.where(_s.c.active.is_(True))
    return list(conn.execute(q))


def staff_name(conn: Connection, staff_id: int | None) -> str | None:
    if staff_id is None:
        return None
    return conn.execute(sa.select(m.staff.c.full_name).where(m.staff.c.id == staff_id)).scalar()


def _now_day(centre_row: Row) -> tuple[datetime, object]:
    now = m.utcnow()
    return now, business_date(now, centre_row.timezone)


# -- snapshots --------------------------------------------------------------------------
# How far ahead a kiosk is told a service's own opening times (a kiosk takes a new
# snapshot at every reconnection and every configuration change).
KIOSK_HOURS_DAYS = 15


def service_opening(service: Row, ctr: Row, now: datetime) -> list[list[str]] | None:
    """A service's own opening times from now on (``[[opens, closes], ...]``, ISO in the
    centre's time zone, for KIOSK_HOURS_DAYS days): the kiosk shows it closed outside
    them and says when it opens. None: it has none of its own (the centre's apply)."""
    if service.opening_hours is None:
        return None
    try:
        own = OpeningHours.parse(service.opening_hours, ctr.closed_days)
    except HoursError:
        return None
    tz = zone(ctr.timezone)
    return [
        [iso(a, ctr.timezone), iso(b, ctr.timezone)]
        for a, b in own.upcoming(now, tz, KIOSK_HOURS_DAYS)
    ]


def kiosk_snapshot(conn: Connection, centre_id: int) -> dict:
    ctr = centre(conn, centre_id)
    now, day = _now_day(ctr)
    rows = services(conn, centre_id, active_only=True)
    summaries = estimates.summaries(conn, rows, day)
    return {
        "protocol": PROTOCOL,
        "seq": ctr.seq,
        "centre": {
            "code": ctr.code,
            "name": ctr.name,
            "name_en": ctr.name_en,
            "timezone": ctr.timezone,
        },
        "services": [
            _kiosk_service(s, summary, ctr, now) for s, summary in zip(rows, summaries, strict=True)
        ],
    }


def _kiosk_service(s: Row, summary: dict, ctr: Row, now) -> dict:
    return {
        "name": s.name,
        "name_en": s.name_en,
        "agency": s.agency,
        "agency_en": s.agency_en,
        # Its own opening times, and the priority groups it accepts (None: all).
        "opening": service_opening(s, ctr, now),
        "priorities": s.priorities,
        **summary,
    }


def kiosk_service(conn: Connection, centre_id: int, code: str) -> tuple[dict, dict]:
    """A service as the kiosk's snapshot lists it, with ``active`` (a retired one is no
    longer offered), and its summary (for the batch's counts)."""
    ctr = centre(conn, centre_id)
    now, day = _now_day(ctr)
    row = conn.execute(SERVICE_ROWS.where(_s.c.centre_id == centre_id, _s.c.code == code)).one()
    [summary] = estimates.summaries(conn, [row], day)
    return {**_kiosk_service(row, summary, ctr, now), "active": bool(row.active)}, summary


def service_summaries(conn: Connection, centre_id: int, codes) -> list[dict]:
    """The summaries (counts, waits, open) of the centre's active services ``codes``."""
    ctr = centre(conn, centre_id)
    _, day = _now_day(ctr)
    rows = [r for r in services(conn, centre_id, active_only=True) if r.code in set(codes)]
    return estimates.summaries(conn, rows, day)


def alert_view(device, alert: str | None, since, tz: str) -> dict:
    return {
        "device": {"id": device.id, "name": device.name, "kind": device.kind},
        "alert": alert,
        "since": iso(since, tz),
    }


# Built once: the devices of centres ``:ids`` that need staff (an alert), by device.
_ALERTS = (
    sa.select(
        m.devices.c.centre_id,
        m.devices.c.id,
        m.devices.c.name,
        m.devices.c.kind,
        m.devices.c.alert,
        m.devices.c.alert_since,
    )
    .where(
        m.devices.c.centre_id.in_(_IDS),
        m.devices.c.alert.is_not(None),
        m.devices.c.active.is_(True),
    )
    .order_by(m.devices.c.id)
)


def device_alerts(conn: Connection, centre_id: int, tz: str) -> list[dict]:
    """The centre's devices that need staff, by device."""
    rows = conn.execute(_ALERTS, {"ids": [centre_id]})
    return [alert_view(r, r.alert, r.alert_since, tz) for r in rows]


def staff_centre(conn: Connection, principal: Principal, centre_id: int) -> dict:
    """What a clerk's page needs before and beside a counter: the centre, its active
    services (transfers), its counters (which this clerk may take, who holds each), and
    the other centres the account works for."""
    ctr = centre(conn, centre_id)
    allowed = set(auth.staff_counter_ids(conn, principal.staff_id, centre_id))
    rows = list(
        conn.execute(
            sa.select(_c)
            .where(_c.c.centre_id == ctr.id, _c.c.active.is_(True))
            .order_by(_c.c.number)
        )
    )
    codes: dict[int, list[str]] = {}
    cs = m.counter_services
    for counter_id, code in conn.execute(
        sa.select(cs.c.counter_id, _s.c.code)
        .join(_s, _s.c.id == cs.c.service_id)
        .where(cs.c.counter_id.in_([r.id for r in rows]))
        .order_by(_s.c.id)
    ):
        codes.setdefault(counter_id, []).append(code)
    return {
        "centre": {"code": ctr.code, "name": ctr.name, "timezone": ctr.timezone},
        "staff": {
            "username": principal.username,
            "full_name": principal.full_name,
            "role": principal.role_in(centre_id),
        },
        "centres": [
            {"code": r.code, "name": r.name, "role": principal.role_in(r.id)}
            for r in conn.execute(
                sa.select(m.centres.c.id, m.centres.c.code, m.centres.c.name)
                .where(
                    sa.true()
                    if principal.centre_ids() is None
                    else m.centres.c.id.in_(principal.centre_ids())
                )
                .order_by(m.centres.c.code)
            )
        ],
        "services": [
            {"code": sv.code, "name": sv.name, "agency": sv.agency}
            for sv in services(conn, ctr.id, active_only=True)
        ],
        "counters": [
            {
                **counter_view(r._mapping),
                "services": codes.get(r.id, []),
                "clerk": staff_name(conn, r.staff_id) if r.status != "closed" else None,
                "allowed": not allowed or r.id in allowed,
            }
            for r in rows
        ],
    }


def clerk_day(conn: Connection, staff_id: int, centre_id: int) -> dict:
    """A clerk's own figures for today: visits served, their average length; and the
    ratings received as :func:`staff_ratings` shows them (never today's)."""
    ctr = centre(conn, centre_id)
    since = day_start(m.utcnow(), ctr.timezone)
    served = conn.execute(
        sa.select(_t.c.started_at, _t.c.called_at, _t.c.finished_at).where(
            _t.c.staff_id == staff_id, _t.c.status == "done", _t.c.finished_at >= since
        )
    ).all()
    lengths = [(f - (s or c)).total_seconds() for s, c, f in served if f and (s or c)]
    return {
        "served": len(served),
        "average_service_s": round(sum(lengths) / len(lengths)) if lengths else None,
        "ratings": staff_ratings(conn, staff_id),
    }


def counter_snapshot(conn: Connection, counter_id: int, no_show_after_s: float) -> dict:
    """One counter's snapshot (:func:`counter_snapshots`)."""
    return counter_snapshots(conn, [counter_id], no_show_after_s)[counter_id]


# Built once, for many counters at a time (a hall of clerks reconnecting).
_COUNTER_ROWS = sa.select(_c).where(_c.c.id.in_(_IDS))
_CENTRE_ROWS = sa.select(m.centres).where(m.centres.c.id.in_(_IDS))
_CENTRE_SERVICES = SERVICE_ROWS.where(_s.c.centre_id.in_(_IDS)).order_by(_s.c.id)
_SERVED = (
    sa.select(m.counter_services.c.counter_id, m.counter_services.c.service_id)
    .where(m.counter_services.c.counter_id.in_(_IDS))
    .order_by(m.counter_services.c.service_id)
)
_CURRENTS = (
    TICKET_DETAIL.add_columns(_t.c.counter_id.label("at_counter"))
    .where(_t.c.counter_id.in_(_IDS), _t.c.status.in_(AT_COUNTER))
    .order_by(_t.c.counter_id, _t.c.called_at.desc())
)
_Q = QUEUE_MEMBERS
_WAITING_BY_COUNTER = (
    sa.select(_Q.c.counter_id, _t.c.service_id, sa.func.count())
    .join(_t, _t.c.id == _Q.c.ticket_id)
    .group_by(_Q.c.counter_id, _t.c.service_id)
    .order_by(_Q.c.counter_id, _t.c.service_id)
)
_RANKED = (
    sa.select(
        _Q.c.counter_id,
        _Q.c.ticket_id,
        sa.func.row_number()
        .over(partition_by=_Q.c.counter_id, order_by=(_t.c.issued_at, _t.c.id))
        .label("rank"),
    )
    .join(_t, _t.c.id == _Q.c.ticket_id)
    .subquery("ranked")
)
_LISTED = (
    TICKET_DETAIL.add_columns(_RANKED.c.counter_id.label("queue_of"))
    .join(_RANKED, _RANKED.c.ticket_id == _t.c.id)
    .where(_RANKED.c.rank <= QUEUE_LIST_LIMIT)
    .order_by(_RANKED.c.counter_id, _t.c.issued_at, _t.c.id)
)


def _counters_and_centres(conn: Connection, counter_ids) -> tuple[dict, dict]:
    """The counters' rows by id and their centres' by id (a missing counter: NoResultFound,
    as a read of it alone)."""
    ids = list(dict.fromkeys(counter_ids))
    rows = {r.id: r for r in conn.execute(_COUNTER_ROWS, {"ids": ids})}
    if len(rows) < len(ids):
        raise sa.exc.NoResultFound(f"no counter {sorted(set(ids) - set(rows))}")
    centre_ids = sorted({r.centre_id for r in rows.values()})
    return rows, {c.id: c for c in conn.execute(_CENTRE_ROWS, {"ids": centre_ids})}


def _firsts(rows, key: str) -> dict:
    """The first row of each ``key`` (rows ordered by it, then by preference)."""
    out: dict = {}
    for r in rows:
        out.setdefault(getattr(r, key), r)
    return out


def counter_snapshots(conn: Connection, counter_ids, no_show_after_s: float) -> dict[int, dict]:
    """Counters' snapshots by id, each counter's: its state, its current ticket, the
    tickets it may call (its services' and those transferred to it), oldest first, and
    when the clerk may take each action (the lifecycle tables as data: the page offers an
    action exactly when the server would accept it; ``no_show_after_s``: the engine's
    setting). The same nine statements for one counter or hundreds."""
    rows, centres_ = _counters_and_centres(conn, counter_ids)
    ids, centre_ids = list(rows), list(centres_)
    by_id = {s.id: s for s in conn.execute(_CENTRE_SERVICES, {"ids": centre_ids})}
    own: dict[int, list[int]] = {i: [] for i in ids}
    for counter_id, service_id in conn.execute(_SERVED, {"ids": ids}):
        if service_id not in own[counter_id]:
            own[counter_id].append(service_id)
    current = _firsts(conn.execute(_CURRENTS, {"ids": ids}), "at_counter")
    waiting: dict[int, dict[int, int]] = {i: {} for i in ids}
    listed: dict[int, list] = {i: [] for i in ids}
    days: dict = {}  # business day -> its counters (centres may be in different time zones)
    for i, r in rows.items():
        days.setdefault(_now_day(centres_[r.centre_id])[1], []).append(i)
    for day, day_ids in days.items():
        params = {"ids": day_ids, "day": day}
        for counter_id, service_id, n in conn.execute(_WAITING_BY_COUNTER, params):
            waiting[counter_id][service_id] = n
        for t in conn.execute(_LISTED, params):
            listed[t.queue_of].append(t)
    alerts: dict[int, list] = {c: [] for c in centre_ids}
    for d in conn.execute(_ALERTS, {"ids": centre_ids}):
        alerts[d.centre_id].append(
            alert_view(d, d.alert, d.alert_since, centres_[d.centre_id].timezone)
        )
    actions = counter_actions(no_show_after_s)
    out = {}
    for i, r in rows.items():
        ctr, served, cur = centres_[r.centre_id], own[i], current.get(i)
        out[i] = {
            "protocol": PROTOCOL,
            "seq": ctr.seq,
            "counter": {**counter_view(r._mapping), "services": [by_id[s].code for s in served]},
            "current": ticket_view(cur._mapping, ctr.timezone) if cur else None,
            "waiting": {by_id[s].code: waiting[i].get(s, 0) for s in [*served, *waiting[i]]},
            "queue": [ticket_view(t._mapping, ctr.timezone) for t in listed[i]],
            "device_alerts": alerts[ctr.id],
            "actions": actions,
        }
    return out


def rating_snapshot(conn: Connection, counter_id: int, rating_window: timedelta) -> dict:
    """One tablet's snapshot (:func:`rating_snapshots`)."""
    return rating_snapshots(conn, [counter_id], rating_window)[counter_id]


_RATED = sa.exists().where(m.ratings.c.ticket_id == _t.c.id)
_LAST_DONE = (
    sa.select(
        _t.c.id,
        sa.func.row_number()
        .over(partition_by=_t.c.counter_id, order_by=(_t.c.finished_at.desc(), _t.c.id.desc()))
        .label("rank"),
    )
    .where(
        _t.c.counter_id.in_(_IDS), _t.c.status == "done", _t.c.finished_at >= sa.bindparam("since")
    )
    .subquery("last_done")
)
_FINISHED = (
    TICKET_DETAIL.add_columns(_RATED.label("rated"))
    .join(_LAST_DONE, _LAST_DONE.c.id == _t.c.id)
    .where(_LAST_DONE.c.rank == 1)
)
_STAFF_NAMES = sa.select(m.staff.c.id, m.staff.c.full_name).where(m.staff.c.id.in_(_IDS))


def rating_snapshots(conn: Connection, counter_ids, rating_window: timedelta) -> dict[int, dict]:
    """The tablets' snapshots by counter id, each counter's tablet's. ``awaiting_rating``
    is the latest visit finished there if it is unrated and still within the rating
    window, so a tablet that was offline when it finished can still ask (a later visit
    replaces an earlier request). The same six statements for one counter or hundreds."""
    rows, centres_ = _counters_and_centres(conn, counter_ids)
    ids = list(rows)
    current = _firsts(conn.execute(_CURRENTS, {"ids": ids}), "at_counter")
    since = m.utcnow() - rating_window
    finished = {t.counter_id: t for t in conn.execute(_FINISHED, {"ids": ids, "since": since})}
    staff_ids = {r.staff_id for r in rows.values() if r.staff_id is not None}
    staff_ids |= {t.staff_id for t in finished.values() if t.staff_id is not None}
    names = dict(conn.execute(_STAFF_NAMES, {"ids": sorted(staff_ids)}).all()) if staff_ids else {}
    out = {}
    for i, r in rows.items():
        ctr, cur, done = centres_[r.centre_id], current.get(i), finished.get(i)
        name = names.get(r.staff_id) if r.status != "closed" else None
        awaiting = None
        if done is not None and not done.rated:
            served_by = names.get(done.staff_id or r.staff_id)
            awaiting = {
                "ticket": ticket_brief(done._mapping),
                "staff": {"full_name": served_by} if served_by else None,
                "counter": {"number": r.number},
            }
        out[i] = {
            "protocol": PROTOCOL,
            "seq": ctr.seq,
            "counter": counter_view(r._mapping),
            "staff": {"full_name": name} if name else None,
            "current": ticket_view(cur._mapping, ctr.timezone) if cur else None,
            "awaiting_rating": awaiting,
            "rating": rating.settings(ctr),
        }
    return out


def clerk_photo(conn: Connection, counter_id: int | None) -> bytes | None:
    if counter_id is None:
        return None
    st = m.staff
    return conn.execute(
        sa.select(st.c.photo)
        .join(_c, _c.c.staff_id == st.c.id)
        .where(_c.c.id == counter_id, _c.c.status != "closed")
    ).scalar()


# A clerk sees their ratings only in a way no single visit can be told from: never today's
# (a count that moves right after a visit would say how that citizen rated), and only
# once the period holds at least this many.
RATINGS_SHOWN_FROM = 5


def staff_ratings(conn: Connection, staff_id: int) -> dict:
    """One clerk's ratings by level over this month up to yesterday (the centre's business
    days): ``{"from", "to", "levels"}``, ``levels`` None while fewer than
    RATINGS_SHOWN_FROM (``to`` None on the month's first day: nothing to show yet)."""
    staff = conn.execute(sa.select(m.staff.c.centre_id).where(m.staff.c.id == staff_id)).one()
    ctr = centre(conn, staff.centre_id)
    now = m.utcnow()
    today = business_date(now, ctr.timezone)
    first = today.replace(day=1)
    out = {
        "from": first.isoformat(),
        "to": (today - timedelta(days=1)).isoformat() if today > first else None,
        "levels": None,
        "at_least": RATINGS_SHOWN_FROM,
    }
    r = m.ratings
    rows = conn.execute(
        sa.select(r.c.score, sa.func.count().label("n"))
        .where(
            r.c.staff_id == staff_id,
            r.c.rated_at >= day_start(now - timedelta(days=today.day - 1), ctr.timezone),
            r.c.rated_at < day_start(now, ctr.timezone),
        )
        .group_by(r.c.score)
    ).all()
    if sum(row.n for row in rows) >= RATINGS_SHOWN_FROM:
        out["levels"] = dict.fromkeys(map(str, rating.LEVELS), 0)
        for row in rows:
            out["levels"][str(row.score)] = int(row.n)
    return out


def calling(recent_calls: list[dict], counters: list[dict]) -> dict | None:
    """What a board shows as being called now: the newest of its recent calls whose
    ticket is still its counter's current one (a no-show, a finish or a transfer ends
    it), or None. ``counters``: as the snapshot lists them."""
    current = {c["number"]: (c["current"] or {}).get("number") for c in counters}
    for call in recent_calls:
        if current.get(call["counter"]["number"]) == call["ticket"]["number"]:
            return call
    return None


def display_snapshot(conn: Connection, centre_id: int, counter_ids=None) -> dict:
    """One board's snapshot (:func:`display_snapshots`)."""
    return display_snapshots(conn, {0: (centre_id, counter_ids)})[0]


_ACTIVE_COUNTERS = (
    sa.select(_c).where(_c.c.centre_id.in_(_IDS), _c.c.active.is_(True)).order_by(_c.c.number)
)
# Each counter's latest calls of the day: a board's latest RECENT_CALLS, whichever of a
# centre's counters it shows, are among those of its counters.
_CALLS_RANKED = (
    sa.select(
        m.audit_log.c.seq,
        m.audit_log.c.delivery,
        m.audit_log.c.counter_id,
        sa.func.row_number()
        .over(partition_by=m.audit_log.c.counter_id, order_by=m.audit_log.c.seq.desc())
        .label("rank"),
    )
    .where(
        m.audit_log.c.centre_id.in_(_IDS),
        m.audit_log.c.action.in_(("called", "recalled")),
        m.audit_log.c.counter_id.in_(sa.bindparam("counters", expanding=True)),
        m.audit_log.c.at >= sa.bindparam("since"),
    )
    .subquery("ranked_calls")
)
_CALLS = (
    sa.select(_CALLS_RANKED.c.seq, _CALLS_RANKED.c.delivery, _CALLS_RANKED.c.counter_id)
    .where(_CALLS_RANKED.c.rank <= RECENT_CALLS)
    .order_by(_CALLS_RANKED.c.seq.desc())
)


def display_snapshots(conn: Connection, boards: dict) -> dict:
    """Boards' snapshots by key (``boards``: key -> (centre id, the counter ids the board
    is bound to, or None for all)): its counters with their current tickets, today's
    latest calls there, and the waiting counts of the services they serve. The same
    statements for one board or the boards of a province's centres."""
    centre_ids = sorted({centre_id for centre_id, _ in boards.values()})
    centres_ = {c.id: c for c in conn.execute(_CENTRE_ROWS, {"ids": centre_ids})}
    if len(centres_) < len(centre_ids):
        raise sa.exc.NoResultFound(f"no centre {sorted(set(centre_ids) - set(centres_))}")
    counters: dict[int, list[Row]] = {i: [] for i in centre_ids}
    for c in conn.execute(_ACTIVE_COUNTERS, {"ids": centre_ids}):
        counters[c.centre_id].append(c)
    shown = {
        key: [c for c in counters[centre_id] if not bound or c.id in bound]
        for key, (centre_id, bound) in boards.items()
    }
    shown_ids = sorted({c.id for rows in shown.values() for c in rows})
    current = _firsts(conn.execute(_CURRENTS, {"ids": shown_ids}), "at_counter")
    now = m.utcnow()
    days: dict = {}  # (business day, its start) -> the centres on it (by time zone)
    for c in centres_.values():
        day = business_date(now, c.timezone)
        days.setdefault((day, day_start(now, c.timezone)), []).append(c.id)
    calls: list[Row] = []
    for (_day, since), ids in days.items():
        params = {"ids": ids, "counters": shown_ids, "since": since}
        calls.extend(conn.execute(_CALLS, params))
    calls.sort(key=lambda r: r.seq, reverse=True)
    # The services of the counters bound boards show (a hall's board shows all).
    bound_ids = sorted({c.id for key, (_, bound) in boards.items() if bound for c in shown[key]})
    serves: dict[int, set[int]] = {}
    for counter_id, service_id in conn.execute(_SERVED, {"ids": bound_ids}) if bound_ids else ():
        serves.setdefault(counter_id, set()).add(service_id)
    services_: dict[int, list[Row]] = {i: [] for i in centre_ids}
    for s in conn.execute(_CENTRE_SERVICES, {"ids": centre_ids}):
        services_[s.centre_id].append(s)
    waiting: dict[int, int] = {}
    for (day, _since), ids in days.items():
        of_day = [s.id for i in ids for s in services_[i] if s.active]
        waiting.update(estimates.waiting_counts(conn, day, of_day))
    out = {}
    for key, (centre_id, bound) in boards.items():
        ctr, rows = centres_[centre_id], shown[key]
        ids = {c.id for c in rows}
        served = set().union(*(serves.get(i, ()) for i in ids)) if bound else None
        active = [
            s for s in services_[centre_id] if s.active and (served is None or s.id in served)
        ]
        board_counters = [
            {
                "number": c.number,
                "name": c.name,
                "status": c.status,
                "current": {"number": current[c.id].number, "service": current[c.id].service_code}
                if c.id in current
                else None,
            }
            for c in rows
        ]
        recent = [public_event(r.delivery, r.seq) for r in calls if r.counter_id in ids][
            :RECENT_CALLS
        ]
        layout = ctr.board_layout
        if layout not in ("hall", "office"):
            layout = "office" if len(rows) <= OFFICE_MAX_COUNTERS else "hall"
        out[key] = {
            "protocol": PROTOCOL,
            "seq": ctr.seq,
            "centre": {
                "code": ctr.code,
                "name": ctr.name,
                "timezone": ctr.timezone,
                "notice": ctr.notice,
            },
            "board": {
                "layout": layout,
                "announce": {"form": ctr.announce_form, "repeats": ctr.announce_repeats},
            },
            "service_names": {s.code: s.name for s in services_[centre_id]},
            "counters": board_counters,
            "recent_calls": recent,
            "calling": calling(recent, board_counters),
            "waiting": {s.code: waiting.get(s.id, 0) for s in active},
        }
    return out


# Print jobs older than this are left out of an agent's snapshot: long past their deadline.
PRINT_JOBS_KEPT = timedelta(hours=1)


def agent_snapshot(conn: Connection, centre_id: int, counter_ids, agent_id: int) -> dict:
    """What the devices of an agent's counters show (LED boards: current numbers; call
    keypads: also how many wait for their services), the kiosks it prints for, and its
    print jobs not yet reported."""
    state = display_snapshot(conn, centre_id, counter_ids)
    tz = centre(conn, centre_id).timezone
    d, pj = m.devices, m.print_jobs
    kiosks = conn.execute(
        sa.select(d.c.id, d.c.name)
        .where(d.c.printed_by == agent_id, d.c.active.is_(True))
        .order_by(d.c.id)
    )
    jobs = conn.execute(
        sa.select(pj.c.id, pj.c.kiosk_id, pj.c.deadline, pj.c.ticket_face)
        .where(
            pj.c.agent_id == agent_id,
            pj.c.state == "pending",
            pj.c.created_at >= m.utcnow() - PRINT_JOBS_KEPT,
        )
        .order_by(pj.c.id)
    )
    cs = m.counter_services
    served: dict[int, list[str]] = {}
    for number, code in conn.execute(
        sa.select(_c.c.number, _s.c.code)
        .join(cs, cs.c.counter_id == _c.c.id)
        .join(_s, _s.c.id == cs.c.service_id)
        .where(_c.c.centre_id == centre_id)
        .order_by(_s.c.id)
    ):
        served.setdefault(number, []).append(code)
    return {
        **{k: state[k] for k in ("protocol", "seq", "centre", "waiting")},
        # Each counter with its services' codes: a call keypad's display shows how many
        # wait for them (``waiting``, then the batches' service summaries).
        "counters": [{**c, "services": served.get(c["number"], [])} for c in state["counters"]],
        "kiosks": [{"id": k.id, "name": k.name} for k in kiosks],
        "print_jobs": [
            {
                "job": j.id,
                "agent": agent_id,
                "kiosk": j.kiosk_id,
                "deadline": iso(j.deadline, tz),
                "face": j.ticket_face,
            }
            for j in jobs
        ],
    }


def _ticket_rating(conn: Connection, ticket: Row, ctr: Row, window: timedelta) -> dict | None:
    """Whether the holder may still rate the visit on the status page: null until it is
    done; ``open`` (until ``closes_at``), ``rated`` or ``closed``."""
    if ticket.status != "done" or ticket.finished_at is None:
        return None
    rated = conn.execute(
        sa.select(m.ratings.c.id).where(m.ratings.c.ticket_id == ticket.id)
    ).first()
    closes = ticket.finished_at + window
    state = "rated" if rated else "open" if m.utcnow() <= closes else "closed"
    out = {"state": state, "closes_at": iso(closes, ctr.timezone)}
    if state == "open":
        out.update(rating.settings(ctr))
    return out


def ticket_status(
    conn: Connection, public_key: str, rating_window: timedelta = timedelta(seconds=600)
) -> dict | None:
    """What the public status page shows: position and wait of one ticket."""
    ticket = conn.execute(TICKET_DETAIL.where(_t.c.public_key == public_key)).first()
    if ticket is None:
        return None
    ctr = centre(conn, ticket.centre_id)
    ahead = wait = None
    on_break = False
    if ticket.status in WAITING:
        ahead = estimates.people_ahead(conn, ticket)
        serving = estimates.counters_serving(conn, [ticket.service_id]).get(
            ticket.service_id, estimates.Serving(0, 0)
        )
        wait = estimates.estimate_wait_s(ahead, ticket.avg_service_s, *serving)
        on_break = serving.open == 0 and serving.paused > 0
    return {
        "protocol": PROTOCOL,
        "seq": ctr.seq,
        "centre": {"code": ctr.code, "name": ctr.name, "name_en": ctr.name_en},
        "ticket": ticket_view(ticket._mapping, ctr.timezone),
        # The ticket's service in English (null: none configured), for the page in English.
        "service_en": {"name": ticket.service_name_en, "agency": ticket.agency_en},
        "rating": _ticket_rating(conn, ticket, ctr, rating_window),
        "ahead": ahead,
        "estimated_wait_s": wait,
        "on_break": on_break,
        # The page alerts its holder (vibration, a notification) when this few are ahead.
        "notify_ahead": ctr.notify_ahead,
        "checked_at": iso(datetime.now(UTC), ctr.timezone),
    }


def ticket_follower(conn: Connection, public_key: str) -> Row | None:
    """Who may follow a ticket's status page live: the ticket's id, centre and service."""
    return conn.execute(
        sa.select(_t.c.id, _t.c.centre_id, _s.c.code.label("service_code"))
        .join(_s, _s.c.id == _t.c.service_id)
        .where(_t.c.public_key == public_key)
    ).first()


def recently_called(conn: Connection, device_id: int, number: str, counter: int, since) -> bool:
    """Whether the active display ``device_id`` may have ``number`` announced at counter
    ``counter``: a ticket of that number was called there, in its centre, since ``since``
    (the announcement route assembles nothing else: display/__init__.py)."""
    d, t, c = m.devices, m.tickets, m.counters
    device = conn.execute(
        sa.select(d.c.centre_id).where(
            d.c.id == device_id, d.c.kind == "display", d.c.active.is_(True)
        )
    ).first()
    if device is None:
        return False
    found = conn.execute(
        sa.select(t.c.id)
        .join(c, c.c.id == t.c.counter_id)
        .where(
            t.c.centre_id == device.centre_id,
            t.c.number == number,
            c.c.number == counter,
            t.c.called_at >= since,
        )
        .limit(1)
    ).first()
    return found is not None


# -- the manager's live monitor ----------------------------------------------------------
MONITOR_QUEUE_LIMIT = 2000  # waiting tickets listed, oldest first


def monitor_figures(conn: Connection, centre_id: int) -> dict:
    """Today's figures of the monitor (the centre's business day): per service, visits
    served (``served``) and the mean wait of the tickets called (``mean_wait_s``: from
    taking the ticket to its latest call; null when none was called); per counter, visits
    served. The monitor reads them again after the changes that move them."""
    ctr = centre(conn, centre_id)
    _, day = _now_day(ctr)
    rows = conn.execute(
        sa.select(
            _t.c.service_id, _t.c.counter_id, _t.c.status, _t.c.issued_at, _t.c.called_at
        ).where(
            _t.c.centre_id == centre_id,
            _t.c.business_date == day,
            _t.c.called_at.is_not(None),
        )
    ).all()
    code_of = {s.id: s.code for s in services(conn, centre_id)}
    number_of = dict(
        conn.execute(sa.select(_c.c.id, _c.c.number).where(_c.c.centre_id == centre_id)).all()
    )
    by_service: dict[str, dict] = {code: {"served": 0, "waits": []} for code in code_of.values()}
    by_counter = dict.fromkeys(map(str, number_of.values()), 0)
    for r in rows:
        figures = by_service[code_of[r.service_id]]
        figures["waits"].append((r.called_at - r.issued_at).total_seconds())
        if r.status == "done":
            figures["served"] += 1
            if r.counter_id in number_of:
                by_counter[str(number_of[r.counter_id])] += 1
    return {
        "services": {
            code: {
                "served": f["served"],
                "mean_wait_s": round(sum(f["waits"]) / len(f["waits"])) if f["waits"] else None,
            }
            for code, f in by_service.items()
        },
        "counters": by_counter,
    }


PRESENCE_S = 15.0  # how often each server process renews its devices' presence


def monitor_devices(conn: Connection, centre_id: int, tz: str, presence_s: float) -> list[dict]:
    """Every active device of the centre: whether it is online now (core/presence.py:
    renewed within the last few heartbeats by any server process), when it was last seen,
    its alert (a kiosk's printer: its paper) and who acknowledged it."""
    from .presence import is_online

    d, st = m.devices, m.staff
    now = m.utcnow()
    rows = conn.execute(
        sa.select(d, st.c.full_name.label("acked_by_name"))
        .outerjoin(st, st.c.id == d.c.alert_acked_by)
        .where(d.c.centre_id == centre_id, d.c.active.is_(True), d.c.kind != "integration")
        .order_by(d.c.kind, d.c.name)
    )
    rows = list(rows)
    pj = m.print_jobs
    paper = {}
    for r in rows:
        if r.kind == "kiosk" and r.printed_by is not None:
            printer = conn.execute(
                sa.select(pj.c.printer)
                .where(pj.c.kiosk_id == r.id, pj.c.printer.is_not(None))
                .order_by(pj.c.reported_at.desc(), pj.c.id.desc())
                .limit(1)
            ).scalar()
            paper[r.id] = (printer or {}).get("paper", "unknown")
    return [
        {
            "device": {"id": r.id, "name": r.name, "kind": r.kind},
            "online": is_online(r.last_seen, now, presence_s),
            # A kiosk printed by an agent: its paper as the agent last read it.
            "paper": paper.get(r.id),
            "last_seen": iso(r.last_seen, tz),
            "alert": r.alert,
            "since": iso(r.alert_since, tz),
            "acknowledged": {"by": r.acked_by_name, "at": iso(r.alert_acked_at, tz)}
            if r.alert_acked_at
            else None,
        }
        for r in rows
    ]


def monitor_snapshot(conn: Connection, centre_id: int, presence_s: float = PRESENCE_S) -> dict:
    """The manager's live monitor of one centre: every active service with its counts and
    estimate (the service summary), its longest wait now and whether that passes the
    centre's target; every counter with its status, clerk, services and current ticket;
    the tickets waiting today, oldest first; today's figures (:func:`monitor_figures`);
    the devices needing staff; and when each of the manager's actions may be taken."""
    ctr = centre(conn, centre_id)
    now, day = _now_day(ctr)
    rows = services(conn, centre_id, active_only=True)
    summaries = estimates.summaries(conn, rows, day)
    target = estimates.target_wait_s(ctr)
    counters = list(
        conn.execute(
            sa.select(_c)
            .where(_c.c.centre_id == centre_id, _c.c.active.is_(True))
            .order_by(_c.c.number)
        )
    )
    cs = m.counter_services
    codes: dict[int, list[str]] = {}
    for counter_id, code in conn.execute(
        sa.select(cs.c.counter_id, _s.c.code)
        .join(_s, _s.c.id == cs.c.service_id)
        .where(_s.c.centre_id == centre_id)
        .order_by(_s.c.id)
    ):
        codes.setdefault(counter_id, []).append(code)
    current = {
        t.counter_id: t
        for t in conn.execute(
            TICKET_DETAIL.where(_t.c.centre_id == centre_id, _t.c.status.in_(AT_COUNTER)).order_by(
                _t.c.called_at
            )
        )
    }
    clerks = dict(
        conn.execute(
            sa.select(m.staff.c.id, m.staff.c.full_name).where(
                m.staff.c.id.in_([c.staff_id for c in counters if c.staff_id is not None])
            )
        ).all()
    )
    queue = conn.execute(
        TICKET_DETAIL.where(
            _t.c.centre_id == centre_id, _t.c.business_date == day, _t.c.status.in_(WAITING)
        )
        .order_by(_t.c.issued_at, _t.c.id)
        .limit(MONITOR_QUEUE_LIMIT)
    ).all()
    oldest: dict[str, datetime] = {}
    for t in queue:
        oldest.setdefault(t.service_code, t.issued_at)
    listed = []
    for s, summary in zip(rows, summaries, strict=True):
        longest = int((now - oldest[s.code]).total_seconds()) if s.code in oldest else 0
        listed.append(
            {
                "name": s.name,
                "name_en": s.name_en,
                "agency": s.agency,
                "agency_en": s.agency_en,
                **summary,
                "longest_wait_s": longest,
                "over_target": longest > target,
            }
        )
    return {
        "protocol": PROTOCOL,
        "seq": ctr.seq,
        "centre": {
            "code": ctr.code,
            "name": ctr.name,
            "name_en": ctr.name_en,
            "timezone": ctr.timezone,
            "target_wait_s": target,
        },
        "now": iso(now, ctr.timezone),
        "services": listed,
        "counters": [
            {
                **counter_view(c._mapping),
                "services": codes.get(c.id, []),
                "clerk": clerks.get(c.staff_id) if c.status != "closed" else None,
                "current": ticket_view(current[c.id]._mapping, ctr.timezone)
                if c.id in current
                else None,
            }
            for c in counters
        ],
        "queue": [ticket_view(t._mapping, ctr.timezone) for t in queue],
        "figures": monitor_figures(conn, centre_id),
        "device_alerts": device_alerts(conn, centre_id, ctr.timezone),
        "devices": monitor_devices(conn, centre_id, ctr.timezone, presence_s),
        "presence_s": presence_s,
        "actions": manager_actions(),
    }


# -- the province's overview ---------------------------------------------------------------
def province_overview(conn: Connection, centre_ids: list[int] | None) -> dict:
    """Today's live figures of many centres at once (``centre_ids``; None: every centre),
    one row a centre: tickets issued today, waiting, at a counter (called or being
    served), served; counters open (and paused) of those in use; the longest wait now
    (its oldest waiting ticket); devices with an alert. Read in four statements whatever
    the number of centres (grouped by centre), never one a centre: a province's 200
    centres cost what one does, give or take the rows."""
    c, d = m.centres, m.devices
    query = sa.select(
        c.c.id, c.c.code, c.c.name, c.c.name_en, c.c.timezone, c.c.target_wait_s
    ).order_by(c.c.code)
    if centre_ids is not None:
        query = query.where(c.c.id.in_(centre_ids))
    centres_ = list(conn.execute(query))
    now = m.utcnow()
    # Each time zone's business day (one zone in Vietnam) and its centres: the tickets
    # are read by (centre, day), the leading columns of ix_tickets_queue.
    zones: dict[str, list[int]] = {}
    for r in centres_:
        zones.setdefault(r.timezone, []).append(r.id)
    ids = [r.id for r in centres_]
    rows: dict[int, dict] = {
        r.id: {
            "issued": 0,
            "waiting": 0,
            "at_counter": 0,
            "served": 0,
            "oldest": None,
            "counters_open": 0,
            "counters_paused": 0,
            "counters": 0,
            "alerts": 0,
        }
        for r in centres_
    }
    if ids:
        today = sa.or_(
            *(
                sa.and_(_t.c.centre_id.in_(ids_), _t.c.business_date == business_date(now, tz))
                for tz, ids_ in zones.items()
            )
        )
        for centre_id, status, n, oldest in conn.execute(
            sa.select(_t.c.centre_id, _t.c.status, sa.func.count(), sa.func.min(_t.c.issued_at))
            .where(today)
            .group_by(_t.c.centre_id, _t.c.status)
        ):
            row = rows[centre_id]
            row["issued"] += n
            if status in WAITING:
                row["waiting"] += n
                row["oldest"] = oldest if row["oldest"] is None else min(row["oldest"], oldest)
            elif status in AT_COUNTER:
                row["at_counter"] += n
            elif status == "done":
                row["served"] += n
        for centre_id, status, n in conn.execute(
            sa.select(_c.c.centre_id, _c.c.status, sa.func.count())
            .where(
                _c.c.active.is_(True),
                *([_c.c.centre_id.in_(ids)] if centre_ids is not None else []),
            )
            .group_by(_c.c.centre_id, _c.c.status)
        ):
            row = rows[centre_id]
            row["counters"] += n
            if status == "open":
                row["counters_open"] += n
            elif status == "paused":
                row["counters_paused"] += n
        for centre_id, n in conn.execute(
            sa.select(d.c.centre_id, sa.func.count())
            .where(
                d.c.active.is_(True),
                d.c.alert.is_not(None),
                *([d.c.centre_id.in_(ids)] if centre_ids is not None else []),
            )
            .group_by(d.c.centre_id)
        ):
            rows[centre_id]["alerts"] = n
    out = []
    for r in centres_:
        row = rows[r.id]
        oldest = row.pop("oldest")
        longest = int((now - oldest).total_seconds()) if oldest is not None else 0
        target = estimates.target_wait_s(r)
        out.append(
            {
                "code": r.code,
                "name": r.name,
                "name_en": r.name_en,
                **row,
                "longest_wait_s": max(0, longest),
                "target_wait_s": target,
                "over_target": longest > target,
            }
        )
    tz = centres_[0].timezone if centres_ else "Asia/Ho_Chi_Minh"
    return {"at": iso(now, tz), "timezone": tz, "centres": out}
