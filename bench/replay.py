#!/usr/bin/env python3
"""A centre-day replayed at ``--speed`` on the province set-up, with every invariant
checked at the end (issue 22).

Two ``server.py serve`` processes share a fresh PostgreSQL database and Redis, as in
bench/province.py (its template database, server start and spreading of devices). The
replayed centre is a large provincial one: ``--counters`` counters (each with a logged-in
clerk and a rating tablet), ``--displays`` boards, ``--kiosks`` kiosks and six services
of their agencies; beside it ``--other-centres`` small centres (a kiosk, a counter and its
clerk, a board and a tablet each), lightly loaded, whose devices check that nothing of
the big centre reaches them and the reverse. Every centre's devices are spread over the
processes in turn.

The day is a script generated from ``--seed``: ``--tickets`` arrivals over the working
day (7:30-11:30 and 13:30-17:00, lunch skipped, a morning peak), each for a service and
with what the citizen will do: come when called, come late (recalled once), not come
(recalled, then a no-show), be sent to another service half-way, rate the visit on the
counter's tablet (most do), or not. Clerks call, start, serve for a time drawn per
service, finish with an outcome and a dossier code, pause once or twice and for lunch,
and close their counter when the queue is drained after closing time. Tablets also try
what must be refused: rating a visit still being served, one finished at another
counter, one finished longer ago than the rating window, and one already rated. The
script's minutes pass ``--speed`` times faster than real ones (a day of 450 working
minutes in 45 minutes at 10); the servers' rules that count real seconds are scaled with
it (``MOTCUA_NO_SHOW_AFTER_S`` 60 s / speed, ``MOTCUA_RATING_WINDOW_S`` 600 s / speed).

Checked at the end, each with its evidence, from the devices' acknowledgements and
batches and from the database itself:

1. no number doubled (acks and the tickets table);
2. no ticket lost: every acknowledged ticket is in the database, and every ticket ended
   ``done`` or ``no_show`` (transferred ones included), none left waiting;
3. every call (and recall) acknowledged to a clerk reached every board of its centre;
4. every rating in the database is on a finished visit, at its counter's tablet, after
   it finished, one per visit, each accepted rating stored; every attempt that had to be
   refused was, with its documented error;
5. no device received a change about a ticket of another centre;
6. every device's batches followed one another, or were resynchronised after a gap;
7. every finished visit reached its counter's tablet (its rate request).

Also: counts, call -> every board of its centre (p50/p99), acknowledgements by operation.
Exit status 0 only when every invariant holds. The business day is the servers' (the
centre's time zone, Asia/Ho_Chi_Minh): a run must not cross its midnight.

    .venv/bin/python bench/replay.py                                  # 1,200 tickets, ~50 min
    .venv/bin/python bench/replay.py --speed 200 --other-centres 3    # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import shutil
import sys
import tempfile
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from time import perf_counter
from zoneinfo import ZoneInfo

from centre import Centre, make_centre
from cpu import machine
from province import add_store_args, drop_database, province_database, spread, start_servers
from stats import fmt_ms, print_machine, stats_ms
from verdict import MachineLoad, write_results
from wsclient import connect, connect_all

# -- the day's script ----------------------------------------------------------------------

AM_MINUTES = 240  # 7:30-11:30, then 13:30-17:00: 450 working minutes, lunch skipped
DAY_MINUTES = 450
# Arrivals by half hour of the working day (the morning peak around 9:00).
HALF_HOURS = [4, 8, 12, 13, 11, 8, 6, 4] + [5, 7, 8, 7, 6, 4, 3]
SERVICE_MINUTES = {"TP": 6, "HT": 8, "DD": 15, "DN": 12, "XD": 14, "LD": 7}
SERVICE_WEIGHTS = {"TP": 25, "HT": 25, "DD": 18, "DN": 12, "XD": 10, "LD": 10}
PRIORITIES = ["elderly", "disabled", "pregnant", "infant", "merit"]
OUTCOMES = ["received", "returned", "supplemented", "guided"]
LOW_REASON = "Thời gian chờ quá lâu"  # one of the default reasons (docs/protocol.md 8.4)

# The refusals a tablet must get (docs/protocol.md section 10), by what it tried.
REFUSALS = {
    "unfinished": ("forbidden", "Số {number} chưa được phục vụ xong nên chưa thể đánh giá."),
    "other_counter": ("forbidden", "Chỉ đánh giá được tại quầy đã phục vụ số {number}."),
    "stale": ("forbidden", "Đã quá thời gian đánh giá cho số {number}."),
    "again": ("already_rated", "Lượt phục vụ này đã được đánh giá. Xin cảm ơn!"),
}


def clock(minute: float) -> str:
    """A working minute as the time of day (lunch skipped)."""
    m = 450 + minute if minute < AM_MINUTES else 810 + minute - AM_MINUTES
    return f"{int(m // 60):02d}:{int(m % 60):02d}"


@dataclass
class Visit:
    """One citizen: when they come, for what, and what they will do."""

    i: int
    at: float  # working minute of arrival
    service: str
    priority: str | None
    kiosk: int
    absent: bool  # never comes: recalled, then marked a no-show
    late: bool  # comes only after a recall
    transfer_to: str | None  # sent to this service after a first part of the visit
    first_minutes: float  # served before the transfer
    minutes: float  # served (at the last service)
    score: int | None  # rates the visit (None: walks away)
    rate_after: float  # minutes after the finish
    again: bool  # the tablet sends the rating twice: the second must be refused
    unfinished: bool  # the tablet tries to rate while the visit is served: refused
    stale: bool  # not rated: tried at another counter at once, then after the window


def day_script(rng: random.Random, n: int, services: list[str], kiosks: int) -> list[Visit]:
    weights = [SERVICE_WEIGHTS.get(s, 10) for s in services]
    visits = []
    for i in range(n):
        slot = rng.choices(range(len(HALF_HOURS)), HALF_HOURS)[0]
        at = 30 * slot + rng.uniform(0, 30)
        service = rng.choices(services, weights)[0]
        others = [s for s in services if s != service]
        transfer_to = rng.choice(others) if others and rng.random() < 0.05 else None
        minutes = SERVICE_MINUTES.get(service, 8)
        absent = rng.random() < 0.04
        rates = not absent and rng.random() < 0.85
        visits.append(
            Visit(
                i=i,
                at=at,
                service=service,
                priority=rng.choice(PRIORITIES) if rng.random() < 0.06 else None,
                kiosk=rng.randrange(kiosks),
                absent=absent,
                late=not absent and rng.random() < 0.08,
                transfer_to=None if absent else transfer_to,
                first_minutes=rng.uniform(1, 4),
                minutes=min(4 * minutes, rng.lognormvariate(math.log(minutes), 0.4)),
                score=rng.choices([3, 2, 1], [80, 17, 3])[0] if rates else None,
                rate_after=rng.uniform(0.1, 1.0),
                again=rates and rng.random() < 0.03,
                unfinished=rng.random() < 0.03,
                stale=not absent and not rates and rng.random() < 0.5,
            )
        )
    visits.sort(key=lambda v: v.at)
    return visits


@dataclass
class Breaks:
    """A clerk's breaks: (working minute, minutes, reason), and lunch at 11:30."""

    planned: list[tuple[float, float, str]]

    @classmethod
    def draw(cls, rng: random.Random) -> Breaks:
        planned = [(rng.uniform(90, 190), rng.uniform(10, 20), "Nghỉ giải lao")]
        if rng.random() < 0.5:
            planned.append((rng.uniform(300, 400), rng.uniform(10, 15), "Họp giao ban"))
        planned.append((AM_MINUTES, 5, "Nghỉ trưa"))  # the two hours themselves are skipped
        return cls(sorted(planned))


