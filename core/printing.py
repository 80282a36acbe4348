"""Printed tickets: a ticket issued at a kiosk with a printing agent gets a print job
addressed to that agent (in the issue's own change); the agent reports each job's result
once, and what the result says about the kiosk's printer raises or clears its device
alert for staff. Print jobs are not queue state: the ticket stands whether it printed or
not (the kiosk then shows it to keep)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from . import models as m
from . import views
from .acting import Actor, record
from .clock import iso
from .errors import QueueError
from .raw import JSONValue, Raw
from .store import Store, Tx

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
PAPER_STATES = ("ok", "near_end", "out", "unknown")

_PRINTED_BY = Raw("SELECT printed_by FROM devices WHERE id = :id")
_INSERT_PRINT_JOB = Raw(
    """INSERT INTO print_jobs (ticket_id, kiosk_id, agent_id, created_at, deadline, state,
                              ticket_face)
       VALUES (:ticket_id, :kiosk_id, :agent_id, :created_at, :deadline, 'pending', :face)
       RETURNING id"""
)


def _alert_after(printed: bool, error: str | None, printer: dict | None) -> str | None:
    if printed:
        return "paper_near_end" if printer and printer["paper"] == "near_end" else None
    return DEVICE_ALERTS.get(error, PRINT_FAILED)


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


def print_job(tx: Tx, kiosk: Actor, face: dict, ticket_id: int, timezone: str, deadline_s):
    """The print job of a ticket issued at ``kiosk`` when it has a printing agent (None
    without one): what the agent prints (``face``: hardware/ticket.py's TicketFace) and
    by when."""
    agent = _PRINTED_BY.first(tx.conn, {"id": kiosk.id})
    if agent is None or agent[0] is None:
        return None
    deadline = tx.now + timedelta(seconds=deadline_s)
    (job_id,) = _INSERT_PRINT_JOB.one(
        tx.conn,
        {
            "ticket_id": ticket_id,
            "kiosk_id": kiosk.id,
            "agent_id": agent[0],
            "created_at": tx.now,
            "deadline": deadline,
            "face": JSONValue(face),
        },
    )
    return {
        "job": job_id,
        "agent": agent[0],
        "kiosk": kiosk.id,
        "deadline": iso(deadline, timezone),
        "face": face,
    }


def report_print(
    store: Store,
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
        ticket = tx.conn.execute(views.TICKET_DETAIL.where(m.tickets.c.id == row.ticket_id)).one()
        _set_alert(tx, actor, row.kiosk_id, _alert_after(printed, error, printer))
        record(
            tx,
            actor,
            "printed",
            {
                "ticket": views.ticket_brief(ticket._mapping),
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

    return store.write(
        op,
        centre_id=actor.centre_id,
        actor=actor.key,
        request_id=f"report_print:{request_id}" if request_id else None,
        operation="report_print",
    )


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
        d.update()
        .where(d.c.id == device_id)
        .values(alert=alert, alert_since=since, alert_acked_by=None, alert_acked_at=None)
    )
    tz = views.centre(tx.conn, actor.centre_id).timezone
    record(tx, actor, "device_alert", views.alert_view(device, alert, since, tz))
