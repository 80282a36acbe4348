"""The queue's rules as clerks and citizens meet them: order, transfers, pauses, ratings."""

from __future__ import annotations

import time

import pytest

from conftest import RATING_2, ServerProcess


@pytest.fixture
def centre(sqlite_server, devices):
    """A kiosk, clerk1 at counter 1 and a display, connected to a fresh centre."""

    class Centre:
        server = sqlite_server
        kiosk = devices.kiosk(sqlite_server)
        counter = devices.counter(sqlite_server, "clerk1", 1)
        display = devices.display(sqlite_server)

        def issue(self, service="TP", priority=None):
            ack = self.kiosk.call("issue", {"service": service, "priority": priority})
            assert ack["ok"], ack
            return ack["ticket"]

        def call_next(self, counter=None):
            return (counter or self.counter).call("call_next", {})

    c = Centre()
    c.counter.wait_event("counter_state")
    return c


def test_priority_goes_first_but_every_fourth_call_is_a_normal_ticket(centre):
    normal = [centre.issue()["number"] for _ in range(2)]
    priority = [
        centre.issue(priority=p)["number"]
        for p in ("elderly", "disabled", "pregnant", "infant", "merit")
    ]
    order = []
    for _ in range(7):
        ack = centre.call_next()
        assert ack["ok"], ack
        order.append(ack["ticket"]["number"])
        assert centre.counter.call("start", {"ticket_id": ack["ticket"]["id"]})["ok"]
    assert order == priority[:3] + normal[:1] + priority[3:] + normal[1:]
    assert centre.call_next()["ok"] is False


def test_call_next_finishes_a_ticket_being_served_but_never_skips_a_called_one(centre, devices):
    rating = devices.rating(centre.server)
    first, second = centre.issue(), centre.issue()
    assert centre.call_next()["ticket"]["id"] == first["id"]
    busy = centre.call_next()  # a double press while the citizen walks over
    assert busy["error"]["code"] == "conflict"
    assert first["number"] in busy["error"]["message"]
    assert centre.counter.call("start", {"ticket_id": first["id"]})["ok"]
    nxt = centre.call_next()
    assert nxt["ticket"]["id"] == second["id"]
    finished = centre.display.wait_event("update", kind="finished")
    assert finished["ticket"]["id"] == first["id"] and finished["ticket"]["status"] == "done"
    assert rating.wait_event("rate_request")["ticket"]["id"] == first["id"]
    empty = centre.call_next()
    assert empty["ok"] is False  # second is still called, not served
    assert centre.counter.call("no_show", {"ticket_id": second["id"]})["ticket"]["status"] == (
        "no_show"
    )
    empty = centre.call_next()
    assert empty["error"]["code"] == "queue_empty"
    assert "Không còn công dân" in empty["error"]["message"]


def test_transfer_to_a_service_keeps_the_original_place(centre):
    moved = centre.issue("TP")
    later = centre.issue("HT")
    assert centre.call_next()["ticket"]["id"] == moved["id"]
    ack = centre.counter.call("transfer", {"ticket_id": moved["id"], "service": "HT"})
    assert ack["ok"], ack
    assert ack["ticket"]["status"] == "transferred"
    assert ack["ticket"]["service"]["code"] == "HT"
    update = centre.display.wait_event("update", kind="transferred")
    assert {s["code"] for s in update["services"]} == {"TP", "HT"}
    # Counter 1 serves HT too: the transferred ticket, issued first, comes before `later`.
    assert centre.call_next()["ticket"]["id"] == moved["id"]
    assert centre.counter.call("start", {"ticket_id": moved["id"]})["ok"]
    assert centre.call_next()["ticket"]["id"] == later["id"]


def test_transfer_to_a_counter_reaches_only_that_counter(centre, devices):
    ticket = centre.issue("TP")
    centre.call_next()
    assert centre.counter.call("transfer", {"ticket_id": ticket["id"], "counter": 3})["ok"]
    counter2 = devices.counter(centre.server, "clerk2", 2)  # serves TP, but not this ticket
    assert counter2.call("call_next", {})["error"]["code"] == "queue_empty"
    counter3 = devices.counter(centre.server, "clerk3", 3)  # serves only DD
    state = counter3.wait_event("counter_state")
    assert state["counter"]["number"] == 3
    called = counter3.call("call_next", {})
    assert called["ticket"]["id"] == ticket["id"] and called["ticket"]["counter"] == 3
    unknown = centre.counter.call("transfer", {"ticket_id": ticket["id"], "counter": 99})
    assert unknown["error"]["code"] == "conflict"  # no longer at counter 1


def test_call_a_given_number_out_of_order_and_refuse_other_services(centre):
    first, second = centre.issue("TP"), centre.issue("TP")
    land = centre.issue("DD")
    ack = centre.counter.call("call", {"ticket_id": second["id"]})
    assert ack["ticket"]["id"] == second["id"]
    assert centre.display.wait_event("called")["ticket"]["number"] == second["number"]
    assert centre.counter.call("start", {"ticket_id": second["id"]})["ok"]
    refused = centre.counter.call("call", {"ticket_id": land["id"]})
    assert refused["error"]["code"] == "conflict"
    assert "không phục vụ" in refused["error"]["message"]
    assert centre.call_next()["ticket"]["id"] == first["id"]


