"""The store: the source of truth, with one writer that group-commits.

Every queue operation is a function of a :class:`Tx`. The writer runs queued operations
in one database transaction, each inside its own savepoint, so a refused operation undoes
only itself; the transaction commits once for the whole batch (group commit), and only
then are results acknowledged and change events handed to ``on_commit`` in commit order.

On SQLite there is a single writer (one connection, ``BEGIN IMMEDIATE``); its commits
fsync, so under gevent they run in the hub's thread pool rather than stalling every
connection. On PostgreSQL each change first locks its centre's row, which serialises the
centre's changes across server processes and keeps its ``seq`` in commit order.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from time import perf_counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection

from . import models as m
from .errors import QueueError, Refused, refusal_of
from .pgwait import Connection as _Connection
from .pgwait import blocking as _blocking
from .pgwait import green as _green
from .raw import DRIVER_ERRORS, JSONValue, Raw

log = logging.getLogger("motcua.store")

# Operations per transaction. A batch of issues costs ~0.5 ms each on SQLite, so 16 keep a
# batch near 8 ms: a clerk's operation waits for at most the batch being written, then
# goes in the next, with the other urgent ones only.
MAX_BATCH = 16

# SQLite connections kept open for reads by the main thread's greenlets, and at most as
# many by the thread pool's threads (gevent's pool has 10).
READERS = 16

# Statements run for every change, on the driver's cursor (core/raw.py).
_AUDIT_COLUMNS = (
    "centre_id", "seq", "at", "action", "actor", "request_id", "ticket_id", "counter_id",
    "details", "delivery",
)  # fmt: skip
_RESULT_COLUMNS = ("actor", "request_id", "result", "created_at")
_LOCK_CENTRE = Raw("SELECT id, seq FROM centres WHERE id = :id FOR UPDATE")
_TRY_LOCK_CENTRE = Raw("SELECT id, seq FROM centres WHERE id = :id FOR UPDATE SKIP LOCKED")
_CENTRE_SEQ = Raw("SELECT id, seq FROM centres WHERE id = :id")
_STORED_RESULT = Raw(
    "SELECT result FROM request_results WHERE actor = :actor AND request_id = :request_id"
)


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and pick the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def lock_centres(conn: Connection, centre_ids, is_postgres: bool) -> dict[int, int]:
    """The centres' last seqs, their rows locked on PostgreSQL until the transaction ends
    (in id order, as every process locks them, so batches cannot deadlock); SQLite has
    one writer. A lock another process holds is waited for cooperatively (other
    greenlets run meanwhile); one that is free is taken at once."""
    ids = sorted(centre_ids)
    if len(ids) == 1:  # the usual batch: one statement on the driver's cursor
        if not is_postgres:
            return dict(_CENTRE_SEQ.run(conn, {"id": ids[0]}).fetchall())
        with _blocking(conn):
            got = dict(_TRY_LOCK_CENTRE.run(conn, {"id": ids[0]}).fetchall())
        if got:
            return got
        with _green(conn):
            return dict(_LOCK_CENTRE.run(conn, {"id": ids[0]}).fetchall())
    c = m.centres
    query = sa.select(c.c.id, c.c.seq).where(c.c.id.in_(ids)).order_by(c.c.id)
    if not is_postgres:
        return dict(conn.execute(query).all())
    with _green(conn):
        return dict(conn.execute(query.with_for_update()).all())


_FLUSHES: dict[tuple, list[Raw]] = {}


def _flush_statements(centres: int, rows: int, result: bool, postgres: bool) -> list[Raw]:
    """What writes a job's changes: each centre's last seq, the audit rows and the stored
    result; on PostgreSQL one statement (one round trip), its writes in a WITH."""
    key = (centres, rows, result, postgres)
    statements = _FLUSHES.get(key)
    if statements is None:

        def values(columns, prefix):
            return "(" + ", ".join(f":{prefix}_{c}" for c in columns) + ")"

        writes = [f"UPDATE centres SET seq = :c{i}_seq WHERE id = :c{i}_id" for i in range(centres)]
        if result:
            writes.append(
                f"INSERT INTO request_results ({', '.join(_RESULT_COLUMNS)}) "
                f"VALUES {values(_RESULT_COLUMNS, 'r')}"
            )
        if rows:
            writes.append(
                f"INSERT INTO audit_log ({', '.join(_AUDIT_COLUMNS)}) VALUES "
                + ", ".join(values(_AUDIT_COLUMNS, f"a{j}") for j in range(rows))
            )
        if postgres and len(writes) > 1:
            ctes = ", ".join(f"w{i} AS ({w})" for i, w in enumerate(writes[:-1]))
            writes = [f"WITH {ctes} {writes[-1]}"]
        statements = _FLUSHES[key] = [Raw(w) for w in writes]
    return statements


@dataclass
class Tx:
    """One operation's view of a write transaction."""

    conn: Connection
    now: datetime
    is_postgres: bool
    deliveries: list[dict] = field(default_factory=list)
    # The centres locked, each with its last seq: changes are numbered here and written
    # with their audit rows by ``flush``.
    seqs: dict[int, int] = field(default_factory=dict)
    _audit: list[dict] = field(default_factory=list)
    _at_flush: dict = field(default_factory=dict)

    def lock_centre(self, centre_id: int) -> None:
        """Serialise changes of one centre (PostgreSQL row lock; SQLite has one writer)."""
        if centre_id not in self.seqs:
            self.seqs.update(lock_centres(self.conn, [centre_id], self.is_postgres))

    def change(
        self,
        centre_id: int,
        action: str,
        actor: str,
        *,
        change: dict,
        request_id: str | None = None,
        ticket_id: int | None = None,
        counter_id: int | None = None,
        details: dict | None = None,
    ) -> int:
        """Record one change: the centre's next seq, its audit row (which keeps
        ``change``, what devices are told), written by ``flush``, and its delivery after
        commit."""
        self.lock_centre(centre_id)
        seq = self.seqs[centre_id] = self.seqs[centre_id] + 1
        self._audit.append(
            {
                "centre_id": centre_id,
                "seq": seq,
                "at": self.now,
                "action": action,
                "actor": actor,
                "request_id": request_id,
                "ticket_id": ticket_id,
                "counter_id": counter_id,
                "details": JSONValue(details or {}),
                "delivery": JSONValue(change),
            }
        )
        self.deliveries.append({"centre": centre_id, "seq": seq, "change": change})
        return seq

    def at_flush(self, fn: Callable[[Tx, Any], None], make: Callable[[], Any] = dict) -> Any:
        """The state of ``fn(tx, state)``, run once before the operation's changes are
        written: what is better done once for all of them (core/estimates.py's
        summaries)."""
        state = self._at_flush.get(fn)
        if state is None:
            state = self._at_flush[fn] = make()
        return state

    def flush(self, stored: dict | None = None) -> None:
        """Write the operation's changes (the centres' seqs, the audit rows) and, with
        ``stored``, the result remembered for its request id."""
        while self._at_flush:
            fn, state = self._at_flush.popitem()
            fn(self, state)
        centres = sorted({row["centre_id"] for row in self._audit})
        params: dict[str, Any] = {}
        for i, centre_id in enumerate(centres):
            params[f"c{i}_seq"] = self.seqs[centre_id]
            params[f"c{i}_id"] = centre_id
        for j, row in enumerate(self._audit):
            params.update((f"a{j}_{k}", v) for k, v in row.items())
        if stored is not None:
            params.update((f"r_{k}", v) for k, v in stored.items())
        for statement in _flush_statements(
            len(centres), len(self._audit), stored is not None, self.is_postgres
        ):
            statement.run(self.conn, params)
        self._audit.clear()


