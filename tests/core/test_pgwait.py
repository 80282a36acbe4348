"""The writer's waits for PostgreSQL under gevent (core/pgwait.py): a short answer is
waited for holding the thread, a long one lets the other greenlets run after
BLOCKING_WAIT_S, and so does waiting for a centre another process has locked. Run in a
child process: gevent must patch the standard library before anything imports it."""

from __future__ import annotations

from harness.process import gevent_child

CHILD = r"""
from gevent import monkey
monkey.patch_all()
import json, sys, time
import gevent, psycopg
import sqlalchemy as sa
from core import models as m
from core.pgwait import BLOCKING_WAIT_S, blocking
from core.store import Store, lock_centres

store = Store(sys.argv[1])
store.migrate()
with store.engine.begin() as conn:
    conn.execute(sa.insert(m.centres).values(id=1, code="X", name="X", timezone="Asia/Ho_Chi_Minh"))
ticks = []
def ticker():
    while True:
        ticks.append(time.monotonic())
        gevent.sleep(0)
gevent.spawn(ticker)
gevent.sleep(0.02)

def ticked_during(fn):
    start = time.monotonic()
    fn()
    end = time.monotonic()
    return [round(t - start, 4) for t in ticks if start < t < end], round(end - start, 4)

out = {"budget": BLOCKING_WAIT_S}
with store.engine.connect() as conn:
    def sleep(seconds):
        with blocking(conn):
            conn.exec_driver_sql(f"SELECT pg_sleep({seconds})").all()
    out["short"] = ticked_during(lambda: [sleep(0) for _ in range(20)])
    out["long"] = ticked_during(lambda: sleep(0.2))
    conn.rollback()

other = psycopg.connect(sys.argv[2])
other.execute("SELECT 1 FROM centres WHERE id = 1 FOR UPDATE")
gevent.spawn_later(0.2, other.commit)
with store.engine.connect() as conn:
    with conn.begin():
        out["locked"] = ticked_during(lambda: lock_centres(conn, {1}, True))
print(json.dumps(out))
"""


def test_the_writer_holds_the_thread_only_for_short_answers(pg_url):
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    out = gevent_child(CHILD, pg_url, dsn)
    budget = out["budget"]
    short_ticks, _ = out["short"]
    assert short_ticks == []  # twenty quick answers, the ticker never ran
    long_ticks, took = out["long"]
    assert took >= 0.2
    # Held for the budget, then the ticker ran through the rest of the sleep.
    assert long_ticks and min(long_ticks) >= budget * 0.9 and len(long_ticks) > 20
    locked_ticks, waited = out["locked"]
    assert waited >= 0.19 and len(locked_ticks) > 20  # the lock was waited for cooperatively
