"""Every (operation, state) pair of both lifecycle tables, run through the engine: what the
table accepts is done with the effects it lists (state, stamp, waiting count, recorded
change), what it refuses is refused; and the counter snapshot's ``actions`` (what the
clerk's page offers) agree with what the engine accepts, in every state of a counter."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from core import auth, views
from core import models as m
from core.acting import Actor
from core.errors import QueueError
from core.lifecycle import (
    CLERK_ACTIONS,
    COUNTER_STATES,
    TICKET_STATES,
    TICKET_TRANSITIONS,
    counter_actions,
)
from harness.centre import KIOSK
from harness.local import LocalCentre


@pytest.fixture
def fresh(centre_file, tmp_path):
    made = []

    def make() -> LocalCentre:
        local = LocalCentre(centre_file, tmp_path / f"c{len(made)}.sqlite3")
        made.append(local)
        return local

    yield make
    for local in made:
        local.close()


def _ticket(local, ticket_id):
    return local.read(
        lambda conn: conn.execute(sa.select(m.tickets).where(m.tickets.c.id == ticket_id)).one()
    )


def _count(local, code):
    services = local.view(views.kiosk_snapshot, local.centre_id)["services"]
    return next(s for s in services if s["code"] == code)["waiting"]


def _ticket_in(local, state):
    """clerk1 at counter 1 and a TP ticket brought to ``state`` there."""
    e, kiosk, clerk = local.engine, local.device(KIOSK), local.clerk("clerk1", 1)
    ticket = e.issue_ticket(kiosk, "TP")["ticket"]
    steps = {
        "waiting": [],
        "called": ["call"],
        "serving": ["call", "start"],
        "transferred": ["call", "transfer"],
        "done": ["call", "finish"],
        "no_show": ["call", "no_show"],
        "cancelled": ["cancel"],
    }[state]
    for step in steps:
        if step == "call":
            e.call_next(clerk)
        elif step == "transfer":
            e.transfer(clerk, ticket["id"], service="HT")
        elif step == "cancel":
            e.cancel_ticket(local.manager(), ticket["id"])
        else:
            getattr(e, step)(clerk, ticket["id"])
    assert _ticket(local, ticket["id"]).status == state
    return clerk, ticket["id"]


def _run(local, clerk, operation, ticket_id):
    e = local.engine
    if operation == "call":
        return e.call_ticket(clerk, ticket_id)
    if operation == "cancel":
        return e.cancel_ticket(local.manager(), ticket_id)
    if operation == "move":
        row = _ticket(local, ticket_id)
        return e.move_ticket(
            local.manager(), ticket_id, service="DD" if row.service_id != 3 else "TP"
        )
    if operation == "transfer":
        row = _ticket(local, ticket_id)
        return e.transfer(clerk, ticket_id, service="DD" if row.service_id != 3 else "TP")
    return getattr(e, operation)(clerk, ticket_id)


@pytest.mark.parametrize(
    "operation, state",
    list(itertools.product([op for op in TICKET_TRANSITIONS if op != "issue"], TICKET_STATES)),
)
def test_each_ticket_operation_in_each_state_follows_its_table(fresh, operation, state):
    local = fresh()
    clerk, ticket_id = _ticket_in(local, state)
    t = TICKET_TRANSITIONS[operation]
    before = _ticket(local, ticket_id)
    counts = {code: _count(local, code) for code in ("TP", "HT", "DD")}
    seen = len(local.changes)
    if state not in t.sources:
        with pytest.raises(QueueError) as refused:
            _run(local, clerk, operation, ticket_id)
        assert refused.value.code == "conflict"
        assert _ticket(local, ticket_id).status == state
        assert len(local.changes) == seen
        return
    _run(local, clerk, operation, ticket_id)
    after = _ticket(local, ticket_id)
    assert after.status == t.target
    if t.stamps:
        assert getattr(after, t.stamps) is not None
        assert getattr(after, t.stamps) != getattr(before, t.stamps)
    for field in t.clears:
        assert getattr(after, field) is None
    kinds = [c["change"]["kind"] for c in local.changes[seen:]]
    assert kinds[-1] == ("called" if t.records == "recalled" else t.records)
    codes = {1: "TP", 2: "HT", 3: "DD"}
    moved = {code: _count(local, code) - counts[code] for code in counts}
    expected = dict.fromkeys(counts, 0)
    if t.waiting:
        expected[codes[after.service_id]] += t.waiting
    if t.requeues:  # out of its old service's queue, into the new one's
        expected[codes[before.service_id]] -= 1
        expected[codes[after.service_id]] += 1
        assert after.issued_at == before.issued_at  # its place kept
    assert moved == expected, (operation, state)


def _counter_in(local, counter_state, current):
    """A clerk at counter 2 (clerk2 may take any) in ``counter_state`` with its current
    ticket in ``current`` (None: none); a TP ticket waiting besides."""
    e, kiosk = local.engine, local.device(KIOSK)

    def find(conn):
        principal = auth.principal_for_username(conn, "clerk2")
        return principal, *auth.take_counter(conn, principal, 2)

    clerk = Actor.staff(*local.read(find))
    if counter_state != "closed":
        e.open_counter(clerk)
    current_id = None
    if current is not None:
        current_id = e.issue_ticket(kiosk, "TP")["ticket"]["id"]
        e.call_next(clerk)
        if current == "serving":
            e.start(clerk, current_id)
    if counter_state == "paused":
        e.pause(clerk, "Nghỉ giữa giờ")
    waiting_id = e.issue_ticket(kiosk, "TP")["ticket"]["id"]
    return clerk, current_id, waiting_id


def _action(local, clerk, action, current_id, waiting_id):
    e = local.engine
    target = current_id or waiting_id
    return {
        "call_next": lambda: e.call_next(clerk),
        "call": lambda: e.call_ticket(clerk, waiting_id),
        "recall": lambda: e.recall(clerk, target),
        "start": lambda: e.start(clerk, target),
        "no_show": lambda: e.no_show(clerk, target),
        "finish": lambda: e.finish(clerk, target),
        "transfer": lambda: e.transfer(clerk, target, service="HT"),
        "pause": lambda: e.pause(clerk, "Họp"),
        "resume": lambda: e.resume(clerk),
        "close": lambda: e.close_counter(clerk),
    }[action]()


COUNTER_CASES = [
    (state, current)
    for state in COUNTER_STATES
    for current in ((None, "called", "serving") if state == "open" else (None,))
]


@pytest.mark.parametrize("action", list(CLERK_ACTIONS))
@pytest.mark.parametrize("counter_state, current", COUNTER_CASES)
def test_the_pages_actions_are_exactly_what_the_engine_accepts(
    fresh, action, counter_state, current
):
    local = fresh()
    clerk, current_id, waiting_id = _counter_in(local, counter_state, current)
    offered = counter_actions(local.engine.no_show_after_s)[action]
    snapshot = local.snapshot("counter", [clerk.counter_id])
    assert snapshot["counter"]["status"] == counter_state
    assert (snapshot["current"] or {}).get("status") == current
    assert snapshot["actions"][action] == offered
    allowed = counter_state in offered["counter"] and current in offered["ticket"]
    try:
        _action(local, clerk, action, current_id, waiting_id)
        accepted = True
    except QueueError as e:
        assert e.code == "conflict", e
        accepted = False
    assert accepted == allowed, (action, counter_state, current)
