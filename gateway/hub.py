"""Delivery of committed changes to this process's sockets: protocol v2 batches.

Changes come from this process's writer, from other processes (a transport) and from
the audit log (gap fill and sweep); a :class:`core.sequence.Sequencer` releases each
centre's changes once, in ``seq`` order. Released changes are batched per
:class:`core.roles.Audience` (devices of one role, centre and binding, joined in one
Socket.IO room): one ``changes`` event covering seq ``after+1 … seq`` with the events
that concern the audience and the latest summaries of the services it shows, encoded
once for the whole room. A batch leaves as soon as the previous one has been handed to
the sockets' writers; changes that arrive meanwhile go in the next one, so the cost
grows with what devices need, not with everything that happens.

A process follows only the centres it serves: the first socket of a centre to join starts
it (the transport subscribes to the centre's channel, the sequencer starts at the centre's
seq in the store, which the socket's snapshot then reaches or passes), and the last to leave
stops it. Changes of other centres, committed here or heard from elsewhere, are only
published; the sweep reads only followed centres.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from itertools import groupby

import gevent
import gevent.queue
from gevent.event import AsyncResult

from core.roles import ROLES, Audience, batch_for, public_event
from core.sequence import Sequencer

from .metrics import Metrics

log = logging.getLogger("motcua.hub")


@dataclass
class _AudienceState:
    audience: Audience
    last: int | None  # seq of the last batch sent to it (None: none yet)
    members: int = 0
    # Counts held back (see ChangeHub.counts_interval_s): the latest summaries by code,
    # the seq they reach, and when counts alone may next be sent.
    held: dict = field(default_factory=dict)
    held_events: list = field(default_factory=list)  # its role's paced events held back
    held_seq: int | None = None
    counts_due: float = 0.0


class ChangeHub:
    """Ordering and fan-out of change batches for one server process.

    send: ``send(namespace, room, batch)`` emits a batch to a room of this process.
    store: reads back missing changes from the audit log.
    connect_transport: makes the transport sharing changes with other server processes
      (gateway/transport.py), called by ``start``; ``None`` for a single process.
    gap_wait_s: how long an out-of-order change waits before the gap is read back.
    sweep_s: how often to compare each centre's seq with the store, so a change lost in
      transit, or made by another program, is delivered even when no later change
      follows it.
    counts_interval_s: a batch carrying only waiting counts (no event) goes to an
      audience at most this often; counts changed meanwhile ride on its next batch, or
      go when the interval ends. Events (calls above all) are never held. Counts are
      state, not history: a kiosk flood then costs each display a few frames a second,
      not one per ticket (docs/performance.md). 0 sends counts at once. A role's
      ``paced`` events (core/roles.py: the monitor's new tickets) are held with counts.

    metrics: where this process counts what it delivers (gateway/metrics.py); its own
      when not given.

    listeners: called with each change released here (in the centre's seq order, after its
      batches went out), for what a process does itself on a change: gateway/sessions.py
      closes the sockets whose credential a change ended.

    A change committed just as a centre starts to be followed may pass before its channel
    is subscribed: the gap fill (when a later change comes) or the sweep delivers it.
    """

    def __init__(
        self,
        send,
        store,
        connect_transport=None,
        gap_wait_s: float = 0.2,
        sweep_s: float = 1.0,
        counts_interval_s: float = 0.5,
        metrics: Metrics | None = None,
    ):
        self.metrics = metrics or Metrics()
        self.send = send
        self.store = store
        self.connect_transport = connect_transport
        self.transport = None
        self.gap_wait_s = gap_wait_s
        self.sweep_s = sweep_s
        self.counts_interval_s = counts_interval_s
        self._counts_timers: dict[int, gevent.Greenlet] = {}
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.sequencer = Sequencer()
        self.transport_ok = connect_transport is None
        # Centres followed, each with its start: the seq it started at, once read.
        self._following: dict[int, AsyncResult] = {}
        self._audiences: dict[int, dict[str, _AudienceState]] = {}
        self._members: dict[str, Audience] = {}  # sid -> its audience
        self._buffer: dict[int, list[dict]] = {}  # released, not yet batched
        self._flushed: dict[int, int] = {}  # last seq batched, per centre
        self._flushers: set[int] = set()
        self._gap_timers: dict[int, gevent.Greenlet] = {}
        self._outbox: gevent.queue.Queue | None = None
        self._greenlets: list[gevent.Greenlet] = []
        self.listeners: list = []

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        # The sweep also catches changes made outside any server process (`server.py
        # provision` while the server runs) when there is no transport to hear them on.
        self._greenlets = [gevent.spawn(self._sweep_forever)]
        if self.connect_transport is not None:
            self.transport = self.connect_transport()
            self._outbox = gevent.queue.Queue()
            self._greenlets += [
                gevent.spawn(self._publish_forever),
                gevent.spawn(self._listen_forever),
            ]

    def stop(self) -> None:
        gevent.killall(self._greenlets)

    def following(self) -> list[int]:
        """The centres this process follows (those of its sockets' audiences)."""
        return sorted(self._following)

    def flushed(self, centre_id: int) -> int:
        """The last seq of the centre batched to this process's devices."""
        return self._flushed.get(centre_id, 0)

    def transport_state(self) -> str:
        """For /healthz: "off" (one process), "ok" or "unreachable"."""
        if self.connect_transport is None:
            return "off"
        return "ok" if self.transport_ok else "unreachable"

    # -- audiences -----------------------------------------------------------------------
    def join(self, sid: str, audience: Audience) -> None:
        """The socket receives the audience's batches (leaving the audience it had). Call
        it before the socket enters ``audience.room``: when its centre is not followed yet
        it reads the store, and a failure raises with nothing changed."""
        self._follow(audience.centre_id)
        states = self._audiences.setdefault(audience.centre_id, {})
        state = states.get(audience.room)
        if state is None:
            state = states[audience.room] = _AudienceState(
                audience, self._flushed.get(audience.centre_id)
            )
        state.members += 1
        previous = self._members.get(sid)
        self._members[sid] = audience
        if previous is not None:
            self._drop(previous)

    def leave(self, sid: str) -> None:
        audience = self._members.pop(sid, None)
        if audience is not None:
            self._drop(audience)

    def _drop(self, audience: Audience) -> None:
        states = self._audiences.get(audience.centre_id, {})
        state = states.get(audience.room)
        if state is not None:
            state.members -= 1
            if state.members <= 0:
                del states[audience.room]
        if not states:
            self._unfollow(audience.centre_id)

    # -- centres followed ----------------------------------------------------------------
    def _follow(self, centre_id: int) -> None:
        started = self._following.get(centre_id)
        if started is not None:
            started.get()  # another socket may be starting it: wait, or raise as it did
            return
        started = self._following[centre_id] = AsyncResult()
        try:
            # Subscribed first, then the seq read: a change committed in between comes
            # through the channel and is released after the start.
            if self.transport is not None:
                self.transport.follow(centre_id)
            [(_, seq)] = self.store.centre_seqs([centre_id])
        except BaseException as e:
            del self._following[centre_id]
            if self.transport is not None:
                self.transport.unfollow(centre_id)
            started.set_exception(e)
            raise
        self.sequencer.start_at(centre_id, seq)
        self._flushed[centre_id] = seq
        started.set(seq)
        log.info("following centre %s from seq %s", centre_id, seq)

    def _unfollow(self, centre_id: int) -> None:
        self._audiences.pop(centre_id, None)
        if self._following.pop(centre_id, None) is None:
            return
        self.sequencer.forget(centre_id)
        self._flushed.pop(centre_id, None)
        self._buffer.pop(centre_id, None)
        for timers in (self._gap_timers, self._counts_timers):
            timer = timers.pop(centre_id, None)
            if timer is not None:
                timer.kill(block=False)
        if self.transport is not None:
            self.transport.unfollow(centre_id)
        log.info("no longer following centre %s (no device of it here)", centre_id)

    def _started(self, centre_id: int) -> bool:
        started = self._following.get(centre_id)
        return started is not None and started.successful()

    # -- input ---------------------------------------------------------------------------
    def committed(self, changes: list[dict]) -> None:
        """Called by the store's writer after each commit, in commit order."""
        # When, for the delivery delay here and on the processes that hear of it.
        committed = time.time()
        for c in changes:
            c["committed"] = committed
        self.metrics.changes_committed.inc(len(changes))
        for c in changes:
            self._offer(c)
        if self._outbox is not None:
            self._outbox.put(changes)

    def _offer(self, change: dict) -> None:
        centre_id = change["centre"]
        if not self._started(centre_id):
            return  # a centre none of this process's devices belongs to
        released = self.sequencer.offer(change)
        if released:
            self._buffer.setdefault(centre_id, []).extend(released)
            if centre_id not in self._flushers:
                self._flushers.add(centre_id)
                gevent.spawn(self._flush, centre_id)
        if self.sequencer.gap(centre_id) and centre_id not in self._gap_timers:
            self._gap_timers[centre_id] = gevent.spawn_later(
                self.gap_wait_s, self._gap_expired, centre_id
            )

    def _gap_expired(self, centre_id: int) -> None:
        self._gap_timers.pop(centre_id, None)
        gap = self.sequencer.gap(centre_id)
        if gap:  # still waiting for an earlier change: read it back
            self._fill(centre_id, *gap, reason="gap")

    def _fill(self, centre_id: int, first: int, last: int, reason: str) -> None:
        changes = self.store.changes(centre_id, first, last)
        self.metrics.read_back(reason, len(changes))
        if changes:
            log.info("centre %s: read changes %s..%s back from the store", centre_id, first, last)
        for c in changes:
            self._offer(c)

    # -- output --------------------------------------------------------------------------
    def _flush(self, centre_id: int) -> None:
        """Send the centre's released changes as batches until none are left. Between
        batches the loop yields, so the sockets' writers send the batch just emitted
        while new changes gather into the next."""
        try:
            # Let the operations just committed answer their callers first (an ack is one
            # small frame; a batch may be hundreds).
            gevent.sleep(0)
            while self._buffer.get(centre_id):
                changes = self._buffer.pop(centre_id)
                self._send_batches(centre_id, changes)
                gevent.sleep(0)
        except Exception:
            log.exception("delivering changes of centre %s failed", centre_id)
        finally:
            self._flushers.discard(centre_id)
            if self._buffer.get(centre_id):  # arrived while failing: try again
                self._flushers.add(centre_id)
                gevent.spawn(self._flush, centre_id)

    def _send_batches(self, centre_id: int, changes: list[dict]) -> None:
        first = changes[0]["seq"]
        prepared = [{**c, "event": public_event(c["change"], c["seq"])} for c in changes]
        now = time.monotonic()
        for state in list(self._audiences.get(centre_id, {}).values()):
            after = state.last if state.last is not None else first - 1
            batch = batch_for(state.audience, prepared, after)
            if batch is None:
                continue  # nothing for it: its next batch's range starts where its last ended
            paced = ROLES[state.audience.role].paced
            if now < state.counts_due and all(e["kind"] in paced for e in batch["events"]):
                state.last = after
                state.held.update((s["code"], s) for s in batch["services"])
                state.held_events.extend(batch["events"])
                state.held_seq = batch["seq"]
                self._counts_later(centre_id, state.counts_due - now)
                continue
            if state.held:
                batch["services"] = list(
                    {**state.held, **{s["code"]: s for s in batch["services"]}}.values()
                )
            if state.held_events:
                batch["events"] = state.held_events + batch["events"]
            self._send(state, batch, now)
        self._flushed[centre_id] = changes[-1]["seq"]
        self.metrics.delivered(changes)
        for listener in self.listeners:
            for c in changes:
                listener(c["change"])

    def _send(self, state: _AudienceState, batch: dict, now: float) -> None:
        state.last = batch["seq"]
        state.held, state.held_events, state.held_seq = {}, [], None
        paced = ROLES[state.audience.role].paced
        if batch["services"] or (paced and any(e["kind"] in paced for e in batch["events"])):
            state.counts_due = now + self.counts_interval_s
        self.send(ROLES[state.audience.role].namespace, state.audience.room, batch)
        self.metrics.batch(state.audience.role)

    def _counts_later(self, centre_id: int, delay: float) -> None:
        if centre_id not in self._counts_timers:
            self._counts_timers[centre_id] = gevent.spawn_later(delay, self._send_held, centre_id)

    def _send_held(self, centre_id: int) -> None:
        """Send the counts held back for the centre's audiences whose interval has ended."""
        self._counts_timers.pop(centre_id, None)
        now = time.monotonic()
        for state in list(self._audiences.get(centre_id, {}).values()):
            if not state.held and not state.held_events:
                continue
            if now < state.counts_due:
                self._counts_later(centre_id, state.counts_due - now)
                continue
            batch = {
                "after": state.last,
                "seq": state.held_seq,
                "events": state.held_events,
                "services": list(state.held.values()),
            }
            self._send(state, batch, now)

    # -- other processes -----------------------------------------------------------------
    def _publish_forever(self) -> None:
        """Publish in commit order, in its own greenlet, so a slow transport never holds
        up the store's writer. A message that cannot be published is not retried: the
        other processes read its changes back from the store (gap fill and sweep)."""
        while True:
            batch = self._outbox.get()
            # A writer's batch may hold several centres' changes (in seq order per centre).
            for centre_id, of_centre in groupby(batch, key=lambda c: c["centre"]):
                changes = list(of_centre)
                message = json.dumps({"origin": self.origin, "changes": changes})
                try:
                    self.transport.publish(centre_id, message)
                except Exception as e:  # noqa: BLE001 - say what failed and what happens next
                    self.metrics.redis_publish_failures.inc()
                    log.error(
                        "Cannot publish %d changes to %s (%s); other processes will read "
                        "them from the store",
                        len(changes),
                        self.transport.url,
                        e,
                    )

    def _listen_forever(self) -> None:
        backoff = 0.5
        while True:
            try:
                for message in self.transport.listen(lambda: list(self._following)):
                    if message is None:  # subscribed
                        self.transport_ok = True
                        backoff = 0.5
                        self._sweep()  # whatever passed while we were not listening
                        continue
                    body = json.loads(message)
                    if body["origin"] != self.origin:
                        for c in body["changes"]:
                            self._offer(c)
                raise ConnectionError("the subscription ended")
            except Exception as e:  # noqa: BLE001 - keep listening, say what failed
                self.transport_ok = False
                self.metrics.redis_receive_failures.inc()
                log.error(
                    "Cannot receive changes from %s (%s); retrying in %.1f s",
                    self.transport.url,
                    e,
                    backoff,
                )
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
        started = [c for c in self._following if self._started(c)]
        if not started:
            return
        for centre_id, seq in self.store.centre_seqs(started):
            behind = self.sequencer.behind(centre_id, seq) if self._started(centre_id) else None
            if behind:
                self._fill(centre_id, *behind, reason="sweep")