# -- following a device's batches ---------------------------------------------------------

_PARSED: dict[str, tuple] = {}


def parse_batch(text: str) -> tuple[int, int, list, list]:
    """(after, seq, events, services) of a ``changes`` event's JSON text, parsed once per
    distinct text (every board of one audience gets the same one)."""
    got = _PARSED.get(text)
    if got is None:
        data = json.loads(text)[1]
        got = (data["after"], data["seq"], data["events"], data["services"])
        if len(_PARSED) > 20_000:
            _PARSED.clear()
        _PARSED[text] = got
    return got


SNAPSHOT_EVENT = {
    "/display": "snapshot",
    "/counter": "counter_state",
    "/rating": "rating_state",
    "/kiosk": "services",
}
RESYNC_KINDS = {
    "/display": {"configured", "counter_changed"},
    "/counter": {"configured", "counter_changed", "service_changed"},
    "/rating": {"configured", "counter_changed"},
    "/kiosk": {"configured"},
}


class Follower:
    """One device following its role's state as docs/protocol.md 6.4 says: a snapshot,
    then batches applied in order, a gap (a batch starting beyond the last applied
    ``seq``) answered by ``sync``. Records the tickets it heard of (to find changes of
    another centre), the calls it saw (boards), how its batches chained."""

    def __init__(self, namespace: str, centre: str, on_event=None, on_services=None):
        self.ns = namespace
        self.centre = centre
        self.conn = None
        self.last: int | None = None  # None: waiting for a snapshot
        self.buffer: list[tuple[str, float]] = []
        self.prev_seq: int | None = None
        self.batches = 0
        self.unchained = 0  # batches whose ``after`` is not the previous batch's ``seq``
        self.gaps = 0
        self.resyncs = 0
        self.resynced = 0  # snapshots taken after a gap
        self.resync_from: int | None = None  # the last seq applied before the gap
        self.tickets: set[int] = set()
        self.calls: dict[tuple[int, bool], list[float]] = defaultdict(list)
        self.from_snapshot: Counter = Counter()  # calls known only from a resync's snapshot
        self.on_event = on_event
        self.on_services = on_services

    def handlers(self) -> dict:
        def on_changes(text, t):
            self.batches += 1
            after, seq, _, _ = parse_batch(text)
            if self.prev_seq is not None and after != self.prev_seq:
                self.unchained += 1
            self.prev_seq = seq
            if self.last is None:
                self.buffer.append((text, t))
            else:
                self._apply(text, t)

        on_changes.raw = True
        return {"changes": on_changes, SNAPSHOT_EVENT[self.ns]: self._snapshot}

    def _snapshot(self, data, t):
        if self.resync_from is not None:
            self.resynced += 1
            for call in data.get("recent_calls", []):  # calls a gap hid, if still recent
                if call["seq"] > self.resync_from:
                    key = (call["ticket"]["id"], bool(call["recall"]))
                    self.calls[key].append(t)
                    self.from_snapshot[key] += 1
            self.resync_from = None
        self.last = data["seq"]
        if self.on_services and "waiting" in data and isinstance(data["waiting"], dict):
            self.on_services({k: v for k, v in data["waiting"].items()}, t)
        buffered, self.buffer = self.buffer, []
        for text, bt in buffered:
            if self.last is None:
                self.buffer.append((text, bt))
            else:
                self._apply(text, bt)

    def _apply(self, text: str, t: float) -> None:
        after, seq, events, services = parse_batch(text)
        if seq <= self.last:
            return
        if after > self.last:
            self.gaps += 1
            self._resync(text, t)
            return
        for e in events:
            if e["seq"] <= self.last:
                continue
            ticket = e.get("ticket")
            if ticket is not None:
                self.tickets.add(ticket["id"])
            if e["kind"] in RESYNC_KINDS[self.ns]:
                self._resync(None, t)
                return
            if e["kind"] == "called":
                self.calls[(ticket["id"], bool(e["recall"]))].append(t)
            if self.on_event:
                self.on_event(e, t)
        if services and self.on_services:
            self.on_services({s["code"]: s["waiting"] for s in services}, t)
        self.last = seq

    def _resync(self, text, t):
        self.resyncs += 1
        self.buffer = [(text, t)] if text else []
        self.resync_from = self.last
        self.last = None

        async def sync():
            with contextlib.suppress(TimeoutError, ConnectionError):
                await self.conn.call("sync", {})

        asyncio.get_running_loop().create_task(sync())


