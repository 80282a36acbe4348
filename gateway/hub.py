"""Ordered delivery of committed changes to this process's sockets.

Each centre's changes carry its ``seq``. The hub hands them to sockets strictly in seq
order: a change that arrives early (from another server process, through Redis) waits
for the ones before it; if those do not arrive within ``gap_wait_s`` they are read back
from the audit log, where every change was stored in its own transaction. So devices
see every change once, in order, even when Redis drops a message or a process dies
between its commit and its publish.

python-socketio's Redis manager fans out emits but cannot order them across processes,
which is why changes travel on motcua's own channel.
"""

from __future__ import annotations

import json
import logging
import os
import uuid

import gevent
import gevent.lock
import gevent.queue
import sqlalchemy as sa

from core import models as m

log = logging.getLogger("motcua.hub")

CHANNEL_PREFIX = "motcua:changes:"  # + the installation id shared by the store's processes
BROADCAST_NAMESPACES = ("/kiosk", "/counter", "/display", "/rating", "/agent")


def centre_room(centre_id: int) -> str:
    return f"centre:{centre_id}"


class ChangeHub:
    """Sequencer and fan-out of change events for one server process.

    emit: ``emit(event, data, namespace, room)`` sending to this process's sockets.
    store: read back missing changes from the audit log.
    redis_url: share changes with other server processes; ``None`` for a single process.
    gap_wait_s: how long an out-of-order change waits before the gap is read back.
    sweep_s: with Redis, how often to compare each centre's seq with the store, so a
      change lost in transit is delivered even when no later change follows it.
    """

    def __init__(
        self,
        emit,
        store,
        redis_url: str | None = None,
        gap_wait_s: float = 0.2,
        sweep_s: float = 1.0,
    ):
        self.emit = emit
        self.store = store
        self.redis_url = redis_url
        self.gap_wait_s = gap_wait_s
        self.sweep_s = sweep_s
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._next: dict[int, int] = {}
        self._pending: dict[int, dict[int, dict]] = {}
        self._gap_timers: dict[int, gevent.Greenlet] = {}
        self._redis = None
        self.channel = ""
        self._outbox: gevent.queue.Queue | None = None
        self._lock = gevent.lock.RLock()
        self.redis_ok = redis_url is None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        for centre_id, seq in self._centre_seqs():
            self._next[centre_id] = seq + 1
        if self.redis_url:
            self.channel = CHANNEL_PREFIX + self.store.read(
                lambda conn: conn.execute(sa.select(m.installation.c.id)).scalar_one()
            )
            import redis

            self._redis = redis.Redis.from_url(
                self.redis_url, socket_timeout=5, socket_connect_timeout=2
            )
            self._outbox = gevent.queue.Queue()
            gevent.spawn(self._publish_forever)
            gevent.spawn(self._listen)
            gevent.spawn(self._sweep_forever)

    def _centre_seqs(self) -> list[tuple[int, int]]:
        c = m.centres
        return self.store.read(lambda conn: conn.execute(sa.select(c.c.id, c.c.seq)).all())

    # -- input ---------------------------------------------------------------------------
    def committed(self, deliveries: list[dict]) -> None:
        """Called by the store's writer after each commit, in commit order."""
        for d in deliveries:
            self._offer(d)
        if self._outbox is not None:
            self._outbox.put(deliveries)

    def _publish_forever(self) -> None:
        """Publish in commit order, in its own greenlet, so a slow Redis never holds up
        the store's writer. A batch that cannot be published is not retried: the other
        processes read it back from the store (gap fill and sweep)."""
        while True:
            deliveries = self._outbox.get()
            try:
                self._redis.publish(
                    self.channel, json.dumps({"origin": self.origin, "changes": deliveries})
                )
            except Exception as e:  # noqa: BLE001
                log.error(
                    "Cannot publish %d changes to redis (%s); other processes will read "
                    "them from the store",
                    len(deliveries),
                    e,
                )

    def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self.redis_ok = True
                backoff = 0.5
                self._sweep()  # whatever passed while we were not listening
                for message in pubsub.listen():
                    body = json.loads(message["data"])
                    if body["origin"] != self.origin:
                        for d in body["changes"]:
                            self._offer(d)
            except Exception as e:  # noqa: BLE001 - keep listening, say what failed
                self.redis_ok = False
                log.error("Cannot receive changes from redis (%s); retrying in %.1f s", e, backoff)
                gevent.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _sweep_forever(self) -> None:
        while True:
            gevent.sleep(self.sweep_s)
            try:
                self._sweep()
            except Exception as e:  # noqa: BLE001
                log.warning("Cannot compare centre sequences with the store: %s", e)

    def _sweep(self) -> None:
        for centre_id, seq in self._centre_seqs():
            if centre_id in self._next and seq >= self._next[centre_id]:
                self._fill(centre_id, seq)

    # -- ordering ------------------------------------------------------------------------
    def _offer(self, d: dict) -> None:
        """Deliver ``d`` if it is the centre's next change (then any buffered successors);
        buffer it if it is early; drop it if it was delivered already. Several greenlets
        offer changes (the writer, the Redis listener, gap fills): the lock keeps each
        centre's deliveries whole and in order even if an emit yields."""
        with self._lock:
            centre_id, seq = d["centre"], d["seq"]
            expected = self._next.setdefault(centre_id, seq)
            if seq < expected:
                return
            if seq > expected:
                self._pending.setdefault(centre_id, {})[seq] = d
                if centre_id not in self._gap_timers:
                    self._gap_timers[centre_id] = gevent.spawn_later(
                        self.gap_wait_s, self._gap_expired, centre_id
                    )
                return
            pending = self._pending.get(centre_id, {})
            while d is not None:
                self._next[centre_id] = d["seq"] + 1
                self._deliver(d)
                d = pending.pop(self._next[centre_id], None)

    def _gap_expired(self, centre_id: int) -> None:
        self._gap_timers.pop(centre_id, None)
        pending = self._pending.get(centre_id)
        if pending:  # still waiting for an earlier change: read it back
            self._fill(centre_id, min(pending) - 1)

    def _fill(self, centre_id: int, upto: int) -> None:
        """Read changes next..upto of a centre back from the audit log and deliver them."""
        start = self._next[centre_id]
        if upto < start:
            return
        a = m.audit_log
        rows = self.store.read(
            lambda conn: conn.execute(
                sa.select(a.c.seq, a.c.delivery)
                .where(a.c.centre_id == centre_id, a.c.seq >= start, a.c.seq <= upto)
                .order_by(a.c.seq)
            ).all()
        )
        if rows:
            log.info("centre %s: read changes %s..%s back from the store", centre_id, start, upto)
        for seq, delivery in rows:
            self._offer({"centre": centre_id, "seq": seq, **delivery})

    # -- output --------------------------------------------------------------------------
    def _deliver(self, d: dict) -> None:
        room = centre_room(d["centre"])
        b = d["broadcast"]
        for ns in BROADCAST_NAMESPACES:
            self.emit(b["event"], b["data"], ns, room)
        for item in d.get("directed", ()):
            self.emit(item["event"], item["data"], item["namespace"], item["room"])
