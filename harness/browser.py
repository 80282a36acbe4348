"""Headless Debian Chromium through Playwright, as the page tests and screenshots use it."""

from __future__ import annotations

from pathlib import Path

from harness.process import ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
# Without the background-networking flags Chromium keeps trying to reach Google's hosts,
# which a centre's closed LAN (and this machine) refuses.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

# The reference screens (../shared/design.md, Pages).
KIOSK_SCREEN = {"width": 1080, "height": 1920}
TV_SCREEN = {"width": 1920, "height": 1080}
CLERK_SCREEN = {"width": 1366, "height": 768}
PHONE_SCREEN = {"width": 390, "height": 844}
# A 10-inch rating tablet, both ways up.
TABLET_PORTRAIT = {"width": 800, "height": 1280}
TABLET_LANDSCAPE = {"width": 1280, "height": 800}


def screenshot(page, name: str) -> Path:
    """Keep a screenshot as a test artefact (test-artifacts/NAME.png)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path)
    return path


def wait_until(page, expression: str, timeout: float = 10) -> None:
    """Poll a JavaScript expression until it is true. (Playwright's wait_for_function
    may evaluate its string with `new Function` in the page, which the pages' CSP refuses
    whenever the first check is false.)"""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        time.sleep(0.05)


class PageErrors:
    """Collects what a page reports as wrong (script errors, failed loads, console errors),
    so a test can assert a page ran clean."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on(
            "console",
            lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None,
        )
        page.on(
            "response",
            lambda r: self.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
