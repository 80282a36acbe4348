#!/usr/bin/env python3
"""The floor under a call's latency on this machine: one durable commit plus one
loopback hop through the server.

1. A durable SQLite commit (WAL, synchronous=FULL, as the server sets it) of one small
   row, in a temporary directory on the same file system as the benchmarks' stores.
2. A Socket.IO round trip through a running ``server.py serve`` that touches no store: a
   kiosk's unknown event refused at once (``bad_request``), from the raw client
   of the load generator, one at a time.

A call cannot be acknowledged sooner than (1) + (2), nor reach a display sooner than
(1) + half of (2); docs/performance.md says how far each figure is from it.

    .venv/bin/python bench/floor.py
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
from pathlib import Path
from time import perf_counter

from centre import make_centre
from environment import bench_environment, common_arguments
from stats import fmt_ms, stats_ms
from verdict import MachineLoad
from wsclient import connect


def sqlite_commits(n: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="motcua-floor-", dir="/tmp") as tmp:
        db = sqlite3.connect(Path(tmp) / "floor.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        out = []
        for i in range(n):
            t0 = perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t (v) VALUES (?)", (f"row {i}",))
            db.execute("COMMIT")
            out.append(perf_counter() - t0)
        db.close()
    return out


async def round_trips(server, token: str, n: int) -> list[float]:
    conn = await connect(server, "/kiosk", {"token": token}, deflate=False)
    await asyncio.sleep(0.5)  # its snapshot
    out = []
    for _ in range(n):
        t0 = perf_counter()
        t_ack, r = await conn.call("no_such_event", {})
        assert not r["ok"]
        out.append(t_ack - t0)
        await asyncio.sleep(0.005)
    await conn.close()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=500, help="samples of each")
    common_arguments(p)
    p.set_defaults(event_rate=1000.0)  # one event every 5 ms is over the default limit
    args = p.parse_args(argv)
    load = MachineLoad.measure()
    print(load.line())
    commits = stats_ms(sqlite_commits(args.n))
    centre = make_centre(counters=1, kiosks=1, displays=1, ratings=0)
    with bench_environment(args, centre) as server:
        trips = stats_ms(asyncio.run(round_trips(server, centre.kiosks[0], args.n)))
    print(f"durable SQLite commit      {fmt_ms(commits)}")
    print(f"round trip via the server  {fmt_ms(trips)}")
    print(
        f"floor: a call acknowledged after >= {commits['p50'] + trips['p50']:.2f} ms (p50 "
        f"sum), at a display after >= {commits['p50'] + trips['p50'] / 2:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
