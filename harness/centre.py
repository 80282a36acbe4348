"""The centre the tests run on (tests/centre.toml): its device tokens, its staff
passwords, and the server as the tests start it."""

from __future__ import annotations

from pathlib import Path

from harness.process import ROOT, ServerProcess, login

CENTRE = ROOT / "tests" / "centre.toml"
COMMUNE = ROOT / "tests" / "commune.toml"  # a second centre: managers, a lent clerk

KIOSK = "test-kiosk-token-0001"
KIOSK_B = "test-kiosk-token-0002"
DISPLAY = "test-display-token-0001"
DISPLAY_C3 = "test-display-token-0003"
RATING_1 = "test-rating-token-0001"
RATING_2 = "test-rating-token-0002"
AGENT = "test-agent-token-00001"
INTEGRATION = "test-integration-key-0001"
PASSWORDS = {
    "clerk1": "clerk1-secret",
    "clerk2": "clerk2-secret",
    "clerk3": "clerk3-secret",
    "quanly1": "quanly1-secret",  # T1's manager
}
COMMUNE_PASSWORDS = {
    "quanly2": "quanly2-secret",
    "quantri2": "quantri2-secret",
    "tinh": "tinh-secret-01",
}


def open_all_day(tmp: Path) -> Path:
    """A copy of tests/centre.toml whose centre is open at every hour of every day (for
    tests of what happens during opening hours, whatever the time they run at)."""
    text = CENTRE.read_text(encoding="utf-8")
    head, rest = text.split("[centre.hours]\n", 1)
    _, rest = rest.split("\n\n", 1)
    days = "".join(
        f'{d} = ["00:00-24:00"]\n' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    )
    path = tmp / "centre-all-day.toml"
    path.write_text(head + "[centre.hours]\n" + days + "\n" + rest, encoding="utf-8")
    return path


class CentreServer(ServerProcess):
    """``server.py serve`` provisioned with centre.toml (unless ``provision`` says
    otherwise), with the event rate limit and the devices' budget of work raised so that
    tests may press quickly."""

    def __init__(
        self,
        tmp: Path,
        database_url: str,
        redis_url: str | None = None,
        env: dict | None = None,
        provision: Path | None = CENTRE,
    ):
        # Tests press quickly: no rate limit, no budget of work per device, and a no-show
        # may follow its call at once (tests of those limits set them themselves).
        fast = {
            "MOTCUA_EVENT_RATE": "1000",
            "MOTCUA_EVENT_BURST": "2000",
            "MOTCUA_DEVICE_RATE": "1000",
            "MOTCUA_DEVICE_BURST": "2000",
            "MOTCUA_NO_SHOW_AFTER_S": "0",
        }
        super().__init__(tmp, database_url, redis_url, {**fast, **(env or {})}, provision)

    def provision_also(self, path: Path) -> None:
        """Apply another centre's provisioning file to this server's store, as its IT staff
        would (``server.py provision``)."""
        import subprocess
        import sys

        done = subprocess.run(
            [sys.executable, str(ROOT / "server.py"), "provision", str(path)]
            + ["--database-url", self.database_url],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr

    def login(self, username: str) -> str:
        """A staff token for one of centre.toml's or commune.toml's staff."""
        return login(self.url, username, {**PASSWORDS, **COMMUNE_PASSWORDS}[username])