# -- the replay ---------------------------------------------------------------------------


class Day:
    """The replay's clock: working minutes since 7:30, ``speed`` times faster than real."""

    def __init__(self, speed: float):
        self.speed = speed
        self.t0 = perf_counter()

    def now(self) -> float:
        return (perf_counter() - self.t0) * self.speed / 60

    def real(self, minutes: float) -> float:
        return minutes * 60 / self.speed

    async def until(self, minute: float) -> None:
        await asyncio.sleep(max(0.0, self.real(minute - self.now())))

    async def wait(self, minutes: float) -> None:
        await asyncio.sleep(max(0.0, self.real(minutes)))


@dataclass
class Op:
    what: str
    sent: float
    took: float
    error: str | None


class Replay:
    """Everything the devices did and heard, and what is checked at the end."""

    def __init__(self, args, day: Day):
        self.args = args
        self.day = day
        self.ops: list[Op] = []
        self.issued: dict[int, dict] = {}  # ticket id -> {centre, number, service, visit}
        self.issue_failed: Counter = Counter()
        self.plan_waiters: dict[int, asyncio.Future] = {}
        self.final: set[int] = set()  # tickets the clerks saw end (done, no_show)
        self.transferred: set[int] = set()
        self.calls: list[tuple[str, int, bool, float]] = []  # centre, ticket, recall, sent
        self.ratings_ok: dict[int, tuple[str, int]] = {}  # ticket -> (centre, counter)
        self.ratings_failed: Counter = Counter()  # accepted attempts that failed
        self.refusals: list[dict] = []  # attempts that had to be refused
        self.finished: dict[int, tuple[str, int]] = {}  # ticket -> (centre, counter)
        self.outstanding: Counter = Counter()  # centre -> tickets not yet final
        self.arrivals_done: set[str] = set()
        self.errors: Counter = Counter()
        self.tasks: list[asyncio.Task] = []

    async def op(self, conn, what: str, payload: dict, retries: int = 3):
        """One request with a fresh request_id, retried (same id) on a timeout, a
        dropped connection, ``rate_limited`` or ``unavailable``: (answer or None)."""
        payload = {**payload, "request_id": uuid.uuid4().hex}
        for attempt in range(retries + 1):
            t0 = perf_counter()
            try:
                t_ack, r = await conn.call(what, payload, timeout=30)
            except (TimeoutError, ConnectionError) as e:
                self.ops.append(Op(what, t0, perf_counter() - t0, type(e).__name__))
                if attempt == retries:
                    return None
                await asyncio.sleep(0.5)
                continue
            err = None if r.get("ok") else r["error"]["code"]
            self.ops.append(Op(what, t0, t_ack - t0, err))
            if err in ("rate_limited", "unavailable") and attempt < retries:
                await asyncio.sleep(0.5)
                continue
            return r
        return None

    def later(self, coro) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro))

    async def plan_of(self, ticket_id: int) -> Visit | None:
        info = self.issued.get(ticket_id)
        if info is not None:
            return info["visit"]
        fut = self.plan_waiters.setdefault(ticket_id, asyncio.get_running_loop().create_future())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(fut), 10)
        info = self.issued.get(ticket_id)
        return info["visit"] if info else None


class CentreRun:
    """One centre's devices and day."""

    def __init__(self, centre: Centre, tickets: int, rng: random.Random):
        self.centre = centre
        self.code = centre.code
        self.script = day_script(rng, tickets, centre.services, len(centre.kiosks))
        self.rng = random.Random(rng.random())
        self.kiosks: list = []
        self.boards: list[Follower] = []
        self.devices: list[Follower] = []  # every device's follower (boards included)
        self.clerks: list[Clerk] = []
        self.tablets: dict[int, Tablet] = {}


class Tablet:
    def __init__(self, counter: int):
        self.counter = counter
        self.conn = None
        self.asked: set[int] = set()  # tickets whose ``finished`` reached it (rate requests)
        self.follower: Follower | None = None

    def on_event(self, e, t):
        if e["kind"] == "finished":
            self.asked.add(e["ticket"]["id"])


