"""Appointments: a citizen books a time for a service, then checks in at a kiosk
(docs/appointments.md).

**Slots.** Each day's opening hours (core/hours.py) are cut into slots of the centre's
``slot_minutes``. A slot of a service takes at most its capacity of bookings:

- the service's ``appointments`` entry when the centre gives one (0: not bookable);
- otherwise the centre's ``appointment_share`` (default 0.5) of the time its counters
  have in the slot, counted in the service's mean service time:
  ``floor(share × counters serving it × slot seconds / mean service seconds)``.

So at least half of every counter's time stays for people who come without booking.

**Bookings** are for today (a slot not yet begun) up to ``booking_days`` ahead. A phone
number holds at most ``MAX_PER_PHONE`` bookings not yet past at one centre. A booking's
code is 8 digits, the last a check digit (Luhn), so a code mistyped on the kiosk's keypad
is caught before it is looked up. A booking nobody checks in is ``missed`` once its slot
ends, and its place is not held any longer. The phone number is kept until the slot's day
ends, then erased (``purge_phones``).
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from . import models as m
from . import notices, views
from .errors import QueueError
from .hours import HoursError, OpeningHours
from .roles import change_record
from .store import Store, Tx
from .validation import Field, parse

MAX_PER_PHONE = 2  # bookings not yet past, per phone number and centre
CHECK_IN_EARLY_MIN = 30  # a booking may be checked in this long before its slot
ACTIVE = ("booked", "checked_in")  # statuses that take a place in their slot

BOOKING = {
    "service": Field(str, required=True, max_len=32),
    "slot": Field(str, required=True, max_len=40),
    "name": Field(str, required=True, max_len=100),
    "phone": Field(str, required=True, max_len=20),
    "lang": Field(str, max_len=2),
}
_CODE = re.compile(r"\d{8}")


# -- codes and phone numbers ---------------------------------------------------------------
def _luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def new_code() -> str:
    body = f"{secrets.randbelow(10**7):07d}"
    return body + _luhn_digit(body)


def valid_code(code: str) -> bool:
    return bool(_CODE.fullmatch(code)) and _luhn_digit(code[:7]) == code[7]


def normalise_phone(text: str) -> str:
    """A Vietnamese mobile number as 10 digits from 0 (``+84 912 345 678`` and
    ``0912.345.678`` both give ``0912345678``); raises bad_request otherwise."""
    digits = re.sub(r"[\s.\-()]", "", text)
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    if not re.fullmatch(r"0[35789]\d{8}", digits):
        raise QueueError(
            "bad_request",
            "bad_value",
            field="phone",
            why=(
                "không phải số điện thoại di động Việt Nam (10 số, ví dụ 0912 345 678)",
                "is not a Vietnamese mobile number (10 digits, e.g. 0912 345 678)",
            ),
        )
    return digits


# -- slots -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    start: datetime  # aware, the centre's zone
    end: datetime
    capacity: int
    booked: int

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.booked)

    def as_json(self) -> dict:
        return {
            "start": self.start.isoformat(timespec="minutes"),
            "end": self.end.isoformat(timespec="minutes"),
            "capacity": self.capacity,
            "free": self.free,
        }


@dataclass(frozen=True)
class _Setting:
    centre_id: int
    zone: ZoneInfo
    hours: OpeningHours
    slot_minutes: int
    booking_days: int
    share: float


def _setting(conn, centre_id: int) -> _Setting:
    c = m.centres
    row = conn.execute(sa.select(c).where(c.c.id == centre_id)).one()
    return _Setting(
        centre_id,
        ZoneInfo(row.timezone),
        OpeningHours.parse(row.opening_hours, row.closed_days),
        row.slot_minutes,
        row.booking_days,
        row.appointment_share,
    )


def service_hours(centre: OpeningHours, service) -> OpeningHours:
    """A service's own opening hours (its slots are cut from them) with the centre's closed
    days, or the centre's hours when it has none."""
    if service.opening_hours is None:
        return centre
    try:
        own = OpeningHours.parse(service.opening_hours)
    except HoursError:
        return centre
    return OpeningHours(own.week, centre.closed)


def _service(conn, centre_id: int, code: str):
    s = m.services
    row = conn.execute(
        sa.select(s).where(s.c.centre_id == centre_id, s.c.code == code, s.c.active)
    ).first()
    if row is None:
        raise QueueError("not_found", "unknown_service", service=code[:32])
    return row


