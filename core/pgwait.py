"""Waiting for PostgreSQL's answers under gevent.

With gevent's patched poll, psycopg lets every other greenlet run while it waits for
each answer. The writer's statements are short; waiting behind the hub's fan-out at
each of them made an operation several times slower than its own cost. While the
writer runs its jobs its connection waits as a native thread would (``blocking``), for
up to BLOCKING_WAIT_S per answer, then cooperatively; waiting for another process's
lock or for a commit (the disk) stays cooperative (``green``). Elsewhere, and without
gevent, waits are psycopg's own.
"""

from __future__ import annotations

import contextlib
import select
import sys
import time

from sqlalchemy.engine import Connection as SAConnection

try:
    import psycopg
    from psycopg.waiting import Ready, Wait
except ImportError:  # pragma: no cover - psycopg is a dependency
    psycopg = None

# How long one wait of the writer may hold the thread before it lets other greenlets run:
# an answer takes well under a millisecond; one that does not come (a lock, a stalled
# disk, a lost network) must not stall the whole process.
BLOCKING_WAIT_S = 0.01


def _native_poll():
    """A poll object of the thread itself, not gevent's (which switches greenlets)."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("select"):
        return monkey.get_original("select", "poll")()
    return select.poll()


def _wait_blocking(gen, fileno: int, budget_s: float):
    """Drive one of psycopg's generators to its end, as its own wait functions do:
    polling the socket for what the generator waits for and sending back what is ready.
    The thread's own poll for up to ``budget_s``, then gevent's (when patched)."""
    deadline = time.monotonic() + budget_s
    poll, native = _native_poll(), True
    try:
        state = next(gen)
        poll.register(fileno, _EVENTS[state])
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if native and left_ms <= 0:
                poll, native = select.poll(), False  # the rest cooperatively
                poll.register(fileno, _EVENTS[state])
            events = poll.poll(left_ms if native else 100)
            if not events:
                gen.send(Ready.NONE)
                continue
            ev = events[0][1]
            ready = (Ready.R if ev & select.POLLIN else 0) | (Ready.W if ev & select.POLLOUT else 0)
            if not ready:  # only an error or a hang-up
                raise psycopg.OperationalError("connection socket closed")
            state = gen.send(ready)
            poll.modify(fileno, _EVENTS[state])
    except StopIteration as done:
        return done.value


if psycopg is not None:
    _EVENTS = {
        Wait.R: select.POLLIN,
        Wait.W: select.POLLOUT,
        Wait.RW: select.POLLIN | select.POLLOUT,
    }

    class Connection(psycopg.Connection):
        """psycopg's connection, whose waits hold the thread while ``blocking``."""

        blocking = False

        def wait(self, gen, interval=0.1, timeout=None):
            if self.blocking and timeout is None:
                return _wait_blocking(gen, self.pgconn.socket, BLOCKING_WAIT_S)
            return super().wait(gen, interval, timeout)


@contextlib.contextmanager
def blocking(conn: SAConnection, on: bool = True):
    """While in it, the waits of ``conn`` (a PostgreSQL one) hold the thread, or, with
    ``on=False``, let other greenlets run."""
    dbapi = conn.connection.driver_connection
    before = getattr(dbapi, "blocking", None)
    if before is None:  # SQLite
        yield
        return
    dbapi.blocking = on
    try:
        yield
    finally:
        dbapi.blocking = before


def green(conn: SAConnection):
    """While in it, the waits of ``conn`` let other greenlets run."""
    return blocking(conn, on=False)
