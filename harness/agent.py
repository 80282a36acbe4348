"""The hardware agent as the tests run it: ``server.py agent --config FILE``, printing
Kiosk B's tickets (tests/centre.toml) to the printer at a given URL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from harness.centre import AGENT
from harness.process import ROOT


class AgentProcess:
    """``server.py agent --config FILE`` with a printer for Kiosk B; ``extra`` is TOML put
    before the printers table (LED boards: ``[[boards]]`` entries)."""

    def __init__(self, tmp, server, printer_url: str, width: int = 576, extra: str = ""):
        self.config = tmp / "agent.toml"
        self.journal = tmp / "agent-journal"
        self.config.write_text(
            f'server = "{server.url}"\n'
            f'token = "{AGENT}"\n'
            f'journal = "{self.journal}"\n'
            f"{extra}\n"
            f'[printers."Kiosk B"]\nurl = "{printer_url}"\nwidth = {width}\ntimeout = 2\n',
            encoding="utf-8",
        )
        self.log = tmp / "agent.log"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "server.py"), "agent", "--config", str(self.config)],
            cwd=ROOT,
            stdout=open(self.log, "ab"),  # noqa: SIM115 - the child keeps it
            stderr=subprocess.STDOUT,
            env={**os.environ, "MOTCUA_LOG_LEVEL": "INFO"},
        )
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)

    def journal_entries(self) -> list[dict]:
        if not self.journal.exists():
            return []
        return [json.loads(line) for line in self.journal.read_text().splitlines()]
