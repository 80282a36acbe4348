#!/usr/bin/env python3
"""A province on one installation: many centres on several server processes sharing
PostgreSQL and Redis, every centre issuing and calling at its peak (issue 22).

Starts ``--processes`` ``server.py serve`` processes on one fresh PostgreSQL database and
one Redis, with ``--centres`` generated centres of ``--kiosks``, ``--counters`` (each with
a logged-in clerk), ``--displays`` and ``--ratings`` devices each. Each centre's devices
are spread over the processes in turn, as nginx's round robin spreads them, so most
calls cross Redis to reach some of their centre's boards. Kiosks issue ``--tickets-per-s``
and clerks call ``--calls-per-s`` over the whole province.

For each call sent in the measured window: the time until it had reached every board of
its centre (p50/p99 over the run and in each ``--window``-second window of it), whether
it reached them all, and whether any board received a call of another centre. Also the
servers' memory per device and their longest collections.

The province is provisioned and its clerks logged in once, into a template database kept
between runs (``motcua_province_<digest>``, rebuilt when the centres or the migrations
change or its sessions are older than 10 hours); each run copies it (CREATE DATABASE …
TEMPLATE), so a run starts in seconds and on the same data.

Targets (issue 22), on this 2-core machine, load generator included: call -> every board
of its centre p99 <= 100 ms over the run and in every 5-second window; no call missed; no
change crossing centres; server memory <= 150 KB per device.

    .venv/bin/python bench/province.py                  # 200 centres x 50 devices, 60 s
    .venv/bin/python bench/province.py --centres 20 --duration 20     # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from time import perf_counter

from centre import Centre, make_centre
from cpu import machine, machine_busy_seconds, named_processes_cpu, process_cpu, rss_kib
from gcstats import pauses_between, wait_for_stats
from loadgen import Clerk, DisplayWall, LoopLag
from stats import fmt_ms, print_machine, stats_ms
from verdict import Target, run_repeated, write_results
from wsclient import connect, connect_all

from harness.process import HOST, ROOT, ServerProcess, login
from harness.services import DEFAULT_POSTGRES_URL

TARGETS = [
    Target("a call reaches every board of its centre", "call_to_every_board_ms.p99", 100.0),
    Target("... in every 5-second window", "worst_window_p99_ms", 100.0),
    Target("nobody misses a call", "calls_incomplete", 0),
    Target("every call succeeds", "calls_failed_n", 0),
    Target("no change crosses centres", "crossed", 0),
    Target("server memory per device", "server_kib_per_device", 150 * 1000 / 1024),
]


def targets(args) -> list[Target]:
    """The targets, with the login flood's when it runs (1,000 clerks: the last in 90 s)."""
    if not args.logins:
        return TARGETS
    return TARGETS + [
        Target("every clerk's login accepted", "logins_ok", args.logins, ">="),
        Target("the last login answered (s)", "last_login_s", 90.0),
    ]


SPREAD = [
    ("call -> every board p50 (ms)", "call_to_every_board_ms.p50"),
    ("call -> every board p99 (ms)", "call_to_every_board_ms.p99"),
    ("worst 5-s window p99 (ms)", "worst_window_p99_ms"),
    ("call ack p99 (ms)", "call_ack_ms.p99"),
    ("servers CPU (% of a core)", "servers_cpu_pct"),
    ("load generator lag p99 (ms)", "loadgen_loop_lag_ms.p99"),
    ("server KiB per device", "server_kib_per_device"),
    ("longest server collection (ms)", "server_gc_max_ms"),
]
SESSION_REUSE_S = 10 * 3600  # staff sessions last 12 h (core/auth.py SESSION_HOURS)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_province_args(p)
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring")
    p.add_argument("--window", type=float, default=5.0, help="seconds per window")
    p.add_argument(
        "--logins",
        type=int,
        default=0,
        help="clerks logging in during the measured window (opening time), their arrivals "
        "spread evenly over --login-spread seconds, each centre's from its own address",
    )
    p.add_argument("--login-spread", type=float, default=60.0)
    return p


