#!/usr/bin/env python3
"""Issue throughput: tickets per second acknowledged (durably committed) from many kiosks
at once, and whether the calls and displays of the same process stall meanwhile.

Starts ``server.py serve`` on 127.0.0.1 with a fresh store and a generated centre.
Many kiosk connections issue tickets as fast as they can (each with several requests in
flight, each waiting for its ack, which the server sends only after the commit) for the
measured window, while displays are connected and counters call_next periodically. Prints
acknowledged tickets/s (overall and per second), ack latency, and the call -> every display
latency measured during the load.

Targets: >= 1,000 tickets/s acknowledged with durable commits (issue 5), and calls of
the same process not stalled meanwhile: call -> every display p99 <= 50 ms (issue 19,
with 100 devices: the defaults). The verdict is given only on a quiet machine
(bench/verdict.py); ``--repeat N`` runs it N times and prints the spread.

The server's per-connection event rate limit (default 20/s) is raised to 1000/s here
(MOTCUA_EVENT_RATE, override with --event-rate): the benchmark is about what the store and
the process can do, not the limiter.

    .venv/bin/python bench/issue_rate.py                       # SQLite, 30 kiosks x 4 in flight
    .venv/bin/python bench/issue_rate.py --postgres            # fresh PostgreSQL database
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections import Counter
from time import perf_counter

from centre import Centre, centre_from_args
from cpu import CpuWindow, Profiler, machine
from environment import bench_environment, check_store_args, common_arguments
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
    Target("tickets acknowledged, durable (issue 5)", "tickets_per_s", 1000.0, ">="),
    Target("calls not stalled by the flood", "call_to_every_display_ms.p99", 50.0),
    Target("every call reaches every display", "calls_incomplete", 0),
]
SPREAD = [
    ("tickets/s", "tickets_per_s"),
    ("issue ack p50 (ms)", "issue_ack_ms.p50"),
    ("call -> every display p50 (ms)", "call_to_every_display_ms.p50"),
    ("call -> every display p99 (ms)", "call_to_every_display_ms.p99"),
    ("call ack p50 (ms)", "call_ack_ms.p50"),
    ("call ack p99 (ms)", "call_ack_ms.p99"),
    ("server CPU (% of a core)", "server_cpu_pct"),
    ("other processes (% of a core)", "other_processes_cpu_pct"),
]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    p.add_argument(
        "--repeat", type=int, default=1, help="run N times, each on a fresh server and store"
    )
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    p.add_argument("--kiosks", type=int, default=30, help="kiosk connections issuing")
    p.add_argument(
        "--inflight", type=int, default=4, help="issue requests each kiosk keeps in flight"
    )
    # 30 + 50 + 10 + 10 = the 100 devices of issue 19's target.
    p.add_argument("--displays", type=int, default=50)
    p.add_argument("--counters", type=int, default=10, help="counters calling during the load")
    p.add_argument("--ratings", type=int, default=10, help="rating tablets")
    p.add_argument("--services", type=int, default=4)
    p.add_argument(
        "--call-interval",
        type=float,
        default=2.5,
        help="mean seconds between one counter's calls (jittered 0.5x-1.5x); 10 counters "
        "every 2.5 s are 4 calls/s",
    )
    p.add_argument(
        "--max-tickets",
        type=int,
        default=200_000,
        help="stop issuing after this many tickets in all",
    )
    common_arguments(p)
    p.set_defaults(event_rate=1000.0)
    return p


async def issuer(conn, services, rng, t_end, acks, errors, budget):
    while perf_counter() < t_end and budget[0] > 0:
        budget[0] -= 1
        t0 = perf_counter()
        try:
            t_ack, r = await conn.call("issue", {"service": rng.choice(services)}, timeout=60)
        except (TimeoutError, ConnectionError) as e:
            errors[type(e).__name__] += 1
            await asyncio.sleep(0.05)
            continue
        if r.get("ok"):
            acks.append((t0, t_ack))
        else:
            errors[r["error"]["code"]] += 1
            if r["error"]["code"] == "rate_limited":
                await asyncio.sleep(0.05)


async def run(args, server: ServerProcess, centre: Centre, tokens: list[str]) -> dict:
    rng = random.Random(args.seed)
    devs = await connect_centre(server, centre, tokens, args, args.call_interval)
    print(f"connected {len(devs.all)} devices", flush=True)

    lag = LoopLag()
    lag.start()
    t_start = perf_counter() + args.warmup
    t_end = t_start + args.duration
    acks, errors = [], Counter()
    budget = [args.max_tickets]
    tasks = [
        asyncio.create_task(
            issuer(
                k, centre.services, random.Random(args.seed * 31 + i), t_end, acks, errors, budget
            )
        )
        for i, k in enumerate(devs.kiosks)
        for _ in range(args.inflight)
    ]
    # Counters start once there are tickets to call.
    tasks += [
        asyncio.create_task(cl.run(t_end, 0.5 + rng.uniform(0, args.call_interval)))
        for cl in devs.clerks
    ]
    cpu = CpuWindow(server)
    prof = Profiler(args.profile, server.pid, args.duration)
    await asyncio.sleep(max(0.0, t_start - perf_counter()))
    traffic0, roles0 = devs.traffic(), devs.traffic_by_role()
    cpu.start()
    prof.start()
    await asyncio.sleep(max(0.0, t_end - perf_counter()))
    cpu.stop()
    traffic = [b - a for a, b in zip(traffic0, devs.traffic(), strict=True)]
    by_role = traffic_result(roles0, devs.traffic_by_role(), args.duration)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    await asyncio.sleep(1.0)
    lag.stop()
    profile = prof.finish()
    await devs.close()

    acked = [(a, b) for a, b in acks if t_start <= b < t_end]
    per_second = [0] * int(args.duration)
    for _, b in acked:
        i = int(b - t_start)
        if i < len(per_second):
            per_second[i] += 1
    lat = call_latencies(devs.clerks, devs.wall, t_start, t_end)
    return {
        "benchmark": "issue_rate",
        "machine": machine(),
        "store": server.database_url.split(":", 1)[0],
        "client": args.client + (" +deflate" if args.deflate and args.client == "raw" else ""),
        "devices": {
            "kiosks": len(devs.kiosks),
            "counters": len(devs.counters),
            "displays": len(devs.displays),
            "ratings": len(devs.ratings),
            "total": len(devs.all),
        },
        "inflight": args.kiosks * args.inflight,
        "window_s": args.duration,
        "tickets_acked": len(acked),
        "tickets_per_s": len(acked) / args.duration,
        "tickets_per_s_each_second": per_second,
        "tickets_total": len(acks),
        "issue_errors": dict(errors),
        "issue_ack_ms": stats_ms([b - a for a, b in acked]),
        "calls_ok": len(lat["ack"]),
        "calls_failed": lat["failed"],
        "calls_incomplete": lat["incomplete"],
        "call_to_every_display_ms": stats_ms(lat["to_every_display"]),
        "call_ack_ms": stats_ms(lat["ack"]),
        "messages_received_per_s": traffic[0] / args.duration,
        "wire_bytes_per_message": traffic[1] / max(1, traffic[0]),
        "text_bytes_per_message": traffic[2] / max(1, traffic[0]),
        "traffic_by_role": by_role,
        "display_batches": devs.wall.batches,
        "display_batches_out_of_chain": devs.wall.broken,
        "loadgen_loop_lag_ms": stats_ms(lag.lags),
        "loadgen_gc_ms": stats_ms(lag.gc_pauses),
        **cpu.result,
        "profile": profile,
    }


def report(r: dict) -> None:
    d = r["devices"]
    print()
    print("motcua issue-rate benchmark")
    print_machine(r)
    print(f"store        {r['store']}    client: {r['client']}")
    print(
        f"devices      {d['kiosks']} kiosks ({r['inflight']} issues in flight), "
        f"{d['counters']} counters, {d['displays']} displays, {d['ratings']} rating tablets "
        f"= {d['total']} connections"
    )
    print(f"window       {r['window_s']:.0f} s measured")
    print(
        f"tickets      {r['tickets_acked']} acknowledged = {r['tickets_per_s']:.0f}/s; "
        f"errors {r['issue_errors'] or 0}"
    )
    print(f"per second   {' '.join(str(n) for n in r['tickets_per_s_each_second'])}")
    print(f"issue ack               {fmt_ms(r['issue_ack_ms'])}")
    print(
        f"calls        {r['calls_ok']} ok, failed {r['calls_failed'] or 0}, "
        f"not at every display {r['calls_incomplete']}"
    )
    print(f"call -> every display   {fmt_ms(r['call_to_every_display_ms'])}")
    print(f"call ack (clerk)        {fmt_ms(r['call_ack_ms'])}")
    print_delivery(r)
    print_profile(r)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if error := check_store_args(args):
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.kiosks < 1 or args.inflight < 1:
        print("error: at least one kiosk with one request in flight is needed", file=sys.stderr)
        return 2
    centre = centre_from_args(args)

    def one_run(_i: int) -> dict:
        with bench_environment(args, centre) as server:
            tokens = login_clerks(server, centre, args.counters)
            budget = args.warmup + args.duration + 300
            return asyncio.run(asyncio.wait_for(run(args, server, centre, tokens), budget))

    results = run_repeated(max(1, args.repeat), one_run, report, SPREAD, TARGETS)
    write_results(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
