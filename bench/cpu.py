"""Where the CPU went during the measured window (server threads, PostgreSQL, this load
generator, everything else), the machine it ran on, and a py-spy profile of the server."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

from harness.process import ServerProcess


def machine() -> dict:
    import platform
    import sqlite3

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
    }


def process_cpu(pid: int) -> float:
    """User + system CPU seconds used so far by a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds used so far by each thread of a process, by thread id."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


@dataclass
class CpuWindow:
    """CPU used by the server (its main thread, where the gevent hub and every socket run,
    and its other threads, gevent's thread pool where SQLite batches run) and by this load
    generator over the measured window, in % of one core."""

    server: ServerProcess
    t0: float = 0.0
    s0: tuple = (0.0, 0.0, 0.0, {})
    c0: float = 0.0
    result: dict = field(default_factory=dict)

    def _sample(self):
        pid = self.server.pid
        return (
            process_cpu(pid),
            thread_cpu(pid).get(pid, 0.0),
            machine_busy_seconds(),
            named_processes_cpu("postgres"),
        )

    def start(self):
        self.t0, self.s0, self.c0 = perf_counter(), self._sample(), time.process_time()

    def stop(self):
        wall = perf_counter() - self.t0
        s1 = self._sample()
        total, main = s1[0] - self.s0[0], s1[1] - self.s0[1]
        mine = time.process_time() - self.c0
        pg = sum(v - self.s0[3].get(pid, 0.0) for pid, v in s1[3].items())
        self.result = {
            "machine_busy_pct": 100 * (s1[2] - self.s0[2]) / wall,
            "postgres_cpu_pct": 100 * pg / wall,
            "other_processes_cpu_pct": 100
            * max(0.0, s1[2] - self.s0[2] - total - mine - pg)
            / wall,
            "server_cpu_pct": 100 * total / wall,
            "server_main_thread_cpu_pct": 100 * main / wall,
            "server_other_threads_cpu_pct": 100 * (total - main) / wall,
            "loadgen_cpu_pct": 100 * mine / wall,
        }
        return self.result


def named_processes_cpu(name: str) -> dict[int, float]:
    """CPU seconds used so far by each process whose command name is ``name``."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            head, tail = (proc / "stat").read_text().rsplit(")", 1)
            if head.split("(", 1)[1] == name:
                f = tail.split()
                out[int(proc.name)] = (int(f[11]) + int(f[12])) / tick
    return out


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine have spent busy (not idle nor iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def cpu_line(r: dict) -> str:
    line = (
        f"CPU                     server {r.get('server_cpu_pct', 0):.0f}% of one core "
        f"(main thread {r.get('server_main_thread_cpu_pct', 0):.0f}%, thread pool "
        f"{r.get('server_other_threads_cpu_pct', 0):.0f}%), load generator "
        f"{r.get('loadgen_cpu_pct', 0):.0f}%, "
        + (f"PostgreSQL {r['postgres_cpu_pct']:.0f}%, " if r.get("postgres_cpu_pct") else "")
        + f"other processes "
        f"{r.get('other_processes_cpu_pct', 0):.0f}%"
    )
    if r.get("other_processes_cpu_pct", 0) > 15:
        line += "\nwarning                 other processes were busy: figures are not clean"
    return line


class Profiler:
    """py-spy attached to the server for the measured window (raw collapsed stacks)."""

    def __init__(self, path: str | None, pid: int, duration: float):
        self.path = path
        self.proc = None
        if not path:
            return
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(exe).exists():
            print("warning: py-spy not found; no profile", file=sys.stderr)
            self.path = None
            return
        self.cmd = [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(duration))),
            "--rate",
            "200",
            "--format",
            "raw",
            "--threads",
            "--nonblocking",
            "--output",
            path,
        ]

    def start(self):
        if self.path:
            self.proc = subprocess.Popen(
                self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )

    def finish(self) -> str:
        if not self.proc:
            return ""
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if self.proc.returncode != 0:
            return f"py-spy failed: {err.decode(errors='replace')[-500:]}"
        return summarise_profile(self.path)


def summarise_profile(path: str, top: int = 25) -> str:
    """Top functions by own samples and by inclusive samples, from py-spy raw output."""
    own: Counter = Counter()
    incl: Counter = Counter()
    threads: Counter = Counter()
    total = 0
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        n = int(n)
        total += n
        frames = stack.split(";")[1:]
        if any("_WorkerGreenlet" in f for f in frames):
            threads["thread pool (Store._run_batch and reads, SQLite)"] += n
        else:
            threads["main thread (gevent hub: sockets, fan-out, engine on PostgreSQL)"] += n
        if frames:
            own[_short(frames[-1])] += n
        for f in {_short(f) for f in frames}:
            incl[f] += n
    lines = [f"py-spy: {total} samples with a thread running (200 Hz)", "by thread:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in threads.most_common(8)]
    lines.append("own time (top functions):")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("inclusive time (top functions):")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in incl.most_common(top + 15)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    parts = path.split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    elif "main" in parts:
        parts = parts[parts.index("main") + 1 :]
    else:
        parts = parts[-2:]
    return f"{name} ({'/'.join(parts)})"


def rss_kib(pid: int) -> int:
    """Resident memory of a process, KiB (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
