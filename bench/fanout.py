#!/usr/bin/env python3
"""Fan-out latency: how long a clerk's call takes to reach EVERY display of the centre.

Starts ``server.py serve`` on 127.0.0.1 with a fresh store and a generated centre,
connects ~100 devices (kiosks, counters with clerk logins, displays, rating tablets),
lets kiosks issue tickets in the background and counters call_next repeatedly, and for
each ``called`` event measures the time from sending the clerk's ``call_next`` to its
arrival at each display (one process, one clock: time.perf_counter). Prints p50/p95/p99/
max of "reached every display" (the slowest display of each call) and of each delivery.

Targets (issue 19, at 1,000 devices; issue 2's at 100): a call reaches every display
within p99 <= 50 ms, and the clerk's call is acknowledged within p50 <= 10 ms and p99
<= 30 ms, in every run. Each run prints the machine's load before it, and the verdict is
given only when no other process took more than a tenth of a core (bench/verdict.py);
``--repeat N`` runs the whole benchmark N times (a fresh server and store each time) and
prints each run and the spread.

    .venv/bin/python bench/fanout.py                       # defaults: 100 devices, 60 s
    .venv/bin/python bench/fanout.py --postgres            # fresh PostgreSQL database
    .venv/bin/python bench/fanout.py --duration 60 --profile /tmp/fanout.pyspy
    .venv/bin/python bench/fanout.py --duration 30 --kiosks 50 --counters 100 \
        --displays 650 --ratings 200 --call-interval 10 --repeat 5   # issue 19's runs
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from pathlib import Path
from time import perf_counter

from centre import Centre, centre_from_args
from cpu import CpuWindow, Profiler, machine, rss_kib
from environment import bench_environment, check_store_args, common_arguments
from gcstats import pauses_between, wait_for_stats
from loadgen import LoopLag, call_latencies, connect_centre, login_clerks
from stats import (
    fmt_ms,
    print_delivery,
    print_machine,
    print_profile,
    stats_ms,
    traffic_result,
)
from verdict import Target, run_repeated, write_results

from harness.process import ServerProcess

TARGETS = [
    Target("a call reaches every display", "call_to_every_display_ms.p99", 50.0),
    Target("every call reaches every display", "calls_incomplete", 0),
    Target("every call succeeds", "calls_failed_n", 0),
    Target("the clerk's call is acknowledged at once", "call_ack_ms.p50", 10.0),
    Target("the clerk's call is acknowledged at once", "call_ack_ms.p99", 30.0),
]
# The figures whose spread --repeat prints.
SPREAD = [
    ("call -> every display p50 (ms)", "call_to_every_display_ms.p50"),
    ("call -> every display p99 (ms)", "call_to_every_display_ms.p99"),
    ("call -> first display p50 (ms)", "call_to_first_display_ms.p50"),
    ("call -> first display p99 (ms)", "call_to_first_display_ms.p99"),
    ("first -> last display p50 (ms)", "first_to_last_display_ms.p50"),
    ("call ack p50 (ms)", "call_ack_ms.p50"),
    ("call ack p99 (ms)", "call_ack_ms.p99"),
    ("server CPU (% of a core)", "server_cpu_pct"),
    ("load generator lag p99 (ms)", "loadgen_loop_lag_ms.p99"),
    ("other processes (% of a core)", "other_processes_cpu_pct"),
]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    p.add_argument(
        "--repeat", type=int, default=1, help="run N times, each on a fresh server and store"
    )
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    p.add_argument("--kiosks", type=int, default=10)
    p.add_argument("--counters", type=int, default=20, help="counters, each with a clerk")
    p.add_argument("--displays", type=int, default=40)
    p.add_argument("--ratings", type=int, default=30, help="rating tablets")
    p.add_argument("--services", type=int, default=4)
    p.add_argument(
        "--managers",
        type=int,
        default=0,
        help="managers with the live monitor open (/manage), each following the centre",
    )
    p.add_argument(
        "--call-interval",
        type=float,
        default=5.0,
        help="mean seconds between one counter's calls (jittered 0.5x-1.5x); a real "
        "counter calls every few minutes, so 5 s with 20 counters is a hard peak",
    )
    p.add_argument(
        "--issue-rate",
        type=float,
        default=None,
        help="tickets/s issued by all kiosks together (default: 1.25x the call rate)",
    )
    p.add_argument(
        "--seed-tickets",
        type=int,
        default=200,
        help="tickets issued before the load so that queues are not empty",
    )
    common_arguments(p)
    return p


async def kiosk_loop(conn, rate: float, services, rng, t_end, acks, errors):
    while perf_counter() < t_end:
        t0 = perf_counter()
        try:
            t_ack, r = await conn.call("issue", {"service": rng.choice(services)})
        except (TimeoutError, ConnectionError) as e:
            errors[type(e).__name__] += 1
            continue
        if r.get("ok"):
            acks.append((t0, t_ack))
        else:
            errors[r["error"]["code"]] += 1
        await asyncio.sleep(max(0.0, rng.expovariate(rate) - (perf_counter() - t0)))


async def run(args, server: ServerProcess, centre: Centre, tokens: list[str]) -> dict:
    rng = random.Random(args.seed)
    rss_before = rss_kib(server.pid)
    devs = await connect_centre(server, centre, tokens, args, args.call_interval)
    kiosks, clerks, wall = devs.kiosks, devs.clerks, devs.wall
    print(f"connected {len(devs.all)} devices", flush=True)

    # Seed the queues (spread over the kiosks, within their rate-limit burst).
    seed_errors = Counter()

    async def seed(conn, n):
        for _ in range(n):
            _, r = await conn.call("issue", {"service": rng.choice(centre.services)})
            if not r.get("ok"):
                seed_errors[r["error"]["code"]] += 1

    if kiosks and args.seed_tickets:
        per = -(-args.seed_tickets // len(kiosks))
        await asyncio.gather(*(seed(k, per) for k in kiosks))
    await asyncio.sleep(0.5)

    calls_per_s = len(clerks) / args.call_interval if args.call_interval > 0 else 0
    issue_rate = args.issue_rate if args.issue_rate is not None else 1.25 * calls_per_s
    lag = LoopLag()
    lag.start()
    t_start = perf_counter() + args.warmup
    t_end = t_start + args.duration
    acks, k_errors = [], Counter()
    tasks = [
        asyncio.create_task(cl.run(t_end, rng.uniform(0, args.call_interval))) for cl in clerks
    ]
    if kiosks and issue_rate > 0:
        tasks += [
            asyncio.create_task(
                kiosk_loop(
                    k,
                    issue_rate / len(kiosks),
                    centre.services,
                    random.Random(args.seed * 7 + i),
                    t_end,
                    acks,
                    k_errors,
                )
            )
            for i, k in enumerate(kiosks)
        ]
    cpu = CpuWindow(server)
    prof = Profiler(args.profile, server.pid, args.duration)
    await asyncio.sleep(max(0.0, t_start - perf_counter()))
    traffic0, roles0 = devs.traffic(), devs.traffic_by_role()
    wall_t0 = time.time()
    cpu.start()
    prof.start()
    await asyncio.sleep(max(0.0, t_end - perf_counter()))
    cpu.stop()
    wall_t1 = time.time()
    traffic = [b - a for a, b in zip(traffic0, devs.traffic(), strict=True)]
    by_role = traffic_result(roles0, devs.traffic_by_role(), args.duration)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    await asyncio.sleep(1.0)  # let the last calls arrive everywhere
    lag.stop()
    profile = prof.finish()

    rss_after = rss_kib(server.pid)
    # The server's collections in the measured window (gateway/collector.py's stats).
    stats_path = Path(server.env["MOTCUA_GC_STATS"])
    await wait_for_stats(stats_path, wall_t1)
    gc_window = pauses_between(stats_path, wall_t0, wall_t1)
    lat = call_latencies(clerks, wall, t_start, t_end)
    issued = [a for a in acks if t_start <= a[0] < t_end]
    await devs.close()
    return {
        "benchmark": "fanout",
        "machine": machine(),
        "store": server.database_url.split(":", 1)[0],
        "client": args.client + (" +deflate" if args.deflate and args.client == "raw" else ""),
        "devices": {
            "kiosks": len(kiosks),
            "counters": len(devs.counters),
            "displays": len(devs.displays),
            "ratings": len(devs.ratings),
            "managers": len(devs.managers),
            "total": len(devs.all),
        },
        "window_s": args.duration,
        "target_calls_per_s": calls_per_s,
        "target_issue_per_s": issue_rate,
        "calls_ok": len(lat["ack"]),
        "calls_failed": lat["failed"],
        "calls_failed_n": sum(lat["failed"].values()),
        "calls_incomplete": lat["incomplete"],
        "call_to_every_display_ms": stats_ms(lat["to_every_display"]),
        "call_to_each_display_ms": stats_ms(lat["to_each_display"]),
        "call_to_first_display_ms": stats_ms(lat["to_first_display"]),
        "first_to_last_display_ms": stats_ms(lat["first_to_last_display"]),
        "call_ack_ms": stats_ms(lat["ack"]),
        "issued_ok": len(issued),
        "issue_errors": dict(k_errors),
        "seed_errors": dict(seed_errors),
        "issue_ack_ms": stats_ms([b - a for a, b in issued]),
        "messages_received_per_s": traffic[0] / args.duration,
        "wire_bytes_per_message": traffic[1] / max(1, traffic[0]),
        "text_bytes_per_message": traffic[2] / max(1, traffic[0]),
        "traffic_by_role": by_role,
        "display_batches": wall.batches,
        "display_batches_out_of_chain": wall.broken,
        "loadgen_loop_lag_ms": stats_ms(lag.lags),
        "loadgen_gc_ms": stats_ms(lag.gc_pauses),
        "server_rss_kib": {"before_devices": rss_before, "after_run": rss_after},
        "server_kib_per_device": (rss_after - rss_before) / max(1, len(devs.all)),
        **cpu.result,
        "server_gc": {k: gc_window[k] for k in ("gen0", "gen1", "gen2", "max_ms", "over_target")},
        "profile": profile,
    }


def report(r: dict) -> None:
    d = r["devices"]
    every = r["call_to_every_display_ms"]
    print()
    print("motcua fan-out benchmark")
    print_machine(r)
    print(f"store        {r['store']}    client: {r['client']}")
    print(
        f"devices      {d['kiosks']} kiosks, {d['counters']} counters, {d['displays']} displays, "
        f"{d['ratings']} rating tablets"
        + (f", {d['managers']} managers' monitors" if d.get("managers") else "")
        + f" = {d['total']} connections"
    )
    print(
        f"load         {r['target_calls_per_s']:.0f} calls/s offered, "
        f"{r['target_issue_per_s']:.0f} tickets/s offered, for {r['window_s']:.0f} s measured"
    )
    print(
        f"calls        {r['calls_ok']} ok ({r['calls_ok'] / r['window_s']:.1f}/s), "
        f"failed {r['calls_failed'] or 0}, not at every display {r['calls_incomplete']}"
    )
    print(
        f"tickets      {r['issued_ok']} issued ({r['issued_ok'] / r['window_s']:.1f}/s), "
        f"errors {r['issue_errors'] or 0}"
    )
    print(f"call -> every display   {fmt_ms(every)}")
    print(f"call -> each display    {fmt_ms(r['call_to_each_display_ms'])}")
    print(f"call -> first display   {fmt_ms(r['call_to_first_display_ms'])}")
    print(f"first -> last display   {fmt_ms(r['first_to_last_display_ms'])}")
    print(f"call ack (clerk)        {fmt_ms(r['call_ack_ms'])}")
    print(f"issue ack (kiosk)       {fmt_ms(r['issue_ack_ms'])}")
    print_delivery(r)
    rss = r["server_rss_kib"]
    print(
        f"server memory           {rss['before_devices'] / 1024:.0f} MiB before devices, "
        f"{rss['after_run'] / 1024:.0f} MiB after the run: "
        f"{r['server_kib_per_device']:.0f} KiB per connected device"
    )
    if gc := r.get("server_gc"):
        print(
            "server collections      "
            + "; ".join(
                f"gen {g}: {gc[f'gen{g}']['n']}, longest {gc[f'gen{g}']['max_ms']:.1f} ms"
                for g in range(3)
            )
            + f"; {gc['over_target']} over 20 ms"
        )
    print_profile(r)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if error := check_store_args(args):
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.counters < 1 or args.displays < 1:
        print("error: at least one counter and one display are needed", file=sys.stderr)
        return 2
    centre = centre_from_args(args)

    def one_run(_i: int) -> dict:
        with bench_environment(args, centre, gc_stats=True) as server:
            tokens = login_clerks(server, centre)
            budget = args.warmup + args.duration + 240
            return asyncio.run(asyncio.wait_for(run(args, server, centre, tokens), budget))

    results = run_repeated(max(1, args.repeat), one_run, report, SPREAD, TARGETS)
    write_results(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
