#!/usr/bin/env python3
"""A process killed behind nginx: how long until all of its devices are back, through
nginx, on the other process and resynced (issue 22).

The province of bench/province.py (its template database, PostgreSQL, Redis) on
``--processes`` server processes behind the nginx site that ``server.py deploy-config``
writes (harness/nginx.py: TLS, the generated upstream). Every device connects to nginx
over TLS, as in a centre, and reconnects as socket.io-client does when its connection is
lost (after 0.5-1.5 s, then doubling up to 5 s). Clerks call and kiosks issue at the
province's peak; after ``--kill-after`` seconds the last process gets SIGKILL.

Measured: from the kill, when the last device that was on that process had its
snapshot again (reconnected through nginx and resynced); the devices never back; and for
every call acknowledged from the kill on, whether it reached every board of its centre
(by a change, or by the snapshot of a board that reconnected after it).

Targets (issue 22): all of the killed process's devices back and resynced <= 10 s;
nobody misses a call; no change crosses centres.

    .venv/bin/python bench/failover.py                         # 200 centres, 10,000 devices
    .venv/bin/python bench/failover.py --centres 10 --kill-after 5   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import socket
import ssl
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import province as P
from cpu import Profiler, machine, named_processes_cpu
from loadgen import Clerk
from stats import fmt_ms, print_machine, stats_ms
from verdict import Target, run_repeated, write_results
from wsclient import RefusedError, connect, connect_all, tls_session

from harness.nginx import Nginx
from harness.process import HOST, ServerProcess

TARGETS = [
    Target("the killed process's devices back and resynced (s)", "recovered_s", 10.0),
    Target("every device back", "not_back", 0),
    Target("nobody misses a call", "calls_missed", 0),
    Target("no change crosses centres", "crossed", 0),
]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    P.add_province_args(p)
    p.add_argument("--kill-after", type=float, default=10.0, help="seconds of load before it")
    p.add_argument("--after-kill", type=float, default=30.0, help="seconds of load after it")
    p.add_argument("--nginx-workers", type=int, default=2)
    p.add_argument(
        "--profile",
        metavar="PREFIX",
        help="py-spy the survivor and the load generator after the kill (PREFIX-*.txt)",
    )
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="devices make a full TLS handshake when they reconnect (browsers resume)",
    )
    return p


@dataclass
class Endpoint:
    """nginx's TLS side, where devices connect (wsclient.connect takes it as a server)."""

    port: int
    url: str
    ssl_context: ssl.SSLContext
    resume: bool = True  # devices resume their TLS session when they reconnect


class Device:
    """One device behind nginx: connects, and when its connection is lost reconnects as
    socket.io-client does, noting when it lost it and when its snapshot came back."""

    def __init__(self, endpoint, namespace, auth, handlers, snapshot_event, on_conn=None):
        self.endpoint = endpoint
        self.namespace = namespace
        self.auth = auth
        self.handlers = dict(handlers)
        self.snapshot_event = snapshot_event
        self.on_conn = on_conn  # told each new connection (a clerk's, a kiosk's)
        self.conn = None
        self.lost_at: float | None = None
        self.back_at: float | None = None
        self.closing = False
        self.failures: Counter = Counter()  # why reconnecting failed, by reason
        self.tls_session = None  # the first connection's, resumed by the next ones
        self.resumed = 0  # connections that resumed it
        inner = self.handlers.get(snapshot_event)

        def snapshot(data, t):
            if self.lost_at is not None and self.back_at is None:
                self.back_at = t
                self.back_steps = dict(self.attempt.steps, snapshot=t)
            if inner is not None:
                inner(data, t)

        snapshot.raw = getattr(inner, "raw", False)
        self.handlers[snapshot_event] = snapshot

    async def open(self):
        self.conn = None
        self.conn = await connect(
            self.endpoint,
            self.namespace,
            self.auth,
            handlers=self.handlers,
            made=self._made,
            tls_session=self.tls_session if self.endpoint.resume else None,
        )
        if self.tls_session is None:  # kept from the first connection: TLS 1.3 tickets
            self.tls_session = tls_session(self.conn)  # may be reused; getting one costs
        sslobj = self.conn.transport.get_extra_info("ssl_object")
        self.resumed += bool(sslobj is not None and sslobj.session_reused)
        if self.on_conn is not None:
            self.on_conn(self.conn)
        self.conn.closed.add_done_callback(self._lost)
        return self

    def _made(self, conn) -> None:
        self.attempt = conn  # the connection being opened (its steps' times)

    def _lost(self, _fut) -> None:
        if self.closing or self.lost_at is not None:
            return
        self.lost_at = perf_counter()
        asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = random.uniform(0.5, 1.5)
        while not self.closing:
            await asyncio.sleep(delay)
            try:
                await self.open()
                return
            except RefusedError as e:  # refused (unavailable): the pages try again in 2 s
                self.failures[f"refused: {str(e)[:80]}"] += 1
                delay = 2.0
            except (OSError, ConnectionError, TimeoutError) as e:
                self.failures[f"{type(e).__name__}: {str(e)[:80]}"] += 1
                delay = min(delay * 2, 5.0)

    async def call(self, event: str, data, timeout: float = 30):
        """An event on the device's connection of the moment (ConnectionError between
        two)."""
        if self.conn is None:
            raise ConnectionError("reconnecting")
        return await self.conn.call(event, data, timeout)

    async def close(self):
        self.closing = True
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()


