"""The queue engine: the only place that changes queue state.

Every door (a socket event, a keypad press, a REST call) calls one of these methods with
the :class:`Actor` doing it. Each method is one store transaction that records its
changes with :meth:`Tx.change`, so each change gets the centre's next ``seq``, an audit
row, and its events, delivered after commit.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from . import models as m
from .errors import QueueError
from .ordering import WAITING_STATUSES, CounterQueue, OrderingPolicy, PriorityWithFairness
from .store import Store, Tx

# Who may be served first (Vietnamese law gives priority to these groups).
PRIORITIES = {
    "elderly": ("Người cao tuổi", "Elderly"),
    "disabled": ("Người khuyết tật", "Person with a disability"),
    "pregnant": ("Phụ nữ mang thai", "Pregnant woman"),
    "infant": ("Người đi cùng trẻ nhỏ", "With a small child"),
    "merit": ("Người có công với cách mạng", "Person of merit"),
}

# What a visit ended with, for the reports (dossiers received, results returned...).
OUTCOMES = ("received", "returned", "supplemented", "guided", "other")

DOSSIER_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_/]{2,63}$")

DEFAULT_SERVICE_S = 300.0
SERVICE_TIME_WEIGHT = 0.2  # weight of the newest service time in the moving average
RECENT_CALLS = 10

# Statements of the ticket-issuing hot path, built once: building and hashing a statement
# costs more than running it on SQLite.
_t, _s, _c, _cs, _ns = m.tickets, m.services, m.counters, m.counter_services, m.number_sequences
_SERVICE_BY_CODE = (
    sa.select(_s, m.centres.c.timezone)
    .join(m.centres, m.centres.c.id == _s.c.centre_id)
    .where(_s.c.centre_id == sa.bindparam("centre_id"), _s.c.code == sa.bindparam("code"))
)
_NEXT_NUMBER = (
    sa.update(_ns)
    .where(
        _ns.c.centre_id == sa.bindparam("b_centre"),
        _ns.c.prefix == sa.bindparam("b_prefix"),
        _ns.c.business_date == sa.bindparam("b_day"),
    )
    .values(last_number=_ns.c.last_number + 1)
    .returning(_ns.c.last_number)
)
_INSERT_TICKET = _t.insert().returning(_t.c.id)
_WAITING_OF_SERVICE = sa.select(sa.func.count(), sa.func.count(_t.c.priority)).where(
    _t.c.centre_id == sa.bindparam("centre_id"),
    _t.c.business_date == sa.bindparam("day"),
    _t.c.service_id == sa.bindparam("service_id"),
    _t.c.status.in_(("waiting", "transferred")),
)
_COUNTERS_SERVING_ONE = (
    sa.select(
        sa.func.coalesce(sa.func.sum(sa.case((_c.c.status == "open", 1), else_=0)), 0),
        sa.func.count(),
    )
    .select_from(_cs.join(_c, _c.c.id == _cs.c.counter_id))
    .where(_cs.c.service_id == sa.bindparam("service_id"))
)


@dataclass(frozen=True)
class Actor:
    """Who is acting: a device (kiosk, display, rating, agent) or a staff member."""

    kind: str  # "device" | "staff"
    id: int
    centre_id: int
    role: str  # device kind, or staff role
    counter_id: int | None = None  # the counter a clerk operates / a tablet stands at
    name: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def iso(value: datetime | None, tz: str) -> str | None:
    return None if value is None else value.astimezone(_zone(tz)).isoformat(timespec="seconds")


def business_date(now: datetime, tz: str):
    return now.astimezone(_zone(tz)).date()


def day_start(now: datetime, tz: str) -> datetime:
    """Midnight of the business day containing ``now``, in the centre's time zone."""
    local = now.astimezone(_zone(tz))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def format_number(prefix: str, n: int) -> str:
    return f"{prefix}{n:03d}"


# -- reads shared by snapshots and by the changes' payloads ------------------------------


def _centre(conn: Connection, centre_id: int) -> Row:
    return conn.execute(sa.select(m.centres).where(m.centres.c.id == centre_id)).one()


def _services_by_id(conn: Connection, centre_id: int) -> dict[int, Row]:
    rows = conn.execute(
        sa.select(m.services).where(m.services.c.centre_id == centre_id).order_by(m.services.c.id)
    )
    return {r.id: r for r in rows}


def _counter(conn: Connection, counter_id: int) -> Row:
    return conn.execute(sa.select(m.counters).where(m.counters.c.id == counter_id)).one()


def _counter_service_ids(conn: Connection, counter_id: int) -> list[int]:
    cs = m.counter_services
    return list(
        conn.execute(
            sa.select(cs.c.service_id)
            .where(cs.c.counter_id == counter_id)
            .order_by(cs.c.service_id)
        ).scalars()
    )


def _current_ticket(conn: Connection, counter_id: int) -> Row | None:
    t = m.tickets
    return conn.execute(
        sa.select(t)
        .where(t.c.counter_id == counter_id, t.c.status.in_(("called", "serving")))
        .order_by(t.c.called_at.desc())
        .limit(1)
    ).first()


