"""The command line as a centre's IT staff use it: provisioning, help, exit codes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from harness.centre import CENTRE, DISPLAY_C3, KIOSK_B
from harness.devices import connect_refused
from harness.process import ROOT, free_port


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, str(ROOT / "server.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )


def test_provisioning_twice_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    first = run("provision", str(CENTRE), "--database-url", url)
    assert first.returncode == 0, first.stderr
    assert "+ centre T1" in first.stdout and "+ device Kiosk A" in first.stdout
    second = run("provision", str(CENTRE), "--database-url", url)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "Không có thay đổi (no changes)."
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM services")).scalar_one() == 3
        hashes = conn.execute(sa.text("SELECT password_hash FROM staff")).scalars().all()
    engine.dispose()
    assert all(h.startswith("scrypt:") for h in hashes), "passwords must be stored hashed"
    assert "clerk1-secret" not in (tmp_path / "db.sqlite3").read_bytes().decode("latin-1")


def test_a_changed_password_alone_is_applied(tmp_path):
    """A file applied again unchanged is skipped whole (no password is re-checked); one
    changed anywhere, even only a password, is applied."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert run("provision", str(CENTRE), "--database-url", url).returncode == 0
    changed = tmp_path / "centre.toml"
    changed.write_text(
        CENTRE.read_text(encoding="utf-8").replace("clerk1-secret", "clerk1-new-secret"),
        encoding="utf-8",
    )
    result = run("provision", str(changed), "--database-url", url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "~ staff clerk1 (password_hash)"
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT password_hash FROM staff WHERE username = 'clerk1'")
        ).scalar_one()
    engine.dispose()
    from core.auth import password_matches

    assert password_matches(stored, "clerk1-new-secret")
    again = run("provision", str(changed), "--database-url", url)
    assert again.stdout.strip() == "Không có thay đổi (no changes)."


def test_invalid_file_names_the_line_and_exits_2(tmp_path):
    text = CENTRE.read_text(encoding="utf-8").replace('services = ["DD"]', 'services = ["XX"]')
    path = tmp_path / "centre.toml"
    path.write_text(text, encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if '"XX"' in t)
    result = run("provision", str(path), "--database-url", f"sqlite:///{tmp_path / 'db'}")
    assert result.returncode == 2
    assert f"{path}:{line}:" in result.stderr
    assert "“XX”" in result.stderr


def test_help_and_bad_arguments():
    for args in (["--help"], ["serve", "--help"], ["provision", "--help"]):
        assert run(*args).returncode == 0
    assert "--database-url" in run("serve", "--help").stdout
    assert run("fly").returncode == 2
    assert run("serve", "--port", "many").returncode == 2


def test_removing_a_device_from_the_file_revokes_its_token(sqlite_server, devices, tmp_path):
    kiosk = devices.kiosk(sqlite_server, KIOSK_B)
    kiosk.wait_event("services")
    kiosk.sio.on("disconnect", lambda *a: kiosk._record("disconnected"), namespace="/kiosk")
    text = CENTRE.read_text(encoding="utf-8")
    start = text.index('[[devices]]\nname = "Kiosk B"')
    end = text.index("[[devices]]", start + 1)
    path = tmp_path / "fewer.toml"
    # The agent that printed for Kiosk B no longer does.
    fewer = re.sub(r"^kiosks = .*\n", "", text[:start] + text[end:], flags=re.M)
    path.write_text(fewer, encoding="utf-8")
    result = run("provision", str(path), "--database-url", sqlite_server.database_url)
    assert result.returncode == 0, result.stderr
    assert "- device Kiosk B" in result.stdout
    # Its open connection is closed (made by another program: heard through the store).
    kiosk.wait_event("disconnected", timeout=5)
    refused = connect_refused(sqlite_server, "/kiosk", {"token": KIOSK_B})
    assert refused["data"]["code"] == "unauthorized"
    assert refused["data"]["reason"] == "device_revoked"
    assert refused["message"].startswith("Thiết bị này đã bị thu hồi")


