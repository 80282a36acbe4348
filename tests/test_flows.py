"""Whole visits through every role, on SQLite and PostgreSQL, checking acks and events."""

from __future__ import annotations

import re

import requests

from conftest import DISPLAY_C3


def test_visit_from_ticket_to_rating(any_server, devices):
    display = devices.display(any_server)
    snap = display.wait_event("snapshot")
    assert snap["centre"] == {"code": "T1", "name": "Trung tâm Phục vụ hành chính công thử nghiệm"}
    assert [c["number"] for c in snap["counters"]] == [1, 2, 3]
    kiosk = devices.kiosk(any_server)
    services = kiosk.wait_event("services")
    assert [s["code"] for s in services["services"]] == ["TP", "HT", "DD"]
    assert services["services"][0]["agency"] == "Sở Tư pháp"
    rating = devices.rating(any_server)
    assert rating.wait_event("rating_state")["current"] is None

    issued = kiosk.call("issue", {"service": "TP"})
    assert issued["ok"], issued
    ticket = issued["ticket"]
    assert ticket["number"] == "A001"
    assert ticket["service"] == {"code": "TP", "name": "Lý lịch tư pháp"}
    assert ticket["status"] == "waiting" and ticket["priority"] is None
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00$", ticket["issued_at"])
    assert issued["ahead"] == 0
    assert issued["status_url"].startswith(any_server.url + "/t/")
    update = display.wait_event("update", kind="issued")
    assert update["ticket"]["number"] == "A001"
    assert {"code": "TP", "waiting": 1} == {
        k: update["services"][0][k] for k in ("code", "waiting")
    }

    second = kiosk.call("issue", {"service": "HT"})
    assert second["ticket"]["number"] == "B100"  # HT starts at 100

    counter = devices.counter(any_server, "clerk1", 1)
    state = counter.wait_event("counter_state")
    assert state["counter"]["services"] == ["TP", "HT"]
    assert state["waiting"] == {"TP": 1, "HT": 1}
    called = counter.call("call_next", {})
    assert called["ok"] and called["ticket"]["number"] == "A001", called
    assert called["ticket"]["status"] == "called" and called["ticket"]["counter"] == 1
    event = display.wait_event("called")
    assert event["ticket"]["number"] == "A001"
    assert event["counter"] == {"number": 1, "name": "Quầy 1"}
    assert event["recall"] is False
    assert rating.wait_event("rating_state", current__number="A001")["staff"] == {
        "full_name": "Nguyễn Văn A"
    }

    assert counter.call("recall", {"ticket_id": ticket["id"]})["ok"]
    assert display.wait_event("called")["recall"] is True
    assert counter.call("start", {"ticket_id": ticket["id"]})["ticket"]["status"] == "serving"
    done = counter.call(
        "finish",
        {
            "ticket_id": ticket["id"],
            "dossiers": ["H15.50.05.13-261008-0975"],
            "outcome": "received",
        },
    )
    assert done["ok"] and done["ticket"]["status"] == "done", done
    request = rating.wait_event("rate_request")
    assert request["ticket"]["number"] == "A001"
    assert request["staff"] == {"full_name": "Nguyễn Văn A"}
    assert request["counter"] == {"number": 1}
    assert rating.call("rate", {"ticket_id": ticket["id"], "score": 3})["ok"]
    again = rating.call("rate", {"ticket_id": ticket["id"], "score": 1})
    assert again["error"]["code"] == "already_rated"
    assert "đánh giá" in again["error"]["message"]

    # The display only for counter 3 still receives everything, in order.
    display3 = devices.display(any_server, DISPLAY_C3)
    snap3 = display3.wait_event("snapshot")
    assert [c["number"] for c in snap3["counters"]] == [3]
    assert snap3["recent_calls"] == []
    assert snap3["seq"] >= done["ticket"]["id"]

    seqs = display.seqs()
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def test_status_page_shows_position(sqlite_server, devices):
    kiosk = devices.kiosk(sqlite_server)
    first = kiosk.call("issue", {"service": "TP"})
    second = kiosk.call("issue", {"service": "TP"})
    assert second["ahead"] == 1
    page = requests.get(second["status_url"], timeout=5)
    assert page.status_code == 200
    assert "A002" in page.text and "Đang chờ" in page.text
    assert requests.get(first["status_url"] + "x", timeout=5).status_code == 404


def test_ticket_numbers_restart_per_prefix_and_never_repeat(sqlite_server, devices):
    a = devices.kiosk(sqlite_server)
    numbers = [a.call("issue", {"service": "TP"})["ticket"]["number"] for _ in range(5)]
    assert numbers == ["A001", "A002", "A003", "A004", "A005"]