class Clerk:
    """A clerk at a counter, playing the script's citizens as they are called."""

    def __init__(self, run: CentreRun, number: int, rng: random.Random):
        self.run = run
        self.number = number
        self.rng = rng
        self.conn = None
        self.follower: Follower | None = None
        self.waiting: dict[str, int] = {}
        self.wake = asyncio.Event()
        self.breaks = Breaks.draw(rng)
        self.served = 0

    def on_services(self, waiting: dict, t):
        self.waiting.update(waiting)
        if any(v > 0 for v in self.waiting.values()):
            self.wake.set()

    def on_event(self, e, t):
        if e["kind"] in ("issued", "transferred"):
            self.wake.set()

    async def run_day(self, rp: Replay) -> None:
        day, code = rp.day, self.run.code
        breaks = list(self.breaks.planned)
        while True:
            if breaks and day.now() >= breaks[0][0]:
                _, minutes, reason = breaks.pop(0)
                if await rp.op(self.conn, "pause", {"reason": reason}):
                    await day.wait(minutes)
                    await rp.op(self.conn, "resume", {})
                continue
            self.wake.clear()
            r = await self.call_recorded(rp, "call_next", {}, False)
            if r is not None and r.get("ok"):
                await self.serve(rp, r["ticket"])
                continue
            if r is not None and r["error"]["code"] != "queue_empty":
                rp.errors[f"call_next:{r['error']['code']}"] += 1
            if code in rp.arrivals_done and rp.outstanding[code] <= 0:
                break
            await self.idle(rp, breaks)

    async def idle(self, rp: Replay, breaks: list) -> None:
        """Wait until there is someone to call, as the counter's screen shows it: a ticket
        issued or sent to its services, or a waiting count above 0 (its batches); or a
        break is due; or, failing those, ten minutes have passed (then call anyway)."""
        day, code = rp.day, self.run.code
        polls = 0
        while True:
            if breaks and day.now() >= breaks[0][0]:
                return
            timeout = max(1.0, day.real(2.0))
            if breaks:
                timeout = min(timeout, day.real(breaks[0][0] - day.now()))
            ending = code in rp.arrivals_done and rp.outstanding[code] <= 0
            someone = any(v > 0 for v in self.waiting.values())
            try:
                await asyncio.wait_for(self.wake.wait(), max(0.05, timeout))
            except TimeoutError:
                polls += 1
                if polls >= 5 or someone or ending:
                    return
                continue
            # A moment to react: another clerk may call the one who came first.
            await day.wait(self.rng.uniform(0.05, 0.4))
            ending = code in rp.arrivals_done and rp.outstanding[code] <= 0
            if ending or any(v > 0 for v in self.waiting.values()):
                return
            self.wake.clear()
        await rp.op(self.conn, "close", {})

    async def call_recorded(self, rp: Replay, what: str, payload: dict, recall: bool):
        t0 = perf_counter()
        r = await rp.op(self.conn, what, payload)
        if r is not None and r.get("ok"):
            rp.calls.append((self.run.code, r["ticket"]["id"], recall, t0))
        return r

    async def serve(self, rp: Replay, ticket: dict) -> None:
        day = rp.day
        tid = ticket["id"]
        visit = await rp.plan_of(tid)
        second = tid in rp.transferred  # called again at its new service
        if visit is None:
            rp.errors["ticket_without_plan"] += 1
        absent = visit is not None and visit.absent and not second
        late = visit is not None and visit.late and not second
        ids = {"ticket_id": tid}
        if absent or late:
            await day.wait(1.0)
            await self.call_recorded(rp, "recall", ids, True)
            if absent:
                await day.wait(1.5)
                for _ in range(6):
                    r = await rp.op(self.conn, "no_show", ids)
                    if r is not None and r.get("ok"):
                        rp.final.add(tid)
                        rp.outstanding[self.run.code] -= 1
                        return
                    rp.errors[f"no_show:{r['error']['code'] if r else 'no answer'}"] += 1
                    await day.wait(0.5)
                return  # left called: the end's check shows it
            await day.wait(0.5)
        else:
            await day.wait(self.rng.uniform(0.3, 1.0))
        r = await rp.op(self.conn, "start", ids)
        if r is None or not r.get("ok"):
            rp.errors[f"start:{r['error']['code'] if r else 'no answer'}"] += 1
        tablet = self.run.tablets.get(self.number)
        if visit is not None and visit.unfinished and tablet is not None:
            rp.later(tablet_tries(rp, tablet, tid, ticket["number"], "unfinished"))
        if visit is not None and visit.transfer_to and not second:
            await day.wait(visit.first_minutes)
            r = await rp.op(self.conn, "transfer", {**ids, "service": visit.transfer_to})
            if r is not None and r.get("ok"):
                rp.transferred.add(tid)
                return
            rp.errors[f"transfer:{r['error']['code'] if r else 'no answer'}"] += 1
        await day.wait(visit.minutes if visit else 5.0)
        outcome = self.rng.choice(OUTCOMES)
        payload = {**ids, "outcome": outcome}
        if outcome == "received":
            today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%y%m%d")
            payload["dossiers"] = [f"H15.50.05.13-{today}-{tid:04d}"]
        r = await rp.op(self.conn, "finish", payload)
        if r is None or not r.get("ok"):
            rp.errors[f"finish:{r['error']['code'] if r else 'no answer'}"] += 1
            return
        rp.final.add(tid)
        rp.outstanding[self.run.code] -= 1
        rp.finished[tid] = (self.run.code, self.number)
        self.served += 1
        if visit is None or tablet is None:
            return
        number = r["ticket"]["number"]
        if visit.score is not None:
            rp.later(citizen_rates(rp, tablet, tid, number, visit))
        elif visit.stale:
            rp.later(stale_attempts(rp, self.run, tablet, tid, number))


async def tablet_tries(rp: Replay, tablet: Tablet, tid: int, number: str, what: str) -> None:
    """A rating the server must refuse, with the documented error."""
    r = await rp.op(tablet.conn, "rate", {"ticket_id": tid, "score": 3}, retries=0)
    code, message = REFUSALS[what]
    expected = message.format(number=number)
    got = None if r is None else r.get("error")
    rp.refusals.append(
        {
            "what": what,
            "ticket": tid,
            "number": number,
            "tablet_counter": tablet.counter,
            "answer": r,
            "as_documented": got is not None and got["code"] == code and got["message"] == expected,
        }
    )


