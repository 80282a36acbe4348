"""How the store writes an operation's changes, on SQLite and PostgreSQL: numbered in
memory under the centre's lock, written with their audit rows once the operation has
run, undone with it when it is refused, alone or within a batch."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core import estimates
from core import models as m
from core.errors import QueueError
from core.provisioning import provision
from core.store import Store, _Job
from harness.centre import CENTRE


@pytest.fixture
def store(any_store_url):
    store = Store(any_store_url)
    store.migrate()
    provision(store, CENTRE)
    delivered: list[dict] = []
    store.on_commit = delivered.extend
    store.delivered = delivered
    yield store
    store.dispose()


def centre_and_service(store):
    def read(conn):
        s = m.services
        return conn.execute(sa.select(s.c.centre_id, s.c.id, s.c.code).limit(1)).one()

    return store.read(read)


def written(store, centre_id):
    def read(conn):
        a, c = m.audit_log, m.centres
        rows = conn.execute(
            sa.select(a.c.seq, a.c.action, a.c.delivery)
            .where(a.c.centre_id == centre_id)
            .order_by(a.c.seq)
        ).all()
        seq = conn.execute(sa.select(c.c.seq).where(c.c.id == centre_id)).scalar_one()
        names = set(conn.execute(sa.select(m.services.c.name)).scalars())
        return rows, seq, names

    return store.read(read)


def change(centre_id, action, then_refuse=False, summary_of=None):
    def op(tx):
        summaries = []
        if summary_of is not None:
            service_id, code = summary_of
            summaries = [estimates.summary_after(tx, service_id, code, tx.now.date())]
        tx.change(centre_id, action, "test", change={"kind": action, "services": summaries})
        if then_refuse:  # after writing, as a refusal found late does
            tx.conn.execute(sa.update(m.services).values(name=action))
            raise QueueError("conflict", "conflict")
        return {"done": action}

    return op


def run(store, *ops, request_id=None):
    jobs = [_Job(op, ops_centre, "test", request_id, None) for op, ops_centre in ops]
    store._finish_batch(jobs, store._run_batch(jobs))
    return jobs


def test_changes_are_numbered_in_order_and_a_refused_operation_leaves_no_trace(store):
    centre_id, service_id, code = centre_and_service(store)
    before, seq0, names = written(store, centre_id)
    assert seq0 == (before[-1].seq if before else 0)

    # Alone in its transaction (a clerk's operation): refused after recording a change.
    (alone,) = run(store, (change(centre_id, "a", then_refuse=True), centre_id))
    assert alone.error is not None and alone.error.code == "conflict"
    assert written(store, centre_id) == (before, seq0, names)
    assert store.delivered == []

    # A batch: the refused one in the middle is undone, the others numbered without a gap.
    jobs = run(
        store,
        (change(centre_id, "b", summary_of=(service_id, code)), centre_id),
        (change(centre_id, "c", then_refuse=True), centre_id),
        (change(centre_id, "d"), centre_id),
    )
    assert [j.error is None for j in jobs] == [True, False, True]
    rows, seq, after = written(store, centre_id)
    assert after == names
    assert [(r.seq, r.action) for r in rows[len(before) :]] == [(seq0 + 1, "b"), (seq0 + 2, "d")]
    assert seq == seq0 + 2
    assert [(d["seq"], d["change"]["kind"]) for d in store.delivered] == [
        (seq0 + 1, "b"),
        (seq0 + 2, "d"),
    ]
    # The summary an operation asked for is filled in before its change is written.
    summary = rows[len(before)].delivery["services"][0]
    assert summary == store.delivered[0]["change"]["services"][0]
    assert summary["code"] == code and {"waiting", "estimated_wait_s", "open"} <= set(summary)


def test_a_request_id_replays_the_first_result_and_its_change_once(store):
    centre_id, *_ = centre_and_service(store)
    _, seq0, _ = written(store, centre_id)
    first = run(store, (change(centre_id, "first"), centre_id), request_id="r1")[0]
    again = run(store, (change(centre_id, "second"), centre_id), request_id="r1")[0]
    assert first.result == again.result == {"done": "first"}
    rows, seq, _ = written(store, centre_id)
    assert seq == seq0 + 1 and rows[-1].action == "first"


WRITER_CHILD = r"""
from gevent import monkey
monkey.patch_all()
import json, sys
import gevent, gevent.event, gevent.queue
from core.errors import QueueError
from core.store import Store

store = Store(sys.argv[1])  # no offload: a batch runs in the writer's greenlet
store.migrate()
observed = []
store.observe = lambda op, s, error: observed.append((op, s, getattr(error, "code", None)))
store.start_writer(gevent.queue.Queue, gevent.spawn, gevent.event.Event)

def slow(tx):
    gevent.sleep(0.3)  # holds the writer: what comes meanwhile waits

def refused(tx):
    raise QueueError("conflict", "ticket_not_here", number="A001")

def quick(tx):
    gevent.sleep(0.03)  # a batch of 16 of them holds the writer for ~0.5 s

def write(fn, operation):
    try:
        store.write(fn, centre_id=0, actor="test", operation=operation)
    except QueueError:
        pass

first = gevent.spawn(write, slow, "slow")
gevent.sleep(0.05)
waiting = [gevent.spawn(write, quick, "quick") for _ in range(20)]
waiting.append(gevent.spawn(write, refused, "refused"))
gevent.sleep(0.05)
queued = store.pending()  # all of them, in the queue
gevent.sleep(0.35)  # the slow one is done; 16 others are being written, 5 wait their turn
behind = store.pending()
gevent.joinall([first, *waiting], timeout=30)
print(json.dumps({"queued": queued, "behind": behind, "after": store.pending(),
                  "observed": observed}))
"""


def test_the_writer_says_how_many_wait_and_how_long_each_operation_took(tmp_path):
    """``pending`` counts the operations waiting for the writer, in its queue or taken from
    it behind the batch being written; ``observe`` hears of each with its name, time and
    error."""
    from harness.process import gevent_child

    out = gevent_child(WRITER_CHILD, f"sqlite:///{tmp_path / 'writer.sqlite3'}")
    assert out["queued"] == 21
    assert out["behind"] == 21 - 16  # MAX_BATCH
    assert out["after"] == 0
    observed = out["observed"]
    assert sorted(op for op, _, _ in observed) == ["quick"] * 20 + ["refused", "slow"]
    slow = next(s for op, s, _ in observed if op == "slow")
    assert 0.3 <= slow < 5
    # Those that waited for the slow one took at least the rest of its 0.3 s.
    assert all(0.2 <= s < 5 for op, s, _ in observed if op == "quick")
    assert {op: code for op, _, code in observed if code} == {"refused": "conflict"}