def test_pause_with_a_reason_stops_calls_until_resumed(centre):
    centre.issue()
    assert centre.counter.call("pause", {"reason": ""})["error"]["code"] == "bad_request"
    paused = centre.counter.call("pause", {"reason": "Họp giao ban"})
    assert paused["ok"] and paused["counter"]["status"] == "paused"
    event = centre.display.wait_event("update", kind="counter_paused")
    assert event["counter"]["status"] == "paused"
    state = centre.counter.wait_event("counter_state", counter__status="paused")
    assert state["counter"]["pause_reason"] == "Họp giao ban"
    refused = centre.call_next()
    assert refused["error"]["code"] == "conflict" and "tạm dừng" in refused["error"]["message"]
    assert centre.counter.call("resume", {})["ok"]
    assert centre.call_next()["ok"]
    assert centre.counter.call("resume", {})["error"]["code"] == "conflict"


def test_rating_only_at_the_serving_counter_and_only_once(centre, devices):
    ticket = centre.issue()
    centre.call_next()
    other_tablet = devices.rating(centre.server, RATING_2)
    tablet = devices.rating(centre.server)
    early = tablet.call("rate", {"ticket_id": ticket["id"], "score": 3})
    assert early["error"]["code"] == "forbidden"
    assert centre.counter.call("finish", {"ticket_id": ticket["id"]})["ok"]
    wrong = other_tablet.call("rate", {"ticket_id": ticket["id"], "score": 3})
    assert wrong["error"]["code"] == "forbidden" and "quầy" in wrong["error"]["message"]
    ok = tablet.call(
        "rate",
        {"ticket_id": ticket["id"], "score": 1, "reasons": ["Chờ lâu"], "comment": "Cần thêm quầy"},
    )
    assert ok == {"ok": True}
    assert tablet.call("rate", {"ticket_id": ticket["id"], "score": 3})["error"]["code"] == (
        "already_rated"
    )


def test_rating_window_closes(tmp_path, devices):
    srv = ServerProcess(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", env={"MOTCUA_RATING_WINDOW_S": "1"}
    ).start()
    try:
        ticket = devices.kiosk(srv).call("issue", {"service": "TP"})["ticket"]
        counter = devices.counter(srv, "clerk1", 1)
        counter.call("call_next", {})
        counter.call("finish", {"ticket_id": ticket["id"]})
        time.sleep(1.5)
        late = devices.rating(srv).call("rate", {"ticket_id": ticket["id"], "score": 2})
        assert late["error"]["code"] == "forbidden"
        assert "quá thời gian" in late["error"]["message"]
    finally:
        srv.stop()


def test_estimated_wait_follows_open_counters_and_people_ahead(centre, devices):
    # TP is served by counters 1 and 2; only counter 1 is open. Default 5 min a visit.
    first = centre.kiosk.call("issue", {"service": "TP"})
    assert first["ahead"] == 0 and first["estimated_wait_s"] == 0
    third = [centre.kiosk.call("issue", {"service": "TP"}) for _ in range(2)][-1]
    assert third["ahead"] == 2 and third["estimated_wait_s"] == 2 * 300
    devices.counter(centre.server, "clerk2", 2)  # a second counter opens
    fourth = centre.kiosk.call("issue", {"service": "TP"})
    assert fourth["ahead"] == 3 and fourth["estimated_wait_s"] == 3 * 300 // 2
    services = {
        s["code"]: s for s in devices.kiosk(centre.server).wait_event("services")["services"]
    }
    assert services["TP"]["waiting"] == 4 and services["TP"]["open"] is True
    assert services["DD"]["open"] is False


def test_counter_state_follows_every_change_of_its_counter(centre):
    ticket = centre.issue()
    centre.call_next()
    state = centre.counter.wait_event("counter_state", current__status="called")
    assert state["current"]["id"] == ticket["id"]
    centre.counter.call("start", {"ticket_id": ticket["id"]})
    centre.counter.wait_event("counter_state", current__status="serving")
    centre.counter.call("finish", {"ticket_id": ticket["id"]})
    assert centre.counter.wait_event("counter_state", current=None)["waiting"] == {"TP": 0, "HT": 0}


def test_a_tablet_that_was_offline_still_asks_for_the_rating(centre, devices):
    ticket = centre.issue()
    centre.call_next()
    centre.counter.call("finish", {"ticket_id": ticket["id"]})
    tablet = devices.rating(centre.server)  # connects only now
    state = tablet.wait_event("rating_state")
    assert state["awaiting_rating"] == {
        "ticket": {"id": ticket["id"], "number": ticket["number"], "service": ticket["service"]},
        "staff": {"full_name": "Nguyễn Văn A"},
        "counter": {"number": 1},
    }
    assert tablet.call("rate", {"ticket_id": ticket["id"], "score": 3})["ok"]
    assert tablet.wait_event("rating_state")["awaiting_rating"] is None


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