class _Job:
    __slots__ = ("fn", "centre_id", "actor", "request_id", "result", "error", "done", "urgent")

    def __init__(self, fn, centre_id, actor, request_id, done, urgent=False):
        self.urgent = urgent
        self.fn = fn
        self.centre_id = centre_id
        self.actor = actor
        self.request_id = request_id
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = done


def _sqlite_pragmas(dbapi_conn, _record):
    dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    # 64 MB of page cache (default 2 MB): a day's random-keyed indexes (public keys,
    # request ids) outgrow 2 MB within tens of thousands of tickets, and the issue rate
    # fell with every page read back from the OS.
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only (0600, in a 0700 folder when
    the folder is new): it holds password hashes, token digests and the audit log.
    SQLite gives its -wal and -shm files the database file's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _make_engine(url: str, *, writer: bool, threads: bool = False) -> sa.Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            _create_private(Path(path))
        # The writer keeps one connection. Readers keep theirs open, so a read does not
        # reconnect and re-run the pragmas every time: the greenlets of the main thread
        # share a pool (one connection per thread identity would not do: under gevent
        # every greenlet is one, and a pool of those closed connections others were
        # reading on); the thread pool's threads (``threads``) keep one each.
        if writer:
            pool = {"pool_size": 1, "max_overflow": 0}
        elif threads:
            pool = {"poolclass": sa.pool.SingletonThreadPool, "pool_size": READERS}
        else:
            pool = {"pool_size": READERS, "max_overflow": 0, "pool_timeout": 30}
        engine = sa.create_engine(url, connect_args={"check_same_thread": False}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        begin = "BEGIN IMMEDIATE" if writer else "BEGIN"
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))
        return engine
    engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    event.listen(
        engine,
        "do_connect",
        lambda _dialect, _record, cargs, cparams: _Connection.connect(*cargs, **cparams),
    )
    return engine