def _counters_serving(conn, service_id: int) -> int:
    cs = m.counter_services
    return conn.execute(
        sa.select(sa.func.count()).select_from(cs).where(cs.c.service_id == service_id)
    ).scalar_one()


def _capacity(setting: _Setting, service, counters: int, seconds: float) -> int:
    full = setting.slot_minutes * 60
    if service.slot_capacity is not None:
        return math.floor(service.slot_capacity * seconds / full)
    mean_s = max(service.avg_service_s, 60.0)
    return math.floor(setting.share * counters * seconds / mean_s)


def _check_day(setting: _Setting, day: date, now: datetime) -> None:
    today = now.astimezone(setting.zone).date()
    if not today <= day <= today + timedelta(days=setting.booking_days):
        raise QueueError(
            "bad_request",
            "booking_day_out_of_range",
            first=today.isoformat(),
            last=(today + timedelta(days=setting.booking_days)).isoformat(),
        )


def _day_slots(conn, setting: _Setting, service, day: date, now: datetime) -> list[Slot]:
    counters = _counters_serving(conn, service.id)
    periods = [
        (start, end)
        for start, end in service_hours(setting.hours, service).periods(
            day, setting.slot_minutes, setting.zone
        )
        if start > now
    ]
    if not periods:
        return []
    a = m.appointments
    booked = dict(
        conn.execute(
            sa.select(a.c.slot_start, sa.func.count())
            .where(
                a.c.service_id == service.id,
                a.c.slot_start >= periods[0][0],
                a.c.slot_start <= periods[-1][0],
                a.c.status.in_(ACTIVE),
            )
            .group_by(a.c.slot_start)
        ).all()
    )
    return [
        Slot(
            start,
            end,
            _capacity(setting, service, counters, (end - start).total_seconds()),
            booked.get(start, 0),
        )
        for start, end in periods
    ]


def slots(conn, centre_id: int, service_code: str, day: date, now: datetime) -> list[Slot]:
    """The service's slots on ``day`` that have not begun, with their free places."""
    setting = _setting(conn, centre_id)
    service = _service(conn, centre_id, service_code)
    _check_day(setting, day, now)
    return _day_slots(conn, setting, service, day, now)


def bookable(conn, centre_id: int) -> list[dict]:
    """The centre's services that take bookings (a full slot has room for at least one)."""
    setting = _setting(conn, centre_id)
    s = m.services
    rows = conn.execute(
        views.SERVICE_ROWS.where(s.c.centre_id == centre_id, s.c.active).order_by(
            m.agencies.c.name, s.c.name
        )
    ).all()
    full = setting.slot_minutes * 60
    return [
        {
            "code": r.code,
            "name": r.name,
            "name_en": r.name_en,
            "agency": r.agency,
            "agency_en": r.agency_en,
        }
        for r in rows
        if _capacity(setting, r, _counters_serving(conn, r.id), full) > 0
    ]


def days(conn, centre_id: int, now: datetime) -> list[tuple[date, bool]]:
    """Each day that may be booked, and whether the centre is open then."""
    setting = _setting(conn, centre_id)
    today = now.astimezone(setting.zone).date()
    return [
        (d, bool(setting.hours.ranges(d)))
        for d in (today + timedelta(days=k) for k in range(setting.booking_days + 1))
    ]