def _waiting_counts(conn: Connection, centre_id: int, day, service_ids=None) -> dict[int, int]:
    t = m.tickets
    q = (
        sa.select(t.c.service_id, sa.func.count())
        .where(
            t.c.centre_id == centre_id,
            t.c.business_date == day,
            t.c.status.in_(WAITING_STATUSES),
        )
        .group_by(t.c.service_id)
    )
    if service_ids is not None:
        q = q.where(t.c.service_id.in_(service_ids))
    return dict(conn.execute(q).all())


def _counters_serving(conn: Connection, centre_id: int, service_ids) -> dict[int, tuple[int, int]]:
    """service_id -> (open counters serving it, counters assigned to it)."""
    c, cs = m.counters, m.counter_services
    rows = conn.execute(
        sa.select(
            cs.c.service_id,
            sa.func.sum(sa.case((c.c.status == "open", 1), else_=0)),
            sa.func.count(),
        )
        .join(c, c.c.id == cs.c.counter_id)
        .where(c.c.centre_id == centre_id, cs.c.service_id.in_(service_ids))
        .group_by(cs.c.service_id)
    )
    return {sid: (int(n_open or 0), int(n_all)) for sid, n_open, n_all in rows}


def estimate_wait_s(ahead: int, avg_service_s: float, open_counters: int, all_counters: int) -> int:
    """People ahead times the recent average service time, shared by the open counters
    serving the service (or by all assigned counters while none is open yet)."""
    servers = open_counters or all_counters or 1
    return int(math.ceil(ahead * avg_service_s / servers))


def _service_summaries(conn: Connection, centre_id: int, day, service_rows) -> list[dict]:
    ids = [s.id for s in service_rows]
    waiting = _waiting_counts(conn, centre_id, day, ids)
    serving = _counters_serving(conn, centre_id, ids)
    out = []
    for s in service_rows:
        n_open, n_all = serving.get(s.id, (0, 0))
        out.append(
            {
                "code": s.code,
                "waiting": waiting.get(s.id, 0),
                "estimated_wait_s": estimate_wait_s(
                    waiting.get(s.id, 0), s.avg_service_s, n_open, n_all
                ),
                "open": n_open > 0,
            }
        )
    return out


def people_ahead(conn: Connection, ticket: Row) -> int:
    """Waiting tickets of the same service called before this one by the default order:
    earlier priority tickets for a priority ticket; all priority tickets and earlier normal
    ones for a normal ticket. (Counters serving several services make it an estimate.)"""
    t = m.tickets
    earlier = sa.or_(
        t.c.issued_at < ticket.issued_at,
        sa.and_(t.c.issued_at == ticket.issued_at, t.c.id < ticket.id),
    )
    q = sa.select(sa.func.count()).where(
        t.c.centre_id == ticket.centre_id,
        t.c.business_date == ticket.business_date,
        t.c.service_id == ticket.service_id,
        t.c.status.in_(WAITING_STATUSES),
        t.c.id != ticket.id,
    )
    if ticket.priority is not None:
        q = q.where(t.c.priority.is_not(None), earlier)
    else:
        q = q.where(sa.or_(t.c.priority.is_not(None), earlier))
    return conn.execute(q).scalar_one()


def _ticket_view(t: Row, services: dict[int, Row], counters_by_id: dict[int, Row], tz: str):
    service = services[t.service_id]
    counter = counters_by_id.get(t.counter_id) if t.counter_id else None
    return {
        "id": t.id,
        "number": t.number,
        "service": {"code": service.code, "name": service.name},
        "status": t.status,
        "priority": t.priority,
        "issued_at": iso(t.issued_at, tz),
        "called_at": iso(t.called_at, tz),
        "counter": counter.number if counter is not None else None,
    }


def _brief(t: Row, services: dict[int, Row]) -> dict:
    s = services[t.service_id]
    return {"id": t.id, "number": t.number, "service": {"code": s.code, "name": s.name}}


def _counters_by_id(conn: Connection, centre_id: int) -> dict[int, Row]:
    rows = conn.execute(
        sa.select(m.counters)
        .where(m.counters.c.centre_id == centre_id)
        .order_by(m.counters.c.number)
    )
    return {r.id: r for r in rows}


def counter_state(conn: Connection, counter_id: int) -> dict:
    """The /counter snapshot of one counter (without seq). ``waiting`` counts the tickets
    this counter may call, by service: its services' and those transferred to it."""
    counter = _counter(conn, counter_id)
    centre = _centre(conn, counter.centre_id)
    services = _services_by_id(conn, centre.id)
    sids = _counter_service_ids(conn, counter_id)
    day = business_date(m.utcnow(), centre.timezone)
    waiting = CounterQueue(conn, counter, day).waiting_by_service()
    current = _current_ticket(conn, counter_id)
    return {
        "counter": {
            "number": counter.number,
            "name": counter.name,
            "status": counter.status,
            "pause_reason": counter.pause_reason,
            "services": [services[s].code for s in sids],
        },
        "current": _ticket_view(current, services, {counter.id: counter}, centre.timezone)
        if current
        else None,
        "waiting": {services[s].code: waiting.get(s, 0) for s in [*sids, *waiting]},
    }