async def connect_behind_nginx(args, endpoint, loads, tokens) -> list[Device]:
    interval = args.centres * args.counters / args.calls_per_s
    devices: list[Device] = []
    for load in loads:
        c = load.centre
        rng = random.Random(f"{args.seed}:{c.code}")
        for tok in c.displays:
            h = load.wall.handler()
            handlers = {"changes": h, "snapshot": h.snapshot}
            devices.append(Device(endpoint, "/display", {"token": tok}, handlers, "snapshot"))
        for tok in c.kiosks:  # a kiosk issues through whichever connection it has now
            kiosk = Device(endpoint, "/kiosk", {"token": tok}, {}, "services")
            load.kiosks.append(kiosk)
            devices.append(kiosk)
        for tok in c.ratings:
            devices.append(Device(endpoint, "/rating", {"token": tok}, {}, "rating_state"))
        for (_, _, number), tok in zip(c.clerks, tokens[c.code], strict=True):
            clerk = Clerk(number, None, interval, random.Random(rng.random()))
            load.clerks.append(clerk)
            devices.append(
                Device(
                    endpoint,
                    "/counter",
                    {"token": tok, "counter": number},
                    {"counter_state": clerk.on_state},
                    "counter_state",
                    lambda conn, clerk=clerk: setattr(clerk, "conn", conn),
                )
            )
    await connect_all([d.open for d in devices], args.concurrency)
    await asyncio.wait_for(
        asyncio.gather(*(cl.opened for load in loads for cl in load.clerks)), 120
    )
    return devices