# -- booking ----------------------------------------------------------------------------------
def book(store: Store, centre_id: int, payload, actor: str, public_base: str = "") -> dict:
    """Book the slot ``payload`` names; returns the booking (its code once, here). Its
    confirmation is written to the outbox with it (core/notices.py), with the address of
    its page under ``public_base``."""
    values = parse(payload, BOOKING)
    phone = normalise_phone(values["phone"])
    lang = "en" if values["lang"] == "en" else "vi"
    try:
        wanted = datetime.fromisoformat(values["slot"])
    except ValueError:
        wanted = None
    if wanted is None or wanted.tzinfo is None:
        raise QueueError(
            "bad_request",
            "bad_value",
            field="slot",
            why=("phải là giờ bắt đầu của một khung giờ", "must be the start of a slot"),
        )

    def op(tx: Tx) -> dict:
        tx.lock_centre(centre_id)
        conn = tx.conn
        setting = _setting(conn, centre_id)
        service = _service(conn, centre_id, values["service"])
        start = wanted.astimezone(setting.zone)
        _check_day(setting, start.date(), tx.now)
        slot = next(
            (
                s
                for s in _day_slots(conn, setting, service, start.date(), tx.now)
                if s.start == start
            ),
            None,
        )
        if slot is None:
            raise QueueError("bad_request", "no_such_slot", slot=values["slot"][:40])
        if slot.free <= 0:
            raise QueueError("conflict", "slot_full", slot=start.strftime("%H:%M %d/%m/%Y"))
        a = m.appointments
        held = conn.execute(
            sa.select(sa.func.count())
            .select_from(a)
            .where(
                a.c.centre_id == centre_id,
                a.c.phone == phone,
                a.c.status == "booked",
                a.c.slot_end > tx.now,
            )
        ).scalar_one()
        if held >= MAX_PER_PHONE:
            raise QueueError("conflict", "too_many_bookings", limit=MAX_PER_PHONE)
        code = _unused_code(conn)
        conn.execute(
            sa.insert(a).values(
                centre_id=centre_id,
                service_id=service.id,
                code=code,
                slot_start=slot.start,
                slot_end=slot.end,
                name=values["name"],
                phone=phone,
                lang=lang,
                status="booked",
                created_at=tx.now,
                changed_at=tx.now,
            )
        )
        centre = conn.execute(sa.select(m.centres).where(m.centres.c.id == centre_id)).one()
        notices.enqueue(
            conn,
            centre_id,
            "booked",
            phone,
            notices.booking_params(
                centre, service, code, slot.start, lang, f"{public_base.rstrip('/')}/hen/{code}"
            ),
            f"booked:{code}",
            tx.now,
            slot.end,
        )
        tx.change(
            centre_id,
            "appointment_booked",
            actor,
            change=change_record("appointment_booked"),
            details={"code": code, "service": service.code, "slot": slot.start.isoformat()},
        )
        return _public(conn, code, tx.now)

    return store.write(op, centre_id=centre_id, actor=actor)


def _unused_code(conn) -> str:
    a = m.appointments
    while True:
        code = new_code()
        if conn.execute(sa.select(a.c.id).where(a.c.code == code)).first() is None:
            return code


def cancel(store: Store, code: str, actor: str) -> dict:
    """Cancel a booking not yet checked in nor past (its place is free again)."""
    found = store.read(lambda conn: _find(conn, code))

    def op(tx: Tx) -> dict:
        tx.lock_centre(found.centre_id)
        row = _find(tx.conn, code)
        status = _status(row, tx.now)
        if status != "booked":
            raise QueueError("conflict", f"booking_{status}", booking=code)
        a = m.appointments
        tx.conn.execute(
            sa.update(a).where(a.c.id == row.id).values(status="cancelled", changed_at=tx.now)
        )
        tx.change(
            row.centre_id,
            "appointment_cancelled",
            actor,
            change=change_record("appointment_cancelled"),
            details={"code": code},
        )
        return _public(tx.conn, code, tx.now)

    return store.write(op, centre_id=found.centre_id, actor=actor)


# -- check-in (the engine issues the ticket: QueueEngine.check_in) ----------------------------
@dataclass(frozen=True)
class CheckIn:
    id: int
    service: str  # its code
    slot_start: datetime
    lang: str
    late: bool  # past the slot's end, the same day: a walk-in's ticket
    phone: str | None  # to tell the ticket's holder their turn is near


def checkable(conn, centre_id: int, code: str, now: datetime) -> CheckIn:
    """The booking a kiosk of ``centre_id`` may check in now, or the refusal: a code of
    another centre is unknown here; too early says when to come back (``CHECK_IN_EARLY_MIN``
    before the slot); a booking of an earlier day is missed."""
    row = _find(conn, code)
    if row.centre_id != centre_id:
        raise QueueError("not_found", "unknown_booking", booking=code)
    if row.status != "booked":
        raise QueueError("conflict", f"booking_{row.status}", booking=code)
    zone = ZoneInfo(
        conn.execute(
            sa.select(m.centres.c.timezone).where(m.centres.c.id == centre_id)
        ).scalar_one()
    )
    start = row.slot_start.astimezone(zone)
    opens = start - timedelta(minutes=CHECK_IN_EARLY_MIN)
    if now < opens:
        raise QueueError(
            "conflict",
            "check_in_too_early",
            slot=start.strftime("%H:%M %d/%m/%Y"),
            time=opens.strftime("%H:%M")
            + ("" if opens.date() == now.astimezone(zone).date() else opens.strftime(" %d/%m")),
        )
    late = now >= row.slot_end
    if late and now.astimezone(zone).date() != start.date():
        raise QueueError("conflict", "booking_missed", booking=code)
    service = conn.execute(
        sa.select(m.services.c.code).where(m.services.c.id == row.service_id)
    ).scalar_one()
    return CheckIn(row.id, service, row.slot_start, row.lang, late, row.phone)