def _staff_name(conn: Connection, staff_id: int | None) -> str | None:
    if staff_id is None:
        return None
    return conn.execute(sa.select(m.staff.c.full_name).where(m.staff.c.id == staff_id)).scalar_one()


def _rate_request(conn: Connection, ticket: Row, counter: Row, services: dict[int, Row]) -> dict:
    name = _staff_name(conn, ticket.staff_id or counter.staff_id)
    return {
        "ticket": _brief(ticket, services),
        "staff": {"full_name": name} if name else None,
        "counter": {"number": counter.number},
    }


def rating_state(conn: Connection, counter_id: int, rating_window: timedelta) -> dict:
    """The /rating snapshot of the tablet at one counter (without seq). ``awaiting_rating``
    is the latest visit finished here, unrated, still within the rating window, so a tablet
    that was offline when it finished can still ask."""
    counter = _counter(conn, counter_id)
    centre = _centre(conn, counter.centre_id)
    name = _staff_name(conn, counter.staff_id) if counter.status != "closed" else None
    services = _services_by_id(conn, centre.id)
    current = _current_ticket(conn, counter_id)
    t, r = m.tickets, m.ratings
    finished = conn.execute(
        sa.select(t)
        .where(
            t.c.counter_id == counter_id,
            t.c.status == "done",
            t.c.finished_at >= m.utcnow() - rating_window,
            ~sa.exists().where(r.c.ticket_id == t.c.id),
        )
        .order_by(t.c.finished_at.desc())
        .limit(1)
    ).first()
    return {
        "counter": {"number": counter.number, "name": counter.name, "status": counter.status},
        "staff": {"full_name": name} if name else None,
        "current": _ticket_view(current, services, {counter.id: counter}, centre.timezone)
        if current
        else None,
        "awaiting_rating": _rate_request(conn, finished, counter, services) if finished else None,
    }