async def citizen_rates(rp: Replay, tablet: Tablet, tid: int, number: str, v: Visit) -> None:
    await rp.day.wait(v.rate_after)
    payload = {"ticket_id": tid, "score": v.score}
    if v.score == 1:
        payload["reasons"] = [LOW_REASON]
        payload["comment"] = "Chờ lâu quá, hơn 30 phút"
    r = await rp.op(tablet.conn, "rate", payload)
    if r is not None and r.get("ok"):
        rp.ratings_ok[tid] = (rp_centre(rp, tid), tablet.counter)
        if v.again:
            await rp.day.wait(0.1)
            await tablet_tries(rp, tablet, tid, number, "again")
    else:
        rp.ratings_failed[r["error"]["code"] if r else "no answer"] += 1


def rp_centre(rp: Replay, tid: int) -> str | None:
    info = rp.issued.get(tid)
    return info["centre"] if info else None


async def stale_attempts(rp: Replay, run: CentreRun, tablet: Tablet, tid, number) -> None:
    """The visit's citizen walked away: another counter's tablet tries it at once (refused:
    not its counter), its own tablet once the rating window has passed (refused: late)."""
    other = run.tablets.get(tablet.counter % len(run.clerks) + 1)
    if other is not None and other is not tablet:
        await tablet_tries(rp, other, tid, number, "other_counter")
    await asyncio.sleep(rp.args.rating_window_s * 1.5 + 1)
    await tablet_tries(rp, tablet, tid, number, "stale")


async def kiosks_day(rp: Replay, run: CentreRun) -> None:
    async def issue(v: Visit):
        payload = {"service": v.service}
        if v.priority:
            payload["priority"] = v.priority
        r = await rp.op(run.kiosks[v.kiosk], "issue", payload)
        if r is None or not r.get("ok"):
            rp.issue_failed[r["error"]["code"] if r else "no answer"] += 1
            return
        t = r["ticket"]
        rp.issued[t["id"]] = {
            "centre": run.code,
            "number": t["number"],
            "service": t["service"]["code"],
            "visit": v,
        }
        fut = rp.plan_waiters.pop(t["id"], None)
        if fut is not None and not fut.done():
            fut.set_result(True)

    pending = []
    for v in run.script:
        await rp.day.until(v.at)
        rp.outstanding[run.code] += 1  # counted before the ack: a clerk may call it first
        pending.append(asyncio.get_running_loop().create_task(issue(v)))
    await asyncio.gather(*pending)
    # Tickets that were not issued are not outstanding.
    issued_here = sum(1 for i in rp.issued.values() if i["centre"] == run.code)
    rp.outstanding[run.code] -= len(run.script) - issued_here
    rp.arrivals_done.add(run.code)
    for c in run.clerks:
        c.wake.set()


# -- connecting ----------------------------------------------------------------------------


async def _device(server, ns, tok, follower: Follower, extra=None):
    conn = await connect(server, ns, {"token": tok, **(extra or {})}, handlers=follower.handlers())
    follower.conn = conn
    return conn


async def connect_runs(args, servers, runs: list[CentreRun], tokens: dict):
    factories = []
    for run in runs:
        c = run.centre
        opens = []
        for tok in c.displays:
            f = Follower("/display", run.code)
            run.boards.append(f)
            run.devices.append(f)
            opens.append(partial(_device, ns="/display", tok=tok, follower=f))

        run.kiosks = [None] * len(c.kiosks)
        for i, tok in enumerate(c.kiosks):
            f = Follower("/kiosk", run.code)
            run.devices.append(f)

            async def kiosk(server, tok=tok, f=f, run=run, i=i):
                run.kiosks[i] = await _device(server, "/kiosk", tok, f)
                return run.kiosks[i]

            opens.append(kiosk)
        for i, tok in enumerate(c.ratings):
            tablet = Tablet(i % len(c.clerks) + 1)
            run.tablets[tablet.counter] = tablet
            f = Follower("/rating", run.code, on_event=tablet.on_event)
            tablet.follower = f
            run.devices.append(f)

            async def rating(server, tok=tok, tablet=tablet, f=f):
                tablet.conn = await _device(server, "/rating", tok, f)
                return tablet.conn

            opens.append(rating)
        for (_, _, number), tok in zip(c.clerks, tokens[c.code], strict=True):
            clerk = Clerk(run, number, random.Random(run.rng.random()))
            f = Follower("/counter", run.code, clerk.on_event, clerk.on_services)
            clerk.follower = f
            run.clerks.append(clerk)
            run.devices.append(f)

            async def counter(server, tok=tok, clerk=clerk, f=f):
                clerk.conn = await _device(server, "/counter", tok, f, {"counter": clerk.number})
                return clerk.conn

            opens.append(counter)
        factories += spread(servers, opens)
    return await connect_all(factories, args.concurrency)


# -- the end: invariants -------------------------------------------------------------------


def read_database(url: str) -> dict:
    import psycopg

    with psycopg.connect(url) as db:
        centres = dict(db.execute("SELECT id, code FROM centres").fetchall())
        tickets = db.execute(
            "SELECT t.id, t.centre_id, t.prefix, t.business_date, t.number, t.status,"
            " t.finished_at, c.number FROM tickets t LEFT JOIN counters c"
            " ON c.id = t.counter_id"
        ).fetchall()
        ratings = db.execute(
            "SELECT r.ticket_id, r.centre_id, r.counter_id, r.device_id, r.rated_at,"
            " t.status, t.finished_at, t.counter_id, d.counter_id, d.kind"
            " FROM ratings r JOIN tickets t ON t.id = r.ticket_id"
            " LEFT JOIN devices d ON d.id = r.device_id"
        ).fetchall()
        transfers = dict(
            db.execute(
                "SELECT ticket_id, count(*) FROM audit_log WHERE action = 'transferred'"
                " GROUP BY ticket_id"
            ).fetchall()
        )
    return {"centres": centres, "tickets": tickets, "ratings": ratings, "transfers": transfers}