def mark_checked_in(conn, found: CheckIn, ticket_id: int, now: datetime) -> None:
    """The booking is checked in as the ticket, which keeps its phone number."""
    a, t = m.appointments, m.tickets
    conn.execute(
        sa.update(a)
        .where(a.c.id == found.id)
        .values(status="checked_in", ticket_id=ticket_id, changed_at=now)
    )
    if found.phone:
        conn.execute(sa.update(t).where(t.c.id == ticket_id).values(phone=found.phone))


def lookup(conn, code: str, now: datetime) -> dict:
    return _public(conn, code, now)


def _find(conn, code: str):
    if not valid_code(code):
        raise QueueError("bad_request", "bad_booking_code")
    a = m.appointments
    row = conn.execute(sa.select(a).where(a.c.code == code)).first()
    if row is None:
        raise QueueError("not_found", "unknown_booking", booking=code)
    return row


def _status(row, now: datetime) -> str:
    if row.status == "booked" and row.slot_end <= now:
        return "missed"
    return row.status


def _public(conn, code: str, now: datetime) -> dict:
    """What the code's holder sees: never the phone number beyond its last 3 digits."""
    row = _find(conn, code)
    c, s = m.centres, m.services
    centre = conn.execute(sa.select(c).where(c.c.id == row.centre_id)).one()
    service = conn.execute(sa.select(s).where(s.c.id == row.service_id)).one()
    zone = ZoneInfo(centre.timezone)
    return {
        "code": row.code,
        "status": _status(row, now),
        "centre": {"code": centre.code, "name": centre.name, "name_en": centre.name_en},
        "service": {"code": service.code, "name": service.name, "name_en": service.name_en},
        "slot": {
            "start": row.slot_start.astimezone(zone).isoformat(timespec="minutes"),
            "end": row.slot_end.astimezone(zone).isoformat(timespec="minutes"),
        },
        "name": row.name,
        "phone": ("*******" + row.phone[-3:]) if row.phone else None,
        "lang": row.lang,
        "url": f"/hen/{row.code}",
    }


def purge_phones(store: Store, now: datetime) -> int:
    """Erase the phone number of every booking whose slot's day has ended (in its
    centre's zone); returns how many were erased."""

    def op(tx: Tx) -> int:
        a, c = m.appointments, m.centres
        rows = tx.conn.execute(
            sa.select(a.c.id, a.c.slot_start, c.c.timezone)
            .join(c, c.c.id == a.c.centre_id)
            .where(a.c.phone.is_not(None), a.c.slot_start < now)
        ).all()
        ended = [
            row.id
            for row in rows
            if row.slot_start.astimezone(ZoneInfo(row.timezone)).date()
            < now.astimezone(ZoneInfo(row.timezone)).date()
        ]
        if ended:
            tx.conn.execute(sa.update(a).where(a.c.id.in_(ended)).values(phone=None))
        t = m.tickets
        days = tx.conn.execute(
            sa.select(t.c.id, t.c.business_date, c.c.timezone)
            .join(c, c.c.id == t.c.centre_id)
            .where(t.c.phone.is_not(None), t.c.business_date <= now.date())
        ).all()
        done = [
            row.id
            for row in days
            if row.business_date < now.astimezone(ZoneInfo(row.timezone)).date()
        ]
        if done:
            tx.conn.execute(sa.update(t).where(t.c.id.in_(done)).values(phone=None))
        n = m.notifications
        tx.conn.execute(
            sa.update(n).where(n.c.phone.is_not(None), n.c.status != "pending").values(phone=None)
        )
        return len(ended) + len(done)

    return store.write(op, centre_id=0, actor="system:purge")