async def run(args, servers: list[ServerProcess], endpoint, loads, tokens) -> dict:
    rng = random.Random(args.seed)
    t0 = perf_counter()
    devices = await connect_behind_nginx(args, endpoint, loads, tokens)
    connect_s = perf_counter() - t0
    print(f"connected {len(devices)} devices through nginx in {connect_s:.1f} s", flush=True)
    await P.seed_queues(loads, args.seed_tickets, rng)

    t_kill = perf_counter() + args.kill_after
    t_end = t_kill + args.after_kill
    acks, k_errors = [], Counter()
    tasks = P.start_load(args, loads, rng, t_end, acks, k_errors)
    await asyncio.sleep(max(0.0, t_kill - perf_counter()))
    victim = servers[-1]
    cpu = CpuAfterKill(servers[:-1])
    profiles = [
        Profiler(f"{args.profile}-{who}.txt" if args.profile else None, pid, args.after_kill)
        for who, pid in (("survivor", servers[0].pid), ("loadgen", os.getpid()))
    ]
    t_kill = perf_counter()
    victim.kill()
    for p in profiles:
        p.start()
    cpu.start()
    print(f"killed the process on port {victim.port}", flush=True)
    timeline = asyncio.create_task(cpu_timeline(cpu, devices, t_kill, t_end))
    await asyncio.sleep(max(0.0, t_end - perf_counter()))
    cpu_result = cpu.stop()
    cpu_result["timeline"] = await timeline
    for p in profiles:
        if p.path:
            print(p.finish().split("inclusive time")[0], flush=True)
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 120)
    await asyncio.sleep(2.0)

    lost = [d for d in devices if d.lost_at is not None]
    back = [d.back_at - t_kill for d in lost if d.back_at is not None]
    missed, crossed, acked, failed = 0, 0, [], Counter()
    for load in loads:
        wall = load.wall
        for clerk in load.clerks:
            for c in clerk.calls:
                if c.t_sent < t_kill:
                    continue
                if c.error:
                    failed[c.error] += 1
                    continue
                acked.append(c.t_ack - c.t_sent)
                if len(wall.arrivals.get((c.ticket_id, False), [])) < wall.n:
                    missed += 1
        crossed += sum(1 for tid, _ in wall.arrivals if tid not in load.tickets)
    for d in devices:
        await d.close()
    return {
        "benchmark": "failover",
        "machine": machine(),
        "centres": len(loads),
        "processes": len(servers),
        "devices": len(devices),
        "connect_s": connect_s,
        "lost": len(lost),
        "not_back": len(lost) - len(back),
        "recovered_s": max(back, default=float("nan")),
        "back_s": stats_ms(back),
        "calls_after_kill": len(acked),
        "calls_failed": dict(failed),
        "calls_missed": missed,
        "crossed": crossed,
        "call_ack_ms": stats_ms(acked),
        "issue_errors": dict(k_errors),
        "reconnect_steps": _steps(lost, t_kill),
        "tls_resumed": sum(d.resumed for d in lost),
        "reconnect_failures": dict(sum((d.failures for d in devices), Counter()).most_common(8)),
        **cpu_result,
    }


async def cpu_timeline(cpu, devices, t_kill: float, t_end: float) -> list[tuple]:
    """Each second after the kill: (s, survivors', nginx's, the load generator's CPU in %
    of a core over it, devices lost, devices back)."""
    out, prev = [], cpu._sample()
    while perf_counter() < t_end - 0.5:
        await asyncio.sleep(1.0)
        now = cpu._sample()
        wall = now[5] - prev[5]
        pct = [round(100 * (now[i] - prev[i]) / wall) for i in (0, 6, 3)]
        lost = sum(1 for d in devices if d.lost_at is not None)
        back = sum(1 for d in devices if d.back_at is not None)
        out.append((round(now[5] - t_kill), *pct, lost, back))
        prev = now
    return out


class CpuAfterKill(P.ProvinceCpu):
    """bench/province.py's CPU shares, with nginx's workers."""

    def _sample(self):
        return (*super()._sample(), sum(named_processes_cpu("nginx").values()))

    def stop(self) -> dict:
        s1 = self._sample()
        out = super().stop_with(s1)
        wall = s1[5] - self.s0[5]
        out["nginx_cpu_pct"] = 100 * (s1[6] - self.s0[6]) / wall
        out["other_processes_cpu_pct"] = max(
            0.0, out["other_processes_cpu_pct"] - out["nginx_cpu_pct"]
        )
        return out


STEPS = ("start", "transport", "upgraded", "open", "connected", "snapshot")