def check(rp: Replay, runs: list[CentreRun], db: dict) -> tuple[list[dict], dict]:
    inv = []

    def verdict(name, ok, evidence):
        inv.append({"invariant": name, "pass": bool(ok), "evidence": evidence})

    code_of = db["centres"]
    by_id = {t[0]: t for t in db["tickets"]}
    centre_of = {t[0]: code_of[t[1]] for t in db["tickets"]}

    # 1. no number doubled
    acked = Counter((i["centre"], i["number"]) for i in rp.issued.values())
    acked_twice = [f"{c}:{n}" for (c, n), k in acked.items() if k > 1]
    stored = Counter((t[1], t[2], t[3], t[4]) for t in db["tickets"])
    stored_twice = [f"{code_of[c]}:{d}:{n}" for (c, _, d, n), k in stored.items() if k > 1]
    verdict(
        "1. no number doubled",
        not acked_twice and not stored_twice,
        f"{len(acked)} numbers acknowledged, {len(acked_twice)} twice "
        f"{acked_twice[:5]}; {len(stored)} in the tickets table (by centre, prefix, day), "
        f"{len(stored_twice)} twice {stored_twice[:5]}",
    )

    # 2. no ticket lost
    missing = [
        tid
        for tid, i in rp.issued.items()
        if tid not in by_id or by_id[tid][4] != i["number"] or centre_of[tid] != i["centre"]
    ]
    statuses = Counter(t[5] for t in db["tickets"])
    unfinished = [
        f"{centre_of[t[0]]}:{t[4]} {t[5]}" for t in db["tickets"] if t[5] not in ("done", "no_show")
    ]
    not_acked = [t[0] for t in db["tickets"] if t[0] not in rp.issued]
    moved = [tid for tid in db["transfers"] if tid in by_id]
    moved_open = [tid for tid in moved if by_id[tid][5] not in ("done", "no_show")]
    verdict(
        "2. no ticket lost",
        not missing and not unfinished and not rp.issue_failed,
        f"{len(rp.issued)} acknowledged to kiosks ({dict(rp.issue_failed) or 'none'} refused "
        f"or unanswered), {len(missing)} of them not in the database as acknowledged; "
        f"{len(db['tickets'])} in the database ({len(not_acked)} never acknowledged), by "
        f"status {dict(statuses)}; {len(moved)} transferred, {len(moved_open)} of those "
        f"not finished; still waiting or at a counter at the end: {len(unfinished)} "
        f"{unfinished[:5]}",
    )

    # 3. every call seen by every board of its centre
    boards_of = {run.code: run.boards for run in runs}
    nth: Counter = Counter()
    every, unseen = [], []
    for code, tid, recall, sent in rp.calls:
        key = (tid, recall)
        i = nth[(code, key)]
        nth[(code, key)] += 1
        times = []
        for b in boards_of[code]:
            arr = b.calls.get(key, [])
            if len(arr) > i:
                times.append(arr[i])
        if len(times) < len(boards_of[code]):
            unseen.append(f"{code}:{tid}{' recall' if recall else ''}")
        else:
            every.append(max(times) - sent)
    from_snapshot = sum(sum(b.from_snapshot.values()) for r in runs for b in r.boards)
    recalls = sum(1 for c in rp.calls if c[2])
    n_boards = sum(len(r.boards) for r in runs)
    verdict(
        "3. every call seen by every board of its centre",
        not unseen and rp.calls,
        f"{len(rp.calls)} calls acknowledged ({recalls} recalls) to {n_boards} boards; "
        f"{len(unseen)} not at every board of their centre {unseen[:5]}; "
        f"{from_snapshot} seen only in a resync's snapshot",
    )

    # 4. every rating on a finished ticket
    bad = []
    rated = Counter()
    for (
        tid,
        _centre_id,
        counter_id,
        device_id,
        rated_at,
        status,
        fin,
        t_counter,
        d_counter,
        kind,
    ) in db["ratings"]:
        rated[tid] += 1
        if status != "done" or fin is None or rated_at < fin:
            bad.append(f"{tid}: {status}, rated {rated_at}, finished {fin}")
        elif counter_id != t_counter or (device_id is not None and d_counter != t_counter):
            bad.append(f"{tid}: rated at the tablet of another counter")
        elif kind not in (None, "rating"):
            bad.append(f"{tid}: rated by a {kind}")
    twice = [tid for tid, k in rated.items() if k > 1]
    lost = [tid for tid in rp.ratings_ok if tid not in rated]
    extra = [tid for tid in rated if tid not in rp.ratings_ok]
    refused = Counter(r["what"] for r in rp.refusals)
    wrong = [r for r in rp.refusals if not r["as_documented"]]
    stale_rated = [
        r["ticket"] for r in rp.refusals if r["what"] == "stale" and r["ticket"] in rated
    ]
    verdict(
        "4. every rating on a finished ticket",
        not bad
        and not twice
        and not lost
        and not extra
        and not wrong
        and not stale_rated
        and not rp.ratings_failed,
        f"{len(db['ratings'])} ratings in the database, {len(bad)} not on a visit finished "
        f"at their tablet's counter before they were given {bad[:3]}, {len(twice)} visits "
        f"rated twice; {len(rp.ratings_ok)} accepted ({dict(rp.ratings_failed) or 'none'} "
        f"of the citizens' refused), {len(lost)} accepted but not stored, {len(extra)} "
        f"stored but never accepted; {len(rp.refusals)} attempts that had to be refused "
        f"{dict(refused)}: {len(wrong)} not refused with the documented error "
        f"{[(w['what'], w['answer']) for w in wrong[:3]]}; {len(stale_rated)} of the "
        "too-late ones rated",
    )

    # 5. no change of one centre seen by another
    crossed = Counter()
    examples = []
    for run in runs:
        for f in run.devices:
            for tid in f.tickets:
                owner = centre_of.get(tid)
                if owner != run.code:
                    crossed[f.ns] += 1
                    if len(examples) < 5:
                        examples.append(f"{f.ns} of {run.code} heard of ticket {tid} of {owner}")
    n_dev = sum(len(r.devices) for r in runs)
    heard = sum(len(f.tickets) for r in runs for f in r.devices)
    verdict(
        "5. no change of one centre seen by another",
        not crossed,
        f"{n_dev} devices (boards, counters, tablets, kiosks) of {len(runs)} centres heard "
        f"of {heard} (device, ticket) pairs; of another centre: {dict(crossed) or 0} "
        f"{examples}",
    )

    # 6. batches chained, or resynced after a gap
    by_ns = defaultdict(lambda: Counter())
    for run in runs:
        for f in run.devices:
            c = by_ns[f.ns]
            c["batches"] += f.batches
            c["unchained"] += f.unchained
            c["gaps"] += f.gaps
            c["resyncs"] += f.resyncs
            c["resynced"] += f.resynced
            c["waiting_for_snapshot"] += f.last is None
    open_gaps = sum(c["waiting_for_snapshot"] for c in by_ns.values())
    unresolved = sum(c["resyncs"] - c["resynced"] for c in by_ns.values())
    unchained = sum(c["unchained"] for c in by_ns.values())
    gaps = sum(c["gaps"] for c in by_ns.values())
    verdict(
        "6. every device's batches followed the previous one, or it resynced after a gap",
        not open_gaps and not unresolved and unchained <= gaps,
        "; ".join(
            f"{ns} {c['batches']} batches, {c['unchained']} not following the previous "
            f"one, {c['gaps']} gaps, {c['resyncs']} resyncs ({c['resynced']} answered)"
            for ns, c in sorted(by_ns.items())
        ),
    )

    # 7. every finished visit asked for its rating on its counter's tablet
    tablets = {(r.code, n): t for r in runs for n, t in r.tablets.items()}
    not_asked = [
        tid for tid, (code, n) in rp.finished.items() if tid not in tablets[(code, n)].asked
    ]
    verdict(
        "7. every finished visit reached its counter's tablet",
        not not_asked,
        f"{len(rp.finished)} visits finished, {len(not_asked)} whose 'finished' did not "
        f"reach the tablet {not_asked[:5]}",
    )

    ack = defaultdict(list)
    failed = Counter()
    for o in rp.ops:
        ack[o.what].append(o.took)
        if o.error and o.error not in ("queue_empty",) and o.what != "rate":
            failed[f"{o.what}:{o.error}"] += 1
    figures = {
        "tickets_issued": len(rp.issued),
        "tickets_in_database": len(db["tickets"]),
        "statuses": dict(statuses),
        "transferred": len(moved),
        "calls": len(rp.calls),
        "call_next_queue_empty": sum(
            1 for o in rp.ops if o.what == "call_next" and o.error == "queue_empty"
        ),
        "recalls": recalls,
        "ratings": len(db["ratings"]),
        "refusals": dict(refused),
        "served_by_clerk_max": max((c.served for r in runs for c in r.clerks), default=0),
        "call_to_every_board_ms": stats_ms(every),
        "ack_ms": {k: stats_ms(v) for k, v in sorted(ack.items())},
        "ack_all_ms": stats_ms([o.took for o in rp.ops]),
        "op_errors": dict(failed),
        "clerk_errors": dict(rp.errors),
    }
    return inv, figures


