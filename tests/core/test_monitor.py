"""The manager's live monitor in-process: its snapshot's figures, its batches (every change
of the centre) followed by a replica that ends equal to a fresh snapshot, and the manager's
actions through the engine (cancel, move keeping the place, close a counter left open):
their effects, their audit, what the other devices hear, and the refusals."""

from __future__ import annotations

import itertools
import json
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core import auth, views
from core import models as m
from core.errors import QueueError
from core.lifecycle import COUNTER_TRANSITIONS, MANAGER_ACTIONS, manager_actions
from core.permissions import require
from harness.centre import KIOSK
from harness.replica import REPLICAS


def _service(snapshot, code):
    return next(s for s in snapshot["services"] if s["code"] == code)


def _counter(snapshot, number):
    return next(c for c in snapshot["counters"] if c["number"] == number)


def _age(local, ticket_id, minutes):
    """Make a ticket look taken ``minutes`` ago."""
    t = m.tickets

    def write(conn):
        issued = conn.execute(sa.select(t.c.issued_at).where(t.c.id == ticket_id)).scalar()
        conn.execute(
            t.update()
            .where(t.c.id == ticket_id)
            .values(issued_at=issued - timedelta(minutes=minutes))
        )

    with local.store.engine.begin() as conn:
        write(conn)


def _audit(local, action):
    a = m.audit_log
    return local.read(
        lambda conn: conn.execute(
            sa.select(a.c.actor, a.c.counter_id, a.c.details)
            .where(a.c.action == action)
            .order_by(a.c.seq.desc())
        ).first()
    )


def test_the_snapshot_shows_each_queue_and_counter_with_todays_figures(local):
    e, kiosk = local.engine, local.device(KIOSK)
    a1 = e.issue_ticket(kiosk, "TP")["ticket"]
    a2 = e.issue_ticket(kiosk, "TP")["ticket"]
    e.issue_ticket(kiosk, "HT")
    _age(local, a1["id"], 30)
    _age(local, a2["id"], 5)
    clerk = local.clerk("clerk1", 1)
    e.call_next(clerk)  # A001, waited 30 minutes
    e.start(clerk, a1["id"])
    clerk2 = local.clerk("clerk2", 2)
    e.pause(clerk2, "Họp giao ban")

    snap = local.snapshot("manager")
    assert snap["centre"]["code"] == "T1" and snap["centre"]["target_wait_s"] == 1200
    tp, ht, dd = (_service(snap, c) for c in ("TP", "HT", "DD"))
    assert tp["waiting"] == 1 and 4 * 60 < tp["longest_wait_s"] < 6 * 60
    assert tp["over_target"] is False
    assert tp["open"] is True and ht["waiting"] == 1 and dd["waiting"] == 0
    assert dd["longest_wait_s"] == 0
    c1, c2, c3 = (_counter(snap, n) for n in (1, 2, 3))
    assert c1["status"] == "open" and c1["clerk"] == "Nguyễn Văn A"
    assert c1["current"]["number"] == "A001" and c1["current"]["status"] == "serving"
    assert c1["services"] == ["TP", "HT"]
    assert c2["status"] == "paused" and c2["pause_reason"] == "Họp giao ban"
    assert c2["clerk"] == "Trần Thị Bình" and c2["current"] is None
    assert c3["status"] == "closed" and c3["clerk"] is None
    assert [t["number"] for t in snap["queue"]] == ["A002", "B100"]
    assert snap["actions"] == manager_actions()

    e.finish(clerk, a1["id"])
    figures = local.view(views.monitor_figures, local.centre_id)
    assert figures["services"]["TP"]["served"] == 1
    assert 29 * 60 < figures["services"]["TP"]["mean_wait_s"] < 31 * 60
    assert figures["services"]["HT"] == {"served": 0, "mean_wait_s": None}
    assert figures["counters"] == {"1": 1, "2": 0, "3": 0}

    _age(local, a2["id"], 30)  # A002 now waits past the centre's 20 minutes
    tp = _service(local.snapshot("manager"), "TP")
    assert tp["over_target"] is True and tp["longest_wait_s"] > 1200


def test_the_centres_target_wait_comes_from_its_settings(local):
    with local.store.engine.begin() as conn:
        conn.execute(m.centres.update().values(target_wait_s=600))
    snap = local.snapshot("manager")
    assert snap["centre"]["target_wait_s"] == 600


