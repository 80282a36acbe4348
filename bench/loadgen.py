"""A whole centre of simulated devices: displays that record when each call reaches them,
counters whose clerks call, start and call again, and the latencies of those calls."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from time import perf_counter

from centre import Centre
from wsclient import connect, connect_all

from harness.process import ServerProcess, login


class DisplayWall:
    """Every display records when each call in its ``changes`` batches reached it, by
    (ticket id, recall), and whether each batch started where its previous one ended.

    With the raw client a batch arrives as its JSON text and is parsed once per distinct
    text (every display of a wave gets the same one), not once per display."""

    def __init__(self):
        self.arrivals: dict[tuple[int, bool], list[float]] = defaultdict(list)
        self.n = 0
        self.batches = 0
        self.broken = 0  # batches not following the previous one (a device would resync)
        self._parsed: dict[str, tuple[int, int, list]] = {}  # text -> (after, seq, calls)

    def _batch(self, text: str) -> tuple[int, int, list]:
        got = self._parsed.get(text)
        if got is None:
            data = json.loads(text)[1]
            got = (data["after"], data["seq"], self._calls(data["events"]))
            if len(self._parsed) > 10_000:
                self._parsed.clear()
            self._parsed[text] = got
        return got

    @staticmethod
    def _calls(events) -> list[tuple[int, bool]]:
        return [(e["ticket"]["id"], bool(e.get("recall"))) for e in events if e["kind"] == "called"]

    def handler(self):
        """A display's ``changes`` handler; its ``snapshot`` attribute handles the
        display's snapshot after a reconnection: the calls it lists count as reached (once
        per display), and the next batch need not follow the last one."""
        self.n += 1
        last = [None]
        seen: set[tuple[int, bool]] = set()

        def on_changes(data, t):
            self.batches += 1
            if isinstance(data, str):
                after, seq, calls = self._batch(data)
            else:  # python-socketio's client parses every message itself
                after, seq, calls = data["after"], data["seq"], self._calls(data["events"])
            if last[0] is not None and after != last[0]:
                self.broken += 1
            last[0] = seq
            for key in calls:
                if key not in seen:
                    seen.add(key)
                    self.arrivals[key].append(t)

        def on_snapshot(data, t):
            if isinstance(data, str):
                data = json.loads(data)[1]
            last[0] = None
            for key in self._calls(data["recent_calls"]):
                if key not in seen:
                    seen.add(key)
                    self.arrivals[key].append(t)

        on_changes.raw = on_snapshot.raw = True
        on_changes.snapshot = on_snapshot
        return on_changes


@dataclass
class CallRecord:
    counter: int
    t_sent: float
    t_ack: float
    ticket_id: int | None
    error: str | None


class Clerk:
    """A counter that calls the next ticket, starts serving it, waits, and calls again
    (the next call_next finishes the ticket being served, as the engine allows)."""

    def __init__(self, number: int, conn, interval: float, rng: random.Random):
        self.number = number
        self.conn = conn
        self.interval = interval
        self.rng = rng
        self.calls: list[CallRecord] = []
        self.errors: Counter = Counter()
        self.opened = asyncio.get_running_loop().create_future()

    def on_state(self, data, t):
        if data.get("counter", {}).get("status") == "open" and not self.opened.done():
            self.opened.set_result(True)

    async def run(self, t_end: float, start_delay: float = 0.0):
        await asyncio.sleep(max(0.0, min(start_delay, t_end - perf_counter())))
        while perf_counter() < t_end:
            t0 = perf_counter()
            try:
                t_ack, r = await self.conn.call("call_next", {})
            except (TimeoutError, ConnectionError) as e:
                self.calls.append(
                    CallRecord(self.number, t0, perf_counter(), None, type(e).__name__)
                )
                await asyncio.sleep(0.1)
                continue
            if r.get("ok"):
                tid = r["ticket"]["id"]
                self.calls.append(CallRecord(self.number, t0, t_ack, tid, None))
                _, s = await self.conn.call("start", {"ticket_id": tid})
                if not s.get("ok"):
                    self.errors["start:" + s["error"]["code"]] += 1
            else:
                code = r["error"]["code"]
                self.calls.append(CallRecord(self.number, t0, t_ack, None, code))
                self.errors[code] += 1
            # Jittered so that counters do not press at the same instant; no later than
            # the end (a province's counter calls every minute or two).
            pause = self.interval * self.rng.uniform(0.5, 1.5) - (perf_counter() - t0)
            await asyncio.sleep(max(0.0, min(pause, t_end - perf_counter())))


def call_latencies(clerks: list[Clerk], wall: DisplayWall, t_start: float, t_end: float):
    """For each successful call sent inside the window: ack latency and the time until its
    ``called`` event had reached every display (plus every single delivery)."""
    every, each, ack, first, spread = [], [], [], [], []
    incomplete = 0
    failed: Counter = Counter()
    for clerk in clerks:
        for c in clerk.calls:
            if not (t_start <= c.t_sent < t_end):
                continue
            if c.error:
                failed[c.error] += 1
                continue
            ack.append(c.t_ack - c.t_sent)
            if not wall.n:
                continue
            arr = wall.arrivals.get((c.ticket_id, False), [])
            each.extend(t - c.t_sent for t in arr)
            if arr:
                first.append(min(arr) - c.t_sent)
            if len(arr) < wall.n:
                incomplete += 1
            else:
                every.append(max(arr) - c.t_sent)
                spread.append(max(arr) - min(arr))
    return {
        "to_every_display": every,
        "to_first_display": first,
        "first_to_last_display": spread,
        "to_each_display": each,
        "ack": ack,
        "incomplete": incomplete,
        "failed": dict(failed),
    }


class LoopLag:
    """How late the load generator's event loop wakes up (its own share of any latency),
    and its own garbage collections.

    ``start`` collects and freezes what set-up made (every device's connection objects):
    the generator's full collections would otherwise walk them all and stall it for tens
    of milliseconds while it times the server (measured: its loop lag p99 14 ms in the
    first run of a process, 4.5 ms in later ones, whose thresholds had grown)."""

    def __init__(self, period: float = 0.005):
        self.period = period
        self.lags: list[float] = []
        self.gc_pauses: list[float] = []
        self.task = None
        self._gc_t0 = 0.0

    def _gc(self, phase, _info):
        if phase == "start":
            self._gc_t0 = perf_counter()
        else:
            self.gc_pauses.append(perf_counter() - self._gc_t0)

    async def _run(self):
        while True:
            t = perf_counter()
            await asyncio.sleep(self.period)
            self.lags.append(perf_counter() - t - self.period)

    def start(self):
        gc.collect()
        gc.freeze()
        gc.callbacks.append(self._gc)
        self.task = asyncio.get_running_loop().create_task(self._run())

    def stop(self):
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
        gc.unfreeze()
        if self.task:
            self.task.cancel()


@dataclass
class Devices:
    kiosks: list
    displays: list
    ratings: list
    counters: list
    clerks: list
    wall: DisplayWall
    managers: list = ()  # the manager's monitor (/manage), each following the whole centre

    @property
    def all(self) -> list:
        return self.displays + self.kiosks + self.ratings + self.counters + list(self.managers)

    def traffic(self) -> tuple[int, int, int]:
        """(messages, bytes on the wire, bytes of text) received so far by all devices."""
        return self._sum(self.all)

    def traffic_by_role(self) -> dict[str, tuple[int, int, int]]:
        roles = {
            "kiosk": self.kiosks,
            "counter": self.counters,
            "display": self.displays,
            "rating": self.ratings,
            "manager": list(self.managers),
        }
        return {role: self._sum(devs) for role, devs in roles.items()}

    @staticmethod
    def _sum(devs) -> tuple[int, int, int]:
        return (
            sum(d.messages for d in devs),
            sum(d.wire_bytes for d in devs),
            sum(d.text_bytes for d in devs),
        )

    async def close(self):
        for d in self.all:
            with contextlib.suppress(Exception):
                await d.close()


async def connect_clerks(server, centre: Centre, tokens, call_interval: float, seed: int, kw):
    """A Clerk for each session token, connected to its counter: (clerks, connections)."""
    clerks = [
        Clerk(n, None, call_interval, random.Random(seed * 1000 + n))
        for _, _, n in centre.clerks[: len(tokens)]
    ]
    counters = await connect_all(
        [
            lambda cl=cl, tok=tok: connect(
                server,
                "/counter",
                {"token": tok, "counter": cl.number},
                handlers={"counter_state": cl.on_state},
                **kw,
            )
            for cl, tok in zip(clerks, tokens, strict=True)
        ]
    )
    for cl, conn in zip(clerks, counters, strict=True):
        cl.conn = conn
    return clerks, counters


async def connect_centre(
    server: ServerProcess, centre: Centre, tokens: list[str], args, call_interval: float
) -> Devices:
    """Connect every device of ``centre``; counters are ready (open) when this returns."""
    kw = {"client": args.client, "deflate": args.deflate}
    wall = DisplayWall()
    displays = await connect_all(
        [
            lambda tok=tok: connect(
                server, "/display", {"token": tok}, handlers={"changes": wall.handler()}, **kw
            )
            for tok in centre.displays
        ]
    )
    kiosks = await connect_all(
        [lambda tok=tok: connect(server, "/kiosk", {"token": tok}, **kw) for tok in centre.kiosks]
    )
    ratings = await connect_all(
        [lambda tok=tok: connect(server, "/rating", {"token": tok}, **kw) for tok in centre.ratings]
    )
    clerks, counters = await connect_clerks(server, centre, tokens, call_interval, args.seed, kw)
    await asyncio.wait_for(asyncio.gather(*(cl.opened for cl in clerks)), 60)
    sessions = await asyncio.to_thread(
        lambda: [login(server.url, user, pw) for user, pw in centre.managers]
    )
    managers = await connect_all(
        [lambda tok=tok: connect(server, "/manage", {"token": tok}, **kw) for tok in sessions]
    )
    return Devices(kiosks, displays, ratings, counters, clerks, wall, managers)


def login_clerks(server: ServerProcess, centre: Centre, n: int | None = None) -> list[str]:
    from concurrent.futures import ThreadPoolExecutor

    clerks = centre.clerks if n is None else centre.clerks[:n]
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda cl: login(server.url, cl[0], cl[1]), clerks))
