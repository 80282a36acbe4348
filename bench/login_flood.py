#!/usr/bin/env python3
"""Login flood: does a flood of password guesses slow down calls reaching the displays?

Starts ``server.py serve`` as bench/fanout.py does (same centre, same devices, same load),
measures call -> every display once without and once with a flood of ``POST
/api/v1/auth/login`` at ``--login-rate`` a second (wrong passwords for real and made-up
usernames, each from its own X-Forwarded-For address with MOTCUA_TRUSTED_PROXIES=1, so
the throttle lets every one through to a password check: the worst case). Prints both
p50/p95/p99 and how the logins were answered (401 checked, 429 refused at once).

Target (issue 11): with the flood, p99 stays near the figure without it.

    .venv/bin/python bench/login_flood.py                    # 100 devices, 2 x 30 s
    .venv/bin/python bench/login_flood.py --login-rate 100 --duration 60
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from collections import Counter
from time import perf_counter

import fanout
from centre import centre_from_args
from environment import bench_environment, check_store_args
from loadgen import login_clerks
from stats import fmt_ms, stats_ms

from harness.process import HOST


def parser():
    p = fanout.parser()
    p.description = __doc__.split("\n\n")[0]
    p.set_defaults(duration=30.0)
    p.add_argument("--login-rate", type=float, default=50.0, help="login attempts a second")
    return p


async def post_login(port: int, username: str, address: str) -> tuple[int, float]:
    body = json.dumps({"username": username, "password": "doan-mo-" + address}).encode()
    t0 = perf_counter()
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(
            (
                f"POST /api/v1/auth/login HTTP/1.1\r\nHost: {HOST}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"X-Forwarded-For: {address}\r\nConnection: close\r\n\r\n"
            ).encode()
            + body
        )
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        await reader.read()
    finally:
        writer.close()
    return status, perf_counter() - t0


async def flood(port: int, rate: float, usernames: list[str], t_end: float, out: dict):
    rng = random.Random(7)
    tasks = []
    n = 0
    start = perf_counter()
    while perf_counter() < t_end:
        n += 1
        address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
        name = rng.choice(usernames) if rng.random() < 0.5 else f"khong-co-{n}"

        async def one(name=name, address=address):
            try:
                status, took = await asyncio.wait_for(post_login(port, name, address), 60)
            except (TimeoutError, OSError) as e:
                out["codes"][type(e).__name__] += 1
                return
            out["codes"][status] += 1
            out["latency"].setdefault(status, []).append(took)

        tasks.append(asyncio.create_task(one()))
        await asyncio.sleep(max(0.0, start + n / rate - perf_counter()))
    await asyncio.gather(*tasks)


def flood_process(port, rate, usernames, seconds, queue):
    """The flood in a process of its own, so that it does not slow the load generator."""
    out = {"codes": Counter(), "latency": {}}
    asyncio.run(flood(port, rate, usernames, perf_counter() + seconds, out))
    queue.put(out)


async def measure(args, server, centre, tokens, login_rate: float) -> dict:
    out = {"codes": Counter(), "latency": {}}
    if login_rate <= 0:
        return {**await fanout.run(args, server, centre, tokens), "logins": out}
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    seconds = args.warmup + args.duration + 15  # outlasts the devices' set-up
    proc = ctx.Process(
        target=flood_process,
        args=(server.port, login_rate, [c[0] for c in centre.clerks], seconds, queue),
    )
    proc.start()
    try:
        result = await fanout.run(args, server, centre, tokens)
        out = await asyncio.get_running_loop().run_in_executor(None, queue.get, True, 120)
    finally:
        proc.join(120)
    return {**result, "logins": out}


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if error := check_store_args(args):
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.environ["MOTCUA_TRUSTED_PROXIES"] = "1"  # every guess from its own address
    centre = centre_from_args(args)
    results = {}
    with bench_environment(args, centre) as server:
        tokens = login_clerks(server, centre)
        for label, rate in (("without logins", 0.0), (f"{args.login_rate:g} logins/s", 1.0)):
            rate = args.login_rate if rate else 0.0
            print(f"-- {label}", flush=True)
            results[label] = asyncio.run(measure(args, server, centre, tokens, rate))
    print()
    print("motcua login flood benchmark")
    for label, r in results.items():
        every = r["call_to_every_display_ms"]
        logins = r["logins"]
        print(f"{label:<16} call -> every display  {fmt_ms(every)}")
        print(f"{'':<16} load generator's loop lag {fmt_ms(r['loadgen_loop_lag_ms'])}")
        cpu, main_cpu = r.get("server_cpu_pct", 0.0), r.get("server_main_thread_cpu_pct", 0.0)
        print(
            f"{'':<16} calls ok {r['calls_ok']}, failed {r['calls_failed'] or 0}, "
            f"not at every display {r['calls_incomplete']}; server {cpu:.0f} % of a core "
            f"(main thread {main_cpu:.0f} %), RSS after "
            f"{r['server_rss_kib']['after_run'] / 1024:.0f} MiB"
        )
        if logins["codes"]:
            answered = ", ".join(f"{k}: {v}" for k, v in sorted(logins["codes"].items(), key=str))
            print(f"{'':<16} logins answered {answered}")
            for status, lat in sorted(logins["latency"].items()):
                print(f"{'':<16}   {status} in {fmt_ms(stats_ms(lat))}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    k: {**v, "logins": {"codes": dict(v["logins"]["codes"])}}
                    for k, v in results.items()
                },
                f,
                indent=2,
                ensure_ascii=False,
                default=str,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
