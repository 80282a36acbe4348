"""Garbage collection without stalls: pauses timed, long-lived objects frozen.

Under gevent every connection of a process runs on one thread, so a collection stops
them all for as long as it takes. CPython's full collection walks every object the
collector tracks: with 1,500 websockets a process tracked ~375,000, and a full
collection took 150-300 ms, during which calls were neither acknowledged nor delivered
(issue 19). Most of those objects live as long as their connection, so

- after start-up (the app, its modules and the store's caches) and after each burst of
  connections has settled, the objects alive then are moved out of the collector's
  sight (``gc.freeze()``): the collections that follow walk only what was made since;
- every collection is timed through ``gc.callbacks``; one longer than
  ``LONG_PAUSE_S`` is logged as a warning, and with ``MOTCUA_GC_STATS=FILE`` each pause
  is appended to FILE (a line each, once a second) for bench/gc_pauses.py.
  ``MOTCUA_GC_FREEZE=0`` times collections without freezing anything (to compare);
  ``MOTCUA_GC_SIZES=1`` also writes how many objects each generation holds as each
  collection of generation 1 or 2 starts (``sizes`` lines; slow, for investigations),
  and, when generations 0 and 1 hold more than ``YOUNG_CENSUS``, their commonest types
  (``young`` lines).
  With the stats file, SIGUSR2 makes the process unfreeze and collect everything once
  and write what that freed (a ``full`` line): the cyclic garbage the frozen set kept
  since the previous one (bench/gc_pauses.py measures it; the collection itself is
  recorded apart, as generation 22, not as a pause).

Freezing is O(1) (a list splice), so it is done often:

- right after every collection of generation 1 or 2 (from its ``gc.callbacks`` "stop"):
  generations 0 and 1 are empty then, and what generation 2 holds unfrozen is exactly
  what survived two young collections since the last freeze. So no collection ever walks
  more than the objects made since the previous older collection; before, generation 2
  gathered ~90,000 such objects after a burst and one full collection walked them for
  56 ms (docs/performance.md);
- while connections are arriving, right after every collection of generation 0 too: a
  burst's survivors then never pile up in generation 1 (28,000-45,000 objects, 9-22 ms
  collections, when it was frozen only every 0.25 s);
- after each ``BURST_CONNECTIONS`` new connections and once a burst has settled.

Frozen objects are never collected as cycles (reference counting still frees the
rest), so garbage that is alive in a cycle when a freeze happens and dies later stays
until the frozen set is collected in full, once a night (``FULL_AT``). A connection
therefore must not end in a cycle: the websocket, its reader and our send hook let go of
each other when it closes (gateway/guard.py, gateway/frames.py), greenlets keep no
spawning stacks (server.py), the request contexts of connect and disconnect handlers
are not matched against Flask's routes (gateway/perimeter.py ``App``) and a refused
operation's error does not hold the writer's frames (core/store.py). Measured with
``MOTCUA_GC_GARBAGE=1``: 1,000 displays reconnecting left ~93 objects each in the
frozen set before, ~1 each after (docs/performance.md); tests/test_no_stalls.py holds it.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import time
from collections import Counter, deque
from datetime import datetime
from time import perf_counter, thread_time
from zoneinfo import ZoneInfo

import greenlet

log = logging.getLogger("motcua.gc")

# With MOTCUA_GC_SIZES=1, the commonest types of generations 0 and 1 are written too when
# they hold more than this as an older collection starts.
YOUNG_CENSUS = 10_000
# A collection longer than this is logged (the target: no pause over 20 ms).
LONG_PAUSE_S = 0.020
# Pauses kept for the stats file between two writes.
KEPT_PAUSES = 100_000


class PauseRecorder:
    """Times every collection of this process (gc.callbacks)."""

    def __init__(
        self, long_pause_s: float = LONG_PAUSE_S, sizes: bool = False, garbage: bool = False
    ):
        self.long_pause_s = long_pause_s
        # MOTCUA_GC_GARBAGE=1 (an investigation): the full collections asked for keep what
        # they free (gc.DEBUG_SAVEALL) and write its commonest types (``garbage`` lines).
        self.garbage = garbage
        self.garbage_types: list[tuple[float, list[tuple[str, int]]]] = []
        self.young_types: list[tuple[float, list[tuple[str, int]]]] = []  # with ``sizes``
        # MOTCUA_GC_SIZES=1 (an investigation, not production: it walks every generation
        # before each older collection): (wall time, generation, objects in gen 0, 1, 2).
        self.sizes = sizes
        self.sized: deque[tuple[float, int, int, int, int]] = deque(maxlen=10_000)
        # (wall time, generation, seconds paused, CPU seconds of this thread, collected):
        # on a busy machine the pause can be longer than the collector's own work.
        self.pauses: deque[tuple[float, int, float, float, int]] = deque(maxlen=KEPT_PAUSES)
        self.count = [0, 0, 0]
        self.total_s = [0.0, 0.0, 0.0]
        self.max_s = [0.0, 0.0, 0.0]
        self.freezes: deque[tuple[float, int, float]] = deque(maxlen=1000)  # (t, frozen, ms)
        self._t0 = self._cpu0 = 0.0
        self._switches = 0
        self._old_trace = None
        self.deliberate = False  # a full collection asked for (SIGUSR2), not a pause
        self.switched = 0  # collections during which greenlets switched
        # Objects moved to the frozen set so far (some have been freed since). Never
        # gc.get_freeze_count(): it walks the whole frozen list, ~100 ms at 500,000.
        self.frozen = 0
        self.quiet_freezes = 0  # freezes right after a collection (not in ``freezes``)
        # Full collections asked for: (wall time, objects freed, ms, seconds since the
        # previous one or since start-up).
        self.fulls: deque[tuple[float, int, float, float]] = deque(maxlen=100)
        self._last_full = time.time()
        # Called with the generation after each collection (the Freezer's
        # ``after_collection``), in the callback: it must not allocate much nor switch.
        self.after = None

    def install(self) -> PauseRecorder:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)
        return self

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _switch(self, event, args) -> None:
        self._switches += 1
        if self._old_trace is not None:
            self._old_trace(event, args)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            if self.sizes and info["generation"] >= 1:
                counts = [len(gc.get_objects(generation=g)) for g in range(3)]
                self.sized.append((time.time(), info["generation"], *counts))
                if counts[0] + counts[1] > YOUNG_CENSUS:  # what they are (``young`` lines)
                    young = gc.get_objects(generation=0) + gc.get_objects(generation=1)
                    types = Counter(_type_name(o) for o in young).most_common(25)
                    del young
                    self.young_types.append((time.time(), types))
            # A collection can run finalizers, and one that kills a greenlet runs that
            # greenlet's code, which may switch to the hub: the other greenlets then run
            # "inside" the collection. Such a collection is counted apart, not as a pause.
            self._switches = 0
            self._old_trace = greenlet.settrace(self._switch)
            self._t0, self._cpu0 = perf_counter(), thread_time()
            return
        g = info["generation"]
        if self.after is not None:  # a freeze is part of the pause the process sees
            self.after(g)
        d = perf_counter() - self._t0
        cpu = thread_time() - self._cpu0
        greenlet.settrace(self._old_trace)
        self._old_trace = None
        if self.deliberate:
            self.pauses.append((time.time(), g + 20, d, cpu, info.get("collected", 0)))
            return
        if self._switches:
            self.switched += 1
            self.pauses.append((time.time(), g + 10, d, cpu, info.get("collected", 0)))
            return
        self.count[g] += 1
        self.total_s[g] += d
        if d > self.max_s[g]:
            self.max_s[g] = d
        self.pauses.append((time.time(), g, d, cpu, info.get("collected", 0)))
        if d > self.long_pause_s:
            log.warning(
                "garbage collection of generation %d paused the process %.1f ms (%.1f ms "
                "of CPU; %d objects collected)",
                g,
                1000 * d,
                1000 * cpu,
                info.get("collected", 0),
            )

    def collect_all(self) -> int:
        """Unfreeze, collect everything and freeze again (SIGUSR2, for measurements):
        what it frees is the cyclic garbage kept frozen since the previous one."""
        now = time.time()
        self.deliberate = True
        try:
            if self.garbage:
                gc.set_debug(gc.DEBUG_SAVEALL)
            n, ms = collect_everything()
        finally:
            self.deliberate = False
            if self.garbage:
                gc.set_debug(0)
                types = Counter(_type_name(o) for o in gc.garbage)
                gc.garbage.clear()
                self.garbage_types.append((now, types.most_common(40)))
        self.fulls.append((now, n, ms, now - self._last_full))
        self._last_full = now
        freeze(self, "after a full collection asked for")
        return n

    def write(self, path: str) -> None:
        """Append the pauses since the last write to ``path``, one line each
        (``pause <wall time> <generation> <ms> <CPU ms> <collected>``), the freezes
        (``freeze <wall time> <objects> <ms>``) and one ``state`` line (``state <wall
        time> <thresholds> <objects frozen so far> <freezes after collections>``): a second's worth
        is a few hundred bytes, so writing it never becomes a pause of its own."""
        lines = [
            f"pause {t:.6f} {g} {1000 * d:.3f} {1000 * cpu:.3f} {c}\n"
            for t, g, d, cpu, c in self._unwritten()
        ]
        lines += [f"freeze {t:.6f} {n} {ms:.3f}\n" for t, n, ms in self.freezes]
        self.freezes.clear()
        lines += [f"sizes {t:.6f} {g} {a} {b} {c}\n" for t, g, a, b, c in self.sized]
        self.sized.clear()
        lines += [f"full {t:.6f} {n} {ms:.3f} {since:.3f}\n" for t, n, ms, since in self.fulls]
        self.fulls.clear()
        lines += [
            f"garbage {t:.6f} " + " ".join(f"{name}={n}" for name, n in types) + "\n"
            for t, types in self.garbage_types
        ]
        self.garbage_types.clear()
        lines += [
            f"young {t:.6f} " + " ".join(f"{name}={n}" for name, n in types) + "\n"
            for t, types in self.young_types
        ]
        self.young_types.clear()
        t0, t1, t2 = gc.get_threshold()
        lines.append(f"state {time.time():.6f} {t0} {t1} {t2} {self.frozen} {self.quiet_freezes}\n")
        with open(path, "a") as f:
            f.writelines(lines)

    def _unwritten(self):
        pauses, self.pauses = self.pauses, deque(maxlen=KEPT_PAUSES)
        return pauses


def _type_name(o) -> str:
    t = type(o)
    name = f"{t.__module__}.{t.__qualname__}"
    if t is dict or t is tuple or t is list:
        return f"{name}[{len(o)}]" if len(o) < 4 else name
    if t.__name__ in ("function", "method", "cell"):
        return f"{name}:{getattr(o, '__qualname__', '')}"
    return name


def collect_everything() -> tuple[int, float]:
    """Unfreeze and collect every generation: (objects freed, ms). The caller freezes
    what is left alive again."""
    t0 = perf_counter()
    gc.unfreeze()
    collected = gc.collect()
    return collected, 1000 * (perf_counter() - t0)


def freeze(
    recorder: PauseRecorder | None = None,
    why: str = "",
    quiet: bool = False,
    after_collection: bool = False,
) -> int:
    """Freeze everything alive: the collector's lists are spliced into the frozen one,
    nothing frozen is walked. Returns how many objects were moved (counting them walks
    only the unfrozen ones, few since the last freeze). ``quiet``: no log line (the
    freezes after collections and arrivals, several a second under load)."""
    t0 = perf_counter()
    # After a collection generation 0 is empty: its survivors are in 1 or 2.
    n = sum(len(gc.get_objects(g)) for g in ((1, 2) if after_collection else (0, 1, 2)))
    gc.freeze()
    d = perf_counter() - t0
    if recorder is not None:
        recorder.frozen += n
        if quiet:
            recorder.quiet_freezes += 1
        else:
            recorder.freezes.append((time.time(), n, round(1000 * d, 3)))
    if not quiet:
        log.info("froze %d long-lived objects (%s) in %.2f ms", n, why or "start-up", 1000 * d)
    return n


# Freeze again once this many connections arrived since the last freeze (a burst: a
# hall of boards reconnecting, the morning's devices), or fewer once none arrived in the
# last SETTLE_S. Measured (docs/performance.md): with 100, the young collections of a
# burst of 1,000 reconnections still took up to 21 ms of CPU (what had arrived since
# the last freeze); freezing is free, so it is done at every tick of a burst.
BURST_CONNECTIONS = 20
SETTLE_S = 1.0
# The frozen set is collected in full once a night, when centres are closed
# (MOTCUA_GC_FULL_AT, "HH:MM" in FULL_ZONE; "" never): objects that were frozen and then
# died in a cycle wait in it until then. Measured at 1,000 devices calling 10 times a second:
# ~1,400 objects a minute, ~150 ms for the full collection (docs/performance.md).
FULL_AT = "02:00"
FULL_ZONE = "Asia/Ho_Chi_Minh"
# Collected every 2 young collections instead of CPython's 10, and frozen after each
# (Freezer.after_collection), generation 1 never holds more than two young collections'
# survivors: in a reconnection of 1,000 boards at 5,000 connections it had grown to
# 25,000-36,000 objects. Five quiet runs each (docs/performance.md): the longest pause
# while reconnecting 28-45.5 ms with 10, 18.6-32.2 ms with 2; at 5,000 settled
# connections 17-30 ms either way (young collections themselves, not their size).
THRESHOLDS = (700, 2, 10)


class Freezer:
    """Watches a process's connection count and freezes after each burst; collects the
    frozen set in full once a night.

    connections: returns the number of connections open now (engine.io's sockets).
    """

    def __init__(
        self,
        connections,
        recorder: PauseRecorder | None = None,
        full_at: tuple[int, int] | None = None,
        zone: str = FULL_ZONE,
    ):
        self.connections = connections
        self.recorder = recorder
        # The nightly full collection: (hour, minute) in ``zone``; not on the day the
        # process starts past that time.
        self.full_at = full_at
        self.zone = ZoneInfo(zone)
        self.full_on = datetime.now(self.zone).date() if full_at else None
        self.arrived = 0  # connections seen arriving since the last freeze
        self.arrivals = 0  # ... counted one by one (``arrival``)
        self.last = connections()
        self.last_change = time.monotonic()
        self.arriving = False  # connections arrived at the last tick: a burst is on

    def after_collection(self, generation: int) -> None:
        """Right after each collection (PauseRecorder.after): freeze its survivors when
        it was an older one, or while a burst is on (the module's docstring says why)."""
        if generation >= 1 or self.arriving:
            freeze(self.recorder, quiet=True, after_collection=True)

    def arrival(self) -> None:
        """A connection arrived (gateway/guard.py): every BURST_CONNECTIONS of them, what
        they made is frozen at once. The collector's trigger does not bound generation 0:
        it counts allocations minus deallocations, so while old connections are freed
        and new ones made (a hall reconnecting) the count stays low as generation 0 grows
        to 30,000 objects between two ticks, and the collection that finally walks them
        took 19 ms of CPU (docs/performance.md)."""
        self.arrivals += 1
        if self.arrivals >= BURST_CONNECTIONS:
            self.arrivals = 0
            freeze(self.recorder, quiet=True)

    def tick(self) -> None:
        """Called about every SETTLE_S / 4. Collects generation 0 each time: CPython's
        trigger counts allocations minus deallocations, so while objects made a while ago
        die as fast as new ones are made it hardly moves, and generation 0 grows without
        bound. At 5,000 connections engine.io's pings do that (every connection's ping
        greenlet, timer and waiter live 25 s and are replaced): generation 0 and 1 grew
        to 30,000 objects and their collections took 10-19 ms of CPU. Collected four
        times a second, a young generation holds a quarter second's survivors (1-2 ms).
        Generation 1 likewise, when its own threshold is reached (only the allocation
        trigger would collect it): its survivors are then frozen (``after_collection``)."""
        gc.collect(1 if gc.get_count()[1] >= gc.get_threshold()[1] else 0)
        now = time.monotonic()
        n = self.connections()
        self.arriving = n > self.last
        if n != self.last:
            if n > self.last:
                self.arrived += n - self.last
            self.last, self.last_change = n, now
            if self.arrived >= BURST_CONNECTIONS:
                self._freeze(f"{self.arrived} connections arrived")
            return
        if now - self.last_change < SETTLE_S:
            return
        if self._night():
            self._collect_all(n, "the nightly one")
        elif self.arrived:
            self._freeze(f"{self.arrived} connections arrived")

    def _night(self) -> bool:
        """The first quiet tick past ``full_at`` each day (never at start-up)."""
        if self.full_at is None:
            return False
        local = datetime.now(self.zone)
        if local.date() == self.full_on or (local.hour, local.minute) < self.full_at:
            return False
        self.full_on = local.date()
        return True

    def _collect_all(self, n: int, why: str) -> None:
        collected, ms = collect_everything()
        log.warning(
            "full collection (%s; %d connections open): %d objects freed in %.1f ms",
            why,
            n,
            collected,
            ms,
        )
        self._freeze(f"after a full collection ({why})")

    def _freeze(self, why: str) -> None:
        freeze(self.recorder, why)
        self.arrived = 0


def arrival() -> None:
    """A connection arrived: the installed Freezer's ``arrival`` (nothing until then)."""


def install(connections, spawn, sleep) -> PauseRecorder:
    """In the server (cmd_serve), once start-up is done: time collections, freeze what
    start-up made, and keep freezing after bursts of connections; with MOTCUA_GC_STATS
    write the pauses to that file every second. ``spawn``/``sleep`` are gevent's."""
    recorder = PauseRecorder(
        sizes=os.environ.get("MOTCUA_GC_SIZES") == "1",
        garbage=os.environ.get("MOTCUA_GC_GARBAGE") == "1",
    ).install()
    freezing = os.environ.get("MOTCUA_GC_FREEZE", "1") != "0"
    if freezing:
        threshold = os.environ.get("MOTCUA_GC_THRESHOLD")  # "700,10,10": to compare
        gc.set_threshold(*([int(n) for n in threshold.split(",")] if threshold else THRESHOLDS))
        freeze(recorder, "start-up")
    full_at = os.environ.get("MOTCUA_GC_FULL_AT", FULL_AT)
    hour, _, minute = full_at.partition(":")
    freezer = Freezer(connections, recorder, (int(hour), int(minute or 0)) if full_at else None)
    if freezing:
        recorder.after = freezer.after_collection
        global arrival
        arrival = freezer.arrival
    stats_path = os.environ.get("MOTCUA_GC_STATS")
    asked = []
    if stats_path:
        signal.signal(signal.SIGUSR2, lambda *_: asked.append(True))

    def watch():
        written = 0.0
        while True:
            sleep(SETTLE_S / 4)
            try:
                if asked:
                    asked.clear()
                    recorder.collect_all()
                if freezing:
                    freezer.tick()
                if stats_path and time.monotonic() - written >= 1.0:
                    recorder.write(stats_path)
                    written = time.monotonic()
            except Exception:  # noqa: BLE001 - the watcher must outlive one bad tick
                log.exception("garbage collection watcher failed")

    spawn(watch)
    return recorder
