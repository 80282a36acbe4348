"""Appointments (core/appointments.py, core/hours.py): opening hours, slots and their
capacity, booking limits, cancelling, missed bookings and the phone numbers' erasure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from core import appointments
from core import models as m
from core.errors import QueueError
from core.hours import HoursError, OpeningHours
from harness.centre import KIOSK, KIOSK_B

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
EVERY_DAY = {
    d: ["07:30-11:30", "13:30-17:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


def test_the_usual_hours_are_weekdays_and_a_schedule_is_checked():
    usual = OpeningHours.parse(None)
    assert usual.ranges(date(2026, 12, 7))  # a Monday
    assert not usual.ranges(date(2026, 12, 6))  # a Sunday
    closed = OpeningHours.parse(None, ["2026-12-07"])
    assert not closed.ranges(date(2026, 12, 7))
    for hours, words in (
        ({"mon": ["7:30-11:30"]}, "07:30-11:30"),
        ({"mon": ["11:30-07:30"]}, "kết thúc trước"),
        ({"mon": ["13:00-17:00", "07:30-11:30"]}, "tăng dần"),
        ({"monday": ["07:30-11:30"]}, "ngày lạ"),
    ):
        with pytest.raises(HoursError, match=words):
            OpeningHours.parse(hours)
    with pytest.raises(HoursError, match="2026-09-02"):
        OpeningHours.parse(None, ["2/9"])
    periods = list(
        OpeningHours.parse({"mon": ["07:30-09:00"]}).periods(date(2026, 12, 7), 60, ZONE)
    )
    assert [(a.strftime("%H:%M"), b.strftime("%H:%M")) for a, b in periods] == [
        ("07:30", "08:30"),
        ("08:30", "09:00"),  # the last one cut short at closing time
    ]


@pytest.fixture
def centre(local):
    """The test centre open every day, 30-minute slots."""

    def op(tx):
        tx.conn.execute(sa.update(m.centres).values(opening_hours=EVERY_DAY, closed_days=[]))

    local.store.write(op, centre_id=local.centre_id, actor="test")
    return local


def tomorrow() -> date:
    return datetime.now(ZONE).date() + timedelta(days=1)


def slots(local, service="TP", day=None):
    now = m.utcnow()
    return local.read(
        lambda conn: appointments.slots(conn, local.centre_id, service, day or tomorrow(), now)
    )


def counters_serving(local, code: str) -> int:
    cs, s = m.counter_services, m.services
    return local.read(
        lambda conn: conn.execute(
            sa.select(sa.func.count())
            .select_from(cs.join(s, s.c.id == cs.c.service_id))
            .where(s.c.code == code)
        ).scalar_one()
    )


def book(local, slot, phone="0912345678", service="TP", name="Nguyễn Văn An"):
    payload = {"service": service, "slot": slot.start.isoformat(), "name": name, "phone": phone}
    return appointments.book(local.store, local.centre_id, payload, "citizen:test")


def test_slots_cover_the_opening_hours_with_half_the_counters_time(centre):
    found = slots(centre)
    assert len(found) == 8 + 7  # 07:30-11:30 and 13:30-17:00 in half hours
    assert found[0].start == datetime.combine(tomorrow(), datetime.min.time(), ZONE).replace(
        hour=7, minute=30
    )
    # 5-minute services (centre.toml), half of each serving counter's 30 minutes.
    assert found[0].capacity == 3 * counters_serving(centre, "TP") and found[0].free > 0


def test_a_service_capacity_set_per_slot_and_a_closed_day(centre):
    def op(tx):
        tx.conn.execute(
            sa.update(m.services).where(m.services.c.code == "TP").values(slot_capacity=2)
        )
        tx.conn.execute(sa.update(m.centres).values(closed_days=[tomorrow().isoformat()]))

    centre.store.write(op, centre_id=centre.centre_id, actor="test")
    assert slots(centre) == []
    assert {s.capacity for s in slots(centre, day=tomorrow() + timedelta(days=1))} == {2}


def test_days_outside_the_booking_window_and_unknown_services_are_refused(centre):
    today = datetime.now(ZONE).date()
    with pytest.raises(QueueError) as e:
        slots(centre, day=today - timedelta(days=1))
    assert e.value.key == "booking_day_out_of_range"
    with pytest.raises(QueueError) as e:
        slots(centre, day=today + timedelta(days=15))
    assert e.value.key == "booking_day_out_of_range"
    with pytest.raises(QueueError) as e:
        slots(centre, service="XX")
    assert e.value.code == "not_found"


def test_a_booking_takes_a_place_until_the_slot_is_full(centre):
    def op(tx):
        tx.conn.execute(
            sa.update(m.services).where(m.services.c.code == "TP").values(slot_capacity=2)
        )

    centre.store.write(op, centre_id=centre.centre_id, actor="test")
    slot = slots(centre)[0]
    first = book(centre, slot, phone="+84 912 345 678")
    assert appointments.valid_code(first["code"]) and first["status"] == "booked"
    assert first["phone"] == "*******678" and first["slot"]["start"].startswith(
        tomorrow().isoformat()
    )
    assert slots(centre)[0].free == 1
    book(centre, slot, phone="0987654321")
    with pytest.raises(QueueError) as e:
        book(centre, slot, phone="0977777777")
    assert (e.value.code, e.value.key) == ("conflict", "slot_full")


def test_a_phone_holds_two_bookings_and_garbage_is_refused(centre):
    found = slots(centre)
    book(centre, found[0])
    book(centre, found[1], phone="0912.345.678")
    with pytest.raises(QueueError) as e:
        book(centre, found[2])
    assert e.value.key == "too_many_bookings"
    for phone in ("12345", "0212345678", "09123456789"):
        with pytest.raises(QueueError) as e:
            book(centre, found[3], phone=phone)
        assert e.value.code == "bad_request"

    def attempt(slot: str):
        payload = {"service": "TP", "slot": slot, "name": "An", "phone": "0922222222"}
        with pytest.raises(QueueError) as e:
            appointments.book(centre.store, centre.centre_id, payload, "citizen:test")
        return e.value

    assert attempt("08:00").key == "bad_value"  # not a date and time
    assert attempt(found[0].start.replace(tzinfo=None).isoformat()).key == "bad_value"  # no zone
    e = attempt(found[0].start.replace(minute=7).isoformat())  # not a slot's start
    assert e.key == "no_such_slot"


def test_cancelling_frees_the_place_once_and_a_past_booking_is_missed(centre):
    slot = slots(centre)[0]
    booked = book(centre, slot)
    code = booked["code"]
    assert slots(centre)[0].booked == 1
    assert appointments.cancel(centre.store, code, "citizen:test")["status"] == "cancelled"
    assert slots(centre)[0].booked == 0
    with pytest.raises(QueueError) as e:
        appointments.cancel(centre.store, code, "citizen:test")
    assert e.value.key == "booking_cancelled"
    for wrong in ("1234567", "12345678", "abcdefgh"):
        with pytest.raises(QueueError) as e:
            appointments.cancel(centre.store, wrong, "citizen:test")
        assert e.value.key in ("bad_booking_code", "unknown_booking")

    other = book(centre, slot, phone="0987654321")["code"]

    def past(tx):
        a = m.appointments
        tx.conn.execute(
            sa.update(a)
            .where(a.c.code == other)
            .values(
                slot_start=m.utcnow() - timedelta(days=1, hours=1),
                slot_end=m.utcnow() - timedelta(days=1),
            )
        )

    centre.store.write(past, centre_id=centre.centre_id, actor="test")
    assert (
        centre.read(lambda conn: appointments.lookup(conn, other, m.utcnow()))["status"] == "missed"
    )
    with pytest.raises(QueueError) as e:
        appointments.cancel(centre.store, other, "citizen:test")
    assert e.value.key == "booking_missed"


def test_phone_numbers_are_erased_once_the_slots_day_has_ended(centre):
    today_code = book(centre, slots(centre)[0])["code"]
    yesterday_code = book(centre, slots(centre)[1], phone="0987654321")["code"]
    a = m.appointments

    def move(tx):
        start = datetime.now(UTC) - timedelta(days=1)
        tx.conn.execute(
            sa.update(a)
            .where(a.c.code == yesterday_code)
            .values(slot_start=start, slot_end=start + timedelta(minutes=30))
        )

    centre.store.write(move, centre_id=centre.centre_id, actor="test")
    assert appointments.purge_phones(centre.store, m.utcnow()) == 1
    phones = dict(centre.read(lambda conn: conn.execute(sa.select(a.c.code, a.c.phone)).all()))
    assert phones == {today_code: "0912345678", yesterday_code: None}
    assert appointments.purge_phones(centre.store, m.utcnow()) == 0


# -- check-in and the calling order ---------------------------------------------------------
def _move_slot(local, code: str, start: datetime, minutes: int = 30) -> None:
    a = m.appointments

    def op(tx):
        tx.conn.execute(
            sa.update(a)
            .where(a.c.code == code)
            .values(slot_start=start, slot_end=start + timedelta(minutes=minutes))
        )

    local.store.write(op, centre_id=local.centre_id, actor="test")


def _booked_now(local, phone: str, begun_min: float = 5) -> str:
    """A TP booking whose slot began ``begun_min`` minutes ago (negative: not yet)."""
    code = book(local, slots(local)[0], phone=phone)["code"]
    _move_slot(local, code, datetime.now(UTC) - timedelta(minutes=begun_min))
    return code


def test_a_booking_checks_in_once_in_its_window_as_an_appointment_ticket(centre):
    kiosk = centre.device(KIOSK)
    code = _booked_now(centre, "0912345678")
    checked = centre.engine.check_in(kiosk, code)
    ticket = checked["ticket"]
    assert ticket["appointment"] is not None and checked["appointment"]["late"] is False
    assert ticket["service"]["code"] == "TP" and ticket["number"].startswith("A")
    found = centre.read(lambda conn: appointments.lookup(conn, code, m.utcnow()))
    assert found["status"] == "checked_in"
    with pytest.raises(QueueError) as e:
        centre.engine.check_in(kiosk, code)
    assert (e.value.code, e.value.key) == ("conflict", "booking_checked_in")
    for garbage in ("", "1234", "12345678", "abcdefgh"):
        with pytest.raises(QueueError) as e:
            centre.engine.check_in(kiosk, garbage)
        assert e.value.key in ("bad_booking_code", "unknown_booking")


def test_the_printed_ticket_of_a_check_in_says_its_time(centre):
    code = _booked_now(centre, "0912345678")
    checked = centre.engine.check_in(centre.device(KIOSK_B), code)  # a kiosk with a printer
    assert checked["print"] is not None
    job = next(c["change"]["print"] for c in reversed(centre.changes) if c["change"].get("print"))
    assert job["face"]["appointment"] == checked["ticket"]["appointment"][11:16]
    walk_in = centre.engine.issue_ticket(centre.device(KIOSK_B), "TP")
    job = next(c["change"]["print"] for c in reversed(centre.changes) if c["change"].get("print"))
    assert walk_in["print"] and "appointment" not in job["face"]  # older agents know no such key


def test_too_early_says_when_to_come_back_and_too_late_gives_a_walk_in_ticket(centre):
    kiosk = centre.device(KIOSK)
    early = _booked_now(centre, "0912345678", begun_min=-90)  # the slot is 90 min away
    with pytest.raises(QueueError) as e:
        centre.engine.check_in(kiosk, early)
    assert e.value.key == "check_in_too_early"
    back = [
        (datetime.now(UTC) + timedelta(minutes=k)).astimezone(ZONE).strftime("%H:%M")
        for k in (59, 60, 61)
    ]
    assert e.value.params["time"][:5] in back  # half an hour before the slot: in an hour
    late = _booked_now(centre, "0987654321", begun_min=40)  # the 30-min slot ended
    if datetime.now(ZONE).hour == 0 and datetime.now(ZONE).minute < 40:
        pytest.skip("the slot would lie yesterday")
    checked = centre.engine.check_in(kiosk, late)
    assert checked["appointment"]["late"] is True and checked["ticket"]["appointment"] is None


def test_appointments_in_their_slot_go_ahead_of_walk_ins_two_at_a_time(centre):
    kiosk = centre.device(KIOSK)
    walk_ins = [centre.engine.issue_ticket(kiosk, "TP")["ticket"]["number"] for _ in range(3)]
    booked = []
    for phone in ("0912345678", "0987654321", "0977777777"):
        booked.append(centre.engine.check_in(kiosk, _booked_now(centre, phone))["ticket"]["number"])
    not_yet = centre.engine.check_in(kiosk, _booked_now(centre, "0966666666", begun_min=-20))
    assert not_yet["ticket"]["appointment"] is not None  # checked in early: waits as a walk-in
    clerk = centre.clerk("clerk1", 1)
    called = []
    for _ in range(7):
        ticket = centre.engine.call_next(clerk)["ticket"]
        called.append(ticket["number"])
        centre.engine.no_show(clerk, ticket["id"])
    assert called == [
        booked[0],
        booked[1],
        walk_ins[0],  # two appointments in a row, then a walk-in who waits
        booked[2],
        walk_ins[1],
        walk_ins[2],
        not_yet["ticket"]["number"],  # its slot has not begun: by the time it came
    ]


def test_another_centres_kiosk_does_not_know_the_code(centre):
    from core.provisioning import provision
    from harness.centre import COMMUNE

    provision(centre.store, COMMUNE)
    code = _booked_now(centre, "0912345678")
    commune_kiosk = centre.device("t2-kiosk-token-00001")
    assert commune_kiosk.centre_id != centre.centre_id
    with pytest.raises(QueueError) as e:
        centre.engine.check_in(commune_kiosk, code)
    assert (e.value.code, e.value.key) == ("not_found", "unknown_booking")
    assert centre.engine.check_in(centre.device(KIOSK), code)["ticket"]["appointment"]


def test_the_reports_count_the_days_bookings_and_their_waits_against_walk_ins(centre):
    from core import reports

    kiosk = centre.device(KIOSK)
    centre.engine.issue_ticket(kiosk, "TP")  # a walk-in
    on_time = _booked_now(centre, "0912345678")
    centre.engine.check_in(kiosk, on_time)
    _booked_now(centre, "0987654321", begun_min=40)  # its slot over, nobody came: missed
    late = _booked_now(centre, "0977777777", begun_min=35)
    if datetime.now(ZONE).hour == 0 and datetime.now(ZONE).minute < 40:
        pytest.skip("the slots would lie yesterday")
    centre.engine.check_in(kiosk, late)  # after its slot: an ordinary ticket
    cancelled = _booked_now(centre, "0966666666", begun_min=-20)
    appointments.cancel(centre.store, cancelled, "citizen:test")
    clerk = centre.clerk("clerk1", 1)
    for _ in range(3):
        ticket = centre.engine.call_next(clerk)["ticket"]
        centre.engine.no_show(clerk, ticket["id"])
    today = datetime.now(ZONE).date()
    report = centre.read(
        lambda conn: reports.summary(conn, centre.centre_id, today, today, m.utcnow())
    )
    got = report["appointments"]
    counts = {k: got[k] for k in ("booked", "checked_in", "late", "missed", "cancelled")}
    assert counts == {"booked": 4, "checked_in": 1, "late": 1, "missed": 1, "cancelled": 1}
    assert got["wait_s"]["appointments"]["n"] == 1 and got["wait_s"]["walk_ins"]["n"] == 2
