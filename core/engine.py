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

import re
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import dossiers as dossier_records
from . import estimates, rating, views
from . import models as m
from .auth import counter_by_number, device_counter_ids
from .clock import business_date, iso, zone
from .errors import QueueError
from .lifecycle import AT_COUNTER, NEW_TICKET, counter_guard, ticket_guard
from .ordering import CounterQueue, OrderingPolicy, PriorityWithFairness, counter_service_ids
from .raw import JSONValue, Raw
from .roles import change_record
from .store import Store, Tx

# Who may be served first (Vietnamese law gives priority to these groups).
PRIORITIES = {
    "elderly": ("Người cao tuổi", "Elderly"),
    "disabled": ("Người khuyết tật", "Person with a disability"),
    "pregnant": ("Phụ nữ mang thai", "Pregnant woman"),
    "infant": ("Người đi cùng trẻ nhỏ", "With a small child"),
    "merit": ("Người có công với cách mạng", "Person of merit"),
}

# Why a print job did not print (hardware/printer.py's PrintError codes, and the agent's):
# expired: not started before its deadline (the citizen has gone); interrupted: the agent
# stopped during the job, so whether it printed is unknown (it is never printed again).
PRINT_ERRORS = (
    "unreachable",
    "offline",
    "out_of_paper",
    "io_error",
    "unsupported",
    "no_printer",
    "expired",
    "interrupted",
)
PRINT_DEADLINE_S = 20

# What a print result says about the kiosk's printer, for staff: the device's alert.
DEVICE_ALERTS = {
    "out_of_paper": "out_of_paper",
    "offline": "printer_offline",
    "unreachable": "printer_unreachable",
    "expired": "print_late",
}
PRINT_FAILED = "print_failed"  # any other reason a ticket did not print


def _alert_after(printed: bool, error: str | None, printer: dict | None) -> str | None:
    if printed:
        return "paper_near_end" if printer and printer["paper"] == "near_end" else None
    return DEVICE_ALERTS.get(error, PRINT_FAILED)


PAPER_STATES = ("ok", "near_end", "out", "unknown")


def _printer_status(given: dict | None) -> dict | None:
    """A printer status as an agent reports it, kept to what is understood."""
    if given is None:
        return None
    online, paper = given.get("online"), given.get("paper", "unknown")
    if online not in (True, False, None) or paper not in PAPER_STATES:
        raise QueueError(
            "bad_request",
            "bad_value",
            field="printer",
            why="online: true/false/null, paper: " + "/".join(PAPER_STATES),
        )
    return {"online": online, "paper": paper}


# What a device may do at a counter for its clerk on duty (an agent's call keypad): the
# /counter events of the same names, on the counter's current ticket where they need one.
COUNTER_ACTIONS = ("call_next", "recall", "start", "finish", "no_show", "pause", "resume")
TICKET_ACTIONS = ("recall", "start", "finish", "no_show")
KEYPAD_PAUSE_REASON = "Tạm dừng từ bàn phím gọi số"

# What a visit ended with, for the reports (dossiers received, results returned...).
OUTCOMES = ("received", "returned", "supplemented", "guided", "other")

DOSSIER_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_/]{2,63}$")