class QueueEngine:
    """Queue operations and snapshots of every centre in one store.

    store: where state lives; every method here is one transaction in it.
    policy: which ticket ``call_next`` picks (default: priority with 1-in-4 fairness).
    rating_window_s: how long after finishing a visit may still be rated.
    """

    def __init__(
        self,
        store: Store,
        policy: OrderingPolicy | None = None,
        rating_window_s: int = 600,
    ):
        self.store = store
        self.policy = policy or PriorityWithFairness()
        self.rating_window = timedelta(seconds=rating_window_s)

    def _write(self, actor: Actor, request_id: str | None, fn, what: str):
        """One transaction; a request_id is remembered per actor *and* operation, so a
        client reusing one for another operation gets that operation done, not a replay."""
        return self.store.write(
            fn,
            centre_id=actor.centre_id,
            actor=actor.key,
            request_id=f"{what}:{request_id}" if request_id else None,
        )

    # -- the change helpers, inside a transaction ------------------------------------
    def _counter_deliveries(self, conn: Connection, counter_ids) -> list[dict]:
        out = []
        for cid in dict.fromkeys(c for c in counter_ids if c is not None):
            out.append(
                {
                    "namespace": "/counter",
                    "room": f"counter:{cid}",
                    "event": "counter_state",
                    "data": counter_state(conn, cid),
                }
            )
            out.append(
                {
                    "namespace": "/rating",
                    "room": f"rating:{cid}",
                    "event": "rating_state",
                    "data": rating_state(conn, cid, self.rating_window),
                }
            )
        return out

    def _record(
        self,
        tx: Tx,
        actor: Actor,
        request_id: str | None,
        *,
        action: str,
        event: str,
        data: dict,
        ticket: Row | None = None,
        counters=(),
        details: dict | None = None,
        extra_directed: list[dict] | None = None,
    ) -> int:
        directed = self._counter_deliveries(tx.conn, counters) + (extra_directed or [])
        return tx.change(
            actor.centre_id,
            action,
            actor.key,
            request_id=request_id,
            ticket_id=ticket.id if ticket is not None else None,
            counter_id=actor.counter_id,
            details=details,
            delivery={"broadcast": {"event": event, "data": data}, "directed": directed},
        )

    def _ticket(self, conn: Connection, actor: Actor, ticket_id: int) -> Row:
        t = m.tickets
        row = conn.execute(
            sa.select(t).where(t.c.id == ticket_id, t.c.centre_id == actor.centre_id)
        ).first()
        if row is None:
            raise QueueError("not_found", "unknown_ticket")
        return row

    def _reload(self, conn: Connection, ticket_id: int) -> Row:
        return conn.execute(sa.select(m.tickets).where(m.tickets.c.id == ticket_id)).one()

    def _at_counter(self, conn: Connection, actor: Actor, ticket_id: int, statuses) -> Row:
        ticket = self._ticket(conn, actor, ticket_id)
        if ticket.counter_id != actor.counter_id or ticket.status not in ("called", "serving"):
            raise QueueError("conflict", "ticket_not_here", number=ticket.number)
        if ticket.status not in statuses:
            raise QueueError(
                "conflict", "ticket_wrong_status", number=ticket.number, status=ticket.status
            )
        return ticket

    def _summaries(self, conn: Connection, centre: Row, now, service_ids) -> list[dict]:
        s = m.services
        rows = conn.execute(
            sa.select(s).where(s.c.id.in_(list(dict.fromkeys(service_ids)))).order_by(s.c.id)
        ).all()
        return _service_summaries(conn, centre.id, business_date(now, centre.timezone), rows)

    # -- kiosk ---------------------------------------------------------------------------
    def issue_ticket(
        self, actor: Actor, service: str, priority: str | None = None, request_id: str | None = None
    ) -> dict:
        """Give the next number of ``service`` (numbers restart each business day)."""
        if priority is not None and priority not in PRIORITIES:
            raise QueueError(
                "bad_request", "unknown_priority", value=priority, allowed=", ".join(PRIORITIES)
            )

        # The hot path of the whole system (a kiosk per ~second per centre, bursts at
        # opening): a few prepared statements, no re-reading of what was just written.
        def op(tx: Tx) -> dict:
            conn = tx.conn
            tx.lock_centre(actor.centre_id)
            svc = conn.execute(
                _SERVICE_BY_CODE, {"centre_id": actor.centre_id, "code": service}
            ).first()
            if svc is None:
                raise QueueError("not_found", "unknown_service", service=service)
            if not svc.active:
                raise QueueError("conflict", "service_inactive", service=service)
            day = business_date(tx.now, svc.timezone)
            seq_no = self._next_number(conn, actor.centre_id, svc.prefix, day, svc.start)
            ticket = SimpleNamespace(
                centre_id=actor.centre_id,
                service_id=svc.id,
                business_date=day,
                prefix=svc.prefix,
                seq_no=seq_no,
                number=format_number(svc.prefix, seq_no),
                status="waiting",
                priority=priority,
                public_key=secrets.token_urlsafe(16),
                issued_at=tx.now,
                issued_by_device_id=actor.id if actor.kind == "device" else None,
            )
            ticket.id = conn.execute(_INSERT_TICKET, vars(ticket)).scalar_one()
            ticket.called_at = ticket.counter_id = None
            waiting, waiting_priority = conn.execute(
                _WAITING_OF_SERVICE,
                {"centre_id": actor.centre_id, "day": day, "service_id": svc.id},
            ).one()
            # Everyone waiting is ahead of a new normal ticket; only priority ones of a
            # priority ticket (people_ahead's rule, without a query).
            ahead = (waiting_priority if priority else waiting) - 1
            n_open, n_all = conn.execute(_COUNTERS_SERVING_ONE, {"service_id": svc.id}).one()
            view = _ticket_view(ticket, {svc.id: svc}, {}, svc.timezone)
            summary = {
                "code": svc.code,
                "waiting": waiting,
                "estimated_wait_s": estimate_wait_s(waiting, svc.avg_service_s, n_open, n_all),
                "open": n_open > 0,
            }
            self._record(
                tx,
                actor,
                request_id,
                action="issued",
                event="update",
                data={"kind": "issued", "ticket": view, "services": [summary]},
                ticket=ticket,
            )
            return {
                "ticket": view,
                "ahead": ahead,
                "estimated_wait_s": estimate_wait_s(ahead, svc.avg_service_s, n_open, n_all),
                "status_path": f"/t/{ticket.public_key}",
            }

        return self._write(actor, request_id, op, "issue_ticket")

    @staticmethod
    def _next_number(conn: Connection, centre_id: int, prefix: str, day, start: int) -> int:
        key = {"b_centre": centre_id, "b_prefix": prefix, "b_day": day}
        last = conn.execute(_NEXT_NUMBER, key).scalar_one_or_none()
        if last is None:
            last = start
            conn.execute(
                m.number_sequences.insert().values(
                    centre_id=centre_id, prefix=prefix, business_date=day, last_number=start
                )
            )
        return last

    # -- counter -------------------------------------------------------------------------
    def open_counter(self, actor: Actor) -> dict:
        """A clerk takes the counter: open it if closed, and name the clerk serving."""

        def op(tx: Tx) -> dict:
            tx.lock_centre(actor.centre_id)
            counter = _counter(tx.conn, actor.counter_id)
            if counter.status != "closed" and counter.staff_id == actor.id:
                return {}
            status = "open" if counter.status == "closed" else counter.status
            tx.conn.execute(
                sa.update(m.counters)
                .where(m.counters.c.id == counter.id)
                .values(status=status, staff_id=actor.id)
            )
            self._counter_change(tx, actor, None, "counter_opened", counter)
            return {}

        return self._write(actor, None, op, "open_counter")

    def _counter_change(self, tx: Tx, actor: Actor, request_id, kind: str, counter: Row) -> None:
        counter = _counter(tx.conn, counter.id)
        self._record(
            tx,
            actor,
            request_id,
            action=kind,
            event="update",
            data={
                "kind": kind,
                "counter": {
                    "number": counter.number,
                    "name": counter.name,
                    "status": counter.status,
                },
                "services": self._summaries(
                    tx.conn,
                    _centre(tx.conn, actor.centre_id),
                    tx.now,
                    _counter_service_ids(tx.conn, counter.id),
                ),
            },
            counters=[counter.id],
        )

    def _set_counter(self, actor: Actor, request_id, kind: str, check, values: dict) -> dict:
        def op(tx: Tx) -> dict:
            tx.lock_centre(actor.centre_id)
            counter = _counter(tx.conn, actor.counter_id)
            check(tx.conn, counter)
            tx.conn.execute(
                sa.update(m.counters).where(m.counters.c.id == counter.id).values(**values)
            )
            self._counter_change(tx, actor, request_id, kind, counter)
            return {"counter": counter_state(tx.conn, counter.id)["counter"]}

        return self._write(actor, request_id, op, kind)

    def _refuse_if_current(self, conn: Connection, counter: Row) -> None:
        current = _current_ticket(conn, counter.id)
        if current is not None:
            raise QueueError("conflict", "counter_has_current", number=current.number)

    def pause(self, actor: Actor, reason: str, request_id: str | None = None) -> dict:
        def check(conn, counter):
            if counter.status == "closed":
                raise QueueError("conflict", "counter_closed")
            if counter.status == "paused":
                raise QueueError("conflict", "already_paused")
            self._refuse_if_current(conn, counter)

        return self._set_counter(
            actor, request_id, "counter_paused", check, {"status": "paused", "pause_reason": reason}
        )

    def resume(self, actor: Actor, request_id: str | None = None) -> dict:
        def check(conn, counter):
            if counter.status != "paused":
                raise QueueError("conflict", "not_paused")

        return self._set_counter(
            actor, request_id, "counter_resumed", check, {"status": "open", "pause_reason": None}
        )

    def close_counter(self, actor: Actor, request_id: str | None = None) -> dict:
        def check(conn, counter):
            if counter.status == "closed":
                raise QueueError("conflict", "counter_closed")
            self._refuse_if_current(conn, counter)

        return self._set_counter(
            actor,
            request_id,
            "counter_closed",
            check,
            {"status": "closed", "pause_reason": None, "staff_id": None},
        )

    def _ready_to_call(self, tx: Tx, actor: Actor, request_id) -> Row:
        """Check the counter can call; a ticket still being served is finished first.

        A ticket still *called* (not started) refuses the call instead: pressing "next"
        twice must never turn the citizen walking to the counter into a no-show.
        """
        counter = _counter(tx.conn, actor.counter_id)
        if counter.status == "paused":
            raise QueueError("conflict", "counter_paused")
        if counter.status == "closed":
            raise QueueError("conflict", "counter_closed")
        current = _current_ticket(tx.conn, counter.id)
        if current is not None:
            if current.status == "called":
                raise QueueError("conflict", "counter_busy_called", number=current.number)
            self._finish(tx, actor, request_id, current, [], None)
        return _counter(tx.conn, counter.id)

    def call_next(self, actor: Actor, request_id: str | None = None) -> dict:
        """Call the next ticket the ordering policy picks for this counter."""

        def op(tx: Tx) -> dict:
            tx.lock_centre(actor.centre_id)
            counter = self._ready_to_call(tx, actor, request_id)
            centre = _centre(tx.conn, actor.centre_id)
            queue = CounterQueue(tx.conn, counter, business_date(tx.now, centre.timezone))
            ticket = self.policy.choose(queue)
            if ticket is None:
                raise QueueError("queue_empty", "queue_empty")
            return {"ticket": self._call(tx, actor, request_id, counter, ticket, "call_next")}

        return self._write(actor, request_id, op, "call_next")

    def call_ticket(self, actor: Actor, ticket_id: int, request_id: str | None = None) -> dict:
        """Call a given waiting ticket out of order (audited as such)."""

        def op(tx: Tx) -> dict:
            tx.lock_centre(actor.centre_id)
            ticket = self._ticket(tx.conn, actor, ticket_id)
            if ticket.status not in WAITING_STATUSES:
                raise QueueError(
                    "conflict", "ticket_not_waiting", number=ticket.number, status=ticket.status
                )
            centre = _centre(tx.conn, actor.centre_id)
            if ticket.business_date != business_date(tx.now, centre.timezone):
                raise QueueError("conflict", "ticket_expired", number=ticket.number)
            targeted_here = ticket.target_counter_id == actor.counter_id
            if not targeted_here and (
                ticket.target_counter_id is not None
                or ticket.service_id not in _counter_service_ids(tx.conn, actor.counter_id)
            ):
                raise QueueError("conflict", "service_not_at_counter", number=ticket.number)
            counter = self._ready_to_call(tx, actor, request_id)
            return {"ticket": self._call(tx, actor, request_id, counter, ticket, "call")}

        return self._write(actor, request_id, op, "call_ticket")

    def _call(self, tx: Tx, actor: Actor, request_id, counter: Row, ticket: Row, how: str):
        conn = tx.conn
        streak = counter.priority_streak + 1 if ticket.priority else 0
        conn.execute(
            sa.update(m.counters)
            .where(m.counters.c.id == counter.id)
            .values(priority_streak=streak)
        )
        conn.execute(
            sa.update(m.tickets)
            .where(m.tickets.c.id == ticket.id)
            .values(
                status="called",
                called_at=tx.now,
                counter_id=counter.id,
                target_counter_id=None,
                staff_id=actor.id if actor.kind == "staff" else None,
                call_count=m.tickets.c.call_count + 1,
            )
        )
        return self._announce(tx, actor, request_id, counter, ticket.id, recall=False, how=how)

    def _announce(self, tx, actor, request_id, counter: Row, ticket_id: int, *, recall, how):
        conn = tx.conn
        centre = _centre(conn, actor.centre_id)
        services = _services_by_id(conn, centre.id)
        ticket = self._reload(conn, ticket_id)
        self._record(
            tx,
            actor,
            request_id,
            action="recalled" if recall else "called",
            event="called",
            data={
                "ticket": _brief(ticket, services),
                "counter": {"number": counter.number, "name": counter.name},
                "recall": recall,
                "at": iso(tx.now, centre.timezone),
                "services": self._summaries(conn, centre, tx.now, [ticket.service_id]),
            },
            ticket=ticket,
            counters=[counter.id],
            details={"how": how, "call_count": ticket.call_count},
        )
        return _ticket_view(ticket, services, {counter.id: counter}, centre.timezone)

    def recall(self, actor: Actor, ticket_id: int, request_id: str | None = None) -> dict:
        """Announce the current ticket again."""

        def op(tx: Tx) -> dict:
            tx.lock_centre(actor.centre_id)
            ticket = self._at_counter(tx.conn, actor, ticket_id, ("called",))
            tx.conn.execute(
                sa.update(m.tickets)
                .where(m.tickets.c.id == ticket.id)
                .values(call_count=m.tickets.c.call_count + 1)
            )
            counter = _counter(tx.conn, actor.counter_id)
            view = self._announce(
                tx, actor, request_id, counter, ticket.id, recall=True, how="recall"
            )
            return {"ticket": view}

        return self._write(actor, request_id, op, "recall")

    def _ticket_change(
        self,
        tx,
        actor,
        request_id,
        ticket_id: int,
        kind: str,
        values: dict,
        *,
        counters=(),
        service_ids=(),
        details=None,
        extra_directed=None,
    ) -> dict:
        conn = tx.conn
        conn.execute(sa.update(m.tickets).where(m.tickets.c.id == ticket_id).values(**values))
        ticket = self._reload(conn, ticket_id)
        centre = _centre(conn, actor.centre_id)
        services = _services_by_id(conn, centre.id)
        view = _ticket_view(ticket, services, _counters_by_id(conn, centre.id), centre.timezone)
        data = {"kind": kind, "ticket": view}
        if service_ids:
            data["services"] = self._summaries(conn, centre, tx.now, service_ids)
        self._record(
            tx,
            actor,
            request_id,
            action=kind,
            event="update",
            data=data,
            ticket=ticket,
            counters=counters,
            details=details,
            extra_directed=extra_directed,
        )
        return view

    def start(self, actor: Actor, ticket_id: int, request_id: str | None = None) -> dict:
        """The citizen has arrived at the counter: serving starts."""
        return self._settle_call(
            actor,
            ticket_id,
            request_id,
            "started",
            lambda now: {"status": "serving", "started_at": now},
        )

    def no_show(self, actor: Actor, ticket_id: int, request_id: str | None = None) -> dict:
        """Nobody came for a called ticket."""
        return self._settle_call(
            actor,
            ticket_id,
            request_id,
            "no_show",
            lambda now: {"status": "no_show", "finished_at": now},
        )

    def _settle_call(self, actor: Actor, ticket_id: int, request_id, kind: str, values) -> dict:
        """A ticket called to this counter is answered: ``values(now)`` is its new state."""

        def op(tx: Tx) -> dict:
            tx.lock_centre(actor.centre_id)
            ticket = self._at_counter(tx.conn, actor, ticket_id, ("called",))
            view = self._ticket_change(
                tx, actor, request_id, ticket.id, kind, values(tx.now), counters=[actor.counter_id]
            )
            return {"ticket": view}

        return self._write(actor, request_id, op, kind)

    def finish(
        self,
        actor: Actor,
        ticket_id: int,
        dossiers: list[str] | None = None,
        outcome: str | None = None,
        request_id: str | None = None,
    ) -> dict:
        """End the visit, linking the dossiers (hồ sơ) it received or returned."""
        dossiers = list(dict.fromkeys(d.strip() for d in (dossiers or [])))
        for code in dossiers:
            if not DOSSIER_CODE.match(code):
                raise QueueError(
                    "bad_request",
                    "bad_value",
                    field="dossiers",
                    why=(
                        f"mã hồ sơ «{code[:64]}» sai dạng",
                        f"dossier code '{code[:64]}' is malformed",
                    ),
                )
        if outcome is not None and outcome not in OUTCOMES:
            raise QueueError(
                "bad_request",
                "bad_value",
                field="outcome",
                why=("chọn: " + ", ".join(OUTCOMES), "choose: " + ", ".join(OUTCOMES)),
            )

        def op(tx: Tx) -> dict:
            tx.lock_centre(actor.centre_id)
            ticket = self._at_counter(tx.conn, actor, ticket_id, ("called", "serving"))
            return {"ticket": self._finish(tx, actor, request_id, ticket, dossiers, outcome)}

        return self._write(actor, request_id, op, "finish")

    def _finish(self, tx, actor, request_id, ticket: Row, dossiers, outcome) -> dict:
        conn = tx.conn
        started = ticket.started_at or ticket.called_at
        took = max(30.0, min(7200.0, (tx.now - started).total_seconds()))
        s = m.services
        conn.execute(
            sa.update(s)
            .where(s.c.id == ticket.service_id)
            .values(
                avg_service_s=s.c.avg_service_s * (1 - SERVICE_TIME_WEIGHT)
                + took * SERVICE_TIME_WEIGHT
            )
        )
        for code in dossiers:
            conn.execute(m.ticket_dossiers.insert().values(ticket_id=ticket.id, code=code))
        counter = _counter(conn, ticket.counter_id)
        rate_request = {
            "namespace": "/rating",
            "room": f"rating:{counter.id}",
            "event": "rate_request",
            "data": _rate_request(conn, ticket, counter, _services_by_id(conn, actor.centre_id)),
        }
        return self._ticket_change(
            tx,
            actor,
            request_id,
            ticket.id,
            "finished",
            {"status": "done", "finished_at": tx.now, "outcome": outcome},
            counters=[counter.id],
            details={"dossiers": dossiers, "outcome": outcome},
            extra_directed=[rate_request],
        )

    def transfer(
        self,
        actor: Actor,
        ticket_id: int,
        service: str | None = None,
        counter: int | None = None,
        request_id: str | None = None,
    ) -> dict:
        """Send the current ticket to another service or counter; it keeps its place."""
        if (service is None) == (counter is None):
            raise QueueError("bad_request", "transfer_target")

        def op(tx: Tx) -> dict:
            conn = tx.conn
            tx.lock_centre(actor.centre_id)
            ticket = self._at_counter(conn, actor, ticket_id, ("called", "serving"))
            values: dict[str, Any] = {"status": "transferred", "started_at": None}
            target_counter_id = None
            if service is not None:
                svc = conn.execute(
                    _SERVICE_BY_CODE, {"centre_id": actor.centre_id, "code": service}
                ).first()
                if svc is None:
                    raise QueueError("not_found", "unknown_service", service=service)
                if not svc.active:
                    raise QueueError("conflict", "service_inactive", service=service)
                if svc.id == ticket.service_id:
                    raise QueueError("conflict", "transfer_same", number=ticket.number)
                values.update(service_id=svc.id, target_counter_id=None)
                details = {"to_service": service}
            else:
                c = m.counters
                target = conn.execute(
                    sa.select(c).where(c.c.centre_id == actor.centre_id, c.c.number == counter)
                ).first()
                if target is None:
                    raise QueueError("not_found", "unknown_counter", number=counter)
                if target.id == actor.counter_id:
                    raise QueueError("conflict", "transfer_same", number=ticket.number)
                target_counter_id = target.id
                values.update(target_counter_id=target.id)
                details = {"to_counter": counter}
            view = self._ticket_change(
                tx,
                actor,
                request_id,
                ticket.id,
                "transferred",
                values,
                counters=[actor.counter_id, target_counter_id],
                service_ids=[ticket.service_id, values.get("service_id", ticket.service_id)],
                details=details,
            )
            return {"ticket": view}

        return self._write(actor, request_id, op, "transfer")

    # -- rating --------------------------------------------------------------------------
    def rate(
        self,
        actor: Actor,
        ticket_id: int,
        score: int,
        reasons: list[str] | None = None,
        comment: str | None = None,
        request_id: str | None = None,
    ) -> dict:
        """Record the citizen's rating: once per visit, at its counter, soon after it."""

        def op(tx: Tx) -> dict:
            conn = tx.conn
            tx.lock_centre(actor.centre_id)
            ticket = self._ticket(conn, actor, ticket_id)
            already = conn.execute(
                sa.select(m.ratings.c.id).where(m.ratings.c.ticket_id == ticket.id)
            ).first()
            if already is not None:
                raise QueueError("already_rated", "already_rated")
            if ticket.status != "done":
                raise QueueError("forbidden", "rating_not_done", number=ticket.number)
            if ticket.counter_id != actor.counter_id:
                raise QueueError("forbidden", "rating_wrong_counter", number=ticket.number)
            if tx.now - ticket.finished_at > self.rating_window:
                raise QueueError("forbidden", "rating_expired", number=ticket.number)
            conn.execute(
                m.ratings.insert().values(
                    ticket_id=ticket.id,
                    centre_id=ticket.centre_id,
                    service_id=ticket.service_id,
                    counter_id=ticket.counter_id,
                    staff_id=ticket.staff_id,
                    device_id=actor.id,
                    score=score,
                    reasons=reasons or [],
                    comment=comment or None,
                    rated_at=tx.now,
                )
            )
            counter = _counter(conn, ticket.counter_id)
            self._record(
                tx,
                actor,
                request_id,
                action="rated",
                event="update",
                data={
                    "kind": "rated",
                    "ticket": {"id": ticket.id, "number": ticket.number},
                    "counter": {
                        "number": counter.number,
                        "name": counter.name,
                        "status": counter.status,
                    },
                },
                ticket=ticket,
                counters=[ticket.counter_id],
                details={"score": score},
            )
            return {}

        return self._write(actor, request_id, op, "rate")

    # -- snapshots -----------------------------------------------------------------------
    def kiosk_snapshot(self, centre_id: int) -> dict:
        def read(conn):
            centre = _centre(conn, centre_id)
            rows = [s for s in _services_by_id(conn, centre_id).values() if s.active]
            day = business_date(m.utcnow(), centre.timezone)
            summaries = {x["code"]: x for x in _service_summaries(conn, centre_id, day, rows)}
            return {
                "seq": centre.seq,
                "services": [
                    {"code": s.code, "name": s.name, "agency": s.agency, **summaries[s.code]}
                    for s in rows
                ],
            }

        return self.store.read(read)

    def counter_snapshot(self, counter_id: int) -> dict:
        def read(conn):
            counter = _counter(conn, counter_id)
            return {"seq": _centre(conn, counter.centre_id).seq, **counter_state(conn, counter_id)}

        return self.store.read(read)

    def rating_snapshot(self, counter_id: int) -> dict:
        def read(conn):
            counter = _counter(conn, counter_id)
            return {
                "seq": _centre(conn, counter.centre_id).seq,
                **rating_state(conn, counter_id, self.rating_window),
            }

        return self.store.read(read)

    def display_snapshot(self, centre_id: int, counter_ids: list[int] | None) -> dict:
        def read(conn):
            centre = _centre(conn, centre_id)
            services = _services_by_id(conn, centre_id)
            counters = _counters_by_id(conn, centre_id)
            shown = [c for c in counters.values() if not counter_ids or c.id in counter_ids]
            out = []
            for c in shown:
                cur = _current_ticket(conn, c.id)
                out.append(
                    {
                        "number": c.number,
                        "name": c.name,
                        "status": c.status,
                        "current": {"number": cur.number, "service": services[cur.service_id].code}
                        if cur
                        else None,
                    }
                )
            a = m.audit_log
            now = m.utcnow()
            calls = conn.execute(
                sa.select(a.c.delivery)
                .where(
                    a.c.centre_id == centre_id,
                    a.c.action.in_(("called", "recalled")),
                    a.c.counter_id.in_([c.id for c in shown]),
                    a.c.at >= day_start(now, centre.timezone),
                )
                .order_by(a.c.seq.desc())
                .limit(RECENT_CALLS)
            ).scalars()
            waiting = _waiting_counts(conn, centre_id, business_date(now, centre.timezone))
            return {
                "seq": centre.seq,
                "centre": {"code": centre.code, "name": centre.name},
                "counters": out,
                "recent_calls": [d["broadcast"]["data"] for d in calls],
                "waiting": {s.code: waiting.get(s.id, 0) for s in services.values() if s.active},
            }

        return self.store.read(read)

    def ticket_status(self, public_key: str) -> dict | None:
        """What the public status page shows: position and wait of one ticket."""

        def read(conn):
            t = m.tickets
            ticket = conn.execute(sa.select(t).where(t.c.public_key == public_key)).first()
            if ticket is None:
                return None
            centre = _centre(conn, ticket.centre_id)
            services = _services_by_id(conn, centre.id)
            view = _ticket_view(ticket, services, _counters_by_id(conn, centre.id), centre.timezone)
            ahead = None
            wait = None
            if ticket.status in WAITING_STATUSES:
                ahead = people_ahead(conn, ticket)
                svc = services[ticket.service_id]
                n_open, n_all = _counters_serving(conn, centre.id, [svc.id]).get(svc.id, (0, 0))
                wait = estimate_wait_s(ahead, svc.avg_service_s, n_open, n_all)
            return {
                "centre": {"code": centre.code, "name": centre.name},
                "ticket": view,
                "ahead": ahead,
                "estimated_wait_s": wait,
                "seq": centre.seq,
                "checked_at": iso(datetime.now(UTC), centre.timezone),
            }

        return self.store.read(read)
