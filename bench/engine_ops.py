#!/usr/bin/env python3
"""Cost of one queue operation in the engine alone: no sockets, no fan-out, one process.

Provisions the same generated centre as the other benchmarks into a fresh store, then
times ``issue_ticket``, ``call_next`` (each finishes the ticket being served first) and
``start`` run back to back through ``Store.write`` without the writer greenlet (each op
is its own transaction and commit), and ``issue_ticket`` in group-committed batches like
the server's writer runs them. Also counts the SQL statements each operation executes.
This is the floor under every latency the other benchmarks measure: a call cannot reach
a display sooner than its operation takes to run and commit.

    .venv/bin/python bench/engine_ops.py
    .venv/bin/python bench/engine_ops.py --postgres
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

from centre import make_centre
from cpu import machine
from environment import scratch_store, store_arguments
from stats import print_machine


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--issues", type=int, default=400, help="tickets issued one by one")
    p.add_argument("--calls", type=int, default=100, help="call_next + start pairs")
    p.add_argument("--batch", type=int, default=64, help="issue batch size")
    p.add_argument("--batches", type=int, default=4)
    store_arguments(p)
    p.add_argument("--json", metavar="FILE")
    return p


def run(args, url: str, tmp: Path) -> dict:
    import sqlalchemy as sa
    from sqlalchemy import event

    from core import models as m
    from core import provisioning
    from core.engine import Actor, QueueEngine
    from core.store import Store, _Job

    centre = make_centre(counters=20, kiosks=10, displays=40, ratings=30)
    path = tmp / "centre.toml"
    path.write_text(centre.toml, encoding="utf-8")
    store = Store(url)
    store.migrate()
    provisioning.provision(store, path)
    engine = QueueEngine(store)
    with store.engine.connect() as conn:
        centre_id = conn.execute(sa.select(m.centres.c.id)).scalar_one()
        kiosk_id = conn.execute(
            sa.select(m.devices.c.id).where(m.devices.c.kind == "kiosk")
        ).first()[0]
        staff = conn.execute(
            sa.select(m.staff.c.id, m.staff_counters.c.counter_id).join(
                m.staff_counters, m.staff_counters.c.staff_id == m.staff.c.id
            )
        ).all()
    kiosk = Actor("device", kiosk_id, centre_id, "kiosk")
    clerks = [Actor("staff", sid, centre_id, "clerk", cid, "x") for sid, cid in staff]
    for a in clerks:
        with contextlib.suppress(Exception):  # the engine may open counters on connect
            engine.open_counter(a)

    # Statements through SQLAlchemy, plus those run on the driver's cursor (core/raw.py).
    from core.raw import Raw

    statements = [0]

    def count(*_a, **_k):
        statements[0] += 1

    event.listen(store.engine, "before_cursor_execute", count)
    raw_run = Raw.run

    def counted_run(self, conn, params):
        count()
        return raw_run(self, conn, params)

    Raw.run = counted_run  # this process only runs the benchmark
    services = centre.services
    out: dict = {"store": url.split(":", 1)[0], "machine": machine()}

    def timed(fn, n):
        statements[0] = 0
        t = time.perf_counter()
        for i in range(n):
            fn(i)
        return (time.perf_counter() - t) / n * 1000, statements[0] / n

    out["issue_ms"], out["issue_statements"] = timed(
        lambda i: engine.issue_ticket(kiosk, services[i % len(services)]), args.issues
    )
    current = {}
    for a in clerks:  # a ticket in service at every counter: each timed call finishes one
        current[a] = engine.call_next(a)["ticket"]["id"]
        engine.start(a, current[a])
    t_call = t_start = 0.0
    n_call = n_start = 0
    for i in range(args.calls):
        a = clerks[i % len(clerks)]
        statements[0] = 0
        t = time.perf_counter()
        r = engine.call_next(a)
        t_call += time.perf_counter() - t
        n_call += statements[0]
        current[a] = r["ticket"]["id"]
        statements[0] = 0
        t = time.perf_counter()
        engine.start(a, current[a])
        t_start += time.perf_counter() - t
        n_start += statements[0]
    out["call_next_ms"] = t_call / args.calls * 1000
    out["call_next_statements"] = n_call / args.calls
    out["start_ms"] = t_start / args.calls * 1000
    out["start_statements"] = n_start / args.calls

    # Batches as the writer runs them: capture the jobs, run them in one transaction.
    per_op = []
    for _ in range(args.batches):
        captured = []
        original = store.write
        store.write = lambda fn, _into=captured, **kw: _into.append((fn, kw))
        try:
            for i in range(args.batch):
                engine.issue_ticket(kiosk, services[i % len(services)])
        finally:
            store.write = original
        jobs = [
            _Job(fn, kw["centre_id"], kw["actor"], kw.get("request_id"), None)
            for fn, kw in captured
        ]
        t = time.perf_counter()
        store._run_batch(jobs)
        per_op.append((time.perf_counter() - t) / len(jobs) * 1000)
    out["issue_in_batch_ms"] = sorted(per_op)[len(per_op) // 2]
    out["batch"] = args.batch
    store.dispose()
    return out


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="motcua-ops-") as tmp:
        with scratch_store(args, Path(tmp)) as url:
            r = run(args, url, Path(tmp))
    print_machine(r)
    durable = " (WAL, synchronous=FULL)" if r["store"] == "sqlite" else ""
    print(f"store        {r['store']}{durable}; each op below is one transaction and commit")
    print(
        f"issue_ticket            {r['issue_ms']:6.2f} ms/op  "
        f"{r['issue_statements']:.0f} statements   (max {1000 / r['issue_ms']:.0f}/s)"
    )
    print(
        f"issue_ticket, batch {r['batch']:<3} {r['issue_in_batch_ms']:6.2f} ms/op  "
        f"(group commit; max {1000 / r['issue_in_batch_ms']:.0f}/s on one core)"
    )
    print(
        f"call_next               {r['call_next_ms']:6.2f} ms/op  "
        f"{r['call_next_statements']:.0f} statements   (finishes the ticket being served)"
    )
    print(
        f"start                   {r['start_ms']:6.2f} ms/op  "
        f"{r['start_statements']:.0f} statements"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
