"""The production guide (docs/deployment.md) followed as written: the voice pack generated
with the command it gives, where it says, and the server told with MOTCUA_VOICE_PACK; a
server whose pack is missing answers the board with the reason, not silence."""

from __future__ import annotations

import io
import os
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


# -- server.py deploy-config: the files of docs/deployment.md section 3 -------------------


def test_deploy_config_writes_what_nginx_and_systemd_accept(tmp_path):
    from harness.nginx import Nginx, deploy_config

    front = Nginx(
        tmp_path / "nginx",
        [5001, 5002, 5003],
        "postgresql://motcua@/motcua",
        "redis://127.0.0.1:6379/0",
    )
    checked = front.check()
    assert checked.returncode == 0, checked.stderr
    site = (front.site / "nginx-motcua.conf").read_text()
    assert all(f"server 127.0.0.1:{p};" in site for p in (5001, 5002, 5003))

    # The defaults, as the guide runs it; a second run keeps the secret key.
    out = tmp_path / "out"
    done = deploy_config(out, "--server-name", "hcc.example.gov.vn", "--processes", "3")
    assert done.returncode == 0, done.stderr
    assert "nginx-motcua.conf  ->  /etc/nginx/sites-available/motcua" in done.stdout
    env = (out / "motcua.env").read_text()
    for line in (
        "MOTCUA_DATABASE_URL=postgresql://motcua@/motcua",
        "MOTCUA_REDIS_URL=redis://127.0.0.1:6379/0",
        "MOTCUA_PUBLIC_URL=https://hcc.example.gov.vn",
        "MOTCUA_TRUSTED_PROXIES=1",
    ):
        assert line in env.splitlines()
    assert (out / "motcua.env").stat().st_mode & 0o777 == 0o600
    again = deploy_config(out, "--server-name", "hcc.example.gov.vn", "--processes", "3")
    assert again.returncode == 0, again.stderr
    assert (out / "motcua.env").read_text() == env
    unit = (out / "motcua@.service").read_text()
    assert "systemctl enable --now motcua@5001 motcua@5002 motcua@5003" in unit
    assert "serve --host 127.0.0.1 --port %i" in unit
    # A process holds one open file per device, an nginx worker two.
    assert "LimitNOFILE=65536" in unit.splitlines()
    main = (out / "nginx-motcua-main.conf").read_text()
    assert "worker_rlimit_nofile 65536;" in main.splitlines()


def test_deploy_config_units_pass_systemd_analyze_verify(tmp_path):
    from harness.nginx import deploy_config

    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is missing (Debian's systemd): the units are not checked")
    # The units as written, with the install folder and Python of this checkout and the
    # backup script where this test put it.
    units = tmp_path / "units"
    done = deploy_config(units, "--install-dir", str(ROOT), "--python", sys.executable)
    assert done.returncode == 0, done.stderr
    service = units / "motcua-backup.service"
    service.write_text(
        service.read_text().replace("/usr/local/sbin/motcua-backup", str(units / "motcua-backup"))
    )
    verified = subprocess.run(
        ["systemd-analyze", "verify", "--man=no"]
        + [str(units / n) for n in ("motcua@5001.service", "motcua-backup.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr


@pytest.mark.parametrize(
    "options, says",
    [
        (["--processes", "0"], "--processes must be 1 to 64"),
        (["--first-port", "80"], "must lie within 1024..65535"),
        (["--first-port", "65535", "--processes", "2"], "must lie within 1024..65535"),
        (["--server-name", "hcc example"], "is not a host name"),
        (["--tls-cert", "cert.pem"], "--tls-cert 'cert.pem' must be an absolute path"),
        (["--listen", "https"], "--listen 'https': PORT or ADDRESS:PORT"),
        (["--listen", "443", "--http-listen", "443"], "must differ"),
        (["--database-url", "sqlite:////var/lib/motcua/motcua.sqlite3"], "postgresql:// URL"),
        (["--redis-url", "127.0.0.1:6379"], "--redis-url must be a redis://"),
        (["--user", "root"], "not root"),
        (["--backup-at", "9pm"], "is not a time HH:MM"),
        (["--secret-key", "short"], "at least 32 printable characters"),
        (["--processes", "two"], "invalid int value"),
    ],
)
def test_deploy_config_refuses_bad_options(tmp_path, options, says):
    from harness.nginx import deploy_config

    done = deploy_config(tmp_path / "out", *options)
    assert done.returncode == 2, done
    assert says in done.stderr
    assert not (tmp_path / "out").exists(), "nothing is written"


def test_a_backup_restored_into_a_fresh_database_serves_its_data(tmp_path, pg_url, devices):
    """The guide's backup (the generated motcua-backup, pg_dump) of a database with
    tickets, restored with the generated motcua-restore into a new database, served."""
    from harness.nginx import deploy_config
    from harness.services import POSTGRES_URL, scratch_database

    for tool in ("pg_dump", "pg_restore"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is missing (Debian's postgresql-client)")
    scripts = tmp_path / "scripts"
    assert deploy_config(scripts).returncode == 0
    server = CentreServer(tmp_path, pg_url).start()
    try:
        kiosk = devices.kiosk(server)
        for _ in range(3):
            assert kiosk.call("issue", {"service": "TP"})["ok"]
        kiosk.close()
    finally:
        server.stop()
    backups = tmp_path / "backups"
    backups.mkdir()
    env = {**os.environ, "MOTCUA_DATABASE_URL": pg_url, "MOTCUA_BACKUP_DIR": str(backups)}
    backup = subprocess.run(
        [str(scripts / "motcua-backup")], env=env, capture_output=True, text=True, timeout=120
    )
    assert backup.returncode == 0, backup.stderr
    (dump,) = backups.glob("motcua-*.dump")
    with scratch_database(POSTGRES_URL, "motcua_restored") as restored_url:
        restore = subprocess.run(
            [str(scripts / "motcua-restore"), str(dump), restored_url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert restore.returncode == 0, restore.stderr
        (tmp_path / "restored").mkdir()
        restored = CentreServer(tmp_path / "restored", restored_url, provision=None).start()
        try:
            kiosk = devices.kiosk(restored)
            assert {s["code"]: s["waiting"] for s in kiosk.wait_event("services")["services"]}[
                "TP"
            ] == 3
            assert kiosk.call("issue", {"service": "TP"})["ticket"]["number"] == "A004"
        finally:
            restored.stop()