def test_provisioning_while_serving_tells_devices_to_take_a_new_snapshot(
    sqlite_server, devices, tmp_path
):
    board = devices.display(sqlite_server, DISPLAY_C3)
    assert [c["number"] for c in board.wait_event("snapshot")["counters"]] == [3]
    text = CENTRE.read_text(encoding="utf-8")
    path = tmp_path / "wider.toml"
    path.write_text(
        text.replace(
            'token = "test-display-token-0003"\ncounters = [3]',
            'token = "test-display-token-0003"\ncounters = [2, 3]',
        ),
        encoding="utf-8",
    )
    result = run("provision", str(path), "--database-url", sqlite_server.database_url)
    assert result.returncode == 0, result.stderr
    # Made by another program, heard through the store: the board resynchronises.
    assert board.wait_change("configured", timeout=5)["seq"] > 0
    assert board.call("sync")["ok"]
    assert [c["number"] for c in board.wait_event("snapshot")["counters"]] == [2, 3]
    kiosk = devices.kiosk(sqlite_server)
    kiosk.call("issue", {"service": "TP"})
    assert board.wait_service("TP", waiting=1)  # counter 2 serves TP: now shown


def make_run(tmp_path, port: int) -> subprocess.Popen:
    """`make run PORT=port` as a newcomer types it, in its own process group (a terminal's
    job), with this test's virtualenv and an instance folder in ``tmp_path``; the venv and
    the voice pack are taken as they are (-o: not rebuilt)."""
    env = {
        **os.environ,
        "MOTCUA_INSTANCE_PATH": str(tmp_path / "instance"),
        "MOTCUA_SECRET_KEY": "cli-test-secret",
    }
    venv = f"VENV={sys.prefix}"  # this test's own, whichever Python runs it
    return subprocess.Popen(
        ["make", "--no-print-directory", "-o", f"{sys.prefix}/.installed", "-o"]
        + ["instance/voice/vi/manifest.json", "run", f"PORT={port}", venv],
        cwd=ROOT,
        env=env,
        stdout=open(tmp_path / "make-run.log", "wb"),  # noqa: SIM115 - the child keeps it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_make_run_takes_a_port_and_stops_quietly_with_its_agent(tmp_path, sig):
    """SIGINT is Ctrl-C in the terminal; SIGTERM to the process group is how a terminal
    or a supervisor ends the job. Server and demo agent end within seconds, no traceback."""
    port = free_port()
    make = make_run(tmp_path, port)
    log = tmp_path / "make-run.log"
    try:
        deadline = time.monotonic() + 60
        while "motcua.agent: connected to" not in log.read_text(errors="replace"):
            assert make.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert r.status == 200
        start = time.monotonic()
        os.killpg(make.pid, sig)
        make.wait(timeout=15)
        took = time.monotonic() - start
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
    text = log.read_text(errors="replace")
    assert f"--port {port}" in text and f"http://127.0.0.1:{port}" in text
    assert "Traceback" not in text and "TimeoutExpired" not in text, text[-3000:]
    assert f"motcua.agent: {signal.Signals(sig).name}: stopping" in text
    assert "motcua.agent: stopped" in text, text[-3000:]
    # gevent's server gives current requests 2 s; the agent ends within one.
    assert took < 6, f"{took:.1f} s"
    deadline = time.monotonic() + 5
    while True:  # nothing of the job is left: not the server, not its agent
        try:
            os.killpg(make.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "a process of `make run` outlived it"
        time.sleep(0.1)


def test_a_busy_port_says_what_to_do(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        make = make_run(tmp_path, port)
        assert make.wait(timeout=60) != 0
    text = (tmp_path / "make-run.log").read_text()
    assert "Traceback" not in text, text
    assert f"error: port {port} is already in use on 127.0.0.1" in text, text
    assert "make run PORT=" in text and "--port" in text
    # Said before anything was started: no demo agent, no database.
    assert "motcua.agent" not in text
    assert not (tmp_path / "instance" / "motcua.sqlite3").exists()


def test_a_process_raises_its_open_files_to_the_hard_limit(tmp_path):
    """A device's websocket is an open file: started with systemd's soft limit (1,024), a
    process raises it to the hard limit itself and says so."""
    import resource

    from harness.process import ServerProcess

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 1024:
        pytest.skip(f"the hard limit of open files here is {hard}: nothing to raise")
    low = tmp_path / "low_limit.py"
    low.write_text(
        "import resource, runpy, sys\n"
        "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))\n"
        f"sys.argv[0] = {str(ROOT / 'server.py')!r}\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    server = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}", script=low)
    server.start(60)
    try:
        limits = (Path(f"/proc/{server.pid}/limits")).read_text()
        soft = int(
            next(x for x in limits.splitlines() if x.startswith("Max open files")).split()[3]
        )
        assert soft > 1024 and (hard == resource.RLIM_INFINITY or soft == hard), limits
        assert f"{soft} open files" in server.log()
    finally:
        server.stop()
