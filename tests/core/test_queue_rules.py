"""The queue's rules as clerks and citizens meet them: order, transfers, pauses, ratings,
estimates. In-process: the same engine calls the doors make."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import models as m
from core import views
from core.errors import QueueError
from harness.centre import KIOSK, RATING_1, RATING_2
from harness.local import LocalCentre


class Hall:
    """A kiosk and clerk1 at counter 1 of a fresh local centre."""

    def __init__(self, local: LocalCentre):
        self.local = local
        self.engine = local.engine
        self.kiosk = local.device(KIOSK)
        self.clerk = local.clerk("clerk1", 1)

    def issue(self, service="TP", priority=None):
        return self.engine.issue_ticket(self.kiosk, service, priority)

    def call_next(self, clerk=None):
        return self.engine.call_next(clerk or self.clerk)["ticket"]


@pytest.fixture
def hall(local):
    return Hall(local)


def refused(fn, *args, **kwargs) -> QueueError:
    with pytest.raises(QueueError) as e:
        fn(*args, **kwargs)
    return e.value


def test_priority_goes_first_but_every_fourth_call_is_a_normal_ticket(hall):
    normal = [hall.issue()["ticket"]["number"] for _ in range(2)]
    groups = ("elderly", "disabled", "pregnant", "infant", "merit")
    priority = [hall.issue(priority=p)["ticket"]["number"] for p in groups]
    order = []
    for _ in range(7):
        ticket = hall.call_next()
        order.append(ticket["number"])
        hall.engine.start(hall.clerk, ticket["id"])
    assert order == priority[:3] + normal[:1] + priority[3:] + normal[1:]
    assert refused(hall.call_next).code == "queue_empty"


def test_call_next_finishes_a_ticket_being_served_but_never_skips_a_called_one(hall):
    first, second = hall.issue()["ticket"], hall.issue()["ticket"]
    assert hall.call_next()["id"] == first["id"]
    busy = refused(hall.call_next)  # a double press while the citizen walks over
    assert busy.code == "conflict" and first["number"] in busy.as_dict()["message"]
    hall.engine.start(hall.clerk, first["id"])
    assert hall.call_next()["id"] == second["id"]
    finished = [c["change"] for c in hall.local.changes if c["change"]["kind"] == "finished"]
    assert finished[-1]["ticket"]["id"] == first["id"]
    assert finished[-1]["ticket"]["status"] == "done"
    assert refused(hall.call_next).code == "conflict"  # second is called, not served
    assert hall.engine.no_show(hall.clerk, second["id"])["ticket"]["status"] == "no_show"
    empty = refused(hall.call_next)
    assert empty.code == "queue_empty" and "Không còn công dân" in empty.as_dict()["message"]


def test_a_no_show_only_after_the_citizen_had_time_to_walk(centre_file, tmp_path):
    local = LocalCentre(centre_file, tmp_path / "walk.sqlite3", no_show_after_s=60)
    try:
        hall = Hall(local)
        ticket = hall.issue()["ticket"]
        hall.call_next()
        early = refused(hall.engine.no_show, hall.clerk, ticket["id"])
        assert (early.code, early.key) == ("conflict", "no_show_too_soon")
        assert "60 giây" in early.as_dict()["message"]
        assert local.snapshot("counter", [hall.clerk.counter_id])["actions"]["no_show"][
            "after"
        ] == {"time": "called_at", "seconds": 60}
        # A minute later (the call moved back in time), it may.
        local.store.write(
            lambda tx: tx.conn.execute(
                m.tickets.update()
                .where(m.tickets.c.id == ticket["id"])
                .values(called_at=m.utcnow() - timedelta(seconds=61))
            ),
            centre_id=0,
            actor="test",
        )
        assert hall.engine.no_show(hall.clerk, ticket["id"])["ticket"]["status"] == "no_show"
    finally:
        local.close()


def test_closing_a_counter_sends_its_tickets_back_to_their_queue(hall):
    clerk2 = hall.local.clerk("clerk2", 2)
    sent = hall.issue("HT")["ticket"]
    hall.call_next()
    hall.engine.transfer(hall.clerk, sent["id"], counter=2)
    assert refused(hall.engine.transfer, hall.clerk, sent["id"], counter=3).code == "conflict"
    # Counter 3 is closed: nobody may be sent there.
    hall.engine.close_counter(clerk2)
    released = [c["change"] for c in hall.local.changes][-1]
    assert released["kind"] == "transferred"
    assert released["ticket"]["id"] == sent["id"] and released["ticket"]["target_counter"] is None
    # Back in HT's queue, counter 1 (which serves HT) lists it and may call it.
    queue = hall.local.snapshot("counter", [hall.clerk.counter_id])["queue"]
    assert sent["id"] in [t["id"] for t in queue]
    assert hall.call_next()["id"] == sent["id"]


def test_a_transfer_to_a_closed_counter_is_refused(hall):
    ticket = hall.issue()["ticket"]
    hall.call_next()
    closed = refused(hall.engine.transfer, hall.clerk, ticket["id"], counter=3)
    assert (closed.code, closed.key) == ("conflict", "transfer_counter_closed")
    assert "Quầy 3 đang đóng" in closed.as_dict()["message"]


def test_transfer_to_a_service_keeps_the_original_place(hall):
    moved = hall.issue("TP")["ticket"]
    later = hall.issue("HT")["ticket"]
    assert hall.call_next()["id"] == moved["id"]
    ticket = hall.engine.transfer(hall.clerk, moved["id"], service="HT")["ticket"]
    assert ticket["status"] == "transferred" and ticket["service"]["code"] == "HT"
    change = hall.local.changes[-1]["change"]
    assert [s["code"] for s in change["services"]] == ["HT"]
    assert change["services"][0]["waiting"] == 2
    # Counter 1 serves HT too: the transferred ticket, issued first, comes before `later`.
    assert hall.call_next()["id"] == moved["id"]
    hall.engine.start(hall.clerk, moved["id"])
    assert hall.call_next()["id"] == later["id"]


def test_transfer_to_a_counter_reaches_only_that_counter(hall):
    ticket = hall.issue("TP")["ticket"]
    hall.call_next()
    clerk3 = hall.local.clerk("clerk3", 3)  # serves only DD
    sent = hall.engine.transfer(hall.clerk, ticket["id"], counter=3)["ticket"]
    assert sent["target_counter"] == 3
    clerk2 = hall.local.clerk("clerk2", 2)  # serves TP, but not this ticket
    assert refused(hall.call_next, clerk2).code == "queue_empty"
    called = hall.call_next(clerk3)
    assert called["id"] == ticket["id"] and called["counter"] == 3
    again = refused(hall.engine.transfer, hall.clerk, ticket["id"], counter=99)
    assert again.code == "conflict"  # no longer at counter 1
    assert refused(hall.engine.transfer, clerk3, ticket["id"], counter=99).code == "not_found"


def test_call_a_given_number_out_of_order_and_refuse_other_services(hall):
    first, second = hall.issue("TP")["ticket"], hall.issue("TP")["ticket"]
    land = hall.issue("DD")["ticket"]
    assert hall.engine.call_ticket(hall.clerk, second["id"])["ticket"]["id"] == second["id"]
    assert hall.local.changes[-1]["change"]["kind"] == "called"
    hall.engine.start(hall.clerk, second["id"])
    other = refused(hall.engine.call_ticket, hall.clerk, land["id"])
    assert other.code == "conflict" and "không phục vụ" in other.as_dict()["message"]
    done = refused(hall.engine.call_ticket, hall.clerk, second["id"])
    assert done.key == "ticket_not_waiting"
    assert hall.call_next()["id"] == first["id"]


def test_pause_with_a_reason_stops_calls_until_resumed(hall):
    hall.issue()
    paused = hall.engine.pause(hall.clerk, "Họp giao ban")
    assert paused["counter"]["status"] == "paused"
    assert paused["counter"]["pause_reason"] == "Họp giao ban"
    assert refused(hall.engine.pause, hall.clerk, "again").key == "already_paused"
    stopped = refused(hall.call_next)
    assert stopped.code == "conflict" and "tạm dừng" in stopped.as_dict()["message"]
    hall.engine.resume(hall.clerk)
    ticket = hall.call_next()
    assert refused(hall.engine.resume, hall.clerk).key == "not_paused"
    assert refused(hall.engine.pause, hall.clerk, "x").key == "counter_has_current"
    assert refused(hall.engine.close_counter, hall.clerk).key == "counter_has_current"
    hall.engine.finish(hall.clerk, ticket["id"])
    assert hall.engine.close_counter(hall.clerk)["counter"]["status"] == "closed"
    assert refused(hall.call_next).key == "counter_closed"
    assert refused(hall.engine.close_counter, hall.clerk).key == "counter_closed"


def test_rating_only_at_the_serving_counter_and_only_once(hall):
    ticket = hall.issue()["ticket"]
    hall.call_next()
    tablet, other_tablet = hall.local.device(RATING_1), hall.local.device(RATING_2)
    assert refused(hall.engine.rate, tablet, ticket["id"], 3).key == "rating_not_done"
    hall.engine.finish(hall.clerk, ticket["id"], ["H15.50.05.13-261008-0975"], "received")
    wrong = refused(hall.engine.rate, other_tablet, ticket["id"], 3)
    assert wrong.code == "forbidden" and "quầy" in wrong.as_dict()["message"]
    assert (
        hall.engine.rate(tablet, ticket["id"], 1, ["Thời gian chờ quá lâu"], "Cần thêm quầy") == {}
    )
    assert refused(hall.engine.rate, tablet, ticket["id"], 3).code == "already_rated"
    rated = hall.local.changes[-1]["change"]
    assert rated["kind"] == "rated" and "score" not in str(rated)


def test_rating_window_closes(centre_file, tmp_path):
    local = LocalCentre(centre_file, tmp_path / "db.sqlite3", rating_window_s=0)
    try:
        hall = Hall(local)
        ticket = hall.issue()["ticket"]
        hall.call_next()
        hall.engine.finish(hall.clerk, ticket["id"])
        late = refused(hall.engine.rate, local.device(RATING_1), ticket["id"], 2)
        assert late.code == "forbidden" and "quá thời gian" in late.as_dict()["message"]
    finally:
        local.close()


def test_estimated_wait_follows_open_counters_and_people_ahead(hall):
    # TP is served by counters 1 and 2; only counter 1 is open. Default 5 min a visit.
    first = hall.issue()
    assert first["ahead"] == 0 and first["estimated_wait_s"] == 0
    third = [hall.issue() for _ in range(2)][-1]
    assert third["ahead"] == 2 and third["estimated_wait_s"] == 2 * 300
    priority = hall.issue(priority="elderly")
    assert priority["ahead"] == 0
    hall.local.clerk("clerk2", 2)  # a second counter opens
    fifth = hall.issue()
    assert fifth["ahead"] == 4 and fifth["estimated_wait_s"] == 4 * 300 // 2
    kiosk = hall.local.view(views.kiosk_snapshot, hall.local.centre_id)
    services = {s["code"]: s for s in kiosk["services"]}
    assert services["TP"]["waiting"] == 5 and services["TP"]["open"] is True
    assert services["DD"]["open"] is False
    key = fifth["status_path"].rsplit("/", 1)[1]
    status = hall.local.view(views.ticket_status, key, hall.engine.rating_window)
    assert status["ahead"] == 4 and status["estimated_wait_s"] == 4 * 300 // 2


def test_a_tablet_that_was_offline_still_asks_for_the_rating(hall):
    ticket = hall.issue()["ticket"]
    hall.call_next()
    hall.engine.finish(hall.clerk, ticket["id"])
    counter_id = hall.local.counter_id(1)
    state = hall.local.snapshot("rating", [counter_id])
    assert state["awaiting_rating"] == {
        "ticket": {"id": ticket["id"], "number": ticket["number"], "service": ticket["service"]},
        "staff": {"full_name": "Nguyễn Văn A"},
        "counter": {"number": 1},
    }
    hall.engine.rate(hall.local.device(RATING_1), ticket["id"], 3)
    assert hall.local.snapshot("rating", [counter_id])["awaiting_rating"] is None


def test_bad_dossier_codes_and_outcomes_are_refused_before_anything_changes(hall):
    ticket = hall.issue()["ticket"]
    hall.call_next()
    seq = hall.local.changes[-1]["seq"]
    bad = refused(hall.engine.finish, hall.clerk, ticket["id"], ["<script>"])
    assert bad.code == "bad_request" and "mã hồ sơ" in bad.as_dict()["message"]
    assert refused(hall.engine.finish, hall.clerk, ticket["id"], [], "won").code == "bad_request"
    assert hall.local.changes[-1]["seq"] == seq
