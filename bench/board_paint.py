#!/usr/bin/env python3
"""Board paint: from a clerk's call to the number painted on a display board's screen.

Starts ``server.py serve`` (SQLite, tests/centre.toml), opens the board page
(/display/) in Debian's headless Chromium, and calls tickets one after another from a
real Socket.IO counter client. The page reports, through a MutationObserver installed
before its own script runs, when each called number appears in its "latest call" panel;
the time from sending ``call_next`` to that paint is the figure (one clock: the same
machine). Protocol delivery, the page's state handling and the browser's layout are all
in it; the voice is not (it follows the paint).

    .venv/bin/python bench/board_paint.py                 # 30 calls
    .venv/bin/python bench/board_paint.py --calls 100
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright
from stats import fmt_ms, stats_ms

from harness.browser import CHROMIUM, FLAGS, TV_SCREEN
from harness.centre import DISPLAY, KIOSK, CentreServer
from harness.devices import Device

# Installed by the browser itself (not an inline script, which the pages' CSP refuses).
OBSERVER = """
window.__paints = [];
new MutationObserver(() => {
  const node = document.querySelector('[data-testid=latest-number]');
  const text = node && node.textContent;
  if (text && text !== window.__last) {
    window.__last = text;
    window.__paints.push([text, Date.now()]);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=30)
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="motcua-board-"))
    server = CentreServer(tmp, f"sqlite:///{tmp / 'motcua.sqlite3'}").start()
    kiosk = Device(server, "/kiosk", {"token": KIOSK})
    for _ in range(args.calls):
        kiosk.call("issue", {"service": "TP"})
    clerk = Device(server, "/counter", {"token": server.login("clerk1"), "counter": 1})
    sent: dict[str, float] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport=TV_SCREEN)
            page.add_init_script(OBSERVER)
            page.goto(f"{server.url}/display/?token={DISPLAY}")
            page.wait_for_selector("[data-testid=counter-1]")
            for _ in range(args.calls):
                t0 = time.time() * 1000
                ticket = clerk.call("call_next", {})["ticket"]
                sent[ticket["number"]] = t0
                clerk.call("start", {"ticket_id": ticket["id"]})
                time.sleep(0.3)  # a clerk's pace, far quicker than a real one
            time.sleep(1)
            paints = page.evaluate("window.__paints")
            browser.close()
    finally:
        kiosk.close()
        clerk.close()
        server.stop()
    delays = [(at - sent[number]) / 1000 for number, at in paints if number in sent]
    print(f"motcua board paint benchmark: {args.calls} calls, SQLite, one board")
    print(f"call_next sent -> number painted  {fmt_ms(stats_ms(delays))}")
    print(f"calls painted: {len(delays)} of {args.calls}")
    return 0 if len(delays) == args.calls else 1


if __name__ == "__main__":
    sys.exit(main())
