"""Appointments for citizens: the JSON API (``/api/v1/appointments…``, docs/appointments.md)
and, to come, the phone's booking page (``/hen/``). The rules are core/appointments.py's;
check-in is the kiosk's (kiosk/)."""

from __future__ import annotations

import time
from datetime import date

from flask import Blueprint, current_app, request

from core import appointments, models, views
from core.errors import QueueError
from gateway.api import access, answer_json, request_lang
from gateway.bundle import RoleBundle

bp = Blueprint(
    "booking",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/hen/static",
)

# Per client address (core/limits.py, shared through Redis): bookings, BOOK_BURST at once
# then BOOK_PER_HOUR an hour (a family books a few; a script booking a day's slots is
# stopped after these); look-ups and cancellations by code, CODE_BURST then CODE_PER_HOUR
# (100 million codes, a check digit, and these: guessing one is out of reach).
BOOK_BURST, BOOK_PER_HOUR = 5, 10
CODE_BURST, CODE_PER_HOUR = 20, 60


def _ctx():
    return current_app.extensions["motcua"]


def _spend(what: str, per_hour: float, burst: float) -> None:
    key = f"booking:{what}:{request.remote_addr or '?'}"
    if _ctx().limits.bucket(key, per_hour / 3600, burst, time.time()) > 0:
        raise QueueError("rate_limited", "rate_limited")


def _centre_id(code: str | None) -> int:
    """The centre ``?centre=`` names; the only one when the installation has one."""
    centres = _ctx().store.read(views.centres)
    if code is None and len(centres) == 1:
        return centres[0]["id"]
    for c in centres:
        if c["code"] == code:
            return c["id"]
    if code is None:
        raise QueueError("bad_request", "missing_field", field="centre")
    raise QueueError("not_found", "unknown_centre", centre=code[:32])


def _day(text: str | None) -> date:
    try:
        return date.fromisoformat(text or "")
    except ValueError:
        raise QueueError(
            "bad_request",
            "bad_value",
            field="date",
            why=("phải có dạng YYYY-MM-DD", "must be YYYY-MM-DD"),
        ) from None


@bp.get("/api/v1/appointments/slots")
@access("public")
def slots():
    """``?service=CODE&date=YYYY-MM-DD[&centre=CODE]``: the day's slots not yet begun."""
    args = request.args

    def run():
        centre_id = _centre_id(args.get("centre"))
        service = (args.get("service") or "").strip()
        if not service:
            raise QueueError("bad_request", "missing_field", field="service")
        day = _day(args.get("date"))
        found = _ctx().store.read(
            lambda conn: appointments.slots(conn, centre_id, service, day, models.utcnow())
        )
        return {
            "ok": True,
            "service": service,
            "date": day.isoformat(),
            "slots": [s.as_json() for s in found],
        }

    return answer_json(run, request_lang())


@bp.post("/api/v1/appointments")
@access("public")
def book():
    """``{"service", "slot", "name", "phone"}`` (``?centre=CODE``): the booking, with its
    code, shown once here and on the page it links to."""

    def run():
        _spend("book", BOOK_PER_HOUR, BOOK_BURST)
        centre_id = _centre_id(request.args.get("centre"))
        payload = request.get_json(silent=True)
        actor = f"citizen:{request.remote_addr or '?'}"
        return {"ok": True, **appointments.book(_ctx().store, centre_id, payload, actor)}

    return answer_json(run, request_lang())


@bp.get("/api/v1/appointments/<code>")
@access("key", "the booking's code")
def read(code: str):
    def run():
        _spend("code", CODE_PER_HOUR, CODE_BURST)
        found = _ctx().store.read(lambda conn: appointments.lookup(conn, code, models.utcnow()))
        return {"ok": True, **found}

    return answer_json(run, request_lang())


@bp.delete("/api/v1/appointments/<code>")
@access("key", "the booking's code")
def cancel(code: str):
    def run():
        _spend("code", CODE_PER_HOUR, CODE_BURST)
        actor = f"citizen:{request.remote_addr or '?'}"
        return {"ok": True, **appointments.cancel(_ctx().store, code, actor)}

    return answer_json(run, request_lang())


bundle = RoleBundle(bp, ())
