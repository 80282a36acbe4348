"""Reads of the SQLite store under gevent, as the server makes them: many greenlets and
the thread pool's threads at once, none losing its connection to another. (The readers'
pool had been one connection per thread identity, 16 kept: under gevent every greenlet
is one, and the 17th closed a connection another was reading on.) Run in a child
process: gevent must patch the standard library before anything imports it."""

from __future__ import annotations

from harness.process import gevent_child

CHILD = r"""
from gevent import monkey
monkey.patch_all()
import json, sys, time
import gevent
import sqlalchemy as sa
from core.store import Store

pool = gevent.get_hub().threadpool
store = Store(sys.argv[1], offload=lambda fn, *a: pool.apply(fn, a))
store.migrate()
errors, done = [], []

def count(conn):
    return conn.execute(sa.text("SELECT count(*) FROM centres")).scalar_one()

def reader():
    def fn(conn):
        first = count(conn)
        gevent.sleep(0.01)  # others read meanwhile, greenlets and threads
        return first, count(conn)
    try:
        done.append(store.read(fn))
    except Exception as e:
        errors.append(repr(e))

def report():  # a report's read, in the thread pool
    def fn(conn):
        first = count(conn)
        time.sleep(0.01)
        return first, count(conn)
    try:
        done.append(store.read_offloaded(fn))
    except Exception as e:
        errors.append(repr(e))

greenlets = [gevent.spawn(reader) for _ in range(40)]
greenlets += [gevent.spawn(report) for _ in range(12)]
gevent.joinall(greenlets, timeout=30)
print(json.dumps({"errors": errors[:3], "done": len(done)}))
"""


def test_many_greenlets_and_threads_read_at_once(tmp_path):
    out = gevent_child(CHILD, f"sqlite:///{tmp_path / 'reads.sqlite3'}")
    assert out == {"errors": [], "done": 52}