class Store:
    """Database access for the engine: ``write`` (group-committed) and ``read``.

    url: SQLAlchemy URL (``sqlite:///path`` or ``postgresql://...``).
    on_commit: called with the committed changes, in seq order, after each commit and
      before the writers are answered; each is ``{"centre", "seq", "change"}``.
    offload: a callable running a function in a native thread and returning its result
      (gevent's thread pool in the server): the SQLite writer's batches, whose commits
      fsync, run there; ``None`` runs them inline.

    ``observe``, when set, is called after every ``write`` with the operation's name, the
    seconds from its call to its answer (waiting for the writer included) and its error
    (None when it succeeded): the server's metrics (gateway/metrics.py).
    """

    def __init__(
        self,
        url: str,
        *,
        on_commit: Callable[[list[dict]], None] | None = None,
        offload: Callable[..., Any] | None = None,
    ):
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.is_postgres = self.url.startswith("postgresql")
        self.engine = _make_engine(self.url, writer=True)
        self.read_engine = self.thread_read_engine = self.engine
        if self.is_sqlite:
            self.read_engine = _make_engine(self.url, writer=False)
            self.thread_read_engine = _make_engine(self.url, writer=False, threads=True)
            # Its first connection here, not in the pool's threads: SQLAlchemy runs the
            # first-connect hooks under a lock, a gevent lock once patched, which
            # threads contending for it could wait on for ever.
            with self.thread_read_engine.connect():
                pass
        self.on_commit = on_commit
        self.offload = offload
        self.observe: Callable[[str, float, BaseException | None], None] | None = None
        self._queue = None
        self._event = None
        self._writer = None
        self._waiting: tuple[deque, ...] = ()
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------
    def migrate(self) -> None:
        from .migrations import upgrade

        upgrade(self.engine)

    def start_writer(self, queue_factory, spawn, event_factory) -> None:
        """Start the batching writer (a greenlet in the server): the factories make its
        queue and the event each caller waits on; ``spawn`` starts it."""
        self._queue = queue_factory()
        self._event = event_factory
        self._writer = spawn(self._writer_loop)

    def dispose(self) -> None:
        for engine in {self.engine, self.read_engine, self.thread_read_engine}:
            engine.dispose()

    # -- writing ---------------------------------------------------------------------
    def write(
        self,
        fn: Callable[[Tx], Any],
        *,
        centre_id: int,
        actor: str,
        request_id: str | None = None,
        urgent: bool = False,
        operation: str = "other",
    ) -> Any:
        """Run ``fn`` in a committed transaction and return its result.

        With ``request_id``, the first committed result for (actor, request_id) is
        returned again instead of running ``fn`` twice. ``urgent`` operations (a clerk's)
        go ahead of queued others (a kiosk flood's). ``operation`` names it for
        ``observe`` (one of a few names: the engine's operations, a handful of others).
        """
        started = perf_counter()
        if self._queue is None:
            with self._lock:
                job = _Job(fn, centre_id, actor, request_id, None)
                self._finish_batch([job], self._run_batch([job]))
        else:
            job = _Job(fn, centre_id, actor, request_id, self._event(), urgent)
            self._queue.put(job)
            job.done.wait()
        error = job.error
        if self.observe is not None:
            self.observe(operation, perf_counter() - started, error)
        if error is not None:
            try:
                raise error
            finally:  # the traceback holds this frame, which would hold the error
                error = job = None
        return job.result

    def _writer_loop(self) -> None:
        # Jobs taken from the queue, waiting for a transaction (``pending`` counts them).
        urgent: deque[_Job] = deque()
        others: deque[_Job] = deque()
        self._waiting = (urgent, others)
        while True:
            if not urgent and not others:
                job = self._queue.get()
                (urgent if job.urgent else others).append(job)
            while not self._queue.empty():
                job = self._queue.get_nowait()
                (urgent if job.urgent else others).append(job)
            # Urgent jobs commit on their own, so a clerk never waits for a kiosk batch
            # behind them.
            waiting = urgent or others
            jobs = [waiting.popleft() for _ in range(min(MAX_BATCH, len(waiting)))]
            # Lock centres in one order in every process, so batches cannot deadlock.
            jobs.sort(key=lambda j: j.centre_id)
            try:
                if self.offload is not None and self.is_sqlite:
                    deliveries = self.offload(self._run_batch, jobs)
                else:
                    deliveries = self._run_batch(jobs)
            except BaseException:  # noqa: BLE001 - the writer must outlive any batch
                log.exception("write batch of %d failed before commit", len(jobs))
                deliveries = []
                for job in jobs:
                    if job.error is None:
                        job.error = QueueError("unavailable", "unavailable")
            self._finish_batch(jobs, deliveries)

    def _finish_batch(self, jobs: list[_Job], deliveries: list[dict]) -> None:
        if deliveries and self.on_commit is not None:
            try:
                self.on_commit(deliveries)
            except Exception:
                log.exception("delivering %d committed changes failed", len(deliveries))
        for job in jobs:
            if job.done is not None:
                job.done.set()

    def _run_batch(self, jobs: list[_Job]) -> list[dict]:
        """Run jobs in one transaction, each in a savepoint (a job alone in the
        transaction, as a clerk's is, needs none: a refusal rolls the transaction back);
        return the deliveries."""
        try:
            with self.engine.connect() as conn:
                with conn.begin() as transaction:
                    now = m.utcnow()
                    # Locked before any job's savepoint: a lock taken inside a savepoint
                    # that is rolled back would be released with it.
                    seqs = lock_centres(conn, {j.centre_id for j in jobs}, self.is_postgres)
                    # The commit, at the end of this block, waits cooperatively.
                    with _blocking(conn):
                        return self._run_jobs(conn, transaction, now, seqs, jobs)
        except (sa.exc.DBAPIError, *DRIVER_ERRORS) as e:
            log.error("database refused a batch of %d operations: %s", len(jobs), e)
            for job in jobs:
                job.result = None
                job.error = QueueError("unavailable", "unavailable")
            return []

    def _run_jobs(self, conn: Connection, transaction, now, seqs, jobs) -> list[dict]:
        deliveries: list[dict] = []
        alone = len(jobs) == 1
        # Savepoints on the driver's cursor: SQLAlchemy's nested transactions cost more
        # than a hot-path job's own statements (core/raw.py).
        cur = conn.connection.driver_connection.cursor()
        for job in jobs:
            tx = Tx(conn, now, self.is_postgres, seqs=dict(seqs))
            if not alone:
                cur.execute("SAVEPOINT job")
            try:
                job.result = self._run_job(tx, job)
            except Exception as e:
                if alone:
                    transaction.rollback()
                else:
                    cur.execute("ROLLBACK TO SAVEPOINT job")
                    cur.execute("RELEASE SAVEPOINT job")
                # Without the writer's frames: they hold the job, which holds the error
                # (a cycle for the collector per refusal).
                job.error = self._refusal(job, e).with_traceback(None)
            else:
                if not alone:
                    cur.execute("RELEASE SAVEPOINT job")
                seqs = tx.seqs
                deliveries.extend(tx.deliveries)
        return deliveries

    @staticmethod
    def _refusal(job: _Job, e: Exception) -> QueueError:
        """What the caller of a job undone to its savepoint is told."""
        if isinstance(e, Refused):
            return e
        error = refusal_of(e)
        if error.code == "unavailable":
            # If the connection itself is gone, the commit fails and every job is told so.
            log.error("database refused an operation of %s: %s", job.actor, e)
        elif error.code == "internal":
            log.error("operation failed for %s", job.actor, exc_info=e)
        return error

    @staticmethod
    def _run_job(tx: Tx, job: _Job) -> Any:
        key = {"actor": job.actor, "request_id": job.request_id}
        if job.request_id:
            stored = _STORED_RESULT.first(tx.conn, key)
            if stored is not None:
                return json.loads(stored[0]) if isinstance(stored[0], str) else stored[0]
        result = job.fn(tx)
        stored = None
        if job.request_id:
            stored = {**key, "result": JSONValue(result), "created_at": tx.now}
        tx.flush(stored)
        return result

    # -- reading ---------------------------------------------------------------------
    def read(self, fn: Callable[[Connection], Any]) -> Any:
        """Run ``fn`` in one consistent read transaction, in the caller's thread.

        Reads are not offloaded like the writer's commits: a WAL read neither fsyncs nor
        waits for the writer, and takes well under a millisecond, while a hand-off to the
        thread pool costs more than that and makes every thread fight for the GIL (a
        thousand devices reconnecting took 15 s, most of it in that fight)."""
        return self._read(self.read_engine, fn)

    def read_offloaded(self, fn: Callable[[Connection], Any]) -> Any:
        """``read``, in the thread pool when there is one: a long read (a year's report)
        must not hold every socket of the process still."""
        if self.offload is None:
            return self.read(fn)
        return self.offload(self._read, self.thread_read_engine, fn)

    def _read(self, engine: sa.Engine, fn):
        with engine.connect() as conn:
            if self.is_postgres:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                return fn(conn)

    def changes(self, centre_id: int, first: int, last: int) -> list[dict]:
        """Committed changes first..last of a centre, from the audit log, in seq order."""
        a = m.audit_log
        rows = self.read(
            lambda conn: conn.execute(
                sa.select(a.c.seq, a.c.delivery, a.c.at)
                .where(a.c.centre_id == centre_id, a.c.seq >= first, a.c.seq <= last)
                .order_by(a.c.seq)
            ).all()
        )
        # "committed": when, as a Unix time (the transaction's start, a few ms before its
        # commit), for the delivery delay the server measures (gateway/metrics.py).
        return [
            {"centre": centre_id, "seq": seq, "change": change, "committed": at.timestamp()}
            for seq, change, at in rows
        ]

    def centre_seqs(self, centre_ids: list[int]) -> list[tuple[int, int]]:
        """(centre id, last committed seq) of each of these centres that exists."""
        c = m.centres
        query = sa.select(c.c.id, c.c.seq).where(c.c.id.in_(centre_ids))
        return self.read(lambda conn: conn.execute(query).all())

    def installation_id(self) -> str:
        """The identity shared by every process on this store."""
        return self.read(lambda conn: conn.execute(sa.select(m.installation.c.id)).scalar_one())

    def pending(self) -> int:
        """Operations waiting for the writer: queued, or taken from the queue but not yet
        into a transaction (those wait behind the batch being written)."""
        if self._queue is None:
            return 0
        return self._queue.qsize() + sum(len(jobs) for jobs in self._waiting)

    def ping(self) -> bool:
        try:
            self.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())
            return True
        except Exception as e:  # noqa: BLE001 - health check reports, never raises
            log.warning("database ping failed: %s", e)
            return False
