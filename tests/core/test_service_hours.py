"""A service's own opening hours and the priority groups it accepts (issue 18): the engine
issues its tickets only within them, in the centre's time zone, and refuses a group it
does not accept; the kiosk's snapshot and the booking slots follow them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from core import appointments, views
from core import models as m
from core.errors import QueueError
from core.hours import OpeningHours, when_words
from harness.centre import KIOSK

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")  # UTC+7, the test centre's
# Tuesday and Thursday mornings: the service of an example in docs/admin.md.
MORNINGS = {"tue": ["07:30-11:30"], "thu": ["07:30-11:30"]}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write(local, statement):
    local.store.write(
        lambda tx: tx.conn.execute(statement), centre_id=local.centre_id, actor="test"
    )


def set_service(local, code="TP", **values):
    s = m.services
    write(
        local,
        sa.update(s).where(s.c.centre_id == local.centre_id, s.c.code == code).values(**values),
    )


@pytest.fixture
def clock(monkeypatch):
    """The store's clock (each transaction's ``now``), set by the test."""
    now = {"at": None}
    real = m.utcnow
    monkeypatch.setattr(m, "utcnow", lambda: now["at"] or real())

    def at(when: datetime):
        now["at"] = when

    return at


def refused(fn, *args, **kwargs) -> QueueError:
    with pytest.raises(QueueError) as e:
        fn(*args, **kwargs)
    return e.value


def test_the_next_opening_is_read_in_the_centres_time_zone():
    hours = OpeningHours.parse(MORNINGS, ["2026-12-10"])
    # Monday 23:00 UTC is Tuesday 06:00 in Hanoi: opens the same (local) morning.
    assert not hours.is_open(utc(2026, 12, 7, 23, 0), HANOI)
    assert hours.next_open(utc(2026, 12, 7, 23, 0), HANOI) == datetime(
        2026, 12, 8, 7, 30, tzinfo=HANOI
    )
    assert hours.is_open(utc(2026, 12, 8, 0, 30), HANOI)  # 07:30 local
    # 08:00 UTC on Tuesday is 15:00 in Hanoi: closed (UTC's clock would say open); Thursday
    # the 10th is a closed day, so it opens on the next Tuesday.
    assert not hours.is_open(utc(2026, 12, 8, 8, 0), HANOI)
    assert hours.next_open(utc(2026, 12, 8, 8, 0), HANOI) == datetime(
        2026, 12, 15, 7, 30, tzinfo=HANOI
    )
    assert when_words(datetime(2026, 12, 15, 7, 30, tzinfo=HANOI), HANOI) == (
        "07:30 thứ Ba 15/12/2026",
        "07:30 Tuesday 15/12/2026",
    )


def test_a_service_with_its_own_hours_issues_only_within_them(local, clock):
    kiosk = local.device(KIOSK)
    set_service(local, opening_hours=MORNINGS)
    # Tuesday 8 December 2026, 07:29 in Hanoi (00:29 UTC): a minute early.
    clock(utc(2026, 12, 8, 0, 29))
    early = refused(local.engine.issue_ticket, kiosk, "TP")
    assert (early.code, early.key) == ("conflict", "service_closed_now")
    assert early.as_dict()["message"] == (
        "Lĩnh vực “Lý lịch tư pháp” chỉ nhận hồ sơ trong giờ làm việc riêng của lĩnh vực: "
        "hiện đang ngoài giờ. Mời Ông/Bà quay lại lúc 07:30 thứ Ba 08/12/2026."
    )
    assert early.as_dict("en")["message"] == (
        "Service 'Criminal record certificates' takes tickets only within its own opening "
        "hours, and it is closed now. Please come back at 07:30 Tuesday 08/12/2026."
    )
    # Another service, without hours of its own, takes tickets as before.
    assert local.engine.issue_ticket(kiosk, "HT")["ticket"]["number"] == "B100"
    clock(utc(2026, 12, 8, 0, 30))  # 07:30
    assert local.engine.issue_ticket(kiosk, "TP")["ticket"]["number"] == "A001"
    clock(utc(2026, 12, 8, 4, 29))  # 11:29
    assert local.engine.issue_ticket(kiosk, "TP")["ticket"]["number"] == "A002"
    clock(utc(2026, 12, 8, 4, 30))  # 11:30: closed until Thursday
    late = refused(local.engine.issue_ticket, kiosk, "TP")
    assert "07:30 thứ Năm 10/12/2026" in late.as_dict()["message"]
    # The centre's closed days close the service too.
    c = m.centres
    write(local, sa.update(c).where(c.c.id == local.centre_id).values(closed_days=["2026-12-10"]))
    late = refused(local.engine.issue_ticket, kiosk, "TP")
    assert "07:30 Tuesday 15/12/2026" in late.as_dict("en")["message"]
    issued = [c["change"] for c in local.changes if c["change"]["kind"] == "issued"]
    assert [e["ticket"]["number"] for e in issued] == ["B100", "A001", "A002"]


def test_a_service_takes_only_the_priority_groups_it_accepts(local):
    kiosk = local.device(KIOSK)
    set_service(local, priorities=["elderly", "disabled"])
    no = refused(local.engine.issue_ticket, kiosk, "TP", "pregnant")
    assert (no.code, no.key) == ("bad_request", "priority_not_accepted")
    assert no.as_dict()["message"] == (
        "Lĩnh vực “Lý lịch tư pháp” không nhận đối tượng ưu tiên “Phụ nữ mang thai”. Lĩnh vực "
        "này nhận: Người cao tuổi, Người khuyết tật. Ông/Bà vẫn lấy được số thường."
    )
    assert "does not accept the priority group 'Pregnant woman'" in no.as_dict("en")["message"]
    assert local.engine.issue_ticket(kiosk, "TP", "elderly")["ticket"]["priority"] == "elderly"
    assert local.engine.issue_ticket(kiosk, "TP")["ticket"]["priority"] is None
    # Every group where none is said.
    assert local.engine.issue_ticket(kiosk, "HT", "pregnant")["ticket"]["priority"] == "pregnant"
    issued = [c["change"] for c in local.changes if c["change"]["kind"] == "issued"]
    assert len(issued) == 3  # nothing written for the refusal


def test_the_kiosk_snapshot_says_a_services_hours_and_groups(local, clock):
    set_service(local, opening_hours=MORNINGS, priorities=["merit"])
    clock(utc(2026, 12, 8, 5, 0))  # Tuesday 12:00 in Hanoi
    snap = local.view(views.kiosk_snapshot, local.centre_id)
    tp, ht = snap["services"][0], snap["services"][1]
    assert tp["code"] == "TP" and tp["priorities"] == ["merit"]
    assert tp["opening"][:2] == [
        ["2026-12-10T07:30:00+07:00", "2026-12-10T11:30:00+07:00"],
        ["2026-12-15T07:30:00+07:00", "2026-12-15T11:30:00+07:00"],
    ]
    assert len(tp["opening"]) == 4  # 15 days: two weeks and a day
    assert ht["opening"] is None and ht["priorities"] is None


def test_booking_slots_are_cut_from_the_services_own_hours(local):
    set_service(local, opening_hours={"tue": ["07:30-09:00"]}, slot_capacity=2)
    now = m.utcnow()
    today = now.astimezone(HANOI).date()
    tuesday = today + timedelta(days=(1 - today.weekday()) % 7 or 7)
    wednesday = tuesday + timedelta(days=1)

    def slots(code, day: date):
        return local.read(lambda conn: appointments.slots(conn, local.centre_id, code, day, now))

    assert [s.start.strftime("%H:%M") for s in slots("TP", tuesday)] == ["07:30", "08:00", "08:30"]
    assert slots("TP", wednesday) == []
    assert len(slots("HT", wednesday)) == 15  # the centre's hours: 7 + 8 half hours


def test_a_ticket_sent_to_a_service_not_taking_its_group_waits_as_a_walk_ins(local):
    """A clerk's transfer and a manager's move: the ticket keeps its place but not a
    priority its new service does not take; the queue's counts follow, and the audit
    says what was dropped."""
    kiosk, engine = local.device(KIOSK), local.engine
    set_service(local, code="HT", priorities=["disabled"])
    clerk = local.clerk("clerk1", 1)  # counter 1 serves TP and HT
    elderly = engine.issue_ticket(kiosk, "TP", "elderly")["ticket"]
    waiting = engine.issue_ticket(kiosk, "TP", "elderly")["ticket"]
    engine.call_next(clerk)
    engine.start(clerk, elderly["id"])
    sent = engine.transfer(clerk, elderly["id"], service="HT")["ticket"]
    assert sent["priority"] is None and sent["service"]["code"] == "HT"
    moved = engine.move_ticket(local.manager(), waiting["id"], service="HT")["ticket"]
    assert moved["priority"] is None

    def counts(conn):
        q, s = m.queue_counts, m.services
        rows = conn.execute(
            sa.select(s.c.code, q.c.waiting, q.c.waiting_priority).join(q, q.c.service_id == s.c.id)
        ).all()
        return {code: (w, p) for code, w, p in rows}

    assert local.read(counts) == {"TP": (0, 0), "HT": (2, 0)}
    details = local.read(
        lambda conn: (
            conn.execute(
                sa.select(m.audit_log.c.details).where(
                    m.audit_log.c.action.in_(("transferred", "moved"))
                )
            )
            .scalars()
            .all()
        )
    )
    assert [d.get("priority_dropped") for d in details] == ["elderly", "elderly"]
    # A service taking the group keeps it.
    set_service(local, code="HT", priorities=None)
    kept = engine.issue_ticket(kiosk, "TP", "disabled")["ticket"]
    kept = engine.move_ticket(local.manager(), kept["id"], service="HT")["ticket"]
    assert kept["priority"] == "disabled"
    assert local.read(counts)["HT"] == (3, 1)