def test_the_monitor_hears_every_change_and_follows_them_to_a_fresh_snapshot(local):
    e, kiosk = local.engine, local.device(KIOSK)
    first = local.snapshot("manager")
    start = first["seq"]
    manager = local.manager()
    clerk1, clerk2 = local.clerk("clerk1", 1), local.clerk("clerk2", 2)
    tickets = [e.issue_ticket(kiosk, code)["ticket"] for code in ("TP", "TP", "HT", "DD", "TP")]
    e.call_next(clerk1)
    e.start(clerk1, tickets[0]["id"])
    e.transfer(clerk1, tickets[0]["id"], counter=2)
    e.call_next(clerk2)
    e.finish(clerk2, local.snapshot("counter", [clerk2.counter_id])["current"]["id"])
    e.pause(clerk2, "Nghỉ giữa giờ")
    e.cancel_ticket(manager, tickets[3]["id"])
    e.move_ticket(manager, tickets[4]["id"], service="HT")
    e.call_next(clerk1)
    e.close_left_counter(manager, 1)
    audience = local.audience("manager")
    kinds = {c["change"]["kind"] for c in local.changes if c["seq"] > start}
    for sizes in (itertools.repeat(1), itertools.repeat(3), itertools.repeat(1000)):
        batches = local.batches(audience, start, sizes)
        heard = {e["kind"] for b in batches for e in b["events"]}
        assert heard == kinds  # every change of the centre
        follower = REPLICAS["manager"](first)
        for b in batches:
            follower.apply(b)
        assert follower.comparable() == REPLICAS["manager"](local.snapshot("manager")).comparable()


def test_a_manager_cancels_a_waiting_ticket(local):
    e, kiosk = local.engine, local.device(KIOSK)
    manager = local.manager()
    ticket = e.issue_ticket(kiosk, "TP")["ticket"]
    e.issue_ticket(kiosk, "TP")
    start = local.changes[-1]["seq"]
    answer = e.cancel_ticket(manager, ticket["id"], request_id="r1")
    assert answer["ticket"]["status"] == "cancelled"
    assert e.cancel_ticket(manager, ticket["id"], request_id="r1") == answer  # a retry
    assert _service(local.snapshot("manager"), "TP")["waiting"] == 1
    actor, counter_id, _ = _audit(local, "cancelled")
    assert actor == f"staff:{manager.id}" and counter_id is None
    # An ordinary change: the counters serving TP drop it from their queue, its status
    # page hears it, the boards are not bothered.
    c1 = local.counter_id(1)
    batches = local.batches(local.audience("counter", [c1]), start, itertools.repeat(1000))
    assert [ev["kind"] for ev in batches[0]["events"]] == ["cancelled"]
    assert batches[0]["services"][0]["waiting"] == 1
    display = local.batches(local.audience("display"), start, itertools.repeat(1000))
    assert all(ev["kind"] != "cancelled" for b in display for ev in b["events"])
    with pytest.raises(QueueError) as refused:
        e.cancel_ticket(manager, ticket["id"])
    assert refused.value.code == "conflict"


def test_a_manager_moves_a_ticket_keeping_its_place(local):
    e, kiosk = local.engine, local.device(KIOSK)
    manager = local.manager()
    old = e.issue_ticket(kiosk, "TP")["ticket"]
    newer = e.issue_ticket(kiosk, "HT")["ticket"]
    start = local.changes[-1]["seq"]
    moved = e.move_ticket(manager, old["id"], service="HT")["ticket"]
    assert moved["status"] == "transferred" and moved["service"]["code"] == "HT"
    assert moved["issued_at"] == old["issued_at"]
    snap = local.snapshot("manager")
    assert _service(snap, "TP")["waiting"] == 0 and _service(snap, "HT")["waiting"] == 2
    # Its place kept: called before the HT ticket taken after it.
    clerk = local.clerk("clerk1", 1)
    assert e.call_next(clerk)["ticket"]["number"] == old["number"]
    e.finish(clerk, old["id"])
    _, _, details = _audit(local, "transferred")
    details = json.loads(details) if isinstance(details, str) else details
    assert details["to_service"] == "HT"
    # To a counter: only that counter may call it.
    e.move_ticket(manager, newer["id"], counter=1)
    c2 = local.snapshot("counter", [local.counter_id(1)])
    assert [t["number"] for t in c2["queue"]] == [newer["number"]]
    assert c2["queue"][0]["target_counter"] == 1
    batches = local.batches(local.audience("manager"), start, itertools.repeat(1000))
    assert [ev["kind"] for ev in batches[0]["events"]].count("transferred") == 2
    with pytest.raises(QueueError) as refused:
        e.move_ticket(manager, newer["id"], counter=3)  # closed
    assert refused.value.key == "transfer_counter_closed"
    with pytest.raises(QueueError) as refused:
        e.move_ticket(manager, newer["id"], counter=1)
    assert refused.value.key == "transfer_same"
    with pytest.raises(QueueError) as refused:
        e.move_ticket(manager, old["id"], service="DD")  # done
    assert refused.value.code == "conflict"


