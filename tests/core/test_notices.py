"""Messages to citizens (core/notices.py, gateway/notify.py): written with what makes
them due, sent after through a real loopback stand-in for the SMS gateway and ZNS,
retried while a gateway is down, falling from ZNS to SMS, each sent once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from core import appointments, notices
from core import models as m
from gateway import notify
from harness.centre import KIOSK
from harness.gateways import SMS_PATH, ZNS_PATH, ZNS_TOKEN, StandIn

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
EVERY_DAY = {
    d: ["07:30-11:30", "13:30-17:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


@pytest.fixture
def centre(local):
    local.store.write(
        lambda tx: tx.conn.execute(sa.update(m.centres).values(opening_hours=EVERY_DAY)),
        centre_id=local.centre_id,
        actor="test",
    )
    return local


@pytest.fixture
def gateway():
    g = StandIn().start()
    yield g
    g.stop()


def sms(gateway) -> notify.SmsGateway:
    return notify.SmsGateway(gateway.url + SMS_PATH, "key", "secret", "TTHCC")


def zns(gateway, token=ZNS_TOKEN) -> notify.ZaloZns:
    templates = {"booked": "301", "reminder": "302", "near": "303", "called": "304"}
    return notify.ZaloZns(gateway.url + ZNS_PATH, token, templates)


def outbox(local) -> list[dict]:
    n = m.notifications
    return [
        dict(r._mapping) for r in local.read(lambda c: c.execute(sa.select(n).order_by(n.c.id)))
    ]


def book(local, phone="0912345678"):
    day = datetime.now(ZONE).date() + timedelta(days=1)
    slot = local.read(
        lambda conn: appointments.slots(conn, local.centre_id, "TP", day, m.utcnow())
    )[0]
    payload = {
        "service": "TP",
        "slot": slot.start.isoformat(),
        "name": "Võ Thị Lan",
        "phone": phone,
    }
    return appointments.book(
        local.store, local.centre_id, payload, "citizen:test", "http://tthc.vn"
    )


def test_a_booking_is_confirmed_by_sms_once(centre, gateway):
    code = book(centre)["code"]
    [row] = outbox(centre)
    assert (row["kind"], row["status"], row["dedupe"]) == ("booked", "pending", f"booked:{code}")
    sender = notify.Sender(centre.store, [sms(gateway)])
    assert sender.send_due() == 1
    [(channel, body)] = gateway.received
    assert channel == "sms" and body["Phone"] == "0912345678" and body["SmsType"] == "2"
    assert body["Brandname"] == "TTHCC" and body["IsUnicode"] == "1"
    assert code in body["Content"] and f"http://tthc.vn/hen/{code}" in body["Content"]
    assert "Lý lịch tư pháp" in body["Content"]  # with its diacritics
    [row] = outbox(centre)
    assert (row["status"], row["channel"], row["phone"]) == ("sent", "sms", None)
    assert sender.send_due() == 0 and len(gateway.received) == 1


def test_zns_first_and_sms_when_zns_will_not_take_it(centre, gateway):
    book(centre)
    sender = notify.Sender(centre.store, [zns(gateway), sms(gateway)])
    gateway.zns_answer = {"error": -118, "message": "Zalo account not existed"}
    sender.send_due()
    assert [c for c, _ in gateway.received] == ["zns", "sms"]
    zalo = gateway.received[0][1]
    assert zalo["phone"] == "84912345678" and zalo["template_id"] == "301"
    assert (
        zalo["template_data"]["service"] == "Lý lịch tư pháp"
        and "lang" not in zalo["template_data"]
    )
    assert outbox(centre)[0]["channel"] == "sms"


def test_a_gateway_that_is_down_delays_nothing_and_its_message_goes_when_it_is_back(
    centre, gateway
):
    gateway.stop()
    code = book(centre)["code"]  # the booking is not held up by the gateway
    sender = notify.Sender(centre.store, [sms(gateway)])
    sender.send_due()
    [row] = outbox(centre)
    assert row["status"] == "pending" and row["attempts"] == 1 and "ConnectionError" in row["error"]
    assert row["next_at"] > datetime.now(UTC) + timedelta(seconds=10)  # backs off
    assert sender.send_due() == 0  # not before its time
    gateway.start()
    n = m.notifications
    centre.store.write(
        lambda tx: tx.conn.execute(sa.update(n).values(next_at=m.utcnow())),
        centre_id=0,
        actor="test",
    )
    sender.send_due()
    assert outbox(centre)[0]["status"] == "sent" and code in gateway.received[0][1]["Content"]


def test_a_token_to_renew_is_retried_and_a_message_too_old_expires(centre, gateway):
    book(centre)
    sender = notify.Sender(centre.store, [zns(gateway, token="expired")])
    sender.send_due()
    row = outbox(centre)[0]
    assert row["status"] == "pending" and "-124" in row["error"]
    n = m.notifications
    centre.store.write(
        lambda tx: tx.conn.execute(
            sa.update(n).values(next_at=m.utcnow(), expires_at=m.utcnow() - timedelta(seconds=1))
        ),
        centre_id=0,
        actor="test",
    )
    sender.send_due()
    assert (outbox(centre)[0]["status"], outbox(centre)[0]["phone"]) == ("expired", None)


def test_near_once_when_three_are_ahead_then_called_with_the_counter(centre, gateway):
    kiosk = centre.device(KIOSK)
    tickets = [centre.engine.issue_ticket(kiosk, "TP")["ticket"] for _ in range(6)]
    mine = tickets[-1]
    assert centre.engine.leave_phone(kiosk, mine["id"], "0987 654 321")["phone"] == "321"
    notices.due(centre.store, m.utcnow())
    assert outbox(centre) == []  # five ahead
    clerk = centre.clerk("clerk1", 1)
    for _ in range(2):
        t = centre.engine.call_next(clerk)["ticket"]
        centre.engine.no_show(clerk, t["id"])
    notices.due(centre.store, m.utcnow())
    notices.due(centre.store, m.utcnow())  # another process noticing it too: still once
    [near] = outbox(centre)
    assert near["kind"] == "near" and near["params"]["ahead"] == 3
    assert near["params"]["number"] == mine["number"] and near["phone"] == "0987654321"
    for _ in range(3):
        t = centre.engine.call_next(clerk)["ticket"]
        centre.engine.no_show(clerk, t["id"])
    called = centre.engine.call_next(clerk)["ticket"]
    assert called["id"] == mine["id"]
    notices.due(centre.store, m.utcnow())
    sender = notify.Sender(centre.store, [sms(gateway)])
    sender.send_due()
    texts = [b["Content"] for _, b in gateway.received]
    assert texts[0].endswith("còn 3 người trước Ông/Bà. Mời Ông/Bà về khu vực chờ.")
    assert texts[1].endswith(f"mời số {mine['number']} đến quầy 1.")


def test_a_phone_is_left_only_at_the_kiosk_that_issued_the_ticket_just_now(centre):
    from core.errors import QueueError
    from harness.centre import KIOSK_B

    ticket = centre.engine.issue_ticket(centre.device(KIOSK), "TP")["ticket"]
    with pytest.raises(QueueError) as e:
        centre.engine.leave_phone(centre.device(KIOSK_B), ticket["id"], "0912345678")
    assert e.value.key == "phone_too_late"
    with pytest.raises(QueueError) as e:
        centre.engine.leave_phone(centre.device(KIOSK), ticket["id"], "12345")
    assert e.value.code == "bad_request"


def test_a_reminder_the_day_before_from_eight_unless_booked_that_day(centre):
    code = book(centre)["code"]
    today = datetime.now(ZONE).date()
    morning = datetime(today.year, today.month, today.day, 9, tzinfo=ZONE)
    notices.due(centre.store, morning.astimezone(UTC))
    assert [r["kind"] for r in outbox(centre)] == ["booked"]  # booked today: confirmed today
    a = m.appointments
    centre.store.write(
        lambda tx: tx.conn.execute(sa.update(a).values(created_at=m.utcnow() - timedelta(days=3))),
        centre_id=0,
        actor="test",
    )
    notices.due(centre.store, morning.replace(hour=7).astimezone(UTC))
    assert [r["kind"] for r in outbox(centre)] == ["booked"]  # not before eight
    notices.due(centre.store, morning.astimezone(UTC))
    notices.due(centre.store, morning.astimezone(UTC))
    kinds = [r["kind"] for r in outbox(centre)]
    assert kinds == ["booked", "reminder"]
    reminder = outbox(centre)[1]
    assert reminder["params"]["code"] == code and reminder["dedupe"] == f"reminder:{code}"
    assert notices.text("reminder", reminder["params"]).startswith(
        "Trung tâm Phục vụ hành chính công thử nghiệm: nhắc Ông/Bà lịch hẹn Lý lịch tư pháp"
    )
