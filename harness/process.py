"""``server.py serve`` as a child process on 127.0.0.1, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def login(base_url: str, username: str, password: str) -> str:
    """A staff token from the REST login; a refusal raises with the server's answer."""
    body = json.dumps({"username": username, "password": password}).encode()
    request = urllib.request.Request(
        base_url + "/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read())["token"]
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"login as {username} refused: {e.code} {e.read().decode()}") from e


class ServerProcess:
    """One ``server.py serve`` process with its own instance folder in ``tmp``.

    It keeps its port and store across ``stop``/``kill`` and ``start``, so a test can
    restart it on the same store. ``provision`` is a provisioning file applied at start,
    ``env`` is added to the environment, ``script`` runs instead of server.py (same
    arguments), ``args`` are added to its command line. Its output goes to ``log_path``;
    ``log()`` returns the tail.
    """

    def __init__(
        self,
        tmp: Path,
        database_url: str,
        redis_url: str | None = None,
        env: dict | None = None,
        provision: Path | None = None,
        script: str | Path | None = None,
        args: tuple[str, ...] = (),
    ):
        self.tmp = tmp
        self.database_url = database_url
        self.redis_url = redis_url
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.env = env or {}
        self.provision = provision
        self.script = script or ROOT / "server.py"
        self.args = tuple(args)
        self.proc: subprocess.Popen | None = None
        self.log_path = tmp / f"server-{self.port}.log"
        self._log = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, timeout: float = 20) -> ServerProcess:
        """Start and wait until /healthz answers; raises with the log tail otherwise."""
        cmd = [
            sys.executable,
            str(self.script),
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
        ]
        if self.redis_url:
            cmd += ["--redis-url", self.redis_url]
        if self.provision:
            cmd += ["--provision", str(self.provision)]
        cmd += self.args
        env = {
            **os.environ,
            "MOTCUA_INSTANCE_PATH": str(self.tmp / "instance"),
            "MOTCUA_SECRET_KEY": "harness-secret",
            **self.env,
        }
        self._log = open(self.log_path, "ab")  # closed in _ended()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:  # refused, reset, timed out, or an HTTP error status
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 10 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._ended()

    def kill(self) -> None:
        """SIGKILL: no chance to flush or say goodbye."""
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        self._ended()

    def restart(self, timeout: float = 20) -> ServerProcess:
        """Stop, then start again on the same port and store."""
        self.stop()
        return self.start(timeout)

    def _ended(self) -> None:
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


def gevent_child(script: str, *args: str, timeout: float = 60) -> dict:
    """Run ``script`` (which patches the standard library with gevent first, as the server
    does) in a child Python process at the project's root; return the JSON object its last
    line of output prints."""
    run = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])
