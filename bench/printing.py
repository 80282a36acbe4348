#!/usr/bin/env python3
"""Printing: how long from a kiosk's touch to the ticket's last byte at the printer, and to
the kiosk hearing that it printed?

Starts ``server.py serve`` (SQLite, tests/centre.toml) and the hardware agent
(``server.py agent``) printing Kiosk B's tickets to a network printer stand-in on
loopback (harness/printer.py), then issues tickets one after another from Kiosk B and
times, for each: the issue's acknowledgement, the printer receiving the whole job (its
cut), and the kiosk receiving ``printed``. Also times drawing one ticket (Pillow).

    .venv/bin/python bench/printing.py               # 40 tickets, 80 mm
    .venv/bin/python bench/printing.py --tickets 100 --width 384
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from stats import fmt_ms, stats_ms

from hardware.ticket import render, sample_face
from harness.agent import AgentProcess
from harness.centre import KIOSK_B, CentreServer
from harness.devices import Device
from harness.printer import FakeNetworkPrinter

CUT = b"\x1dV"  # GS V: the end of a ticket's job


class TimedPrinter(FakeNetworkPrinter):
    """The stand-in, noting when each ticket's cut arrives."""

    def __init__(self):
        super().__init__("ok")
        self.cuts: list[float] = []
        self._seen = 0
        self._watch = threading.Thread(target=self._watch_cuts, daemon=True)
        self._watch.start()

    def _watch_cuts(self) -> None:
        # One connection per job (hardware/printer.py opens the printer for each ticket).
        done: set[int] = set()
        while True:
            with self._lock:
                for i, data in enumerate(self.connections):
                    if i not in done and CUT in data:
                        done.add(i)
                        self.cuts.append(time.perf_counter())
            time.sleep(0.001)


def draw_time(width: int, n: int = 20) -> list[float]:
    face = sample_face()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        render(face, width)
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tickets", type=int, default=40)
    p.add_argument("--width", type=int, default=576, choices=(384, 576))
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="motcua-print-"))
    server = CentreServer(tmp, f"sqlite:///{tmp / 'motcua.sqlite3'}").start()
    printer = TimedPrinter()
    agent = AgentProcess(tmp, server, printer.url, width=args.width).start()
    clerk = Device(server, "/counter", {"token": server.login("clerk1"), "counter": 1})
    kiosk = Device(server, "/kiosk", {"token": KIOSK_B})
    acks, cuts, heard = [], [], []
    try:
        time.sleep(2)  # the agent connects
        for i in range(args.tickets):
            t0 = time.perf_counter()
            answer = kiosk.call("issue", {"service": "TP"})
            acks.append(time.perf_counter() - t0)
            ticket = answer["ticket"]["id"]
            result = kiosk.wait_for(
                lambda n, d, ticket=ticket: (
                    n == "change" and d["kind"] == "printed" and d["ticket"]["id"] == ticket
                ),
                timeout=30,
            )
            heard.append(time.perf_counter() - t0)
            assert result["state"] == "printed", result
            deadline = time.monotonic() + 5
            while len(printer.cuts) <= i and time.monotonic() < deadline:
                time.sleep(0.001)
            cuts.append(printer.cuts[i] - t0)
    finally:
        agent.stop()
        clerk.close()
        kiosk.close()
        server.stop()
        printer.close()
    print(f"motcua printing benchmark: {args.tickets} tickets, {args.width} dots, one at a time")
    print(f"draw one ticket (Pillow)        {fmt_ms(stats_ms(draw_time(args.width)))}")
    print(f"touch -> issue acknowledged     {fmt_ms(stats_ms(acks))}")
    print(f"touch -> whole job at printer   {fmt_ms(stats_ms(cuts))}")
    print(f"touch -> kiosk hears 'printed'  {fmt_ms(stats_ms(heard))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
