"""The server's collection pauses, as gateway/collector.py writes them to
``MOTCUA_GC_STATS``: read by bench/gc_pauses.py and, for its measured window, by
bench/fanout.py (so a latency tail can be matched with the collections under it)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

# Issue 19: no collection pauses a server process longer than this.
TARGET_MS = 20.0


def read_stats(path: Path) -> dict:
    """The server's collector lines (gateway/collector.py): pauses, freezes, last state."""
    out = {"pauses": [], "freezes": [], "state": None, "fulls": []}
    for line in path.read_text().splitlines():
        kind, *f = line.split()
        if kind == "pause":
            out["pauses"].append((float(f[0]), int(f[1]), float(f[2]), float(f[3]), int(f[4])))
        elif kind == "freeze":
            out["freezes"].append((float(f[0]), int(f[1]), float(f[2])))
        elif kind == "full":
            out["fulls"].append((float(f[0]), int(f[1]), float(f[2]), float(f[3])))
        elif kind == "state":
            # the freezes after collections: a sixth field since they exist
            quiet = int(f[5]) if len(f) > 5 else 0
            out["state"] = (float(f[0]), (int(f[1]), int(f[2]), int(f[3])), int(f[4]), quiet)
    return out


def pauses_between(path: Path, t0: float, t1: float) -> dict:
    """The server's collections between wall times t0 and t1, by generation."""
    data = read_stats(path)
    _, threshold, frozen, quiet_freezes = data["state"]
    out = {"threshold": threshold, "frozen": frozen, "quiet_freezes": quiet_freezes}
    every = []
    for g in range(3):
        mine = [(d, cpu) for t, gen, d, cpu, _ in data["pauses"] if gen == g and t0 <= t <= t1]
        ms = sorted(d for d, _ in mine)
        every += ms
        out[f"gen{g}"] = {
            "n": len(ms),
            "max_ms": ms[-1] if ms else 0.0,
            "p99_ms": ms[max(0, -(-99 * len(ms) // 100) - 1)] if ms else 0.0,
            "total_ms": sum(ms),
            "max_cpu_ms": max((cpu for _, cpu in mine), default=0.0),
        }
    # Collections during which greenlets switched (a finalizer ran a greenlet's code):
    # the process was not paused throughout; counted apart (gateway/collector.py).
    switched = [d for t, gen, d, _, _ in data["pauses"] if 10 <= gen < 20 and t0 <= t <= t1]
    out["switched"] = {"n": len(switched), "max_ms": max(switched, default=0.0)}
    out["max_ms"] = max(every, default=0.0)
    out["over_target"] = sum(1 for d in every if d > TARGET_MS)
    out["freezes"] = [f for f in data["freezes"] if t0 <= f[0] <= t1]
    return out


async def wait_for_stats(path: Path, after: float, timeout: float = 10.0) -> None:
    """Until the server has written its stats after wall time ``after``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = read_stats(path)["state"]
            if state and state[0] > after:
                return
        except (OSError, ValueError, IndexError):
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the server wrote no GC stats to {path}")