def add_province_args(p: argparse.ArgumentParser) -> None:
    """The province's size and load, where it runs, and the output (bench/failover.py's
    too)."""
    p.add_argument("--centres", type=int, default=200)
    p.add_argument("--kiosks", type=int, default=2, help="per centre")
    p.add_argument("--counters", type=int, default=5, help="per centre, each with a clerk")
    p.add_argument("--displays", type=int, default=38, help="boards per centre")
    p.add_argument("--ratings", type=int, default=5, help="rating tablets per centre")
    p.add_argument("--services", type=int, default=4, help="per centre")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--calls-per-s", type=float, default=10.0, help="over the whole province")
    p.add_argument("--tickets-per-s", type=float, default=12.0, help="over the whole province")
    p.add_argument("--seed-tickets", type=int, default=6, help="per centre, before the load")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    add_store_args(p)
    p.add_argument("--concurrency", type=int, default=64, help="connections opened at once")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    p.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop" if _has_uvloop() else "asyncio",
        help="the load generator's event loop (uvloop: `pip install .[bench]`)",
    )


def _has_uvloop() -> bool:
    import importlib.util

    return importlib.util.find_spec("uvloop") is not None


def run_async(args, coro):
    """Run the load generator's coroutine on ``--loop``: uvloop's TLS and sockets are
    compiled, asyncio's pure Python, and the load generator shares the machine's two cores
    with what it measures."""
    print(f"load generator on {args.loop}", flush=True)
    if args.loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def add_store_args(p: argparse.ArgumentParser) -> None:
    """--postgres, --redis-url and --rebuild: where a province's databases are made."""
    p.add_argument(
        "--postgres",
        default=DEFAULT_POSTGRES_URL,
        metavar="ADMIN_URL",
        help="where the template and each run's database are created",
    )
    p.add_argument(
        "--redis-url", default=os.environ.get("MOTCUA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    p.add_argument("--rebuild", action="store_true", help="rebuild the template database")


def province(args) -> list[Centre]:
    return [
        make_centre(
            counters=args.counters,
            kiosks=args.kiosks,
            displays=args.displays,
            ratings=args.ratings,
            services=args.services,
            code=f"X{i:03d}",
            name=f"Bộ phận Một cửa xã thử tải {i}",
        )
        for i in range(1, args.centres + 1)
    ]


# -- the template database: provisioned and logged in once ------------------------------


def _digest(centres: list[Centre]) -> str:
    h = hashlib.sha256()
    for c in centres:
        h.update(c.toml.encode())
    for f in sorted((ROOT / "core" / "migrations" / "versions").glob("*.py")):
        h.update(f.name.encode())
    return h.hexdigest()[:12]


def _admin(admin_url: str):
    import psycopg

    return psycopg.connect(admin_url, autocommit=True)


def _db_url(admin_url: str, name: str) -> str:
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def build_template(args, centres: list[Centre], name: str, tmp: Path) -> dict:
    """Provision every centre into a fresh database ``name`` (one province file, ``server.py
    provision``) and log every clerk in through a server per core on it; returns the
    tokens by centre code."""
    url = _db_url(args.postgres, name)
    with _admin(args.postgres) as a:
        a.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        a.execute(f'CREATE DATABASE "{name}"')
    (tmp / "centres").mkdir(exist_ok=True)
    for c in centres:  # whatever their codes (bench/replay.py's are R000, R001, ...)
        (tmp / "centres" / f"{c.code}.toml").write_text(c.toml, encoding="utf-8")
    (tmp / "province.toml").write_text(
        '[province]\ncode = "XT"\nname = "Tỉnh thử tải"\ncentres = ["centres/*.toml"]\n',
        encoding="utf-8",
    )
    t0 = perf_counter()
    subprocess.run(
        [
            sys.executable,
            "server.py",
            "provision",
            str(tmp / "province.toml"),
            "--database-url",
            url,
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(
        f"template: {len(centres)} centres provisioned in {perf_counter() - t0:.0f} s", flush=True
    )
    workers = max(1, os.cpu_count() or 2)
    servers = [
        ServerProcess(tmp, url, None, env={"MOTCUA_LOG_LEVEL": "WARNING"}).start(60)
        for _ in range(workers)
    ]
    try:
        t0 = perf_counter()
        jobs = [
            (servers[i % workers].url, c.code, user, pw)
            for c in centres
            for i, (user, pw, _) in enumerate(c.clerks)
        ]
        tokens: dict[str, list[str]] = defaultdict(list)
        with ThreadPoolExecutor(4 * workers) as pool:
            for code, token in pool.map(lambda j: (j[1], login(j[0], j[2], j[3])), jobs):
                tokens[code].append(token)
        print(f"template: {len(jobs)} clerks logged in in {perf_counter() - t0:.0f} s", flush=True)
    finally:
        for s in servers:
            s.stop()
    return {"created": time.time(), "tokens": tokens}


def province_database(args, centres: list[Centre], tmp: Path) -> tuple[str, dict]:
    """A fresh copy of the province's template database (built when needed): its URL and
    the clerks' session tokens by centre code."""
    name = f"motcua_province_{_digest(centres)}"
    meta_path = Path(tempfile.gettempdir()) / f"{name}.json"
    meta = None
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads(meta_path.read_text())
    with _admin(args.postgres) as a:
        exists = a.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if args.rebuild or not exists or not meta or time.time() - meta["created"] > SESSION_REUSE_S:
        meta = build_template(args, centres, name, tmp)
        meta_path.write_text(json.dumps(meta))
    run = f"motcua_bench_{secrets.token_hex(4)}"
    with _admin(args.postgres) as a:
        a.execute(f'CREATE DATABASE "{run}" TEMPLATE "{name}"')
    return _db_url(args.postgres, run), meta["tokens"]


def drop_database(args, url: str) -> None:
    with _admin(args.postgres) as a:
        a.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# -- the servers ---------------------------------------------------------------------------

SERVER_ENV = {
    "MOTCUA_LOG_LEVEL": "WARNING",
    "MOTCUA_DEVICE_RATE": "1000000",
    "MOTCUA_DEVICE_BURST": "1000000",
    "MOTCUA_TRUSTED_PROXIES": "1",  # the login flood's clerks come from their centres
}


def start_servers(
    servers: list, n: int, url: str, redis_url: str, tmp: Path, env: dict | None = None
) -> list[ServerProcess]:
    """Start ``n`` server processes on the database ``url`` and one Redis, appending each
    to ``servers`` as it starts (so that the caller stops those that did start), each
    writing its collections to ``tmp/gc-<i>.txt``; ``env`` is added to ``SERVER_ENV``."""
    for i in range(n):
        e = {**SERVER_ENV, **(env or {}), "MOTCUA_GC_STATS": str(tmp / f"gc-{i}.txt")}
        servers.append(ServerProcess(tmp, url, redis_url, env=e).start(120))
    return servers


def spread(servers: list, opens: list) -> list:
    """Connection factories: each ``open_(server)`` of ``opens`` on the servers in turn,
    as nginx's round robin spreads a centre's devices."""
    return [partial(open_, servers[i % len(servers)]) for i, open_ in enumerate(opens)]


# -- the load ----------------------------------------------------------------------------


@dataclass
class CentreLoad:
    centre: Centre
    wall: DisplayWall = field(default_factory=DisplayWall)
    clerks: list = field(default_factory=list)
    kiosks: list = field(default_factory=list)
    tickets: set = field(default_factory=set)  # ids of the tickets its kiosks issued


class ProvinceCpu:
    """CPU of the server processes, PostgreSQL, Redis and this load generator over the
    measured window, in % of one core."""

    def __init__(self, servers):
        self.servers = servers

    def _sample(self):
        return (
            sum(process_cpu(s.pid) for s in self.servers),
            sum(named_processes_cpu("postgres").values()),
            sum(named_processes_cpu("redis-server").values()),
            time.process_time(),
            machine_busy_seconds(),
            perf_counter(),
        )

    def start(self):
        self.s0 = self._sample()

    def stop(self) -> dict:
        return self.stop_with(self._sample())

    def stop_with(self, s1) -> dict:
        wall = s1[5] - self.s0[5]
        pct = [100 * (b - a) / wall for a, b in zip(self.s0[:5], s1[:5], strict=True)]
        names = ("servers", "postgres", "redis", "loadgen", "machine_busy")
        out = {f"{n}_cpu_pct": v for n, v in zip(names, pct, strict=True)}
        out["other_processes_cpu_pct"] = max(0.0, pct[4] - sum(pct[:4]))
        return out


async def issue_loop(conn, load: CentreLoad, rate, rng, t_end, acks, errors):
    while perf_counter() < t_end:
        await asyncio.sleep(max(0.0, min(rng.expovariate(rate), t_end - perf_counter())))
        t0 = perf_counter()
        if t0 >= t_end:
            return
        try:
            t_ack, r = await conn.call("issue", {"service": rng.choice(load.centre.services)})
        except (TimeoutError, ConnectionError) as e:
            errors[type(e).__name__] += 1
            continue
        if r.get("ok"):
            load.tickets.add(r["ticket"]["id"])
            acks.append((t0, t_ack))
        else:
            errors[r["error"]["code"]] += 1


async def connect_province(args, servers, loads: list[CentreLoad], tokens: dict):
    """Every device of every centre, each centre's spread over the processes in turn."""
    interval = args.centres * args.counters / args.calls_per_s
    factories = []
    for load in loads:
        c = load.centre
        rng = random.Random(f"{args.seed}:{c.code}")
        opens = [
            *(partial(_display, tok, load) for tok in c.displays),
            *(partial(_kiosk, tok, load) for tok in c.kiosks),
            *(partial(_rating, tok) for tok in c.ratings),
        ]
        for (_, _, number), tok in zip(c.clerks, tokens[c.code], strict=True):
            clerk = Clerk(number, None, interval, random.Random(rng.random()))
            load.clerks.append(clerk)
            opens.append(partial(_counter, tok, clerk))
        factories += spread(servers, opens)
    conns = await connect_all(factories, args.concurrency)
    await asyncio.wait_for(
        asyncio.gather(*(cl.opened for load in loads for cl in load.clerks)), 120
    )
    return conns


async def _display(tok, load: CentreLoad, server):
    return await connect(
        server, "/display", {"token": tok}, handlers={"changes": load.wall.handler()}
    )


async def _kiosk(tok, load: CentreLoad, server):
    conn = await connect(server, "/kiosk", {"token": tok})
    load.kiosks.append(conn)
    return conn


async def _rating(tok, server):
    return await connect(server, "/rating", {"token": tok})


async def _counter(tok, clerk: Clerk, server):
    conn = await connect(
        server,
        "/counter",
        {"token": tok, "counter": clerk.number},
        handlers={"counter_state": clerk.on_state},
    )
    clerk.conn = conn
    return conn


async def post_login(server, address: str, username: str, password: str) -> tuple[int, float]:
    """One ``POST /api/v1/auth/login`` as the clerk at ``address`` (X-Forwarded-For, the
    servers trusting one proxy): (HTTP status, seconds until answered). No client
    timeout: a login waiting for its turn at the password check is what is measured."""
    t0 = perf_counter()
    reader, writer = await asyncio.open_connection(HOST, server.port)
    body = json.dumps({"username": username, "password": password}).encode()
    writer.write(
        (
            f"POST /api/v1/auth/login HTTP/1.1\r\nHost: {HOST}\r\n"
            "Content-Type: application/json\r\nConnection: close\r\n"
            f"X-Forwarded-For: {address}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
    )
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    await reader.read()
    writer.close()
    return status, perf_counter() - t0


async def login_flood(args, servers, loads: list[CentreLoad], t_start: float) -> dict:
    """``--logins`` clerks (the province's, in turn) log in, arriving evenly over
    ``--login-spread`` seconds from ``t_start``, each centre from its own address."""
    clerks = [
        (f"10.{i // 250}.{i % 250}.1", user, pw)
        for i, load in enumerate(loads)
        for user, pw, _ in load.centre.clerks
    ]
    clerks = [clerks[i % len(clerks)] for i in range(args.logins)]
    answers: list[tuple[int, float, float]] = []  # status, sent (s after t_start), took

    async def one(i, address, user, pw):
        at = t_start + i * args.login_spread / len(clerks)
        await asyncio.sleep(max(0.0, at - perf_counter()))
        sent = perf_counter() - t_start
        try:
            status, took = await post_login(servers[i % len(servers)], address, user, pw)
        except (OSError, ValueError, IndexError):
            status, took = 0, perf_counter() - t_start - sent
        answers.append((status, sent, took))

    await asyncio.gather(*(one(i, *c) for i, c in enumerate(clerks)))
    ok = [a for a in answers if a[0] == 200]
    return {
        "logins": len(answers),
        "logins_ok": len(ok),
        "logins_refused": dict(Counter(a[0] for a in answers if a[0] != 200)),
        "login_ms": stats_ms([a[2] for a in ok]),
        "last_login_s": max((a[1] + a[2] for a in ok), default=float("nan")),
    }


def window_p99s(calls: list[tuple[float, float]], t_start: float, window: float) -> list[dict]:
    """(t_sent, latency) grouped by the window of t_sent: each window's stats."""
    by: dict[int, list[float]] = defaultdict(list)
    for t_sent, lat in calls:
        by[int((t_sent - t_start) // window)].append(lat)
    return [stats_ms(by[i]) for i in range(max(by) + 1)] if by else []


async def seed_queues(loads: list[CentreLoad], per_centre: int, rng) -> Counter:
    """``per_centre`` tickets issued at each centre's kiosks in turn, so that queues are not
    empty when the load starts (32 centres at a time); the refusals, by code."""
    errors, sem = Counter(), asyncio.Semaphore(32)

    async def seed(load: CentreLoad):
        async with sem:
            for i in range(per_centre):
                k = load.kiosks[i % len(load.kiosks)]
                _, r = await k.call("issue", {"service": rng.choice(load.centre.services)})
                if r.get("ok"):
                    load.tickets.add(r["ticket"]["id"])
                else:
                    errors[r["error"]["code"]] += 1

    await asyncio.gather(*(seed(load) for load in loads))
    return errors


def start_load(args, loads: list[CentreLoad], rng, t_end: float, acks, errors) -> list:
    """Every clerk calling (each starting at a random point of its interval) and every
    kiosk issuing its share of ``--tickets-per-s``, until ``t_end``: their tasks."""
    n_kiosks = sum(len(load.kiosks) for load in loads)
    tasks = []
    for load in loads:
        for clerk in load.clerks:
            tasks.append(asyncio.create_task(clerk.run(t_end, rng.uniform(0, clerk.interval))))
        for k in list(load.kiosks):
            rate, own = args.tickets_per_s / n_kiosks, random.Random(rng.random())
            tasks.append(asyncio.create_task(issue_loop(k, load, rate, own, t_end, acks, errors)))
    return tasks


async def run(args, servers, loads: list[CentreLoad], tokens: dict) -> dict:
    rng = random.Random(args.seed)
    rss_before = [rss_kib(s.pid) for s in servers]
    t0 = perf_counter()
    conns = await connect_province(args, servers, loads, tokens)
    connect_s = perf_counter() - t0
    print(f"connected {len(conns)} devices in {connect_s:.1f} s", flush=True)

    seed_errors = await seed_queues(loads, args.seed_tickets, rng)
    await asyncio.sleep(1.0)

    lag = LoopLag()
    lag.start()
    t_start = perf_counter() + args.warmup
    t_end = t_start + args.duration
    acks, k_errors = [], Counter()
    tasks = start_load(args, loads, rng, t_end, acks, k_errors)
    flood = asyncio.create_task(login_flood(args, servers, loads, t_start)) if args.logins else None
    cpu = ProvinceCpu(servers)
    await asyncio.sleep(max(0.0, t_start - perf_counter()))
    wall_t0 = time.time()
    cpu.start()
    await asyncio.sleep(max(0.0, t_end - perf_counter()))
    cpu_result = cpu.stop()
    wall_t1 = time.time()
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    logins = await flood if flood else {}
    await asyncio.sleep(2.0)  # the last calls arrive everywhere
    lag.stop()
    rss_after = [rss_kib(s.pid) for s in servers]

    every, ack, timed = [], [], []
    incomplete, crossed, failed = 0, 0, Counter()
    for load in loads:
        wall = load.wall
        for clerk in load.clerks:
            for c in clerk.calls:
                if not (t_start <= c.t_sent < t_end):
                    continue
                if c.error:
                    failed[c.error] += 1
                    continue
                ack.append(c.t_ack - c.t_sent)
                arr = wall.arrivals.get((c.ticket_id, False), [])
                if len(arr) < wall.n:
                    incomplete += 1
                else:
                    every.append(max(arr) - c.t_sent)
                    timed.append((c.t_sent, max(arr) - c.t_sent))
        crossed += sum(1 for tid, _ in wall.arrivals if tid not in load.tickets)
    windows = window_p99s(timed, t_start, args.window)
    gc_max = 0.0
    gc_over = 0
    for s in servers:
        path = Path(s.env["MOTCUA_GC_STATS"])
        await wait_for_stats(path, wall_t1)
        g = pauses_between(path, wall_t0, wall_t1)
        gc_max = max(gc_max, max(g[f"gen{i}"]["max_ms"] for i in range(3)))
        gc_over += g["over_target"]
    for c in conns:
        with contextlib.suppress(Exception):
            await c.close()
    n_devices = len(conns)
    return {
        "benchmark": "province",
        "machine": machine(),
        "centres": len(loads),
        "processes": len(servers),
        "devices": n_devices,
        "connect_s": connect_s,
        "window_s": args.duration,
        "calls_ok": len(ack),
        "calls_failed": dict(failed),
        "calls_failed_n": sum(failed.values()),
        "calls_incomplete": incomplete,
        "crossed": crossed,
        "call_to_every_board_ms": stats_ms(every),
        "call_ack_ms": stats_ms(ack),
        "windows": windows,
        "worst_window_p99_ms": max((w.get("p99", 0) for w in windows), default=float("nan")),
        "issued_ok": len([a for a in acks if t_start <= a[0] < t_end]),
        "issue_errors": dict(k_errors),
        "seed_errors": dict(seed_errors),
        "issue_ack_ms": stats_ms([b - a for a, b in acks if t_start <= a < t_end]),
        "display_batches": sum(load.wall.batches for load in loads),
        "display_batches_out_of_chain": sum(load.wall.broken for load in loads),
        "loadgen_loop_lag_ms": stats_ms(lag.lags),
        "server_rss_kib": {"before_devices": rss_before, "after_run": rss_after},
        "server_kib_per_device": (sum(rss_after) - sum(rss_before)) / max(1, n_devices),
        "server_gc_max_ms": gc_max,
        "server_gc_over_20ms": gc_over,
        **cpu_result,
        **logins,
    }


def report(r: dict) -> None:
    print()
    print("motcua province benchmark")
    print_machine(r)
    print(
        f"province     {r['centres']} centres, {r['devices']} devices on {r['processes']} "
        f"processes (PostgreSQL, Redis); connected in {r['connect_s']:.1f} s"
    )
    print(
        f"calls        {r['calls_ok']} ok, failed {r['calls_failed'] or 0}, "
        f"not at every board {r['calls_incomplete']}; crossed centres {r['crossed']}"
    )
    print(f"tickets      {r['issued_ok']} issued, errors {r['issue_errors'] or 0}")
    print(f"call -> every board of its centre   {fmt_ms(r['call_to_every_board_ms'])}")
    print(f"call ack (clerk)                    {fmt_ms(r['call_ack_ms'])}")
    print(f"issue ack (kiosk)                   {fmt_ms(r['issue_ack_ms'])}")
    ws = " ".join(f"{w['p99']:.0f}" if w.get("n") else "-" for w in r["windows"])
    print(f"p99 by {len(r['windows'])} windows (ms)    {ws}")
    print(
        f"display batches {r['display_batches']}, "
        f"{r['display_batches_out_of_chain']} not following the previous one"
    )
    if r.get("logins"):
        print(
            f"logins       {r['logins_ok']} of {r['logins']} ok, refused "
            f"{r['logins_refused'] or 0}; the last answered {r['last_login_s']:.1f} s after "
            f"the first was sent; each {fmt_ms(r['login_ms'])}"
        )
    rss = r["server_rss_kib"]
    print(
        "server memory        "
        + ", ".join(
            f"{a / 1024:.0f} -> {b / 1024:.0f} MiB"
            for a, b in zip(rss["before_devices"], rss["after_run"], strict=True)
        )
        + f": {r['server_kib_per_device']:.0f} KiB per device"
    )
    print(
        f"cpu          servers {r['servers_cpu_pct']:.0f}%, PostgreSQL "
        f"{r['postgres_cpu_pct']:.0f}%, Redis {r['redis_cpu_pct']:.0f}%, load generator "
        f"{r['loadgen_cpu_pct']:.0f}%, other processes {r['other_processes_cpu_pct']:.0f}% "
        "of a core"
    )
    print(f"load-generator lag   {fmt_ms(r['loadgen_loop_lag_ms'])}")
    print(
        f"server collections   longest {r['server_gc_max_ms']:.1f} ms, "
        f"{r['server_gc_over_20ms']} over 20 ms"
    )


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if min(args.centres, args.counters, args.displays, args.kiosks, args.processes) < 1:
        print("error: at least one centre, counter, board, kiosk and process", file=sys.stderr)
        return 2
    centres = province(args)
    tmp = Path(tempfile.mkdtemp(prefix="motcua-province-"))

    def one_run(_i: int) -> dict:
        url, tokens = province_database(args, centres, tmp)
        servers = []
        try:
            start_servers(servers, args.processes, url, args.redis_url, tmp)
            loads = [CentreLoad(c) for c in centres]
            budget = args.warmup + args.duration + 600
            return run_async(args, asyncio.wait_for(run(args, servers, loads, tokens), budget))
        finally:
            for s in servers:
                s.stop()
            drop_database(args, url)

    try:
        results = run_repeated(max(1, args.repeat), one_run, report, SPREAD, targets(args))
    finally:
        remove_unless_kept(args, tmp)
    write_results(args.json, results)
    return 0


def remove_unless_kept(args, tmp: Path) -> None:
    """The run's temporary directory goes, unless ``--keep`` (its servers' logs)."""
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