# -- running it ----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--speed", type=float, default=10.0, help="script minutes per real minute")
    p.add_argument("--tickets", type=int, default=1200, help="arrivals at the big centre")
    p.add_argument("--counters", type=int, default=60, help="at the big centre, each a clerk")
    p.add_argument("--displays", type=int, default=20, help="boards of the big centre")
    p.add_argument("--kiosks", type=int, default=4, help="kiosks of the big centre")
    p.add_argument("--services", type=int, default=6, help="services of the big centre")
    p.add_argument("--other-centres", type=int, default=20)
    p.add_argument("--other-tickets", type=int, default=20, help="arrivals at each other centre")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    add_store_args(p)
    p.add_argument("--concurrency", type=int, default=32, help="connections opened at once")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return p


def centres(args) -> list[Centre]:
    big = make_centre(
        counters=args.counters,
        kiosks=args.kiosks,
        displays=args.displays,
        ratings=args.counters,
        services=args.services,
        code="R000",
        name="Trung tâm Phục vụ hành chính công tỉnh (phát lại)",
    )
    others = [
        make_centre(
            counters=1,
            kiosks=1,
            displays=1,
            ratings=1,
            services=2,
            code=f"R{i:03d}",
            name=f"Bộ phận Một cửa xã phát lại {i}",
        )
        for i in range(1, args.other_centres + 1)
    ]
    return [big, *others]