def test_a_manager_closes_a_counter_left_open(local):
    e, kiosk = local.engine, local.device(KIOSK)
    manager = local.manager()
    clerk = local.clerk("clerk1", 1)
    at_counter = e.issue_ticket(kiosk, "TP")["ticket"]
    sent = e.issue_ticket(kiosk, "DD")["ticket"]
    e.call_next(clerk)
    e.start(clerk, at_counter["id"])
    e.move_ticket(manager, sent["id"], counter=1)
    e.close_left_counter(manager, 1, request_id="c1")
    snap = local.snapshot("manager")
    c1 = _counter(snap, 1)
    assert c1["status"] == "closed" and c1["clerk"] is None and c1["current"] is None
    back = {t["number"]: t for t in snap["queue"]}
    assert back[at_counter["number"]]["status"] == "transferred"
    assert back[at_counter["number"]]["target_counter"] is None
    assert back[sent["number"]]["target_counter"] is None
    assert _service(snap, "TP")["waiting"] == 1
    actor, counter_id, details = _audit(local, "counter_closed")
    details = json.loads(details) if isinstance(details, str) else details
    assert actor == f"staff:{manager.id}" and counter_id == local.counter_id(1)
    assert details["left_by"] == clerk.id
    with pytest.raises(QueueError) as refused:
        e.close_left_counter(manager, 1)
    assert refused.value.key == "counter_closed"


@pytest.mark.parametrize("state", ["closed", "open", "paused", "called", "serving"])
def test_closing_a_counter_left_open_follows_its_table(local, state):
    e, kiosk = local.engine, local.device(KIOSK)
    t = COUNTER_TRANSITIONS[MANAGER_ACTIONS["close_counter"][1]]
    if state != "closed":
        clerk = local.clerk("clerk1", 1)
        if state in ("called", "serving"):
            ticket = e.issue_ticket(kiosk, "TP")["ticket"]
            e.call_next(clerk)
            if state == "serving":
                e.start(clerk, ticket["id"])
        elif state == "paused":
            e.pause(clerk, "Họp")
    counter_state = "open" if state in ("called", "serving") else state
    if counter_state in t.sources:
        e.close_left_counter(local.manager(), 1)
        assert _counter(local.snapshot("manager"), 1)["status"] == t.target
    else:
        with pytest.raises(QueueError) as refused:
            e.close_left_counter(local.manager(), 1)
        assert refused.value.code == "conflict"


def test_a_clerk_is_refused_the_monitor_and_its_actions(local):
    def principal(conn, username):
        return auth.principal_for_username(conn, username)

    clerk = local.read(lambda conn: principal(conn, "clerk1"))
    manager = local.read(lambda conn: principal(conn, "quanly1"))
    for permission in ("monitor.view", "monitor.act"):
        with pytest.raises(QueueError) as refused:
            require(clerk, permission, local.centre_id)
        assert refused.value.code == "forbidden"
        assert require(manager, permission, local.centre_id) == "manager"


def test_a_kiosk_flood_costs_a_monitor_a_few_batches_and_a_call_goes_at_once(local):
    """The manager's new tickets ride the hub's counts interval (core/roles.py ``paced``):
    at most one batch per interval while only tickets come, none lost, in order; a call
    goes at once, carrying the tickets held before it."""
    import gevent

    from gateway.hub import ChangeHub

    sent: list[tuple[float, dict]] = []
    hub = ChangeHub(
        lambda namespace, room, batch: sent.append((time.monotonic(), batch)),
        local.store,
        sweep_s=3600,
        counts_interval_s=0.5,
    )
    local.store.on_commit = lambda changes: (local.changes.extend(changes), hub.committed(changes))
    hub.start()
    try:
        hub.join("m1", local.audience("manager"))
        first = local.snapshot("manager")["seq"]
        kiosk = local.device(KIOSK)
        started = time.monotonic()
        for _ in range(40):
            local.engine.issue_ticket(kiosk, "TP")
            gevent.sleep(0.01)
        gevent.sleep(0.6)
        elapsed = time.monotonic() - started
        assert len(sent) <= elapsed / 0.5 + 2, [round(t - started, 2) for t, _ in sent]
        events = [e for _, b in sent for e in b["events"]]
        assert [e["kind"] for e in events] == ["issued"] * 40
        assert [e["seq"] for e in events] == list(range(first + 1, first + 41))
        assert sent[-1][1]["services"][0]["waiting"] == 40
        # Tickets held, then a call: it goes at once, with them before it.
        sent.clear()
        local.engine.issue_ticket(kiosk, "HT")
        gevent.sleep(0.05)
        local.engine.call_next(local.clerk("clerk1", 1))
        gevent.sleep(0.05)
        kinds = [[e["kind"] for e in b["events"]] for _, b in sent]
        assert kinds[-1][-1] == "called" and "issued" in [k for ks in kinds for k in ks]
        seqs = [b["seq"] for _, b in sent]
        afters = [b["after"] for _, b in sent]
        assert afters[1:] == seqs[:-1]  # the ranges follow on
    finally:
        hub.stop()
