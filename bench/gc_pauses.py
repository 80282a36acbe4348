#!/usr/bin/env python3
"""Garbage-collection pauses of a server process: at 1,000 and at 5,000 connections, and
while 1,000 devices reconnect at once.

Starts ``server.py serve`` with ``MOTCUA_GC_STATS`` (gateway/collector.py times every
collection inside the server through ``gc.callbacks`` and writes them to a file), then
in three phases, with counters calling throughout:

1. ``--first`` connections (default 1,000), for ``--duration`` seconds;
2. more displays up to ``--second`` connections (default 5,000), for ``--duration``;
3. ``--reconnect`` displays (default 1,000) drop and reconnect at once; the phase lasts
   until they all hold their snapshot, plus ``--duration``.

For each phase: the collections of each generation, their longest and p99 pause, and how
many paused the process longer than the target (20 ms, issue 19). The verdict is given
only on a quiet machine (bench/verdict.py).

    .venv/bin/python bench/gc_pauses.py                      # 1,000 / 5,000 / 1,000 again
    .venv/bin/python bench/gc_pauses.py --gc-default         # the server without freezing
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import time
from pathlib import Path
from time import perf_counter

from centre import make_centre
from cpu import CpuWindow, machine, rss_kib
from environment import bench_environment, check_store_args, common_arguments
from gcstats import TARGET_MS, pauses_between, read_stats, wait_for_stats
from loadgen import DisplayWall, call_latencies, connect_clerks, login_clerks
from stats import fmt_ms, print_machine, stats_ms
from verdict import Target, run_repeated, write_results
from wsclient import connect, connect_all

TARGETS = [
    Target(
        f"no collection pauses the process > {TARGET_MS:.0f} ms, {p}",
        f"phases.{p}.max_ms",
        TARGET_MS,
    )
    for p in ("first", "second", "reconnect")
]
SPREAD = [
    (f"{p}: longest pause (ms)", f"phases.{p}.max_ms") for p in ("first", "second", "reconnect")
]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--first", type=int, default=1000, help="connections in phase 1")
    p.add_argument("--second", type=int, default=5000, help="connections in phase 2")
    p.add_argument("--reconnect", type=int, default=1000, help="displays reconnecting at once")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per phase")
    p.add_argument("--counters", type=int, default=20, help="counters calling throughout")
    p.add_argument("--kiosks", type=int, default=10)
    p.add_argument("--services", type=int, default=4)
    p.add_argument(
        "--call-interval", type=float, default=10.0, help="mean seconds between a counter's calls"
    )
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument(
        "--gc-default",
        action="store_true",
        help="run the server with MOTCUA_GC_FREEZE=0 (CPython's collector as it comes), to compare",
    )
    p.add_argument(
        "--gc-sizes",
        action="store_true",
        help="the server also records each generation's size as each older collection "
        "starts (the stats file's 'sizes' lines, kept with --keep): an investigation",
    )
    p.add_argument(
        "--gc-garbage",
        action="store_true",
        help="the full collections between phases keep what they free and write its "
        "commonest types (the stats file's 'garbage' lines, kept with --keep): an "
        "investigation of the cyclic garbage",
    )
    common_arguments(p)
    return p


async def collect_all(server, stats_path: Path) -> dict:
    """Ask the server for one full collection (SIGUSR2, gateway/collector.py): what it
    frees is the cyclic garbage its frozen set kept since the previous one."""
    before = len(read_stats(stats_path)["fulls"])
    os.kill(server.pid, signal.SIGUSR2)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        fulls = read_stats(stats_path)["fulls"]
        if len(fulls) > before:
            _, freed, ms, since = fulls[-1]
            return {"freed": freed, "ms": ms, "since_s": since}
    raise RuntimeError("the server did not answer SIGUSR2 with a full collection")


async def run(args, server, centre, tokens, stats_path: Path) -> dict:
    rng = random.Random(args.seed)
    kw = {"client": args.client, "deflate": args.deflate}
    wall = DisplayWall()

    retried = [0]

    def display(tok):
        async def one():
            # On a busy machine a connection can wait past the server's join deadline
            # (10 s) and be closed: try again, and report how many were retried.
            for attempt in range(3):
                try:
                    return await connect(
                        server, "/display", {"token": tok}, handlers={"changes": handler}, **kw
                    )
                except (ConnectionError, TimeoutError):
                    if attempt == 2:
                        raise
                    retried[0] += 1
                    await asyncio.sleep(1.0)

        handler = wall.handler()
        return one

    clerks, counters = await connect_clerks(
        server, centre, tokens, args.call_interval, args.seed, kw
    )
    kiosks = await connect_all(
        [lambda tok=tok: connect(server, "/kiosk", {"token": tok}, **kw) for tok in centre.kiosks]
    )
    for k in kiosks:  # something to call
        for _ in range(20):
            await k.call("issue", {"service": rng.choice(centre.services)})
    base = len(counters) + len(kiosks)
    first = await connect_all([display(t) for t in centre.displays[: args.first - base]])
    print(f"phase 1: {base + len(first)} connections", flush=True)
    rss = {"first": rss_kib(server.pid)}

    t_end_all = perf_counter() + 3600
    tasks = [
        asyncio.create_task(cl.run(t_end_all, rng.uniform(0, args.call_interval))) for cl in clerks
    ]
    phases = {}

    async def measure(name: str, seconds: float) -> None:
        t0 = time.time()
        cpu = CpuWindow(server)
        cpu.start()
        p0 = perf_counter()
        await asyncio.sleep(seconds)
        cpu.stop()
        t1 = time.time()
        await wait_for_stats(stats_path, t1)
        phases[name] = pauses_between(stats_path, t0, t1)
        lat = call_latencies(clerks, wall, p0, perf_counter())
        phases[name]["calls"] = stats_ms(lat["to_every_display"])
        phases[name]["connections"] = base + sum(1 for d in displays if d is not None)
        phases[name]["cpu"] = cpu.result

    displays = list(first)
    await asyncio.sleep(2.0)  # the server's freeze after the burst
    # What a steady phase leaves in the frozen set: a full collection before and after
    # it (outside the measured window), the second's count is the phase's.
    kept = {}
    if not args.gc_default:
        await collect_all(server, stats_path)
    await measure("first", args.duration)
    if not args.gc_default:
        kept["first"] = await collect_all(server, stats_path)

    more = await connect_all(
        [display(t) for t in centre.displays[args.first - base : args.second - base]]
    )
    displays += more
    print(f"phase 2: {base + len(displays)} connections", flush=True)
    rss["second"] = rss_kib(server.pid)
    await asyncio.sleep(2.0)
    await measure("second", args.duration)

    # Phase 3: a hall of boards drops and comes back at once (a switch restarted).
    gone = displays[: args.reconnect]
    toks = centre.displays[: args.reconnect]
    wall.n -= len(gone)
    t0 = time.time()
    p0 = perf_counter()
    cpu = CpuWindow(server)
    cpu.start()
    for d in gone:
        await d.close()
    await asyncio.sleep(0.5)
    back = await connect_all([display(t) for t in toks], concurrency=64)
    reconnect_s = perf_counter() - p0
    displays[: args.reconnect] = back
    print(f"phase 3: {len(back)} displays reconnected in {reconnect_s:.1f} s", flush=True)
    await asyncio.sleep(args.duration)
    cpu.stop()
    t1 = time.time()
    await wait_for_stats(stats_path, t1)
    phases["reconnect"] = pauses_between(stats_path, t0, t1)
    phases["reconnect"]["reconnect_s"] = reconnect_s
    phases["reconnect"]["connections"] = base + len(displays)
    phases["reconnect"]["cpu"] = cpu.result
    rss["reconnect"] = rss_kib(server.pid)
    if not args.gc_default:
        kept["second and reconnect"] = await collect_all(server, stats_path)

    for t in tasks:
        t.cancel()
    for c in counters + kiosks + displays:
        await c.close()
    return {
        "benchmark": "gc_pauses",
        "machine": machine(),
        "store": server.database_url.split(":", 1)[0],
        "gc_mode": "default" if args.gc_default else "frozen",
        "connections_retried": retried[0],
        "phases": phases,
        "server_rss_kib": rss,
        "kept_frozen": kept,
        # The verdict's noise check: the busiest phase's share of other processes.
        "other_processes_cpu_pct": max(
            p["cpu"].get("other_processes_cpu_pct", 0) for p in phases.values()
        ),
    }


def report(r: dict) -> None:
    print()
    print("motcua garbage-collection pauses")
    print_machine(r)
    print(
        f"store        {r['store']}    collector: {r['gc_mode']}; connections retried "
        f"{r['connections_retried']}"
    )
    for name, p in r["phases"].items():
        print(
            f"{name:<10} {p['connections']} connections, threshold {tuple(p['threshold'])}, "
            f"{p['frozen']} objects frozen so far ({p['quiet_freezes']} freezes right after "
            "a collection), "
            f"RSS {r['server_rss_kib'].get(name, 0) / 1024:.0f} MiB"
            + (f", reconnected in {p['reconnect_s']:.1f} s" if "reconnect_s" in p else "")
        )
        for g in range(3):
            s = p[f"gen{g}"]
            print(
                f"  generation {g}: {s['n']:5d} collections, longest {s['max_ms']:6.1f} ms "
                f"(most CPU {s['max_cpu_ms']:6.1f} ms), p99 {s['p99_ms']:6.2f} ms, "
                f"{s['total_ms']:7.1f} ms in all"
            )
        sw = p["switched"]
        print(
            f"  collections during which greenlets ran (not pauses): {sw['n']}, longest "
            f"{sw['max_ms']:.1f} ms"
        )
        print(
            f"  longest pause {p['max_ms']:.1f} ms; {p['over_target']} over {TARGET_MS:.0f} ms; "
            f"freezes {[(n, ms) for _, n, ms in p['freezes']]}"
        )
        if "calls" in p:
            print(f"  call -> every display   {fmt_ms(p['calls'])}")
        c = p["cpu"]
        print(
            f"  server {c.get('server_cpu_pct', 0):.0f}% of a core, other processes "
            f"{c.get('other_processes_cpu_pct', 0):.0f}%"
        )
    for name, k in r.get("kept_frozen", {}).items():
        print(
            f"cyclic garbage kept frozen, {name}: {k['freed']} objects over {k['since_s']:.0f} s "
            f"({60 * k['freed'] / max(k['since_s'], 1e-9):.0f} a minute), freed by a full "
            f"collection of {k['ms']:.1f} ms (asked for, between phases)"
        )


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if error := check_store_args(args):
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not (0 < args.first <= args.second) or args.reconnect > args.second:
        print("error: need 0 < --first <= --second and --reconnect <= --second", file=sys.stderr)
        return 2
    n_displays = args.second - args.counters - args.kiosks
    centre = make_centre(
        counters=args.counters,
        kiosks=args.kiosks,
        displays=n_displays,
        ratings=0,
        services=args.services,
    )

    def one_run(_i: int) -> dict:
        with bench_environment(args, centre, gc_stats=True) as server:
            stats_path = Path(server.env["MOTCUA_GC_STATS"])
            tokens = login_clerks(server, centre)
            budget = 4 * args.duration + 900
            return asyncio.run(
                asyncio.wait_for(run(args, server, centre, tokens, stats_path), budget)
            )

    results = run_repeated(max(1, args.repeat), one_run, report, SPREAD, TARGETS)
    write_results(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
