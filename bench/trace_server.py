#!/usr/bin/env python3
"""Where a call waits inside the server: timestamps of each clerk's commit, of the ack
reaching the socket, and of each wave of a batch to 100 or more sockets.

Run by a benchmark instead of server.py (``--server-script``), with the checkout to
trace in TRACE_SRC (this one, or another extracted with ``git archive``) and the output
file in TRACE_OUT; it patches timing around the store's commit, the frame sender and
the websocket write, then runs that checkout's server.py unchanged. Afterwards
``bench/trace_server.py --report FILE...`` prints, per file: commit -> ack on the
socket, the length of each wave of 600+ sockets, and the ack's time relative to the
start of the next wave (negative: the ack left first).

    TRACE_SRC=$PWD TRACE_OUT=/tmp/after.json .venv/bin/python bench/fanout.py \
        --duration 30 --kiosks 50 --counters 100 --displays 650 --ratings 200 \
        --call-interval 10 --server-script bench/trace_server.py
    .venv/bin/python bench/trace_server.py --report /tmp/before.json /tmp/after.json
"""

import bisect
import json
import os
import sys


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, -(-q * len(v) // 100) - 1))] if v else float("nan")


def report(names: list[str]) -> None:
    for name in names:
        with open(name) as f:
            d = json.load(f)
        commits, acks, waves = sorted(d["commits"]), sorted(d["acks"]), sorted(d["waves"])
        starts = [w[0] for w in waves]
        ack_after, ack_vs_wave = [], []
        for a in acks:
            i = bisect.bisect_right(commits, a) - 1
            if i < 0:
                continue
            c = commits[i]
            ack_after.append(1000 * (a - c))
            j = bisect.bisect_left(starts, c)
            if j < len(waves):
                ack_vs_wave.append(1000 * (a - waves[j][0]))
        wave_len = [1000 * (e - s) for s, e, n in waves if n >= 600]
        print(name)
        for label, v in [
            ("commit -> ack on the socket", ack_after),
            ("wave of 600+ sockets, length", wave_len),
            ("ack minus the next wave's start", ack_vs_wave),
        ]:
            print(
                f"  {label:<34} n={len(v):5d} p50 {pct(v, 50):7.2f} p90 {pct(v, 90):7.2f} "
                f"p99 {pct(v, 99):7.2f} ms"
            )


def serve() -> int:
    SRC = os.environ["TRACE_SRC"]
    OUT = os.environ["TRACE_OUT"]
    sys.path.insert(0, SRC)
    sys.argv[0] = os.path.join(SRC, "server.py")

    from gevent import monkey

    monkey.patch_all()

    import json
    from time import perf_counter

    import server
    from core import store as store_mod
    from gateway import frames

    commits = []  # perf_counter of each commit with an urgent job
    acks = []  # perf_counter when a counter ack was handed to the kernel
    waves = []  # (start, end, sockets) of each FrameSender call with >= 100 sockets

    orig_finish = store_mod.Store._finish_batch

    def _finish_batch(self, jobs, deliveries):
        if any(getattr(j, "urgent", False) for j in jobs):
            commits.append(perf_counter())
        return orig_finish(self, jobs, deliveries)

    store_mod.Store._finish_batch = _finish_batch

    orig_call = frames.FrameSender.__call__

    def _call(self, namespace, room, data):
        t0 = perf_counter()
        orig_call(self, namespace, room, data)
        n = sum(1 for _ in self.sio.manager.get_participants(namespace, room))
        if n >= 100:
            waves.append((t0, perf_counter(), n))

    frames.FrameSender.__call__ = _call

    if hasattr(frames, "Out"):
        orig_write = frames.Out.write

        def _write(self, frame):
            if b"43/counter" in frame[:16]:
                acks.append(perf_counter())
            return orig_write(self, frame)

        frames.Out.write = _write
    else:
        from engineio.async_drivers import _websocket_wsgi

        orig_send = _websocket_wsgi.SimpleWebSocketWSGI.send

        def _send(self, message):
            if isinstance(message, str) and message.startswith("43/counter"):
                acks.append(perf_counter())
            return orig_send(self, message)

        _websocket_wsgi.SimpleWebSocketWSGI.send = _send

    try:
        rc = server.main()
    finally:
        with open(OUT, "w") as f:
            json.dump({"commits": commits, "acks": acks, "waves": waves}, f)
    return rc


if __name__ == "__main__":
    if sys.argv[1:2] == ["--report"]:
        report(sys.argv[2:])
        sys.exit(0)
    sys.exit(serve())
