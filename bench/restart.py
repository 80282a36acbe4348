#!/usr/bin/env python3
"""Recovery: SIGKILL the server with every device connected, restart it, and time how
long until every device holds a correct snapshot again.

Connects a generated centre's devices (1,000 by default), makes some queue state (tickets
issued, called, served), notes the centre's seq, kills the server with SIGKILL, restarts
it on the same store and port, and as soon as /healthz answers reconnects every device,
as devices do on their own. Reports how long after /healthz each device had its snapshot
(p50/p99/max) and whether every snapshot has the seq the centre had when it was killed
(nothing acknowledged lost, nothing invented).

Target (issue): every device holds a correct snapshot <= 5 s after /healthz answers.

    .venv/bin/python bench/restart.py
    .venv/bin/python bench/restart.py --postgres
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from time import perf_counter

from centre import centre_from_args
from cpu import machine
from environment import bench_environment, check_store_args, common_arguments
from loadgen import login_clerks
from stats import fmt_ms, print_machine, stats_ms
from wsclient import connect, connect_all

TARGET_S = 5.0
SNAPSHOT_EVENT = {
    "/kiosk": "services",
    "/display": "snapshot",
    "/rating": "rating_state",
    "/counter": "counter_state",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--kiosks", type=int, default=50)
    p.add_argument("--counters", type=int, default=100)
    p.add_argument("--displays", type=int, default=650)
    p.add_argument("--ratings", type=int, default=200)
    p.add_argument("--services", type=int, default=4)
    p.add_argument("--tickets", type=int, default=300, help="tickets issued before the kill")
    p.add_argument("--concurrency", type=int, default=64, help="connections opened at once")
    common_arguments(p)
    return p


def device_specs(centre, tokens) -> list[tuple[str, dict]]:
    return (
        [("/kiosk", {"token": t}) for t in centre.kiosks]
        + [("/display", {"token": t}) for t in centre.displays]
        + [("/rating", {"token": t}) for t in centre.ratings]
        + [
            ("/counter", {"token": tok, "counter": n})
            for (_, _, n), tok in zip(centre.clerks, tokens, strict=True)
        ]
    )


async def connect_everyone(server, specs, args, t0: float):
    """Connect every device; returns [(namespace, seconds after t0 its snapshot came, seq)]."""
    got: list[tuple[str, float, int]] = []
    done = asyncio.get_running_loop().create_future()

    def on_snapshot(namespace):
        def handler(data, t):
            got.append((namespace, t - t0, data["seq"]))
            if len(got) == len(specs) and not done.done():
                done.set_result(True)

        return handler

    kw = {"client": args.client, "deflate": args.deflate}
    conns = await connect_all(
        [
            lambda ns=ns, auth=auth: connect(
                server, ns, auth, handlers={SNAPSHOT_EVENT[ns]: on_snapshot(ns)}, **kw
            )
            for ns, auth in specs
        ],
        concurrency=args.concurrency,
    )
    await asyncio.wait_for(done, 120)
    return conns, got


async def make_state(conns, specs, services, n_tickets: int) -> int:
    """Issue tickets, call and serve some; returns the centre's seq afterwards."""
    kiosks = [c for c, (ns, _) in zip(conns, specs, strict=True) if ns == "/kiosk"]
    counters = [c for c, (ns, _) in zip(conns, specs, strict=True) if ns == "/counter"]
    for i in range(n_tickets):
        await kiosks[i % len(kiosks)].call("issue", {"service": services[i % len(services)]})
    for c in counters[: len(counters) // 2]:
        _, r = await c.call("call_next", {})
        if r.get("ok"):
            await c.call("start", {"ticket_id": r["ticket"]["id"]})
    _, r = await kiosks[0].call("sync", {})
    return r["seq"]


async def run(args, server, centre, tokens) -> dict:
    specs = device_specs(centre, tokens)
    conns, first = await connect_everyone(server, specs, args, perf_counter())
    print(f"connected {len(conns)} devices in {max(t for _, t, _ in first):.1f} s", flush=True)
    seq = await make_state(conns, specs, centre.services, args.tickets)
    server.kill()
    for c in conns:
        try:
            await c.close()
        except Exception:  # noqa: BLE001 - the server is gone
            pass
    t_kill = perf_counter()
    server.start(timeout=120)
    t_health = perf_counter()
    conns, got = await connect_everyone(server, specs, args, t_health)
    times = [t for _, t, _ in got]
    wrong = [(ns, s) for ns, _, s in got if s != seq]
    for c in conns:
        try:
            await c.close()
        except Exception:  # noqa: BLE001
            pass
    return {
        "benchmark": "restart",
        "machine": machine(),
        "store": server.database_url.split(":", 1)[0],
        "devices": len(specs),
        "seq_at_kill": seq,
        "restart_to_health_s": t_health - t_kill,
        "snapshot_after_health_ms": stats_ms(times),
        "all_snapshots_s": max(times),
        "wrong_snapshots": len(wrong),
    }


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if error := check_store_args(args):
        print(f"error: {error}", file=sys.stderr)
        return 2
    centre = centre_from_args(args)
    with bench_environment(args, centre) as server:
        tokens = login_clerks(server, centre)
        t = time.monotonic()
        r = asyncio.run(run(args, server, centre, tokens))
    print()
    print("motcua restart benchmark")
    print_machine(r)
    print(f"store        {r['store']}, {r['devices']} devices, seq {r['seq_at_kill']} at SIGKILL")
    print(f"restart      /healthz answered {r['restart_to_health_s']:.1f} s after SIGKILL")
    print(f"snapshots    after /healthz: {fmt_ms(r['snapshot_after_health_ms'])}")
    print(f"wrong        {r['wrong_snapshots']} snapshots without the seq of the kill")
    ok = r["all_snapshots_s"] <= TARGET_S and not r["wrong_snapshots"]
    verdict = "MET" if ok else "NOT MET"
    print(
        f"target       every device holds a correct snapshot <= {TARGET_S:.0f} s after /healthz: "
        f"{verdict} ({r['all_snapshots_s']:.2f} s; run {time.monotonic() - t:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