# Statements of the hot paths, built once: building and hashing a statement costs more
# than running it on SQLite.
_t, _c, _ns = m.tickets, m.counters, m.number_sequences
_SERVICE_BY_CODE = Raw(
    """SELECT s.id, s.code, s.name, s.prefix, s.start, s.avg_service_s, s.active, c.timezone,
              s.agency, c.name, c.ticket_footer
       FROM services s JOIN centres c ON c.id = s.centre_id
       WHERE s.centre_id = :centre_id AND s.code = :code"""
)
_NEXT_NUMBER = Raw(
    """UPDATE number_sequences SET last_number = last_number + 1
       WHERE centre_id = :centre_id AND prefix = :prefix AND business_date = :day
       RETURNING last_number"""
)
_PRINTED_BY = Raw("SELECT printed_by FROM devices WHERE id = :id")
_INSERT_PRINT_JOB = Raw(
    """INSERT INTO print_jobs (ticket_id, kiosk_id, agent_id, created_at, deadline, state,
                              ticket_face)
       VALUES (:ticket_id, :kiosk_id, :agent_id, :created_at, :deadline, 'pending', :face)
       RETURNING id"""
)
_INSERT_TICKET = Raw(
    """INSERT INTO tickets (centre_id, service_id, business_date, prefix, seq_no, number,
                           status, priority, public_key, issued_at, issued_by_device_id)
       VALUES (:centre_id, :service_id, :business_date, :prefix, :seq_no, :number,
               :status, :priority, :public_key, :issued_at, :issued_by_device_id)
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
_COUNTER = sa.select(_c).where(_c.c.id == sa.bindparam("counter_id"))


def format_number(prefix: str, n: int) -> str:
    return f"{prefix}{n:03d}"


@dataclass(frozen=True)
class Actor:
    """Who is acting: a device (kiosk, display, rating, agent) or a staff member."""

    kind: str  # "device" | "staff"
    id: int
    centre_id: int
    role: str  # device kind, or staff role
    counter_id: int | None = None  # the counter a clerk operates / a tablet stands at
    name: str = ""
    # A device acting for the counter's clerk on duty (an agent's call keypad): the clerk
    # the visit is served by. The audit's actor stays the device; its details name them.
    clerk_id: int | None = None
    clerk_name: str = ""

    @classmethod
    def staff(cls, principal, role: str, counter) -> Actor:
        """A staff member (a core.permissions.Principal) acting at ``counter`` (a row)."""
        return cls(
            "staff", principal.staff_id, counter.centre_id, role, counter.id, principal.full_name
        )

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def staff_id(self) -> int | None:
        """The clerk doing it: the staff member acting, or the one a device acts for."""
        return self.id if self.kind == "staff" else self.clerk_id

    @property
    def staff_name(self) -> str:
        return self.name if self.kind == "staff" else self.clerk_name


def record(
    tx: Tx,
    actor: Actor,
    action: str,
    body: dict,
    *,
    counters=(),
    services=(),
    summaries=(),
    request_id: str | None = None,
    ticket_id: int | None = None,
    details: dict | None = None,
) -> int:
    """Record one change of the actor's centre. ``counters`` (ids) and ``services``
    (codes) are what it touches, for routing; ``summaries`` the services whose counts or
    waits it moved. A device acting for a clerk is the audit's actor; the details name
    the clerk (``on_behalf_of``)."""
    if actor.kind != "staff" and actor.clerk_id is not None:
        details = {
            **(details or {}),
            "on_behalf_of": {"staff": actor.clerk_id, "full_name": actor.clerk_name},
        }
    return tx.change(
        actor.centre_id,
        action,
        actor.key,
        change=change_record(
            action, body, counters=counters, services=services, summaries=summaries
        ),
        request_id=request_id,
        ticket_id=ticket_id,
        counter_id=actor.counter_id,
        details=details,
    )


class QueueEngine:
    """Queue operations of every centre in one store.

    store: where state lives; every operation here is one transaction in it.
    policy: which ticket ``call_next`` picks (default: priority with 1-in-4 fairness).
    rating_window_s: how long after finishing a visit may still be rated.
    """

    def __init__(
        self,
        store: Store,
        policy: OrderingPolicy | None = None,
        rating_window_s: int = 600,
        print_deadline_s: float = PRINT_DEADLINE_S,
    ):
        self.store = store
        self.print_deadline = timedelta(seconds=print_deadline_s)
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
            urgent=actor.staff_id is not None,
        )

    # -- reads inside a transaction ---------------------------------------------------
    @staticmethod
    def _ticket(conn: Connection, actor: Actor, ticket_id: int) -> dict:
        row = conn.execute(_TICKET, {"ticket_id": ticket_id, "centre_id": actor.centre_id}).first()
        if row is None:
            raise QueueError("not_found", "unknown_ticket")
        return dict(row._mapping)

    def _at_counter(self, conn: Connection, actor: Actor, ticket_id: int, operation: str):
        """The actor's counter's current ticket, checked for ``operation``; with the
        ticket's new status."""
        ticket = self._ticket(conn, actor, ticket_id)
        if ticket["counter_id"] != actor.counter_id or ticket["status"] not in AT_COUNTER:
            raise QueueError("conflict", "ticket_not_here", number=ticket["number"])
        return ticket, ticket_guard(operation, ticket["status"], ticket["number"])

    @staticmethod
    def _counter(conn: Connection, counter_id: int) -> dict:
        return dict(conn.execute(_COUNTER, {"counter_id": counter_id}).one()._mapping)

    @staticmethod
    def _summary(conn: Connection, service_id: int, code: str, avg: float, waiting: int):
        serving = estimates.counters_serving_one(conn, service_id)
        return estimates.summary(code, waiting, avg, serving)

    def _update_ticket(self, conn: Connection, ticket: dict, **values) -> dict:
        conn.execute(sa.update(_t).where(_t.c.id == ticket["id"]).values(**values))
        ticket.update(values)
        return ticket

    # -- kiosk ---------------------------------------------------------------------------
    def issue_ticket(
        self,
        actor: Actor,
        service: str,
        priority: str | None = None,
        request_id: str | None = None,
        public_base: str = "",
    ) -> dict:
        """Give the next number of ``service`` (numbers restart each business day).

        At a kiosk with a printing agent the ticket gets a print job, addressed to that
        agent in the same change; ``public_base`` is the start of the status page's
        address printed in the ticket's QR code."""
        if priority is not None and priority not in PRIORITIES:
            raise QueueError(
                "bad_request", "unknown_priority", value=priority, allowed=", ".join(PRIORITIES)
            )

        # The hot path of the whole system (a kiosk per ~second per centre, bursts at
        # opening): a few prepared statements, no re-reading of what was just written.
        def op(tx: Tx) -> dict:
            conn = tx.conn
            tx.lock_centre(actor.centre_id)
            svc = _service(conn, actor.centre_id, service)
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
            }
            (ticket["id"],) = _INSERT_TICKET.one(conn, ticket)
            waiting, waiting_priority = estimates.count_waiting(
                conn, svc.id, day, +1, priority is not None
            )
            # Everyone waiting is ahead of a new normal ticket; only priority ones of a
            # priority ticket (people_ahead's rule, without a query).
            ahead = (waiting_priority if priority else waiting) - 1
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
                "status_path": f"/t/{ticket['public_key']}",
                "print": None,
            }
            body = {"ticket": view}
            if actor.kind == "device":
                job = self._print_job(tx, actor, svc, ticket, answer, public_base)
                if job is not None:
                    body["print"] = job
                    answer["print"] = {"job": job["job"], "deadline": job["deadline"]}
            record(
                tx,
                actor,
                "issued",
                body,
                services=[svc.code],
                summaries=[estimates.summary(svc.code, waiting, svc.avg_service_s, serving)],
                request_id=request_id,
                ticket_id=ticket["id"],
            )
            return answer

        return self._write(actor, request_id, op, "issue_ticket")

    def _print_job(self, tx: Tx, actor: Actor, svc: _Service, ticket: dict, answer, base):
        """The print job of a ticket issued at a kiosk that has a printing agent (None
        without one): what the agent prints (hardware/ticket.py's TicketFace) and by when."""
        agent = _PRINTED_BY.first(tx.conn, {"id": actor.id})
        if agent is None or agent[0] is None:
            return None
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
        deadline = tx.now + self.print_deadline
        (job_id,) = _INSERT_PRINT_JOB.one(
            tx.conn,
            {
                "ticket_id": ticket["id"],
                "kiosk_id": actor.id,
                "agent_id": agent[0],
                "created_at": tx.now,
                "deadline": deadline,
                "face": JSONValue(face),
            },
        )
        return {
            "job": job_id,
            "agent": agent[0],
            "kiosk": actor.id,
            "deadline": iso(deadline, svc.timezone),
            "face": face,
        }

    def report_print(
        self,
        actor: Actor,
        job: int,
        printed: bool,
        error: str | None = None,
        printer: dict | None = None,
        request_id: str | None = None,
    ) -> dict:
        """An agent's result for one of its print jobs, reported once: printed, failed
        (``error`` says why) or expired (not started before its deadline)."""
        if not printed and error not in PRINT_ERRORS:
            raise QueueError("bad_request", "bad_value", field="error", why=", ".join(PRINT_ERRORS))
        printer = _printer_status(printer)
        pj = m.print_jobs

        def op(tx: Tx) -> dict:
            tx.lock_centre(actor.centre_id)
            row = tx.conn.execute(
                sa.select(pj).where(pj.c.id == job, pj.c.agent_id == actor.id)
            ).first()
            if row is None:
                raise QueueError("not_found", "unknown_print_job", job=job)
            if row.state != "pending":
                raise QueueError("conflict", "print_job_reported", job=job, state=row.state)
            state = "printed" if printed else "expired" if error == "expired" else "failed"
            tx.conn.execute(
                pj.update()
                .where(pj.c.id == job)
                .values(
                    state=state,
                    error=None if printed else error,
                    printer=printer,
                    reported_at=tx.now,
                )
            )
            ticket = self._ticket(tx.conn, actor, row.ticket_id)
            self._set_alert(tx, actor, row.kiosk_id, _alert_after(printed, error, printer))
            record(
                tx,
                actor,
                "printed",
                {
                    "ticket": views.ticket_brief(ticket),
                    "job": job,
                    "kiosk": row.kiosk_id,
                    "agent": actor.id,
                    "state": state,
                    "error": None if printed else error,
                    "printer": printer,
                },
                request_id=request_id,
                ticket_id=row.ticket_id,
            )
            return {"state": state}

        return self._write(actor, request_id, op, "report_print")

    @staticmethod
    def _set_alert(tx: Tx, actor: Actor, device_id: int, alert: str | None) -> None:
        """Raise or clear a device's alert; a change only when it changes."""
        d = m.devices
        device = tx.conn.execute(
            sa.select(d.c.id, d.c.name, d.c.kind, d.c.alert).where(d.c.id == device_id)
        ).one()
        if device.alert == alert:
            return
        since = tx.now if alert else None
        tx.conn.execute(
            d.update().where(d.c.id == device_id).values(alert=alert, alert_since=since)
        )
        tz = views.centre(tx.conn, actor.centre_id).timezone
        record(
            tx,
            actor,
            "device_alert",
            views.alert_view(device, alert, since, tz),
        )

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
            status = counter["status"]
            if status == "closed":
                status = counter_guard("open", status)
            self._counter_change(tx, actor, None, "counter_opened", counter, status=status)
            return {}

        return self._write(actor, None, op, "open_counter")

    def _counter_change(self, tx: Tx, actor: Actor, request_id, kind: str, counter, **values):
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
            summaries=estimates.summaries(conn, rows, day),
            request_id=request_id,
        )
        return counter

    def _set_counter(self, actor: Actor, request_id, operation: str, kind: str, values=None):
        def op(tx: Tx) -> dict:
            return self._set_counter_tx(tx, actor, request_id, operation, kind, values)

        return self._write(actor, request_id, op, kind)

    def _set_counter_tx(self, tx: Tx, actor: Actor, request_id, operation, kind, values=None):
        tx.lock_centre(actor.centre_id)
        counter = self._counter(tx.conn, actor.counter_id)
        status = counter_guard(operation, counter["status"])
        if status in ("paused", "closed"):
            current = views.current_ticket(tx.conn, counter["id"])
            if current is not None:
                raise QueueError("conflict", "counter_has_current", number=current.number)
        counter = self._counter_change(
            tx, actor, request_id, kind, counter, status=status, **(values or {})
        )
        return {"counter": views.counter_view(counter)}

    def pause(self, actor: Actor, reason: str, request_id: str | None = None) -> dict:
        return self._set_counter(
            actor, request_id, "pause", "counter_paused", {"pause_reason": reason}
        )

    def resume(self, actor: Actor, request_id: str | None = None) -> dict:
        return self._set_counter(
            actor, request_id, "resume", "counter_resumed", {"pause_reason": None}
        )

    def close_counter(self, actor: Actor, request_id: str | None = None) -> dict:
        return self._set_counter(
            actor, request_id, "close", "counter_closed", {"pause_reason": None, "staff_id": None}
        )

    # -- calling -------------------------------------------------------------------------
    def _ready_to_call(self, tx: Tx, actor: Actor, request_id) -> dict:
        """Check the counter can call; a ticket still being served is finished first.

        A ticket still *called* (not started) refuses the call instead: pressing "next"
        twice must never turn the citizen walking to the counter into a no-show.
        """
        counter = self._counter(tx.conn, actor.counter_id)
        counter_guard("call", counter["status"])
        current = views.current_ticket(tx.conn, counter["id"])
        if current is not None:
            if current.status == "called":
                raise QueueError("conflict", "counter_busy_called", number=current.number)
            self._finish(tx, actor, request_id, dict(current._mapping), [], None)
        return counter

    def call_next(self, actor: Actor, request_id: str | None = None) -> dict:
        """Call the next ticket the ordering policy picks for this counter."""

        def op(tx: Tx) -> dict:
            return self._call_next_tx(tx, actor, request_id)

        return self._write(actor, request_id, op, "call_next")

    def _call_next_tx(self, tx: Tx, actor: Actor, request_id) -> dict:
        tx.lock_centre(actor.centre_id)
        counter = self._ready_to_call(tx, actor, request_id)
        tz = views.centre(tx.conn, actor.centre_id).timezone
        queue = CounterQueue(tx.conn, counter, business_date(tx.now, tz))
        chosen = self.policy.choose(queue)
        if chosen is None:
            raise QueueError("queue_empty", "queue_empty")
        ticket = self._ticket(tx.conn, actor, chosen.id)
        return {"ticket": self._call(tx, actor, request_id, counter, ticket, "call_next")}

    def call_ticket(self, actor: Actor, ticket_id: int, request_id: str | None = None) -> dict:
        """Call a given waiting ticket out of order (audited as such)."""

        def op(tx: Tx) -> dict:
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

        return self._write(actor, request_id, op, "call_ticket")

    def _call(self, tx: Tx, actor: Actor, request_id, counter: dict, ticket: dict, how: str):
        conn = tx.conn
        status = ticket_guard("call", ticket["status"], ticket["number"])
        streak = counter["priority_streak"] + 1 if ticket["priority"] else 0
        conn.execute(sa.update(_c).where(_c.c.id == counter["id"]).values(priority_streak=streak))
        sent_to = ticket["target_counter_id"]
        self._update_ticket(
            conn,
            ticket,
            status=status,
            called_at=tx.now,
            counter_id=counter["id"],
            target_counter_id=None,
            staff_id=actor.staff_id,
            call_count=ticket["call_count"] + 1,
        )
        ticket.update(counter_number=counter["number"], target_number=None)
        waiting, _ = estimates.count_waiting(
            conn, ticket["service_id"], ticket["business_date"], -1, ticket["priority"] is not None
        )
        summary = self._summary(
            conn, ticket["service_id"], ticket["service_code"], ticket["avg_service_s"], waiting
        )
        return self._announce(
            tx, actor, request_id, counter, ticket, how, [sent_to], summaries=[summary]
        )

    def _announce(
        self, tx, actor, request_id, counter, ticket, how, also=(), summaries=(), recall=False
    ) -> dict:
        view = views.ticket_view(ticket, ticket["timezone"])
        record(
            tx,
            actor,
            "recalled" if recall else "called",
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

        def op(tx: Tx) -> dict:
            return self._recall_tx(tx, actor, ticket_id, request_id)

        return self._write(actor, request_id, op, "recall")

    def _recall_tx(self, tx: Tx, actor: Actor, ticket_id: int, request_id) -> dict:
        tx.lock_centre(actor.centre_id)
        ticket, status = self._at_counter(tx.conn, actor, ticket_id, "recall")
        self._update_ticket(tx.conn, ticket, status=status, call_count=ticket["call_count"] + 1)
        counter = self._counter(tx.conn, actor.counter_id)
        view = self._announce(tx, actor, request_id, counter, ticket, "recall", recall=True)
        return {"ticket": view}

    # -- serving -------------------------------------------------------------------------
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

    def start(self, actor: Actor, ticket_id: int, request_id: str | None = None) -> dict:
        """The citizen has arrived at the counter: serving starts."""
        return self._settle_call(actor, ticket_id, request_id, "start", "started", "started_at")

    def no_show(self, actor: Actor, ticket_id: int, request_id: str | None = None) -> dict:
        """Nobody came for a called ticket."""
        return self._settle_call(actor, ticket_id, request_id, "no_show", "no_show", "finished_at")

    def _settle_call(self, actor: Actor, ticket_id: int, request_id, operation, kind, stamp):
        """A ticket called to this counter is answered: it gets ``operation``'s state and
        ``stamp`` is set to now."""

        def op(tx: Tx) -> dict:
            return self._settle_call_tx(tx, actor, ticket_id, request_id, operation, kind, stamp)

        return self._write(actor, request_id, op, kind)

    def _settle_call_tx(self, tx: Tx, actor: Actor, ticket_id, request_id, operation, kind, stamp):
        tx.lock_centre(actor.centre_id)
        ticket, status = self._at_counter(tx.conn, actor, ticket_id, operation)
        self._update_ticket(tx.conn, ticket, status=status, **{stamp: tx.now})
        view = self._ticket_change(tx, actor, request_id, ticket, kind, counters=[actor.counter_id])
        return {"ticket": view}

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
            return self._finish_tx(tx, actor, ticket_id, request_id, dossiers, outcome)

        return self._write(actor, request_id, op, "finish")

    def _finish_tx(self, tx: Tx, actor: Actor, ticket_id, request_id, dossiers=(), outcome=None):
        tx.lock_centre(actor.centre_id)
        ticket, _ = self._at_counter(tx.conn, actor, ticket_id, "finish")
        return {"ticket": self._finish(tx, actor, request_id, ticket, list(dossiers), outcome)}

    def _finish(self, tx, actor, request_id, ticket: dict, dossiers, outcome) -> dict:
        """Finish the visit; the tablet at its counter asks for a rating on hearing it."""
        conn = tx.conn
        status = ticket_guard("finish", ticket["status"], ticket["number"])
        started = ticket["started_at"] or ticket["called_at"]
        avg = conn.execute(
            estimates.service_time_average(ticket["service_id"], (tx.now - started).total_seconds())
        ).scalar_one()
        # A new average moves the service's estimated wait.
        sid = ticket["service_id"]
        waiting = estimates.waiting_counts(conn, ticket["business_date"], [sid]).get(sid, 0)
        summary = self._summary(conn, sid, ticket["service_code"], avg, waiting)
        for code in dossiers:
            conn.execute(m.ticket_dossiers.insert().values(ticket_id=ticket["id"], code=code))
            dossier_records.record_visit(
                conn, actor.centre_id, code, outcome, tx.now, ticket["service_name"]
            )
        self._update_ticket(conn, ticket, status=status, finished_at=tx.now, outcome=outcome)
        if actor.staff_id and ticket["staff_id"] in (None, actor.staff_id):
            served_by = actor.staff_name
        else:
            served_by = views.staff_name(conn, ticket["staff_id"])
        return self._ticket_change(
            tx,
            actor,
            request_id,
            ticket,
            "finished",
            body={"staff": {"full_name": served_by} if served_by else None},
            counters=[ticket["counter_id"]],
            summaries=[summary],
            details={"dossiers": dossiers, "outcome": outcome},
        )

    # -- a device acting for the counter's clerk (call keypads) -----------------------------
    def counter_action(
        self,
        device: Actor,
        counter: int,
        action: str,
        reason: str | None = None,
        request_id: str | None = None,
    ) -> dict:
        """Do ``action`` (one of COUNTER_ACTIONS) at counter number ``counter`` for the clerk
        on duty there, as ``device`` (an agent, for its call keypad). It is the /counter
        event of that name, in the same transaction code, so it makes the same changes;
        the audit's actor is the device and its details name the clerk. Only counters
        the device is bound to (listed in its provisioning entry); a closed counter, or
        one with no clerk, is refused; ticket actions act on the counter's current ticket.
        """
        if action not in COUNTER_ACTIONS:
            raise QueueError(
                "bad_request", "bad_value", field="action", why=", ".join(COUNTER_ACTIONS)
            )

        def op(tx: Tx) -> dict:
            conn = tx.conn
            tx.lock_centre(device.centre_id)
            row = counter_by_number(conn, device.centre_id, counter)
            if row.id not in device_counter_ids(conn, device.id):
                raise QueueError("forbidden", "device_counter_forbidden", number=counter)
            if row.status == "closed":
                raise QueueError("conflict", "counter_closed_for_device", number=counter)
            name = views.staff_name(conn, row.staff_id)
            if name is None:
                raise QueueError("conflict", "counter_no_clerk", number=counter)
            actor = replace(device, counter_id=row.id, clerk_id=row.staff_id, clerk_name=name)
            if action == "call_next":
                return self._call_next_tx(tx, actor, request_id)
            if action == "pause":
                values = {"pause_reason": reason or KEYPAD_PAUSE_REASON}
                return self._set_counter_tx(
                    tx, actor, request_id, "pause", "counter_paused", values
                )
            if action == "resume":
                values = {"pause_reason": None}
                return self._set_counter_tx(
                    tx, actor, request_id, "resume", "counter_resumed", values
                )
            current = views.current_ticket(conn, row.id)
            if current is None:
                raise QueueError("conflict", "counter_no_current", number=counter)
            if action == "recall":
                return self._recall_tx(tx, actor, current.id, request_id)
            if action == "finish":
                return self._finish_tx(tx, actor, current.id, request_id)
            kind, stamp = {
                "start": ("started", "started_at"),
                "no_show": ("no_show", "finished_at"),
            }[action]
            return self._settle_call_tx(tx, actor, current.id, request_id, action, kind, stamp)

        # Remembered per device and action, like the clerk's own events; urgent as theirs.
        return self.store.write(
            op,
            centre_id=device.centre_id,
            actor=device.key,
            request_id=f"counter_action:{action}:{request_id}" if request_id else None,
            urgent=True,
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
            ticket, status = self._at_counter(conn, actor, ticket_id, "transfer")
            values: dict[str, Any] = {"status": status, "started_at": None}
            target_id = None
            if service is not None:
                svc = _service(conn, actor.centre_id, service)
                if svc.id == ticket["service_id"]:
                    raise QueueError("conflict", "transfer_same", number=ticket["number"])
                values.update(service_id=svc.id, target_counter_id=None)
                details = {"to_service": service}
                ticket.update(
                    service_code=svc.code, service_name=svc.name, avg_service_s=svc.avg_service_s
                )
            else:
                target = counter_by_number(conn, actor.centre_id, counter)
                if target.id == actor.counter_id:
                    raise QueueError("conflict", "transfer_same", number=ticket["number"])
                target_id = target.id
                values.update(target_counter_id=target.id)
                ticket.update(target_number=target.number)
                details = {"to_counter": counter}
            self._update_ticket(conn, ticket, **values)
            waiting, _ = estimates.count_waiting(  # back in a queue, keeping its place
                conn, ticket["service_id"], ticket["business_date"], +1, bool(ticket["priority"])
            )
            summary = self._summary(
                conn, ticket["service_id"], ticket["service_code"], ticket["avg_service_s"], waiting
            )
            view = self._ticket_change(
                tx,
                actor,
                request_id,
                ticket,
                "transferred",
                counters=[actor.counter_id, target_id],
                services=[ticket["service_code"]],
                summaries=[summary],
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

    def clerk_photo(self, counter_id: int | None) -> bytes | None:
        """The photo of the clerk on duty at a counter (None: closed, or no photo)."""
        return self.store.read(lambda conn: views.clerk_photo(conn, counter_id))

    def staff_ratings(self, actor: Actor) -> dict:
        """A clerk's own ratings, counted by level (today and this month, in the centre's
        time zone): never which visit got which."""
        return self.store.read(lambda conn: views.staff_ratings(conn, actor.id))

    # -- snapshots (reads) ---------------------------------------------------------------
    def centres(self) -> list[dict]:
        return self.store.read(views.centres)

    def kiosk_snapshot(self, centre_id: int) -> dict:
        return self.store.read(lambda conn: views.kiosk_snapshot(conn, centre_id))

    def counter_snapshot(self, counter_id: int) -> dict:
        return self.store.read(lambda conn: views.counter_snapshot(conn, counter_id))

    def rating_snapshot(self, counter_id: int) -> dict:
        return self.store.read(
            lambda conn: views.rating_snapshot(conn, counter_id, self.rating_window)
        )

    def display_snapshot(self, centre_id: int, counter_ids=None) -> dict:
        return self.store.read(lambda conn: views.display_snapshot(conn, centre_id, counter_ids))

    def agent_snapshot(self, centre_id: int, counter_ids, agent_id: int) -> dict:
        return self.store.read(
            lambda conn: views.agent_snapshot(conn, centre_id, counter_ids, agent_id)
        )

    def ticket_status(self, public_key: str) -> dict | None:
        return self.store.read(
            lambda conn: views.ticket_status(conn, public_key, self.rating_window)
        )

    def clerk_day(self, actor: Actor) -> dict:
        return self.store.read(lambda conn: views.clerk_day(conn, actor.id, actor.centre_id))

    # -- dossiers (the province's one-stop system, through the integration API) -----------
    def upsert_dossiers(self, actor: Actor, payload) -> dict:
        """Create or update dossiers by code, in one transaction; idempotent (the same
        payload again changes nothing and records nothing)."""
        tz = self.store.read(lambda conn: zone(views.centre(conn, actor.centre_id).timezone))
        items = dossier_records.parse_items(payload, DOSSIER_CODE, tz)

        def op(tx: Tx) -> dict:
            tx.lock_centre(actor.centre_id)
            result = dossier_records.upsert(tx.conn, actor.centre_id, items, tx.now)
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

        return self.store.write(op, centre_id=actor.centre_id, actor=actor.key)

    def dossier(self, centre_id: int, code: str) -> dict | None:
        def read(conn):
            tz = views.centre(conn, centre_id).timezone
            return dossier_records.view(conn, centre_id, code, m.utcnow(), tz)

        return self.store.read(read)

    def dossier_status(self, code: str) -> list[dict]:
        """The citizen's look-up by dossier code (every centre's dossier of that code)."""
        return self.store.read(lambda conn: dossier_records.public_view(conn, code, m.utcnow()))

    def ticket_follower(self, public_key: str):
        return self.store.read(lambda conn: views.ticket_follower(conn, public_key))
