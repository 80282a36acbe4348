#!/usr/bin/env python3
"""A hall coming back at once: what one server process spends on each device that
reconnects (issue 22's failover, without nginx and without the load).

One ``server.py serve`` process on a copy of bench/province.py's template database
(PostgreSQL, Redis) holds every device of the province's centres; then every other device
of each centre (those nginx's round robin had given a second process) disconnects and
comes back at once, each after a random delay within ``--spread`` seconds (as pages
reconnect after 0.5-1.5 s): what the survivor of a killed process sees, without nginx's
TLS and without the load.
Measured: the time from the first connection until the last device had its snapshot, and
the server's CPU seconds over that storm per device that came back (the figure that
bounds bench/failover.py: 5,000 devices at 2.8 ms each are 14 s of one core).

    .venv/bin/python bench/connect_storm.py                       # 200 centres, 5,000 back
    .venv/bin/python bench/connect_storm.py --profile storm.txt   # and a py-spy profile
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path
from time import perf_counter

import province as P
from cpu import Profiler, machine, process_cpu
from stats import fmt_ms, print_machine, stats_ms
from verdict import Target, run_repeated, write_results
from wsclient import connect

SNAPSHOT = {"/display": "snapshot", "/kiosk": "services", "/rating": "rating_state"}

TARGETS = [
    # 10 s for 5,000 devices with nginx's TLS and the load on the other core: the
    # survivor may spend ~1.5 ms a device (docs/performance.md, issue 22).
    Target("server CPU per reconnecting device (ms)", "cpu_ms_per_device", 1.5),
    Target("every device back", "not_back", 0),
]
SPREAD = [
    ("server CPU per device (ms)", "cpu_ms_per_device"),
    ("the last back (s)", "last_back_s"),
]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    P.add_province_args(p)
    p.set_defaults(processes=1)
    p.add_argument("--spread", type=float, default=1.0, help="seconds the storm's starts span")
    p.add_argument("--profile", metavar="FILE", help="py-spy the server during the storm")
    return p


def openers(load: P.CentreLoad, tokens: list[str]) -> list[tuple[str, dict, dict]]:
    """(namespace, auth, handlers) of each of a centre's devices."""
    c = load.centre
    out = [("/display", {"token": t}, {}) for t in c.displays]
    out += [("/kiosk", {"token": t}, {}) for t in c.kiosks]
    out += [("/rating", {"token": t}, {}) for t in c.ratings]
    out += [
        ("/counter", {"token": t, "counter": number}, {})
        for (_, _, number), t in zip(c.clerks, tokens, strict=True)
    ]
    return out


async def open_one(server, namespace, auth, delay, back: list, failed: list):
    """Connect after ``delay``; note when the device's snapshot arrived."""
    await asyncio.sleep(delay)
    got = asyncio.get_running_loop().create_future()
    event = SNAPSHOT.get(namespace, "counter_state")

    def snap(_data, t):
        if not got.done():
            got.set_result(t)

    try:
        conn = await connect(server, namespace, auth, handlers={event: snap}, timeout=60)
        back.append(await asyncio.wait_for(got, 60))
        return conn
    except Exception as e:  # noqa: BLE001 - counted, shown
        failed.append(type(e).__name__)
        return None


async def run(args, server, loads, tokens) -> dict:
    everyone = [o for load in loads for o in openers(load, tokens[load.centre.code])]
    back, failed = [], []
    sem = asyncio.Semaphore(args.concurrency)

    async def first(ns, auth):
        async with sem:
            return await open_one(server, ns, auth, 0, back, failed)

    conns = await asyncio.gather(*(first(ns, auth) for ns, auth, _ in everyone))
    print(f"{len(back)} devices connected {sorted(set(failed)) or ''}", flush=True)
    # Every other device of each centre leaves (its process was killed), and comes back.
    storm = [(everyone[i], conns[i]) for i in range(1, len(everyone), 2)]
    for _, c in storm:
        if c is not None:
            await c.close()
    conns = conns[::2]
    await asyncio.sleep(3.0)
    rng = random.Random(args.seed)
    wanted = [(ns, auth, rng.uniform(0, args.spread)) for (ns, auth, _), _ in storm]
    back, failed = [], []
    prof = Profiler(args.profile, server.pid, args.spread + 30)
    prof.start()
    await asyncio.sleep(0.5 if args.profile else 0)
    cpu0, t0 = process_cpu(server.pid), perf_counter()
    conns += await asyncio.gather(
        *(open_one(server, ns, auth, d, back, failed) for ns, auth, d in wanted)
    )
    t_last = max(back, default=float("nan"))
    cpu = process_cpu(server.pid) - cpu0
    profile = prof.finish() if args.profile else ""
    for c in conns:
        if c is not None:
            await c.close()
    return {
        "benchmark": "connect_storm",
        "machine": machine(),
        "resident_devices": len(everyone) - len(wanted),
        "devices": len(wanted),
        "not_back": len(wanted) - len(back),
        "failures": sorted(set(failed)),
        "last_back_s": t_last - t0,
        "back_s": stats_ms([t - t0 for t in back]),
        "server_cpu_s": cpu,
        "cpu_ms_per_device": 1000 * cpu / max(1, len(back)),
        "profile": profile,
    }


def report(r: dict) -> None:
    print()
    print("motcua connect storm")
    print_machine(r)
    print(
        f"storm        {r['devices']} devices onto a process holding {r['resident_devices']}; "
        f"{r['devices'] - r['not_back']} back, the last {r['last_back_s']:.1f} s after the first "
        f"started; not back {r['not_back']} {r['failures'] or ''}"
    )
    print(f"back after   {fmt_ms(r['back_s'])}")
    print(
        f"server CPU   {r['server_cpu_s']:.1f} s over the storm: "
        f"{r['cpu_ms_per_device']:.2f} ms per device"
    )
    if r["profile"]:
        print(r["profile"])


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    centres = P.province(args)
    tmp = Path(tempfile.mkdtemp(prefix="motcua-storm-"))

    def one_run(_i: int) -> dict:
        url, tokens = P.province_database(args, centres, tmp)
        servers = []
        try:
            P.start_servers(servers, 1, url, args.redis_url, tmp)
            loads = [P.CentreLoad(c) for c in centres]
            return P.run_async(args, asyncio.wait_for(run(args, servers[0], loads, tokens), 600))
        finally:
            for s in servers:
                s.stop()
            P.drop_database(args, url)

    try:
        results = run_repeated(max(1, args.repeat), one_run, report, SPREAD, TARGETS)
    finally:
        P.remove_unless_kept(args, tmp)
    write_results(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
