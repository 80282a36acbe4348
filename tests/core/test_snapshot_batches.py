"""Counters', tablets' and boards' snapshots read for many at once (a hall reconnecting:
core/views.py ``counter_snapshots``, ``rating_snapshots``, ``display_snapshots``) are
each what a read of that counter or board alone gives, on a centre where every kind of
ticket is somewhere: waiting by service and priority, sent to one counter, called, being
served, finished and rated or not; and they cost the same statements for one as for all."""

from __future__ import annotations

import sqlalchemy as sa

from core import models as m
from core import views
from core.provisioning import provision
from harness.centre import COMMUNE, KIOSK, RATING_1


def busy_hall(local):
    """Counters 1-3 open with tickets in every state; returns their ids."""
    engine = local.engine
    kiosk = local.device(KIOSK)
    clerks = {n: local.clerk(f"clerk{n}", n) for n in (1, 2, 3)}
    issued = [
        engine.issue_ticket(kiosk, service, priority)["ticket"]
        for service, priority in [
            ("TP", None),
            ("HT", None),
            ("DD", None),
            ("TP", "elderly"),
            ("TP", None),
            ("HT", None),
            ("DD", None),
            ("TP", None),
        ]
    ]
    done = engine.call_next(clerks[1])["ticket"]  # the priority ticket
    engine.start(clerks[1], done["id"])
    engine.finish(clerks[1], done["id"], dossiers=[], outcome=None)
    engine.rate(local.device(RATING_1), done["id"], 3)
    second = engine.call_next(clerks[1])["ticket"]
    engine.start(clerks[1], second["id"])
    engine.finish(clerks[1], second["id"], dossiers=[], outcome=None)  # the tablet asks
    served = engine.call_next(clerks[2])["ticket"]
    engine.start(clerks[2], served["id"])
    engine.call_next(clerks[3])  # called, not yet come
    moved = engine.call_next(clerks[1])["ticket"]
    engine.transfer(clerks[1], moved["id"], counter=3)  # waits for counter 3 only
    assert len(issued) == 8
    return [local.counter_id(n) for n in (1, 2, 3)]


def test_many_counters_read_together_are_each_as_read_alone(local):
    ids = busy_hall(local)
    no_show, window = local.engine.no_show_after_s, local.engine.rating_window
    together = local.view(views.counter_snapshots, ids, no_show)
    alone = {i: local.view(views.counter_snapshot, i, no_show) for i in ids}
    assert together == alone
    # The hall as it is: counter 3 alone has the ticket sent to it; 2 serves one.
    one, two, three = (together[i] for i in ids)
    assert two["current"]["status"] == "serving"
    sent = [t for t in three["queue"] if t["target_counter"] == 3]
    assert len(sent) == 1 and not any(t["target_counter"] for t in one["queue"] + two["queue"])
    assert [t["issued_at"] for t in one["queue"]] == sorted(t["issued_at"] for t in one["queue"])
    assert sum(one["waiting"].values()) == len(one["queue"])

    tablets = local.view(views.rating_snapshots, ids, window)
    assert tablets == {i: local.view(views.rating_snapshot, i, window) for i in ids}
    assert tablets[ids[0]]["awaiting_rating"] is not None  # the second visit, unrated
    assert tablets[ids[1]]["current"]["status"] == "serving"


def busy_boards(local) -> dict:
    """Boards of the busy hall (all its counters; counter 3; counters 1 and 2; a counter
    that is not there) and of a second centre; counter 1 has called more than a board
    lists."""
    ids = busy_hall(local)
    kiosk, clerk, engine = local.device(KIOSK), local.clerk("clerk1", 1), local.engine
    for _ in range(views.RECENT_CALLS + 2):
        engine.issue_ticket(kiosk, "TP", None)
        called = engine.call_next(clerk)["ticket"]
        engine.start(clerk, called["id"])
        engine.finish(clerk, called["id"], dossiers=[], outcome=None)
    provision(local.store, COMMUNE)
    commune = local.read(
        lambda conn: conn.execute(
            sa.select(m.centres.c.id).where(m.centres.c.code == "T2")
        ).scalar_one()
    )
    return {
        "hall": (local.centre_id, None),
        "three": (local.centre_id, frozenset(ids[2:])),
        "one and two": (local.centre_id, frozenset(ids[:2])),
        "gone": (local.centre_id, frozenset([10**6])),
        "commune": (commune, None),
    }


def test_many_boards_read_together_are_each_as_read_alone(local):
    boards = busy_boards(local)
    together = local.view(views.display_snapshots, boards)
    assert together == {k: local.view(views.display_snapshot, *b) for k, b in boards.items()}
    hall, three, pair = together["hall"], together["three"], together["one and two"]
    numbers = {k: [c["number"] for c in v["counters"]] for k, v in together.items()}
    assert numbers == {
        "hall": [1, 2, 3],
        "three": [3],
        "one and two": [1, 2],
        "gone": [],
        "commune": [1, 2],
    }
    # Each board lists the latest calls at its own counters: counter 3's one call is
    # older than the hall's last ten, and the pair's are the hall's without it.
    assert len(hall["recent_calls"]) == len(pair["recent_calls"]) == views.RECENT_CALLS
    assert [e["counter"]["number"] for e in three["recent_calls"]] == [3]
    assert all(e["counter"]["number"] in (1, 2) for e in pair["recent_calls"])
    seqs = [e["seq"] for e in hall["recent_calls"]]
    assert seqs == sorted(seqs, reverse=True)
    # Waiting counts of the services a board's counters serve; none of another centre.
    assert set(three["waiting"]) < set(hall["waiting"])
    assert together["commune"]["centre"]["code"] == "T2"
    assert not together["commune"]["recent_calls"] and not together["gone"]["waiting"]


def statements(local, view, *args) -> int:
    """How many statements ``view(conn, *args)`` executes."""
    executed = []

    def count(*_args):
        executed.append(1)

    def read(conn):
        sa.event.listen(conn, "before_cursor_execute", count)
        try:
            return view(conn, *args)
        finally:
            sa.event.remove(conn, "before_cursor_execute", count)

    local.read(read)
    return len(executed)


def test_a_batch_costs_the_statements_of_one_counter(local):
    ids = busy_hall(local)
    for view, arg in [
        (views.counter_snapshots, local.engine.no_show_after_s),
        (views.rating_snapshots, local.engine.rating_window),
    ]:
        assert statements(local, view, ids[:1], arg) == statements(local, view, ids, arg) <= 9


def test_a_batch_of_boards_costs_the_statements_of_one(local):
    boards = busy_boards(local)
    one = statements(local, views.display_snapshots, {"three": boards["three"]})
    assert one == statements(local, views.display_snapshots, boards) <= 8
