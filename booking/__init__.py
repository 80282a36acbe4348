"""Appointments for citizens: the phone's booking page (``/hen/``) and the JSON API
(``/api/v1/appointments…``), docs/appointments.md. The rules are core/appointments.py's;
check-in is the kiosk's (kiosk/).

The page is server-rendered forms, one step a page (centre, service, day, slot and
contact), so it works on any phone, with or without script, and a step can be bookmarked
or sent to someone.
"""

from __future__ import annotations

import io
import time
from datetime import date
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, redirect, render_template, request

from core import appointments, models, views
from core.errors import QueueError
from gateway.api import access, answer_json, request_lang
from gateway.bundle import RoleBundle
from gateway.web import N_, page_lang

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
        base = _ctx().public_url or request.host_url
        return {"ok": True, **appointments.book(_ctx().store, centre_id, payload, actor, base)}

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


# -- the phone's page ----------------------------------------------------------------------
WEEKDAY_NAMES = (
    N_("Thứ Hai"),
    N_("Thứ Ba"),
    N_("Thứ Tư"),
    N_("Thứ Năm"),
    N_("Thứ Sáu"),
    N_("Thứ Bảy"),
    N_("Chủ Nhật"),
)
STATUS_TEXT = {
    "booked": N_("Đã đặt lịch"),
    "cancelled": N_("Đã hủy"),
    "checked_in": N_("Đã lấy số"),
    "missed": N_("Đã qua giờ hẹn"),
}


def _page_url(**params) -> str:
    params = {k: v for k, v in params.items() if v}
    if page_lang() == "en":
        params["lang"] = "en"
    return "/hen/" + ("?" + urlencode(params) if params else "")


def _message(e: QueueError) -> str:
    return e.as_dict(page_lang())["message"]


@bp.route("/hen/", methods=["GET", "POST"])
@access("public")
def page():
    """One step a page: the centre, the service, the day, then a slot with a name and a
    phone number; a booking made goes to its own page (``/hen/<code>``)."""
    ctx = _ctx()
    form = request.form if request.method == "POST" else request.args
    centres = ctx.store.read(views.centres)
    code = form.get("c") or (centres[0]["code"] if len(centres) == 1 else None)
    centre = next((c for c in centres if c["code"] == code), None)
    view = {
        "centres": centres,
        "centre": centre,
        "url": _page_url,
        "weekdays": WEEKDAY_NAMES,
        "switch": lambda lang: "?" + urlencode({**request.args.to_dict(), "lang": lang}),
    }
    error = None
    if centre is not None and request.method == "POST":
        values = {k: form.get(k, "") for k in ("service", "slot", "name", "phone")}
        try:
            _spend("book", BOOK_PER_HOUR, BOOK_BURST)
            actor = f"citizen:{request.remote_addr or '?'}"
            booked = appointments.book(
                ctx.store,
                centre["id"],
                {**values, "lang": page_lang()},
                actor,
                ctx.public_url or request.host_url,
            )
            return redirect(
                f"/hen/{booked['code']}" + ("?lang=en" if page_lang() == "en" else ""), 303
            )
        except QueueError as e:
            error = _message(e)
        view["entered"] = values
    if centre is not None:
        now = models.utcnow()
        service = form.get("service")
        day = form.get("date") or (form.get("slot") or "")[:10]
        try:
            found = ctx.store.read(lambda conn: appointments.bookable(conn, centre["id"]))
            view["services"] = found
            view["service"] = next((s for s in found if s["code"] == service), None)
            if view["service"] is not None:
                view["days"] = ctx.store.read(
                    lambda conn: appointments.days(conn, centre["id"], now)
                )
                if day:
                    view["day"] = _day(day)
                    view["slots"] = ctx.store.read(
                        lambda conn: appointments.slots(
                            conn, centre["id"], service, view["day"], now
                        )
                    )
        except QueueError as e:
            error = error or _message(e)
    status = 400 if error and request.method == "POST" else 200
    return render_template("booking/book.html", error=error, **view), status


def _booking(code: str) -> dict:
    _spend("code", CODE_PER_HOUR, CODE_BURST)
    return _ctx().store.read(lambda conn: appointments.lookup(conn, code, models.utcnow()))


@bp.get("/hen/<code>")
@access("key", "the booking's code")
def booking_page(code: str):
    try:
        found = _booking(code)
    except QueueError as e:
        status = {"rate_limited": 429, "not_found": 404}.get(e.code, 400)
        return render_template("booking/booking.html", error=_message(e), b=None), status
    return (
        render_template(
            "booking/booking.html", b=found, error=None, status_text=STATUS_TEXT, url=_page_url
        ),
        200,
        {"Cache-Control": "no-store"},
    )


@bp.post("/hen/<code>/cancel")
@access("key", "the booking's code")
def cancel_page(code: str):
    try:
        _spend("code", CODE_PER_HOUR, CODE_BURST)
        appointments.cancel(_ctx().store, code, f"citizen:{request.remote_addr or '?'}")
    except QueueError as e:
        return render_template("booking/booking.html", error=_message(e), b=None), 409
    return redirect(f"/hen/{code}" + ("?lang=en" if page_lang() == "en" else ""), 303)


@bp.get("/hen/<code>/qr.svg")
@access("key", "the booking's code")
def booking_qr(code: str):
    """The code as a QR code, for the kiosk's scanner (it types what it reads)."""
    import segno

    if not appointments.valid_code(code):
        return Response(status=404)
    out = io.BytesIO()
    segno.make(code, error="m").save(out, kind="svg", scale=10, border=2)
    return Response(out.getvalue(), mimetype="image/svg+xml")


bundle = RoleBundle(bp, ())
