#!/usr/bin/env python3
"""How long a manager waits for a report over a year of a busy centre (issue 17: ≤ 1 s).

Fills a store with the demo centre's year (core/demo_history.py: ``--days`` days of
``--per-day`` citizens on its open days, their ratings and dossiers, with more dossiers
online and by post), then times what the report endpoints run (core/reports.py: the
summary and each breakdown over the whole year, the staffing advice over 8 weeks), as
JSON, CSV and XLSX, ``--times`` times each, over HTTP from a real server on that store
(logged in as the demo's manager): what a manager waits for, download included.

The filled SQLite file is kept in ``--cache`` (by days, citizens a day and the schema's
last migration), so later runs skip the minute of filling it.

    .venv/bin/python bench/reports.py                 # SQLite, a year of ~1,200 a day
    .venv/bin/python bench/reports.py --postgres      # a fresh PostgreSQL database
    .venv/bin/python bench/reports.py --cpu           # CPU seconds, in process
    .venv/bin/python bench/reports.py --database-url postgresql://postgres@127.0.0.1/DB
        # an existing database, filled on first use (a centre with a past is not filled
        # again), migrated to the current schema: later runs skip the ~17 minutes
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cpu import machine
from environment import scratch_store, store_arguments
from stats import print_machine
from verdict import Target, run_repeated, write_results

HERE = Path(__file__).resolve().parent
TARGET_S = 1.0
TARGETS = [Target("a year's report within 1 s (the slowest, p50)", "slowest_p50_s", TARGET_S)]
SPREAD = [("slowest report p50 (s)", "slowest_p50_s")]
MANAGER, MANAGER_PASSWORD = "quanly", "motcua-demo-admin"  # provisioning/demo.toml


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--days", type=int, default=365, help="days of history before today")
    p.add_argument("--per-day", type=int, default=1200, help="citizens an open day")
    p.add_argument("--repeat", type=int, default=1, help="runs (each times every report)")
    p.add_argument("--times", type=int, default=3, help="timings of each report in a run")
    store_arguments(p)
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "motcua-bench-reports"))
    p.add_argument(
        "--cpu",
        action="store_true",
        help="instead of timing over HTTP, call the report functions in this process "
        "and count the CPU seconds each costs (this process's, plus its PostgreSQL "
        "backend's from /proc): steadier than wall time on a shared machine",
    )
    p.add_argument("--json", metavar="FILE")
    return p


def cpu_seconds(args, url: str) -> dict:
    """The CPU seconds of each report over the year, in this process (``--cpu``)."""
    import os
    from datetime import date

    import sqlalchemy as sa

    from core import models as m
    from core import reports
    from core.store import Store

    tick = os.sysconf("SC_CLK_TCK")

    def backend(pid) -> float:
        if pid is None:
            return 0.0
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    store = Store(url)
    timings = {}
    with store.read_engine.connect() as conn:
        pid = None
        if conn.dialect.name == "postgresql":
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        centre_id = conn.execute(sa.select(m.centres.c.id)).scalars().first()
        days = conn.execute(
            sa.select(
                sa.func.min(m.tickets.c.business_date), sa.func.max(m.tickets.c.business_date)
            )
        ).one()
        first, last = (d if isinstance(d, date) else date.fromisoformat(d) for d in days)
        now = m.utcnow()
        asks = {"summary": lambda: reports.summary(conn, centre_id, first, last, now)}
        for by in reports.BREAKDOWNS:
            asks[f"by {by}"] = lambda by=by: reports.breakdown(
                conn, centre_id, by, first, last, now
            )
        asks["staffing"] = lambda: reports.staffing(conn, centre_id, 0, last, 8)
        for name, ask in asks.items():
            took = []
            for _ in range(args.times):
                cpu, other = time.process_time(), backend(pid)
                ask()
                took.append(time.process_time() - cpu + backend(pid) - other)
            took.sort()
            timings[name] = {"min_s": took[0], "p50_s": took[len(took) // 2], "max_s": took[-1]}
    store.dispose()
    print(f"\nCPU seconds of each report over {first} to {last} ({url.split(':', 1)[0]})")
    for name, t in timings.items():
        print(f"  {name:<20} min {t['min_s']:.2f} s   p50 {t['p50_s']:.2f} s")
    return timings


def _last_migration() -> str:
    return sorted(p.stem for p in (HERE.parent / "core" / "migrations" / "versions").glob("0*.py"))[
        -1
    ]


def _fill(url: str, args) -> int:
    import server
    from core import demo_history, provisioning
    from core.store import Store

    store = Store(url)
    store.migrate()
    provisioning.provision(store, server.DEMO_FILE)
    t = time.perf_counter()
    n = demo_history.seed_past(store, server.DEMO_CENTRE, days=args.days, per_day=args.per_day)
    print(f"filled {n} tickets in {time.perf_counter() - t:.0f} s", flush=True)
    store.dispose()
    return n


def run(args, url: str) -> dict:
    """Every report endpoint and download over the year, on a real server on ``url``."""
    import urllib.error
    import urllib.request

    import sqlalchemy as sa

    import server as motcua
    from core import models as m
    from core import reports
    from core.store import Store
    from harness.process import ServerProcess, login

    store = Store(url)
    with store.read_engine.connect() as conn:
        centre_id = conn.execute(
            sa.select(m.centres.c.id).where(m.centres.c.code == motcua.DEMO_CENTRE)
        ).scalar_one()
        counts = {
            name: conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.centre_id == centre_id)
            ).scalar_one()
            for name, table in (
                ("tickets", m.tickets),
                ("ratings", m.ratings),
                ("dossiers", m.dossiers),
            )
        }
        first, last = conn.execute(
            sa.select(
                sa.func.min(m.tickets.c.business_date), sa.func.max(m.tickets.c.business_date)
            )
        ).one()
    store.dispose()
    last, first = _date(last), _date(first)
    asks = {}
    for fmt in ("json", "csv", "xlsx"):
        asks[f"summary {fmt}"] = f"summary?from={first}&to={last}&format={fmt}"
        for by in reports.BREAKDOWNS:
            asks[f"by {by} {fmt}"] = f"breakdown?by={by}&from={first}&to={last}&format={fmt}"
        asks[f"staffing {fmt}"] = f"staffing?weekday=0&weeks=8&until={last}&format={fmt}"
    with tempfile.TemporaryDirectory() as tmp:
        srv = ServerProcess(Path(tmp), url, env={"MOTCUA_LOG_LEVEL": "WARNING"}).start(timeout=60)
        try:
            token = login(srv.url, MANAGER, MANAGER_PASSWORD)
            timings = {}
            for name, path in asks.items():
                took = []
                for _ in range(args.times):
                    request = urllib.request.Request(
                        f"{srv.url}/api/v1/reports/{path}",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    t = time.perf_counter()
                    try:
                        with urllib.request.urlopen(request, timeout=60) as answer:
                            size = len(answer.read())
                    except urllib.error.HTTPError as e:
                        raise SystemExit(f"{name}: HTTP {e.code} {e.read()[:500]!r}") from None
                    took.append(time.perf_counter() - t)
                took.sort()
                timings[name] = {
                    "min_s": took[0],
                    "p50_s": took[len(took) // 2],
                    "max_s": took[-1],
                    "bytes": size,
                }
        finally:
            srv.stop()
    return {
        "benchmark": "reports",
        "machine": machine(),
        "store": url.split(":", 1)[0],
        "range": [first, last],
        "rows": counts,
        "timings": timings,
        "slowest_p50_s": max(t["p50_s"] for t in timings.values()),
    }


def _date(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def report(r: dict) -> None:
    print()
    print("motcua reports over a year")
    print_machine(r)
    rows = r["rows"]
    print(
        f"store        {r['store']}; {r['range'][0]} to {r['range'][1]}: "
        f"{rows['tickets']} tickets, {rows['ratings']} ratings, {rows['dossiers']} dossiers"
    )
    for name, t in r["timings"].items():
        print(
            f"  {name:<20} min {t['min_s'] * 1000:6.0f} ms   p50 {t['p50_s'] * 1000:6.0f} ms"
            f"   max {t['max_s'] * 1000:6.0f} ms"
            f"   {t['bytes']:>8} bytes"
        )


def _cached(args) -> str:
    """The SQLite file of this year, filled on first use."""
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"year-{args.days}d-{args.per_day}-{_last_migration()}.sqlite3"
    if not path.exists():
        partial = path.with_suffix(".filling")
        partial.unlink(missing_ok=True)
        _fill(f"sqlite:///{partial}", args)
        shutil.move(partial, path)
    return f"sqlite:///{path}"


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    sys.path.insert(0, str(HERE.parent))

    def runs(url: str) -> list[dict]:
        return run_repeated(max(1, args.repeat), lambda _i: run(args, url), report, SPREAD, TARGETS)

    if args.cpu:

        def runs(url: str) -> list[dict]:  # noqa: F811 - in process, no server
            from core.store import Store

            store = Store(url)
            store.migrate()
            store.dispose()
            return [{"benchmark": "reports-cpu", "timings": cpu_seconds(args, url)}]

    if args.postgres or args.database_url:
        with tempfile.TemporaryDirectory() as tmp, scratch_store(args, Path(tmp)) as url:
            _fill(url, args)
            results = runs(url)
    else:
        results = runs(_cached(args))
    write_results(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
