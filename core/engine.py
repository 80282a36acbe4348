"""The queue engine: the only place that changes queue state.

Every door (a socket event, a keypad press, a REST call) calls one of these operations
with the :class:`Actor` doing it. Each operation is one store transaction: it checks the
transition against the lifecycle table (core/lifecycle.py), writes, and records one
change per transition with :meth:`Tx.change`, which numbers it with the centre's next
``seq``, audits it and hands it to delivery after commit. A change carries what it
changed (the ticket's or counter's view and the summaries of the services whose counts
moved) and its route (the counters and services it touches), never whole views: which
device hears of it is decided at delivery, by the role table (core/roles.py).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import appointments, estimates, printing, rating, views
from . import dossiers as dossier_records
from . import models as m
from .acting import Actor, record
from .auth import counter_by_number
from .clock import business_date, iso, zone
from .errors import QueueError
from .hours import HoursError, OpeningHours, when_words
from .lifecycle import (
    AT_COUNTER,
    COUNTER_TRANSITIONS,
    NEW_TICKET,
    NO_SHOW_AFTER_S,
    TICKET_TRANSITIONS,
    WAITING,
    counter_guard,
    durations,
    ticket_guard,
)
from .ordering import CounterQueue, OrderingPolicy, PriorityWithFairness, counter_service_ids
from .priorities import PRIORITIES
from .raw import Raw
from .store import Store, Tx

__all__ = ["Actor", "QueueEngine", "PRIORITIES", "OUTCOMES"]

# Who may be served first: PRIORITIES (core/priorities.py); a service may accept only some.

# What a visit ended with, for the reports (dossiers received, results returned...).
OUTCOMES = ("received", "returned", "supplemented", "guided", "other")

# The engine operation of each clerk's action (core/lifecycle.py CLERK_ACTIONS), where
# its name differs: the /counter door and a keypad's keys both call these.
_OPERATION_OF = {"call": "call_ticket", "close": "close_counter"}

# Statements of the hot paths, built once: building and hashing a statement costs more
# than running it on SQLite.
_t, _c, _ns = m.tickets, m.counters, m.number_sequences
_SERVICE_BY_CODE = Raw(
    """SELECT s.id, s.code, s.name, s.prefix, s.start, s.avg_service_s, s.active, c.timezone,
              a.name, c.name, c.ticket_footer, s.name_en, s.opening_hours, s.priorities,
              c.closed_days
       FROM services s JOIN centres c ON c.id = s.centre_id
            JOIN agencies a ON a.id = s.agency_id
       WHERE s.centre_id = :centre_id AND s.code = :code"""
)
_NEXT_NUMBER = Raw(
    """UPDATE number_sequences SET last_number = last_number + 1
       WHERE centre_id = :centre_id AND prefix = :prefix AND business_date = :day
       RETURNING last_number"""
)
_INSERT_TICKET = Raw(
    """INSERT INTO tickets (centre_id, service_id, business_date, prefix, seq_no, number,
                           status, priority, public_key, issued_at, issued_by_device_id,
                           booked_for)
       VALUES (:centre_id, :service_id, :business_date, :prefix, :seq_no, :number,
               :status, :priority, :public_key, :issued_at, :issued_by_device_id,
               :booked_for)
       RETURNING id"""
)


class _Service(NamedTuple):
    id: int
    code: str
    name: str
    prefix: str
    start: int
    avg_service_s: float
    active: bool
    timezone: str
    agency: str | None
    centre_name: str
    ticket_footer: str | None
    name_en: str | None = None
    # JSON (text on SQLite): its own hours, the groups it accepts, the centre's closed days.
    opening_hours: object = None
    priorities: object = None
    closed_days: object = None


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def _check_service_takes(svc: _Service, priority: str | None, now) -> None:
    """A walk-in ticket of ``svc`` only within its own opening hours (when it has some)
    and only with a priority group it accepts."""
    words = (svc.name, svc.name_en or svc.name)
    accepted = _json(svc.priorities)
    if priority is not None and accepted is not None and priority not in accepted:
        raise QueueError(
            "bad_request",
            "priority_not_accepted",
            service=words,
            group=PRIORITIES[priority],
            allowed=tuple(", ".join(PRIORITIES[g][i] for g in accepted) for i in (0, 1)),
        )
    own = _json(svc.opening_hours)  # SQLAlchemy writes None as JSON's null
    if own is None:
        return
    try:
        hours = OpeningHours.parse(own, _json(svc.closed_days))
    except HoursError:
        return  # stored hours that no longer read (checked when written): as the centre's
    tz = zone(svc.timezone)
    if hours.is_open(now, tz):
        return
    opens = hours.next_open(now, tz)
    if opens is None:
        raise QueueError("conflict", "service_closed", service=words)
    raise QueueError("conflict", "service_closed_now", service=words, when=when_words(opens, tz))


def _service(conn: Connection, centre_id: int, code: str) -> _Service:
    row = _SERVICE_BY_CODE.first(conn, {"centre_id": centre_id, "code": code})
    if row is None:
        raise QueueError("not_found", "unknown_service", service=code)
    svc = _Service(*row)
    if not svc.active:
        raise QueueError("conflict", "service_inactive", service=code)
    return svc


_TICKET = views.TICKET_DETAIL.where(
    _t.c.id == sa.bindparam("ticket_id"), _t.c.centre_id == sa.bindparam("centre_id")
)
# A counter with its centre's time zone (the day a call belongs to).
_COUNTER = (
    sa.select(_c, m.centres.c.timezone)
    .join(m.centres, m.centres.c.id == _c.c.centre_id)
    .where(_c.c.id == sa.bindparam("counter_id"))
)
_STREAKS = Raw("UPDATE counters SET priority_streak = :p, appointment_streak = :a WHERE id = :id")


# A number may be left for a ticket this long after it was taken, at the kiosk that
# issued it (the citizen is still in front of it).
LEAVE_PHONE_WITHIN = timedelta(minutes=5)


def format_number(prefix: str, n: int) -> str:
    return f"{prefix}{n:03d}"


class QueueEngine:
    """Queue operations of every centre in one store: the only place that changes queue
    state. Each operation is one transaction; its transitions and their effects come from
    core/lifecycle.py's tables.

    store: where state lives.
    policy: which ticket ``call_next`` picks (default: priority with 1-in-4 fairness).
    rating_window_s: how long after finishing a visit may still be rated.
    print_deadline_s: how long a kiosk's print job may wait for its agent.
    no_show_after_s: how long after a call a no-show may be marked (core/lifecycle.py).
    """

    def __init__(
        self,
        store: Store,
        policy: OrderingPolicy | None = None,
        rating_window_s: int = 600,
        print_deadline_s: float = printing.PRINT_DEADLINE_S,
        no_show_after_s: float = NO_SHOW_AFTER_S,
    ):
        self.store = store
        self.print_deadline_s = print_deadline_s
        self.policy = policy or PriorityWithFairness()
        self.rating_window = timedelta(seconds=rating_window_s)
        self.no_show_after_s = no_show_after_s

    def _write(self, actor: Actor, request_id: str | None, fn, what: str):
        """One transaction; a request_id is remembered per actor *and* operation, so a
        client reusing one for another operation gets that operation done, not a replay."""
        return self.store.write(
            fn,
            centre_id=actor.centre_id,
            actor=actor.key,
            request_id=f"{what}:{request_id}" if request_id else None,
            urgent=actor.staff_id is not None,
            operation=what,
        )

    def _run(self, operation: str, actor: Actor, request_id: str | None, **fields) -> dict:
        """The operation ``operation`` (its ``_<operation>_tx`` method) in a transaction of
        its own."""
        in_tx = getattr(self, f"_{operation}_tx")
        return self._write(
            actor, request_id, lambda tx: in_tx(tx, actor, request_id, **fields), operation
        )

    def in_transaction(self, action: str, tx: Tx, actor: Actor, request_id, **fields) -> dict:
        """A clerk's action (core/lifecycle.py CLERK_ACTIONS) inside the caller's
        transaction: what a keypad press runs for the clerk on duty (core/keypads.py)."""
        operation = _OPERATION_OF.get(action, action)
        return getattr(self, f"_{operation}_tx")(tx, actor, request_id, **fields)

    # -- reads inside a transaction ---------------------------------------------------
    @staticmethod
    def _ticket(conn: Connection, actor: Actor, ticket_id: int) -> dict:
        row = conn.execute(_TICKET, {"ticket_id": ticket_id, "centre_id": actor.centre_id}).first()
        if row is None:
            raise QueueError("not_found", "unknown_ticket")
        return dict(row._mapping)

    def _at_counter(self, conn: Connection, actor: Actor, ticket_id: int) -> dict:
        """The actor's counter's current ticket ``ticket_id``."""
        ticket = self._ticket(conn, actor, ticket_id)
        if ticket["counter_id"] != actor.counter_id or ticket["status"] not in AT_COUNTER:
            raise QueueError("conflict", "ticket_not_here", number=ticket["number"])
        return ticket

    @staticmethod
    def _counter(conn: Connection, counter_id: int) -> dict:
        return dict(conn.execute(_COUNTER, {"counter_id": counter_id}).one()._mapping)

    def _move(self, tx: Tx, ticket: dict, operation: str, **values):
        """Move ``ticket`` by ``operation`` as its lifecycle table says: its new state, the
        time it stamps, the fields it clears, with ``values`` besides; and its service's
        waiting count moved as the table says. Returns the transition and the summary of
        the service when its count moved (else None)."""
        t = ticket_guard(operation, ticket["status"], ticket["number"])
        if t.waits_after:
            elapsed = (tx.now - ticket[t.waits_after]).total_seconds()
            if elapsed < self.no_show_after_s:
                raise QueueError(
                    "conflict",
                    f"{operation}_too_soon",
                    number=ticket["number"],
                    elapsed=int(elapsed),
                    seconds=round(self.no_show_after_s),
                )
        values = {
            "status": t.target,
            **({t.stamps: tx.now} if t.stamps else {}),
            **dict.fromkeys(t.clears),
            **values,
        }
        if t.stamps in ("called_at", "finished_at"):
            now = {**ticket, **values}
            values.update(
                durations(
                    now["status"],
                    now["issued_at"],
                    now["called_at"],
                    now["started_at"],
                    now["finished_at"],
                )
            )
        tx.conn.execute(sa.update(_t).where(_t.c.id == ticket["id"]).values(**values))
        ticket.update(values)
        if not t.waiting:
            return t, None
        estimates.count_waiting(
            tx.conn,
            ticket["service_id"],
            ticket["business_date"],
            t.waiting,
            ticket["priority"] is not None,
        )
        return t, estimates.summary_after(
            tx, ticket["service_id"], ticket["service_code"], ticket["business_date"]
        )

    def _ticket_change(
        self, tx, actor, request_id, ticket: dict, kind: str, *, body=None, **route
    ) -> dict:
        view = views.ticket_view(ticket, ticket["timezone"])
        record(
            tx,
            actor,
            kind,
            {"ticket": view, **(body or {})},
            request_id=request_id,
            ticket_id=ticket["id"],
            **route,
        )
        return view

    # -- kiosk ---------------------------------------------------------------------------
    def issue_ticket(
        self,
        actor: Actor,
        service: str,
        priority: str | None = None,
        request_id: str | None = None,
        public_base: str = "",
        lang: str = "vi",
    ) -> dict:
        """Give the next number of ``service`` (numbers restart each business day).

        At a kiosk with a printing agent the ticket gets a print job, addressed to that
        agent in the same change; ``public_base`` is the start of the status page's
        address printed in the ticket's QR code. A ticket taken in English (``lang``
        "en") has its status page open in English and prints its service in both."""
        if priority is not None and priority not in PRIORITIES:
            raise QueueError(
                "bad_request", "unknown_priority", value=priority, allowed=", ".join(PRIORITIES)
            )

        def op(tx: Tx) -> dict:
            return self._issue(tx, actor, service, priority, request_id, public_base, lang)

        return self._write(actor, request_id, op, "issue_ticket")

    # The hot path of the whole system (a kiosk per ~second per centre, bursts at opening):
    # a few prepared statements, no re-reading of what was just written.
    def _issue(
        self,
        tx: Tx,
        actor: Actor,
        service: str,
        priority: str | None,
        request_id: str | None,
        public_base: str,
        lang: str,
        booked_for=None,
        details: dict | None = None,
        walk_in: bool = True,
    ) -> dict:
        conn = tx.conn
        tx.lock_centre(actor.centre_id)
        svc = _service(conn, actor.centre_id, service)
        if walk_in:  # a booking's slot was within the service's hours, even a late one's
            _check_service_takes(svc, priority, tx.now)
        day = business_date(tx.now, svc.timezone)
        seq_no = self._next_number(conn, actor.centre_id, svc.prefix, day, svc.start)
        ticket = {
            "centre_id": actor.centre_id,
            "service_id": svc.id,
            "business_date": day,
            "prefix": svc.prefix,
            "seq_no": seq_no,
            "number": format_number(svc.prefix, seq_no),
            "status": NEW_TICKET,
            "priority": priority,
            "public_key": secrets.token_urlsafe(16),
            "issued_at": tx.now,
            "issued_by_device_id": actor.id if actor.kind == "device" else None,
            "booked_for": booked_for,
        }
        (ticket["id"],) = _INSERT_TICKET.one(conn, ticket)
        waiting, waiting_priority = estimates.count_waiting(
            conn, svc.id, day, TICKET_TRANSITIONS["issue"].waiting, priority is not None
        )
        # Everyone waiting is ahead of a new normal ticket; only priority ones of a
        # priority ticket (people_ahead's rule, without a query); an appointment's
        # by that rule's query.
        if booked_for is None:
            ahead = (waiting_priority if priority else waiting) - 1
        else:
            ahead = estimates.people_ahead(conn, SimpleNamespace(**ticket))
        serving = estimates.counters_serving_one(conn, svc.id)
        view = views.ticket_view(
            {
                **ticket,
                "service_code": svc.code,
                "service_name": svc.name,
                "called_at": None,
                "started_at": None,
                "counter_number": None,
                "target_number": None,
            },
            svc.timezone,
        )
        answer = {
            "ticket": view,
            "ahead": ahead,
            "estimated_wait_s": estimates.estimate_wait_s(ahead, svc.avg_service_s, *serving),
            "status_path": f"/t/{ticket['public_key']}" + ("?lang=en" if lang == "en" else ""),
            "print": None,
        }
        body = {"ticket": view}
        if actor.kind == "device":
            job = printing.print_job(
                tx,
                actor,
                _ticket_face(svc, ticket, answer, public_base, lang),
                ticket["id"],
                svc.timezone,
                self.print_deadline_s,
            )
            if job is not None:
                body["print"] = job
                answer["print"] = {"job": job["job"], "deadline": job["deadline"]}
        record(
            tx,
            actor,
            TICKET_TRANSITIONS["issue"].records,
            body,
            services=[svc.code],
            summaries=[estimates.summary(svc.code, waiting, svc.avg_service_s, serving)],
            request_id=request_id,
            ticket_id=ticket["id"],
            details=details,
        )
        return answer

    def leave_phone(self, actor: Actor, ticket_id: int, phone: str, request_id=None) -> dict:
        """The holder of a ticket just taken at this kiosk leaves a mobile number, to be
        told by SMS or Zalo when their turn is near (core/notices.py); erased when the
        ticket's day ends."""
        number = appointments.normalise_phone(phone)

        def op(tx: Tx) -> dict:
            tx.lock_centre(actor.centre_id)
            ticket = self._ticket(tx.conn, actor, ticket_id)
            if (
                ticket["issued_by_device_id"] != actor.id
                or ticket["status"] not in WAITING
                or tx.now - ticket["issued_at"] > LEAVE_PHONE_WITHIN
            ):
                raise QueueError("conflict", "phone_too_late", number=ticket["number"])
            tx.conn.execute(sa.update(_t).where(_t.c.id == ticket_id).values(phone=number))
            record(tx, actor, "phone_left", ticket_id=ticket_id, request_id=request_id)
            return {"ticket": {"id": ticket_id, "number": ticket["number"]}, "phone": number[-3:]}

        return self._write(actor, request_id, op, "leave_phone")

    def check_in(
        self,
        actor: Actor,
        code: str,
        request_id: str | None = None,
        public_base: str = "",
        lang: str = "vi",
    ) -> dict:
        """A booked citizen at a kiosk (core/appointments.py's window): a ticket called
        ahead of walk-ins from the slot's start; too early, a refusal saying when to come
        back; too late, a walk-in's ticket (``late``), said kindly by the kiosk."""

        def op(tx: Tx) -> dict:
            found = appointments.checkable(tx.conn, actor.centre_id, code, tx.now)
            booked_for = None if found.late else found.slot_start
            answer = self._issue(
                tx,
                actor,
                found.service,
                None,
                request_id,
                public_base,
                found.lang if lang == "vi" else lang,
                booked_for=booked_for,
                details={"appointment": code, "late": found.late},
                walk_in=False,
            )
            appointments.mark_checked_in(tx.conn, found, answer["ticket"]["id"], tx.now)
            answer["appointment"] = {
                "code": code,
                "slot_start": found.slot_start.isoformat(),
                "late": found.late,
            }
            return answer

        return self._write(actor, request_id, op, "check_in")

    @staticmethod
    def _next_number(conn: Connection, centre_id: int, prefix: str, day, start: int) -> int:
        row = _NEXT_NUMBER.first(conn, {"centre_id": centre_id, "prefix": prefix, "day": day})
        last = row[0] if row else None
        if last is None:
            last = start
            conn.execute(
                _ns.insert().values(
                    centre_id=centre_id, prefix=prefix, business_date=day, last_number=start
                )
            )
        return last

    # -- counter state -------------------------------------------------------------------
    def open_counter(self, actor: Actor) -> dict:
        """A clerk takes the counter: open it if closed, and name the clerk serving."""

        def op(tx: Tx) -> dict:
            tx.lock_centre(actor.centre_id)
            counter = self._counter(tx.conn, actor.counter_id)
            if counter["status"] != "closed" and counter["staff_id"] == actor.id:
                return {}
            t = COUNTER_TRANSITIONS["open"]
            if counter["status"] == "closed":
                t = counter_guard("open", counter["status"])
                self._counter_change(tx, actor, None, t.records, counter, status=t.target)
            else:  # taken over as it is (open or paused): the same change, its state kept
                self._counter_change(tx, actor, None, t.records, counter)
            return {}

        return self._write(actor, None, op, "open_counter")

    def _counter_change(
        self, tx: Tx, actor: Actor, request_id, kind: str, counter, details=None, **values
    ):
        conn = tx.conn
        values.setdefault("staff_id", actor.staff_id or counter["staff_id"])
        conn.execute(sa.update(_c).where(_c.c.id == counter["id"]).values(**values))
        counter = {**counter, **values}
        # Opening or closing a counter changes the waits of the services it serves.
        day = business_date(tx.now, views.centre(conn, actor.centre_id).timezone)
        rows = views.services(conn, actor.centre_id, counter_service_ids(conn, [counter["id"]]))
        name = actor.staff_name if actor.staff_id and counter["status"] != "closed" else None
        record(
            tx,
            actor,
            kind,
            {
                "counter": views.counter_view(counter),
                "staff": {"full_name": name} if name else None,
            },
            counters=[counter["id"]],
            services=[s.code for s in rows],
            summaries=[estimates.summary_after(tx, s.id, s.code, day) for s in rows],
            request_id=request_id,
            details=details,
        )
        return counter

    def _set_counter_tx(self, tx: Tx, actor: Actor, request_id, operation: str, **values):
        tx.lock_centre(actor.centre_id)
        counter = self._counter(tx.conn, actor.counter_id)
        current = views.current_ticket(tx.conn, counter["id"])
        t = counter_guard(operation, counter["status"], current)
        counter = self._counter_change(
            tx, actor, request_id, t.records, counter, status=t.target, **values
        )
        if t.releases_sent:
            self._release_sent(tx, actor, counter)
        return {"counter": views.counter_view(counter)}

    def _release_sent(self, tx: Tx, actor: Actor, counter: dict) -> None:
        """Tickets sent to a closing counter and still waiting go back to their service's
        queue, keeping their place: each is a ``transferred`` change that names no counter
        (the counters serving it now list it)."""
        sent = tx.conn.execute(
            views.TICKET_DETAIL.where(
                _t.c.target_counter_id == counter["id"], _t.c.status.in_(WAITING)
            ).order_by(_t.c.id)
        ).all()
        for row in sent:
            ticket = dict(row._mapping)
            tx.conn.execute(
                sa.update(_t).where(_t.c.id == ticket["id"]).values(target_counter_id=None)
            )
            ticket.update(target_counter_id=None, target_number=None)
            self._ticket_change(
                tx,
                actor,
                None,
                ticket,
                TICKET_TRANSITIONS["transfer"].records,
                counters=[counter["id"]],
                services=[ticket["service_code"]],
                details={"released_from_counter": counter["number"]},
            )

    def pause(self, actor: Actor, reason: str, request_id: str | None = None) -> dict:
        return self._run("pause", actor, request_id, reason=reason)

    def _pause_tx(self, tx: Tx, actor: Actor, request_id, reason: str) -> dict:
        return self._set_counter_tx(tx, actor, request_id, "pause", pause_reason=reason)

    def resume(self, actor: Actor, request_id: str | None = None) -> dict:
        return self._run("resume", actor, request_id)

    def _resume_tx(self, tx: Tx, actor: Actor, request_id) -> dict:
        return self._set_counter_tx(tx, actor, request_id, "resume", pause_reason=None)

    def close_counter(self, actor: Actor, request_id: str | None = None) -> dict:
        return self._run("close_counter", actor, request_id)

    def _close_counter_tx(self, tx: Tx, actor: Actor, request_id) -> dict:
        return self._set_counter_tx(
            tx, actor, request_id, "close", pause_reason=None, staff_id=None
        )

    # -- calling -------------------------------------------------------------------------
    def _ready_to_call(self, tx: Tx, actor: Actor, request_id) -> dict:
        """Check the counter can call (core/lifecycle.py: open, and no ticket still
        called); a ticket still being served is finished first."""
        counter = self._counter(tx.conn, actor.counter_id)
        current = views.current_ticket(tx.conn, counter["id"])
        t = counter_guard("call", counter["status"], current)
        if current is not None and t.finishes_current:
            self._finish(tx, actor, request_id, dict(current._mapping), [], None)
        return counter

    def call_next(self, actor: Actor, request_id: str | None = None) -> dict:
        """Call the next ticket the ordering policy picks for this counter."""
        return self._run("call_next", actor, request_id)

    def _call_next_tx(self, tx: Tx, actor: Actor, request_id) -> dict:
        tx.lock_centre(actor.centre_id)
        counter = self._ready_to_call(tx, actor, request_id)
        queue = CounterQueue(tx.conn, counter, business_date(tx.now, counter["timezone"]), tx.now)
        chosen = self.policy.choose(queue)
        if chosen is None:
            raise QueueError("queue_empty", "queue_empty")
        ticket = self._ticket(tx.conn, actor, chosen.id)
        return {"ticket": self._call(tx, actor, request_id, counter, ticket, "call_next")}

    def call_ticket(self, actor: Actor, ticket_id: int, request_id: str | None = None) -> dict:
        """Call a given waiting ticket out of order (audited as such)."""
        return self._run("call_ticket", actor, request_id, ticket_id=ticket_id)

    def _call_ticket_tx(self, tx: Tx, actor: Actor, request_id, ticket_id: int) -> dict:
        conn = tx.conn
        tx.lock_centre(actor.centre_id)
        ticket = self._ticket(conn, actor, ticket_id)
        ticket_guard("call", ticket["status"], ticket["number"])
        if ticket["business_date"] != business_date(tx.now, ticket["timezone"]):
            raise QueueError("conflict", "ticket_expired", number=ticket["number"])
        targeted_here = ticket["target_counter_id"] == actor.counter_id
        if not targeted_here and (
            ticket["target_counter_id"] is not None
            or ticket["service_id"] not in counter_service_ids(conn, [actor.counter_id])
        ):
            raise QueueError("conflict", "service_not_at_counter", number=ticket["number"])
        counter = self._ready_to_call(tx, actor, request_id)
        return {"ticket": self._call(tx, actor, request_id, counter, ticket, "call")}

    def _call(self, tx: Tx, actor: Actor, request_id, counter: dict, ticket: dict, how: str):
        conn = tx.conn
        streak = counter["priority_streak"] + 1 if ticket["priority"] else 0
        appointments_run = counter["appointment_streak"]
        if not ticket["priority"]:  # an appointment in its slot extends the run, others end it
            due = ticket["booked_for"] is not None and ticket["booked_for"] <= tx.now
            appointments_run = appointments_run + 1 if due else 0
        _STREAKS.run(conn, {"id": counter["id"], "p": streak, "a": appointments_run})
        sent_to = ticket["target_counter_id"]
        t, summary = self._move(
            tx,
            ticket,
            "call",
            counter_id=counter["id"],
            target_counter_id=None,
            staff_id=actor.staff_id,
            call_count=ticket["call_count"] + 1,
        )
        ticket.update(counter_number=counter["number"], target_number=None)
        return self._announce(
            tx, actor, request_id, counter, ticket, how, t.records, [sent_to], [summary]
        )

    def _announce(
        self, tx, actor, request_id, counter, ticket, how, kind, also=(), summaries=()
    ) -> dict:
        view = views.ticket_view(ticket, ticket["timezone"])
        recall = kind == TICKET_TRANSITIONS["recall"].records
        record(
            tx,
            actor,
            kind,
            {
                "ticket": view,
                "counter": {"number": counter["number"], "name": counter["name"]},
                "recall": recall,
                "at": iso(tx.now, ticket["timezone"]),
            },
            counters=[counter["id"], *also],
            services=[] if recall else [ticket["service_code"]],
            summaries=summaries,
            request_id=request_id,
            ticket_id=ticket["id"],
            details={"how": how, "call_count": ticket["call_count"]},
        )
        return view

    def recall(self, actor: Actor, ticket_id: int, request_id: str | None = None) -> dict:
        """Announce the current ticket again."""
        return self._run("recall", actor, request_id, ticket_id=ticket_id)

    def _recall_tx(self, tx: Tx, actor: Actor, request_id, ticket_id: int) -> dict:
        tx.lock_centre(actor.centre_id)
        ticket = self._at_counter(tx.conn, actor, ticket_id)
        t, _ = self._move(tx, ticket, "recall", call_count=ticket["call_count"] + 1)
        counter = self._counter(tx.conn, actor.counter_id)
        return {
            "ticket": self._announce(tx, actor, request_id, counter, ticket, "recall", t.records)
        }

    # -- serving -------------------------------------------------------------------------
    def start(self, actor: Actor, ticket_id: int, request_id: str | None = None) -> dict:
        """The citizen has arrived at the counter: serving starts."""
        return self._run("start", actor, request_id, ticket_id=ticket_id)

    def no_show(self, actor: Actor, ticket_id: int, request_id: str | None = None) -> dict:
        """Nobody came for a called ticket."""
        return self._run("no_show", actor, request_id, ticket_id=ticket_id)

    def _settle_tx(self, tx: Tx, actor: Actor, request_id, operation: str, ticket_id) -> dict:
        """A ticket called to this counter is answered (started, or nobody came)."""
        tx.lock_centre(actor.centre_id)
        ticket = self._at_counter(tx.conn, actor, ticket_id)
        t, _ = self._move(tx, ticket, operation)
        view = self._ticket_change(
            tx, actor, request_id, ticket, t.records, counters=[actor.counter_id]
        )
        return {"ticket": view}

    def _start_tx(self, tx: Tx, actor: Actor, request_id, ticket_id: int) -> dict:
        return self._settle_tx(tx, actor, request_id, "start", ticket_id)

    def _no_show_tx(self, tx: Tx, actor: Actor, request_id, ticket_id: int) -> dict:
        return self._settle_tx(tx, actor, request_id, "no_show", ticket_id)

    def finish(
        self,
        actor: Actor,
        ticket_id: int,
        dossiers: list[str] | None = None,
        outcome: str | None = None,
        request_id: str | None = None,
    ) -> dict:
        """End the visit, linking the dossiers (hồ sơ) it received or returned."""
        dossiers = dossier_records.check_codes(dossiers)
        if outcome is not None and outcome not in OUTCOMES:
            raise QueueError(
                "bad_request",
                "bad_value",
                field="outcome",
                why=("chọn: " + ", ".join(OUTCOMES), "choose: " + ", ".join(OUTCOMES)),
            )

        return self._run(
            "finish", actor, request_id, ticket_id=ticket_id, dossiers=dossiers, outcome=outcome
        )

    def _finish_tx(self, tx: Tx, actor: Actor, request_id, ticket_id, dossiers=(), outcome=None):
        tx.lock_centre(actor.centre_id)
        ticket = self._at_counter(tx.conn, actor, ticket_id)
        return {"ticket": self._finish(tx, actor, request_id, ticket, list(dossiers), outcome)}

    def _finish(self, tx, actor, request_id, ticket: dict, dossiers, outcome) -> dict:
        """Finish the visit; the tablet at its counter asks for a rating on hearing it."""
        conn = tx.conn
        started = ticket["started_at"] or ticket["called_at"]
        conn.execute(
            estimates.service_time_average(ticket["service_id"], (tx.now - started).total_seconds())
        )
        for code in dossiers:
            conn.execute(m.ticket_dossiers.insert().values(ticket_id=ticket["id"], code=code))
            dossier_records.record_visit(
                conn, actor.centre_id, code, outcome, tx.now, ticket["service_name"]
            )
        t, _ = self._move(tx, ticket, "finish", outcome=outcome)
        # A new average moves the service's estimated wait.
        summary = estimates.summary_after(
            tx, ticket["service_id"], ticket["service_code"], ticket["business_date"]
        )
        if actor.staff_id and ticket["staff_id"] in (None, actor.staff_id):
            served_by = actor.staff_name
        else:
            served_by = views.staff_name(conn, ticket["staff_id"])
        return self._ticket_change(
            tx,
            actor,
            request_id,
            ticket,
            t.records,
            body={"staff": {"full_name": served_by} if served_by else None},
            counters=[ticket["counter_id"]],
            summaries=[summary],
            details={"dossiers": dossiers, "outcome": outcome},
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

        return self._run(
            "transfer", actor, request_id, ticket_id=ticket_id, service=service, counter=counter
        )

    def _transfer_tx(self, tx: Tx, actor: Actor, request_id, ticket_id, service, counter):
        conn = tx.conn
        tx.lock_centre(actor.centre_id)
        ticket = self._at_counter(conn, actor, ticket_id)
        values, details, target_id = self._destination(
            conn, actor, ticket, service, counter, actor.counter_id
        )
        t, summary = self._move(tx, ticket, "transfer", **values)
        view = self._ticket_change(
            tx,
            actor,
            request_id,
            ticket,
            t.records,
            counters=[actor.counter_id, target_id],
            services=[ticket["service_code"]],
            summaries=[summary],
            details=details,
        )
        return {"ticket": view}

    @staticmethod
    def _destination(conn, actor: Actor, ticket: dict, service, counter, same_counter):
        """Where a clerk's transfer or a manager's move sends ``ticket``: to a service
        (refused when it is the ticket's own and the ticket is in that queue) or to an open
        counter (refused when it is ``same_counter``, the one it is at or sent to). Updates
        the ticket's shown fields; returns its new values, the audit's details and the
        counter sent to (None for a service)."""
        if service is not None:
            svc = _service(conn, actor.centre_id, service)
            if svc.id == ticket["service_id"] and ticket["target_counter_id"] is None:
                raise QueueError("conflict", "transfer_same", number=ticket["number"])
            ticket.update(
                service_code=svc.code,
                service_name=svc.name,
                avg_service_s=svc.avg_service_s,
                target_number=None,
            )
            values = {"service_id": svc.id, "target_counter_id": None}
            details = {"to_service": service}
            # A service that does not take the ticket's priority group (core/priorities.py)
            # queues it as a walk-in's, and the audit says so.
            accepted = _json(svc.priorities)
            if ticket["priority"] is not None and accepted is not None:
                if ticket["priority"] not in accepted:
                    details["priority_dropped"] = ticket["priority"]
                    values["priority"] = None
            return values, details, None
        target = counter_by_number(conn, actor.centre_id, counter)
        if target.id == same_counter:
            raise QueueError("conflict", "transfer_same", number=ticket["number"])
        if target.status == "closed":
            raise QueueError("conflict", "transfer_counter_closed", number=target.number)
        ticket.update(target_number=target.number)
        return {"target_counter_id": target.id}, {"to_counter": counter}, target.id

    # -- a manager's, from the monitor ----------------------------------------------------
    def cancel_ticket(self, actor: Actor, ticket_id: int, request_id: str | None = None) -> dict:
        """Take a waiting ticket out of its queue (the citizen left, a duplicate)."""
        return self._run("cancel_ticket", actor, request_id, ticket_id=ticket_id)

    def _cancel_ticket_tx(self, tx: Tx, actor: Actor, request_id, ticket_id: int) -> dict:
        tx.lock_centre(actor.centre_id)
        ticket = self._ticket(tx.conn, actor, ticket_id)
        target_id = ticket["target_counter_id"]
        t, summary = self._move(tx, ticket, "cancel")
        view = self._ticket_change(
            tx,
            actor,
            request_id,
            ticket,
            t.records,
            counters=[target_id],
            services=[ticket["service_code"]],
            summaries=[summary],
        )
        return {"ticket": view}

    def move_ticket(
        self,
        actor: Actor,
        ticket_id: int,
        service: str | None = None,
        counter: int | None = None,
        request_id: str | None = None,
    ) -> dict:
        """Send a waiting ticket to another service or counter; it keeps its place."""
        if (service is None) == (counter is None):
            raise QueueError("bad_request", "transfer_target")
        return self._run(
            "move_ticket", actor, request_id, ticket_id=ticket_id, service=service, counter=counter
        )

    def _move_ticket_tx(self, tx: Tx, actor: Actor, request_id, ticket_id, service, counter):
        conn = tx.conn
        tx.lock_centre(actor.centre_id)
        ticket = self._ticket(conn, actor, ticket_id)
        ticket_guard("move", ticket["status"], ticket["number"])
        was_sent_to = ticket["target_counter_id"]
        old = (ticket["service_id"], ticket["service_code"], ticket["priority"])
        values, details, _ = self._destination(conn, actor, ticket, service, counter, was_sent_to)
        t, _ = self._move(tx, ticket, "move", **values)
        summaries = []
        if t.requeues and ticket["service_id"] != old[0]:
            # Out of the old service's queue, into the new one's, its issue time kept.
            day = ticket["business_date"]
            for service_id, code, priority, delta in (
                (*old, -1),
                (ticket["service_id"], ticket["service_code"], ticket["priority"], +1),
            ):
                estimates.count_waiting(conn, service_id, day, delta, priority is not None)
                summaries.append(estimates.summary_after(tx, service_id, code, day))
        view = self._ticket_change(
            tx,
            actor,
            request_id,
            ticket,
            t.records,
            counters=[was_sent_to, ticket["target_counter_id"]],
            services=[old[1], ticket["service_code"]],
            summaries=summaries,
            details=details,
        )
        return {"ticket": view}

    def close_left_counter(self, actor: Actor, counter: int, request_id: str | None = None):
        """Close a counter left open (its clerk gone): the ticket at it, if any, and those
        sent to it go back to their service's queue, keeping their place."""
        return self._run("close_left_counter", actor, request_id, counter=counter)

    def _close_left_counter_tx(self, tx: Tx, actor: Actor, request_id, counter: int) -> dict:
        tx.lock_centre(actor.centre_id)
        row = counter_by_number(tx.conn, actor.centre_id, counter)
        row = self._counter(tx.conn, row.id)
        actor = replace(actor, counter_id=row["id"])  # the audit names the counter closed
        current = views.current_ticket(tx.conn, row["id"])
        t = counter_guard("close_left", row["status"], current)
        if current is not None and t.returns_current:
            ticket = dict(current._mapping)
            moved, summary = self._move(tx, ticket, "transfer", target_counter_id=None)
            ticket.update(target_number=None)
            self._ticket_change(
                tx,
                actor,
                None,
                ticket,
                moved.records,
                counters=[row["id"]],
                services=[ticket["service_code"]],
                summaries=[summary],
                details={"returned_from_counter": row["number"]},
            )
        row = self._counter_change(
            tx,
            actor,
            request_id,
            t.records,
            row,
            status=t.target,
            pause_reason=None,
            staff_id=None,
            details={"left_by": row["staff_id"]},
        )
        if t.releases_sent:
            self._release_sent(tx, actor, row)
        return {"counter": views.counter_view(row)}

    def acknowledge_alert(self, actor: Actor, device: int, request_id: str | None = None):
        """A manager has seen a device's alert (and sees to it): who and when, recorded as
        a ``device_alert`` change with ``acknowledged``; the alert stays until it clears."""
        return self._run("acknowledge_alert", actor, request_id, device=device)

    def _acknowledge_alert_tx(self, tx: Tx, actor: Actor, request_id, device: int) -> dict:
        tx.lock_centre(actor.centre_id)
        d = m.devices
        row = tx.conn.execute(
            sa.select(d.c.id, d.c.name, d.c.kind, d.c.alert, d.c.alert_since).where(
                d.c.id == device, d.c.centre_id == actor.centre_id
            )
        ).first()
        if row is None:
            raise QueueError("not_found", "unknown_device")
        if row.alert is None:
            raise QueueError("conflict", "no_device_alert", name=row.name)
        tx.conn.execute(
            d.update()
            .where(d.c.id == row.id)
            .values(alert_acked_by=actor.id, alert_acked_at=tx.now)
        )
        tz = views.centre(tx.conn, actor.centre_id).timezone
        view = {
            **views.alert_view(row, row.alert, row.alert_since, tz),
            "acknowledged": {"by": actor.name, "at": iso(tx.now, tz)},
        }
        record(tx, actor, "device_alert", view, request_id=request_id)
        return view

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
        """Record the citizen's rating: once per visit, soon after it, from the tablet at
        the counter that served it or from the ticket's own status page (a ``ticket``
        actor: its key is the credential). Reasons only with the low level, from those
        the centre offers; a short comment, as plain text. Never changed afterwards."""
        comment = rating.check_comment(comment)

        def op(tx: Tx) -> dict:
            conn = tx.conn
            tx.lock_centre(actor.centre_id)
            ticket = self._ticket(conn, actor, ticket_id)
            number = ticket["number"]
            already = conn.execute(
                sa.select(m.ratings.c.id).where(m.ratings.c.ticket_id == ticket["id"])
            ).first()
            if already is not None:
                raise QueueError("already_rated", "already_rated")
            if ticket["status"] != "done":
                raise QueueError("forbidden", "rating_not_done", number=number)
            if actor.kind == "ticket":
                if actor.id != ticket["id"]:
                    raise QueueError("forbidden", "rating_other_ticket")
            elif ticket["counter_id"] != actor.counter_id:
                raise QueueError("forbidden", "rating_wrong_counter", number=number)
            if tx.now - ticket["finished_at"] > self.rating_window:
                raise QueueError("forbidden", "rating_expired", number=number)
            offered = rating.offered_reasons(
                conn.execute(
                    sa.select(m.centres.c.rating_reasons).where(
                        m.centres.c.id == ticket["centre_id"]
                    )
                ).scalar()
            )
            picked = rating.check_reasons(reasons, score, offered)
            via = "status_page" if actor.kind == "ticket" else "tablet"
            conn.execute(
                m.ratings.insert().values(
                    ticket_id=ticket["id"],
                    centre_id=ticket["centre_id"],
                    service_id=ticket["service_id"],
                    counter_id=ticket["counter_id"],
                    staff_id=ticket["staff_id"],
                    device_id=actor.id if actor.kind == "device" else None,
                    score=score,
                    reasons=picked,
                    comment=comment,
                    rated_at=tx.now,
                )
            )
            record(
                tx,
                actor,
                "rated",
                {
                    "ticket": {"id": ticket["id"], "number": number},
                    "counter": {"number": ticket["counter_number"]},
                },
                counters=[ticket["counter_id"]],
                request_id=request_id,
                ticket_id=ticket["id"],
                details={
                    "score": score,
                    "reasons": picked,
                    "comment": comment is not None,
                    "via": via,
                },
            )
            return {}

        return self._write(actor, request_id, op, "rate")


def _ticket_face(svc: _Service, ticket: dict, answer: dict, base: str, lang: str = "vi") -> dict:
    """What a printed ticket shows (hardware/ticket.py's TicketFace); taken in English
    (``lang``), it gives the service's English name too."""
    face = {
        "centre": svc.centre_name,
        "number": ticket["number"],
        "service": svc.name,
        "agency": svc.agency,
        "issued_at": answer["ticket"]["issued_at"],
        "timezone": svc.timezone,
        "ahead": answer["ahead"],
        "estimated_wait_s": answer["estimated_wait_s"],
        "status_url": base.rstrip("/") + answer["status_path"],
        "priority": PRIORITIES[ticket["priority"]][0] if ticket["priority"] else None,
        "footer": svc.ticket_footer or "",
    }
    if lang == "en" and svc.name_en:
        face["service_en"] = svc.name_en
    if answer["ticket"]["appointment"]:  # only when set: an older agent knows no such key
        face["appointment"] = answer["ticket"]["appointment"][11:16]
    return face
