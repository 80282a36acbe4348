"""The production guide (docs/deployment.md) followed as written: the voice pack generated
with the command it gives, where it says, and the server told with MOTCUA_VOICE_PACK; a
server whose pack is missing answers the board with the reason, not silence."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import wave

import pytest
import requests

from harness.centre import CentreServer
from harness.process import ROOT

pytestmark = pytest.mark.timeout(120)


def announce(server, devices) -> requests.Response:
    """A real call's announcement, as the board asks for it (only numbers recently called
    are assembled: docs/security.md)."""
    url = devices.display(server).wait_event("snapshot")["board"]["announce"]["url"]
    assert devices.kiosk(server).call("issue", {"service": "TP"})["ok"]
    called = devices.counter(server, "clerk1", 1).call("call_next", {})["ticket"]["number"]
    return requests.get(f"{server.url}{url}&number={called}&counter=1", timeout=20)


def test_the_voice_pack_of_the_guide_is_the_one_the_server_plays(tmp_path, devices):
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (scripts/ensure-system-packages installs it)")
    pack = tmp_path / "var-lib-motcua" / "voice" / "vi"
    guide = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    assert "-m display.voicepack build /var/lib/motcua/voice/vi --voice vi" in guide
    assert "MOTCUA_VOICE_PACK=/var/lib/motcua/voice/vi" in guide
    built = subprocess.run(
        [sys.executable, "-m", "display.voicepack", "build", str(pack), "--voice", "vi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert built.returncode == 0, built.stderr
    server = CentreServer(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", env={"MOTCUA_VOICE_PACK": str(pack)}
    ).start()
    try:
        r = announce(server, devices)
        assert r.status_code == 200 and r.headers["Content-Type"] == "audio/wav"
        with wave.open(io.BytesIO(r.content)) as w:
            assert w.getnframes() / w.getframerate() > 3
        # Made from this pack (and cached in it), not from the checkout's instance/.
        assert list((pack / ".cache").glob("*.wav"))
        assert "display boards will announce nothing" not in server.log()
    finally:
        server.stop()


def test_a_missing_voice_pack_is_named_to_the_board_and_in_the_log(tmp_path, devices):
    missing = tmp_path / "var-lib-motcua" / "voice" / "vi"
    server = CentreServer(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", env={"MOTCUA_VOICE_PACK": str(missing)}
    ).start()
    try:
        r = announce(server, devices)
        assert r.status_code == 503
        assert f"voice pack {missing} is missing clip(s)" in r.json()["error"]["message"]
        assert "is missing clip(s)" in server.log()
        # Said at start already, with what to do.
        assert f"voice pack {missing} is missing: display boards will announce nothing" in (
            server.log()
        )
        assert f"python -m display.voicepack build {missing} --voice vi" in server.log()
    finally:
        server.stop()