def _steps(lost: list, t_kill: float) -> dict:
    """For the devices back: when their last attempt reached each step, from the kill
    (median and p99, s), to see where reconnecting waits."""
    out = {}
    back = [d.back_steps for d in lost if getattr(d, "back_steps", None)]
    for step in STEPS:
        ts = sorted(b[step] - t_kill for b in back if step in b)
        if ts:
            out[step] = (round(ts[len(ts) // 2], 2), round(ts[int(len(ts) * 0.99)], 2))
    return out


def report(r: dict) -> None:
    print()
    print("motcua failover benchmark")
    print_machine(r)
    print(
        f"province     {r['centres']} centres, {r['devices']} devices through nginx on "
        f"{r['processes']} processes; connected in {r['connect_s']:.1f} s"
    )
    print(
        f"kill         {r['lost']} devices lost their process; {r['lost'] - r['not_back']} "
        f"back and resynced, the last {r['recovered_s']:.1f} s after the kill; "
        f"never back {r['not_back']}"
    )
    b = r["back_s"]
    if b.get("n"):
        print(f"back after   p50 {b['p50'] / 1000:.1f} s, p99 {b['p99'] / 1000:.1f} s")
    print(
        f"calls        {r['calls_after_kill']} acknowledged from the kill on, missed by some "
        f"board {r['calls_missed']}, failed {r['calls_failed'] or 0}; crossed centres "
        f"{r['crossed']}"
    )
    print(f"call ack     {fmt_ms(r['call_ack_ms'])}")
    print(f"tickets      errors {r['issue_errors'] or 0}")
    print(f"reconnecting failed {r['reconnect_failures'] or 'never'}")
    print(f"TLS          {r['tls_resumed']} reconnections resumed their TLS session")
    print("s after the kill: survivors% nginx% loadgen% lost back")
    for row in r.get("timeline", []):
        print("  " + " ".join(str(v) for v in row))
    print(
        "last attempt (s after the kill, p50/p99): "
        + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in r["reconnect_steps"].items())
    )
    print(
        f"cpu          after the kill, in % of a core: survivors {r['servers_cpu_pct']:.0f}%, "
        f"nginx {r['nginx_cpu_pct']:.0f}%, PostgreSQL {r['postgres_cpu_pct']:.0f}%, Redis "
        f"{r['redis_cpu_pct']:.0f}%, load generator {r['loadgen_cpu_pct']:.0f}%, other "
        f"{r['other_processes_cpu_pct']:.0f}%"
    )


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    centres = P.province(args)
    n_devices = args.centres * (args.kiosks + args.counters + args.displays + args.ratings)
    tmp = Path(tempfile.mkdtemp(prefix="motcua-failover-"))

    def one_run(i: int) -> dict:
        url, tokens = P.province_database(args, centres, tmp)
        first = free_port_run(args.processes)
        servers: list[ServerProcess] = []
        nginx = None
        try:
            for n in range(args.processes):
                e = {**P.SERVER_ENV, "MOTCUA_GC_STATS": str(tmp / f"gc-{n}.txt")}
                s = ServerProcess(tmp, url, args.redis_url, env=e)
                s.port, s.url = first + n, f"http://{HOST}:{first + n}"
                servers.append(s.start(120))
            nginx = Nginx(
                tmp / f"nginx-{i}",
                [s.port for s in servers],
                url,
                args.redis_url,
                workers=args.nginx_workers,
                # A device is two connections in its worker (client, upstream); the
                # workers share them about evenly. Within this machine's 20,000 files.
                connections=min(19_000, 2 * n_devices // args.nginx_workers + 2048),
            ).start()
            ctx = ssl.create_default_context(cafile=str(nginx.ca_file))
            endpoint = Endpoint(nginx.tls_port, nginx.url, ctx, resume=not args.no_resume)
            loads = [P.CentreLoad(c) for c in centres]
            budget = args.kill_after + args.after_kill + 900
            return P.run_async(
                args, asyncio.wait_for(run(args, servers, endpoint, loads, tokens), budget)
            )
        finally:
            if nginx is not None:
                nginx.stop()
            for s in servers:
                s.stop()
            P.drop_database(args, url)

    try:
        results = run_repeated(max(1, args.repeat), one_run, report, [], TARGETS)
    finally:
        P.remove_unless_kept(args, tmp)
    write_results(args.json, results)
    return 0


def free_port_run(n: int) -> int:
    """The first of ``n`` consecutive free ports (the generated upstream lists ports from
    the first on), below the ephemeral range as docs/deployment.md advises."""
    while True:
        first = random.randrange(20000, 30000)
        if all(_free(first + k) for k in range(n)):
            return first


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
