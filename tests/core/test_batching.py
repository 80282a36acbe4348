"""Protocol v2 delivery rules, in-process: each role's replica (its snapshot plus every
batch meant for it) ends equal to a fresh snapshot, whatever the day and however the
changes are grouped into batches; ordering of changes arriving in any order."""

from __future__ import annotations

import itertools
import random

import pytest

from core import printing
from core.errors import QueueError
from core.roles import ROLES, Audience, batch_for, public_event
from core.sequence import Sequencer
from harness.centre import AGENT, KIOSK, KIOSK_B, RATING_1, RATING_2
from harness.replica import REPLICAS, NeedsSync


def random_day(local, rng: random.Random, steps: int) -> None:
    """Citizens take tickets (Kiosk B's are printed by the agent, which reports each job),
    clerks call, serve, transfer, pause, tablets rate."""
    e = local.engine
    kiosks = [local.device(KIOSK), local.device(KIOSK_B)]
    agent = local.device(AGENT)
    jobs: list[int] = []
    clerks = [local.clerk("clerk1", 1), local.clerk("clerk2", 2), local.clerk("clerk3", 3)]
    tablets = {
        clerks[0].counter_id: local.device(RATING_1),
        clerks[1].counter_id: local.device(RATING_2),
    }
    current: dict[int, dict] = {}
    finished: list[tuple[int, int]] = []

    def attempt(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except QueueError as e:
            if e.code == "internal":
                raise  # a bug, not a refusal: the day must not go on without it
            return None

    for _ in range(steps):
        clerk = rng.choice(clerks)
        ticket = current.get(clerk.counter_id)
        roll = rng.random()
        if roll < 0.35:
            issued = attempt(
                e.issue_ticket,
                rng.choice(kiosks),
                rng.choice(["TP", "TP", "HT", "DD"]),
                rng.choice([None, None, None, "elderly"]),
            )
            if issued and issued["print"]:
                jobs.append(issued["print"]["job"])
            if jobs and rng.random() < 0.5:
                printed = rng.random() < 0.8
                error = None if printed else "out_of_paper"
                printing.report_print(local.store, agent, jobs.pop(0), printed, error)
        elif ticket is None or roll < 0.45:
            done = attempt(e.call_next, clerk)
            if done:
                if ticket is not None:
                    finished.append((clerk.counter_id, ticket["id"]))
                current[clerk.counter_id] = done["ticket"]
            elif ticket is None and rng.random() < 0.2:
                paused = attempt(e.pause, clerk, "Nghỉ giữa giờ")
                if paused:
                    e.resume(clerk)
        elif roll < 0.55:
            attempt(e.start, clerk, ticket["id"])
        elif roll < 0.62:
            attempt(e.recall, clerk, ticket["id"])
        elif roll < 0.72:
            if attempt(e.finish, clerk, ticket["id"], [], rng.choice([None, "received"])):
                finished.append((clerk.counter_id, ticket["id"]))
                current.pop(clerk.counter_id)
        elif roll < 0.78:
            if attempt(e.no_show, clerk, ticket["id"]):
                current.pop(clerk.counter_id)
        elif roll < 0.86:
            target = rng.choice(
                [{"service": "HT"}, {"service": "DD"}, {"counter": 3}, {"counter": 2}]
            )
            if attempt(e.transfer, clerk, ticket["id"], **target):
                current.pop(clerk.counter_id)
        elif finished:
            counter_id, ticket_id = finished.pop(rng.randrange(len(finished)))
            if counter_id in tablets:
                attempt(e.rate, tablets[counter_id], ticket_id, rng.randint(1, 3))


def devices(local) -> list[tuple[str, list[int] | None]]:
    c1, c2, c3 = (local.counter_id(n) for n in (1, 2, 3))
    return [
        ("kiosk", None),
        ("display", None),
        ("display", [c3]),
        ("agent", [c1, c2]),
        ("counter", [c1]),
        ("counter", [c2]),
        ("counter", [c3]),
        ("rating", [c1]),
        ("rating", [c2]),
    ]


@pytest.mark.parametrize("seed", range(4))
def test_every_role_rebuilds_the_snapshot_from_batches(local, seed):
    rng = random.Random(seed)
    random_day(local, rng, 40)  # devices join mid-day
    followers = []
    for role, ids in devices(local):
        replica = REPLICAS[role](local.snapshot(role, ids))
        followers.append((role, ids, local.audience(role, ids), replica))
    random_day(local, rng, 200)
    for role, ids, audience, replica in followers:
        sizes = iter(lambda: rng.choice([1, 1, 2, 5, 17]), None)
        for batch in local.batches(audience, replica.seq, sizes):
            replica.apply(batch)
        fresh = local.snapshot(role, ids)
        assert replica.seq <= fresh["seq"]  # changes after its last batch did not concern it
        assert replica.comparable() == {**fresh, "seq": replica.seq}, (role, ids)


def test_a_device_hears_only_what_concerns_it(local):
    random_day(local, random.Random(7), 200)
    everything = itertools.repeat(10_000)
    c3 = local.counter_id(3)
    kiosk = local.batches(local.audience("kiosk"), 0, everything)
    assert len(kiosk) == 1 and kiosk[0]["services"]
    # Kiosks hear how printing went, nothing else; the print job itself is the agent's.
    assert kiosk[0]["events"] and {e["kind"] for e in kiosk[0]["events"]} == {"printed"}
    agent = local.batches(local.audience("agent", [local.counter_id(1)]), 0, everything)[0]
    jobs = [e["print"] for e in agent["events"] if e["kind"] == "issued"]
    kiosk_b = local.device(KIOSK_B).id
    assert jobs and all(j["kiosk"] == kiosk_b and j["agent"] == local.agent_id for j in jobs)
    for role, ids in devices(local):
        if role != "agent":
            for batch in local.batches(local.audience(role, ids), 0, everything):
                assert not any("print" in e for e in batch["events"]), role
    board3 = local.batches(local.audience("display", [c3]), 0, everything)[0]
    assert "issued" not in {e["kind"] for e in board3["events"]}
    routes = {c["seq"]: c["change"]["route"] for c in local.changes}
    assert board3["events"]
    assert all(c3 in routes[e["seq"]]["counters"] for e in board3["events"])
    assert {s["code"] for s in board3["services"]} <= {"DD"}
    tablet = local.batches(local.audience("rating", [c3]), 0, everything)
    assert all(not b["services"] for b in tablet)


def test_a_lost_batch_is_detected_from_its_range(local):
    hall_kiosk, clerk = local.device(KIOSK), local.clerk("clerk1", 1)
    c1 = local.counter_id(1)
    replica = REPLICAS["counter"](local.snapshot("counter", [c1]))
    for _ in range(3):
        local.engine.issue_ticket(hall_kiosk, "TP")
    local.engine.call_next(clerk)
    batches = local.batches(local.audience("counter", [c1]), replica.seq, itertools.repeat(1))
    assert len(batches) == 4
    replica.apply(batches[0])
    with pytest.raises(NeedsSync):
        replica.apply(batches[2])
    fresh = REPLICAS["counter"](local.snapshot("counter", [c1]))
    assert [t["number"] for t in fresh.comparable()["queue"]] == ["A002", "A003"]
    replica.apply(batches[1])
    replica.apply(batches[2])
    replica.apply(batches[3])
    assert replica.comparable() == fresh.comparable()


def test_services_carry_only_the_latest_summary_in_a_batch(local):
    kiosk = local.device(KIOSK)
    start = local.changes[-1]["seq"] if local.changes else 0
    for _ in range(50):
        local.engine.issue_ticket(kiosk, "TP")
    batch = local.batches(local.audience("kiosk"), start, itertools.repeat(1000))[0]
    assert batch["events"] == [] and batch["services"] == [
        # TP's two counters are closed: the wait is shared by both as if they were open
        {
            "code": "TP",
            "waiting": 50,
            "estimated_wait_s": 50 * 300 // 2,
            "open": False,
            "on_break": False,
        }
    ]


def test_configuration_changes_concern_every_device():
    change = {"kind": "configured", "services": [], "route": {"counters": [], "services": []}}
    item = {"seq": 9, "change": change, "event": public_event(change, 9)}
    for role in ROLES:
        batch = batch_for(Audience(role, 1, frozenset([1]), frozenset()), [item], 8)
        assert batch["events"] == [{"kind": "configured", "seq": 9}], role


def _c(seq, centre=1):
    return {"centre": centre, "seq": seq}


def test_sequencer_releases_each_change_once_in_order():
    s = Sequencer()
    s.start_at(1, 4)
    assert s.offer(_c(4)) == []  # delivered before
    assert s.offer(_c(6)) == [] and s.gap(1) == (5, 5)
    assert s.offer(_c(7)) == [] and s.offer(_c(6)) == []
    assert [c["seq"] for c in s.offer(_c(5))] == [5, 6, 7]
    assert s.gap(1) is None and s.delivered(1) == 7
    assert s.offer(_c(6)) == []
    assert s.behind(1, 7) is None and s.behind(1, 9) == (8, 9)
    assert [c["seq"] for c in s.offer(_c(3, centre=2))] == [3]  # a new centre starts there
    assert s.behind(5, 10) is None  # unknown centre: nothing to read back
