"""Benchmarks that cannot mislead: the machine's load before each run, the spread of
repeated runs, and a verdict that checks an issue's own targets, given only when the
runs were quiet.

A benchmark gives ``run_repeated`` one function that makes one run and returns its
result (a dict), the figures to show the spread of, and its targets. Before each run the
load of the machine is read over a second (``MachineLoad``): if other processes already
take more than a tenth of a core, the run is marked noisy; so is a run during which they
took more than that (``other_processes_cpu_pct`` of its measured window). A verdict is
printed only when every run was quiet; otherwise the figures are printed with the reason
there is no verdict.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Another process taking more than this share of one core makes a run noisy.
QUIET_CORE_SHARE = 0.10


@dataclass
class Target:
    """``label``: what it means; ``figure``: a key path into a run's result
    ("call_ack_ms.p50"); ``limit`` and ``op`` ("<=" or ">=")."""

    label: str
    figure: str
    limit: float
    op: str = "<="

    def value(self, result: dict) -> float | None:
        v = result
        for part in self.figure.split("."):
            if not isinstance(v, dict) or part not in v:
                return None
            v = v[part]
        return float(v) if isinstance(v, int | float) else None

    def met(self, result: dict) -> bool:
        v = self.value(result)
        if v is None or v != v:  # missing or NaN
            return False
        return v <= self.limit if self.op == "<=" else v >= self.limit


def _proc_cpu_seconds() -> dict[int, tuple[str, float]]:
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            head, tail = (proc / "stat").read_text().rsplit(")", 1)
            f = tail.split()
            out[int(proc.name)] = (head.split("(", 1)[1], (int(f[11]) + int(f[12])) / tick)
    return out


def _own_pids() -> set[int]:
    """This process and its descendants (the server it started, py-spy)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(proc.name))
    mine, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        mine.add(pid)
        todo += children.get(pid, [])
    return mine


@dataclass
class MachineLoad:
    """What the rest of the machine was doing just before a run."""

    loadavg: str
    other_core_share: float  # cores' worth of CPU taken by processes not ours
    busiest: list[tuple[str, int, float]]  # (command, pid, share of a core)
    seconds: float

    @classmethod
    def measure(cls, seconds: float = 1.0) -> MachineLoad:
        a = _proc_cpu_seconds()
        t0 = time.monotonic()
        time.sleep(seconds)
        b = _proc_cpu_seconds()
        wall = time.monotonic() - t0
        mine = _own_pids()
        used = []
        for pid, (name, cpu) in b.items():
            if pid in mine:
                continue
            before = a.get(pid, (name, 0.0))[1] if pid in a else 0.0
            share = (cpu - before) / wall
            if share > 0:
                used.append((name, pid, share))
        used.sort(key=lambda u: -u[2])
        with open("/proc/loadavg") as f:
            loadavg = " ".join(f.read().split()[:3])
        return cls(loadavg, sum(u[2] for u in used), used[:3], wall)

    @property
    def quiet(self) -> bool:
        return self.other_core_share <= QUIET_CORE_SHARE

    def line(self) -> str:
        top = ", ".join(f"{n} ({pid}) {100 * s:.0f}%" for n, pid, s in self.busiest) or "none"
        return (
            f"machine load before the run: load average {self.loadavg}; other processes "
            f"{100 * self.other_core_share:.0f}% of a core over {self.seconds:.0f} s "
            f"(busiest: {top}) -> {'quiet' if self.quiet else 'NOISY'}"
        )


def run_noise(result: dict) -> str | None:
    """Why a finished run's figures are not clean, or None."""
    load = result.get("load_before", {})
    if load and load.get("other_core_share", 0) > QUIET_CORE_SHARE:
        return f"other processes took {100 * load['other_core_share']:.0f}% of a core before it"
    during = result.get("other_processes_cpu_pct")
    if during is not None and during > 100 * QUIET_CORE_SHARE:
        return f"other processes took {during:.0f}% of a core during it"
    return None


def run_repeated(
    n: int,
    one_run: Callable[[int], dict],
    report: Callable[[dict], None],
    figures: list[tuple[str, str]],
    targets: list[Target],
    settle_s: float = 2.0,
) -> list[dict]:
    """Run ``one_run(i)`` ``n`` times, each after reading the machine's load; print each
    run (``report``), the spread of ``figures`` ((label, key path)) and the verdict."""
    results = []
    for i in range(n):
        if i:
            time.sleep(settle_s)  # the previous server's sockets and files go away
        load = MachineLoad.measure()
        print(f"run {i + 1}/{n}: {load.line()}", flush=True)
        r = one_run(i)
        r["load_before"] = {
            "loadavg": load.loadavg,
            "other_core_share": load.other_core_share,
            "busiest": load.busiest,
        }
        report(r)
        print_verdict([r], targets, f"run {i + 1}")
        results.append(r)
    if n > 1:
        print()
        print(f"spread over {n} runs (min / median / max; each run in order)")
        for label, key in figures:
            vals = [Target(label, key, 0).value(r) for r in results]
            print(spread_line(label, vals))
        print_verdict(results, targets, f"all {n} runs")
    return results


def spread_line(label: str, vals: list[float | None]) -> str:
    got = [v for v in vals if v is not None and v == v]
    if not got:
        return f"  {label:<34} n/a"
    each = " ".join(f"{v:.1f}" if v is not None else "-" for v in vals)
    return (
        f"  {label:<34} {min(got):8.1f} / {statistics.median(got):8.1f} / {max(got):8.1f}"
        f"   [{each}]"
    )


def print_verdict(results: list[dict], targets: list[Target], what: str) -> bool | None:
    """One line per target, then the verdict over ``results``; None when any run was
    noisy (then no target is claimed met)."""
    noisy = [(i, why) for i, r in enumerate(results) if (why := run_noise(r))]
    for t in targets:
        vals = [t.value(r) for r in results]
        ok = all(t.met(r) for r in results)
        shown = ", ".join("-" if v is None else f"{v:.1f}" for v in vals)
        state = ("met" if ok else "NOT MET") if not noisy else ("would be met" if ok else "NOT MET")
        print(f"target       {t.label} ({t.figure} {t.op} {t.limit:g}): {state} [{shown}]")
    if noisy:
        why = "; ".join(f"run {i + 1}: {w}" for i, w in noisy) if len(results) > 1 else noisy[0][1]
        print(f"verdict      {what}: NONE, the machine was not quiet ({why})")
        return None
    ok = all(t.met(r) for r in results for t in targets)
    print(f"verdict      {what}: {'every target MET' if ok else 'NOT MET'}")
    return ok


def write_results(path: str | None, results: list[dict]) -> None:
    """``--json FILE``: the one run's result, or the list of every run's."""
    if path:
        with open(path, "w") as f:
            json.dump(results if len(results) > 1 else results[0], f, indent=2, ensure_ascii=False)
