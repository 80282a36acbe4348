"""Percentiles in milliseconds and the lines the benchmarks print them in."""

from __future__ import annotations


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def stats_ms(values: list[float]) -> dict:
    v = sorted(values)
    if not v:
        return {"n": 0}
    return {
        "n": len(v),
        "p50": 1000 * percentile(v, 50),
        "p95": 1000 * percentile(v, 95),
        "p99": 1000 * percentile(v, 99),
        "max": 1000 * v[-1],
        "mean": 1000 * sum(v) / len(v),
    }


def fmt_ms(s: dict) -> str:
    if not s.get("n"):
        return "n=0"
    return (
        f"n={s['n']:<6} p50 {s['p50']:7.1f}  p95 {s['p95']:7.1f}  p99 {s['p99']:7.1f}  "
        f"max {s['max']:7.1f}  mean {s['mean']:6.1f} ms"
    )


def print_profile(r: dict) -> None:
    """The profile's summary, if one was taken."""
    if r.get("profile"):
        print()
        print(r["profile"])


def print_machine(r: dict) -> None:
    m = r["machine"]
    print(
        f"machine      {m['nproc']} cores ({m['cpu']}), Python {m['python']}, "
        f"SQLite {m['sqlite']}, Linux {m['kernel']}"
    )


def traffic_result(before: dict, after: dict, seconds: float) -> dict:
    """Frames and bytes per second received by each role between two readings of
    ``Devices.traffic_by_role``."""
    out = {}
    for role in after:
        frames, wire, _ = (b - a for a, b in zip(before[role], after[role], strict=True))
        out[role] = {"frames_per_s": frames / seconds, "wire_bytes_per_s": wire / seconds}
    return out


def print_delivery(r: dict) -> None:
    """What the devices received, per role, and what it cost the server and the load
    generator (the lines shared by the fan-out and issue-rate reports)."""
    from cpu import cpu_line

    print(
        f"messages delivered      {r['messages_received_per_s']:.0f}/s to all devices"
        + (
            f", {r['text_bytes_per_message']:.0f} B of JSON each, "
            f"{r['wire_bytes_per_message']:.0f} B on the wire"
            if r["wire_bytes_per_message"]
            else ""
        )
    )
    parts = [
        f"{role} {t['frames_per_s']:.0f} frames/s {t['wire_bytes_per_s'] / 1024:.0f} KiB/s"
        for role, t in r["traffic_by_role"].items()
    ]
    print("per role     " + "; ".join(parts))
    print(
        f"display batches         {r['display_batches']} received, "
        f"{r['display_batches_out_of_chain']} not following the previous one"
    )
    print(cpu_line(r))
    print(f"load-generator lag      {fmt_ms(r['loadgen_loop_lag_ms'])}")
    if "loadgen_gc_ms" in r:
        print(f"load-generator GC       {fmt_ms(r['loadgen_gc_ms'])}")