async def replay(args, servers, cs: list[Centre], tokens: dict, url: str) -> dict:
    rng = random.Random(args.seed)
    runs = [
        CentreRun(c, args.tickets if i == 0 else args.other_tickets, random.Random(rng.random()))
        for i, c in enumerate(cs)
    ]
    t0 = perf_counter()
    conns = await connect_runs(args, servers, runs, tokens)
    connect_s = perf_counter() - t0
    deadline = perf_counter() + 60
    while any(f.last is None for r in runs for f in r.devices) and perf_counter() < deadline:
        await asyncio.sleep(0.1)
    print(f"connected {len(conns)} devices in {connect_s:.1f} s", flush=True)

    day = Day(args.speed)
    rp = Replay(args, day)
    tasks = []
    for run in runs:
        tasks.append(asyncio.create_task(kiosks_day(rp, run)))
        tasks += [asyncio.create_task(c.run_day(rp)) for c in run.clerks]

    async def progress():
        while True:
            await asyncio.sleep(max(5.0, day.real(30)))
            big = runs[0].code
            print(
                f"  {clock(day.now())}  issued {len(rp.issued)}, finished {len(rp.final)}, "
                f"not yet finished at {big} {rp.outstanding[big]}, calls {len(rp.calls)}",
                flush=True,
            )

    ticker = asyncio.create_task(progress())
    budget = day.real(DAY_MINUTES) + 600
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), budget)
    except TimeoutError:
        print("the day did not end within its budget: checking what there is", flush=True)
    ticker.cancel()
    day_s = perf_counter() - day.t0
    print(f"the day ended at {clock(day.now())} after {day_s:.0f} s", flush=True)
    await asyncio.gather(*rp.tasks, return_exceptions=True)  # the late rating attempts
    await asyncio.sleep(2.0)  # the last batches arrive everywhere
    db = await asyncio.to_thread(read_database, url)
    invariants, figures = check(rp, runs, db)
    for c in conns:
        with contextlib.suppress(Exception):
            await c.close()
    return {
        "benchmark": "replay",
        "machine": machine(),
        "speed": args.speed,
        "seed": args.seed,
        "centres": len(runs),
        "processes": len(servers),
        "devices": len(conns),
        "connect_s": connect_s,
        "day_s": day_s,
        "no_show_after_s": args.no_show_after_s,
        "rating_window_s": args.rating_window_s,
        **figures,
        "invariants": invariants,
        "all_pass": all(i["pass"] for i in invariants),
    }


def report(r: dict) -> None:
    print()
    print("motcua centre-day replay")
    print_machine(r)
    print(
        f"province     {r['centres']} centres, {r['devices']} devices on {r['processes']} "
        f"processes (PostgreSQL, Redis); connected in {r['connect_s']:.1f} s"
    )
    print(
        f"day          at {r['speed']:g}x: {r['day_s']:.0f} s; no-show after "
        f"{r['no_show_after_s']:g} s, rating window {r['rating_window_s']} s (real)"
    )
    print(
        f"counts       {r['tickets_issued']} tickets issued, {r['tickets_in_database']} in "
        f"the database {r['statuses']}; {r['transferred']} transferred; {r['calls']} calls "
        f"({r['recalls']} recalls; {r['call_next_queue_empty']} call_next found nobody); "
        f"{r['ratings']} ratings; refusals tried {r['refusals']}"
    )
    print(f"call -> every board of its centre   {fmt_ms(r['call_to_every_board_ms'])}")
    print(f"every acknowledgement               {fmt_ms(r['ack_all_ms'])}")
    for what, s in r["ack_ms"].items():
        print(f"  {what:<10} ack                      {fmt_ms(s)}")
    if r["op_errors"] or r["clerk_errors"]:
        print(f"errors       {r['op_errors']}; clerks: {r['clerk_errors']}")
    print()
    for i in r["invariants"]:
        print(f"{'PASS' if i['pass'] else 'FAIL'}  {i['invariant']}")
        print(f"      {i['evidence']}")
    print()
    print(f"verdict      {'every invariant holds' if r['all_pass'] else 'INVARIANTS FAILED'}")


def crosses_midnight(args) -> bool:
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    now = datetime.now(UTC).astimezone(tz)
    end = now + timedelta(seconds=DAY_MINUTES * 60 / args.speed + 900)
    return end.date() != now.date()


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.speed <= 0 or args.tickets < 1 or args.counters < 1 or args.displays < 1:
        print("error: a positive speed, at least one ticket, counter and board", file=sys.stderr)
        return 2
    if crosses_midnight(args):
        print(
            "error: the run would cross midnight in Asia/Ho_Chi_Minh, where the business day "
            "ends (tickets of the day before are no longer called): run it later",
            file=sys.stderr,
        )
        return 2
    args.no_show_after_s = 60 / args.speed
    args.rating_window_s = max(2, round(600 / args.speed))
    cs = centres(args)
    tmp = Path(tempfile.mkdtemp(prefix="motcua-replay-"))
    load = MachineLoad.measure()
    print(load.line(), flush=True)
    servers = []
    url = None
    try:
        url, tokens = province_database(args, cs, tmp)
        env = {
            "MOTCUA_NO_SHOW_AFTER_S": str(args.no_show_after_s),
            "MOTCUA_RATING_WINDOW_S": str(args.rating_window_s),
        }
        start_servers(servers, args.processes, url, args.redis_url, tmp, env)
        budget = DAY_MINUTES * 60 / args.speed + 1800
        result = asyncio.run(asyncio.wait_for(replay(args, servers, cs, tokens, url), budget))
    finally:
        for s in servers:
            s.stop()
        if url:
            drop_database(args, url)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    result["load_before"] = {
        "loadavg": load.loadavg,
        "other_core_share": load.other_core_share,
        "busiest": load.busiest,
    }
    report(result)
    write_results(args.json, [result])
    return 0 if result["all_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
