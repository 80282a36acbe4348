"""Whole visits through every role, on SQLite and PostgreSQL, checking acks and events."""

from __future__ import annotations

import re

import requests

from harness.centre import DISPLAY_C3


def test_visit_from_ticket_to_rating(any_server, devices):
    display = devices.display(any_server)
    snap = display.wait_event("snapshot")
    assert snap["centre"] == {
        "code": "T1",
        "name": "Trung tâm Phục vụ hành chính công thử nghiệm",
        "timezone": "Asia/Ho_Chi_Minh",
        "notice": "Thông báo thử nghiệm: vui lòng theo dõi số của bạn trên màn hình.",
    }
    assert snap["board"]["layout"] == "office"  # 3 counters
    assert snap["board"]["announce"]["form"] == "digits"
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
    # Boards show counts, not tickets: the batch carries TP's new count and no event.
    assert display.wait_service("TP", waiting=1)["open"] is False
    batch = display.batches()[-1]
    assert batch["events"] == [] and batch["after"] == snap["seq"] and batch["seq"] > snap["seq"]
    assert kiosk.wait_service("TP", waiting=1)["estimated_wait_s"] >= 0

    second = kiosk.call("issue", {"service": "HT"})
    assert second["ticket"]["number"] == "B100"  # HT starts at 100

    counter = devices.counter(any_server, "clerk1", 1)
    state = counter.wait_event("counter_state")
    assert state["protocol"] == 2
    assert state["counter"]["services"] == ["TP", "HT"]
    assert state["waiting"] == {"TP": 1, "HT": 1}
    assert [t["number"] for t in state["queue"]] == ["A001", "B100"]
    called = counter.call("call_next", {})
    assert called["ok"] and called["ticket"]["number"] == "A001", called
    assert called["ticket"]["status"] == "called" and called["ticket"]["counter"] == 1
    event = display.wait_change("called")
    assert event["ticket"]["number"] == "A001"
    assert event["counter"] == {"number": 1, "name": "Quầy 1"}
    assert event["recall"] is False
    assert counter.wait_change("called")["ticket"]["id"] == ticket["id"]
    opened = rating.wait_change("counter_opened")
    assert opened["staff"] == {"full_name": "Nguyễn Văn A"}
    assert rating.wait_change("called")["ticket"]["number"] == "A001"

    assert counter.call("recall", {"ticket_id": ticket["id"]})["ok"]
    assert display.wait_change("called")["recall"] is True
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
    request = rating.wait_change("finished")  # the tablet asks for a rating
    assert request["ticket"]["number"] == "A001" and request["ticket"]["counter"] == 1
    assert request["staff"] == {"full_name": "Nguyễn Văn A"}
    assert rating.call("rate", {"ticket_id": ticket["id"], "score": 3})["ok"]
    again = rating.call("rate", {"ticket_id": ticket["id"], "score": 1})
    assert again["error"]["code"] == "already_rated"
    assert "đánh giá" in again["error"]["message"]

    assert rating.wait_change("rated")["ticket"]["id"] == ticket["id"]

    # A display bound to counter 3 hears nothing of counter 1.
    display3 = devices.display(any_server, DISPLAY_C3)
    snap3 = display3.wait_event("snapshot")
    assert [c["number"] for c in snap3["counters"]] == [3]
    assert snap3["recent_calls"] == [] and snap3["waiting"] == {"DD": 0}
    kiosk.call("issue", {"service": "TP"})
    assert display.wait_service("TP", waiting=1)
    assert display3.batches() == []

    # Every batch starts where the previous one ended; events are in seq order.
    assert display.chain_problem() is None
    seqs = display.event_seqs()
    assert seqs == sorted(set(seqs)), seqs
    assert all(e["kind"] != "issued" for b in display.batches() for e in b["events"])


def test_english_errors_are_english_throughout(sqlite_server, devices):
    kiosk = devices(sqlite_server, "/kiosk", {"token": "test-kiosk-token-0001", "lang": "en"})
    unknown = kiosk.call("issue", {"service": "ZZ"})
    assert unknown["error"] == {
        "code": "not_found",
        "message": "There is no service 'ZZ' at this centre.",
    }
    wrong = kiosk.call("issue", {"service": 5})
    assert wrong["error"]["message"] == "Field 'service' must be a string."
    long = kiosk.call("issue", {"service": "X" * 40})
    assert long["error"]["message"] == "Invalid 'service': longer than 32"


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
