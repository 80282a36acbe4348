"""Counters' and tablets' snapshots read for many counters at once (a hall reconnecting:
core/views.py ``counter_snapshots``, ``rating_snapshots``) are each what a read of that
counter alone gives, on a centre where every kind of ticket is somewhere: waiting by
service and priority, sent to one counter, called, being served, finished and rated or
not; and they cost the same statements for one counter as for all of them."""

from __future__ import annotations

import sqlalchemy as sa

from core import views
from harness.centre import KIOSK, RATING_1


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


def test_a_batch_costs_the_statements_of_one_counter(local):
    ids = busy_hall(local)

    def statements(view, batch, arg) -> int:
        executed = []

        def read(conn):
            def on_execute(*_args):
                executed.append(1)

            sa.event.listen(conn, "before_cursor_execute", on_execute)
            try:
                return view(conn, batch, arg)
            finally:
                sa.event.remove(conn, "before_cursor_execute", on_execute)

        local.read(read)
        return len(executed)

    for view, arg in [
        (views.counter_snapshots, local.engine.no_show_after_s),
        (views.rating_snapshots, local.engine.rating_window),
    ]:
        assert statements(view, ids[:1], arg) == statements(view, ids, arg) <= 9
