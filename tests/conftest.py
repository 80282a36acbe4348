"""Real servers, real sockets: fixtures that start ``server.py serve`` as a process.

PostgreSQL and Redis come from MOTCUA_TEST_POSTGRES_URL and MOTCUA_TEST_REDIS_URL (the
local defaults otherwise). Where they cannot be reached the tests that need them skip
with the reason, unless MOTCUA_REQUIRE_SERVICES=1 (set by .ci/run): then they fail.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import socketio

ROOT = Path(__file__).resolve().parent.parent
CENTRE = Path(__file__).resolve().parent / "centre.toml"
PG_URL = os.environ.get("MOTCUA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MOTCUA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("MOTCUA_REQUIRE_SERVICES") == "1"

KIOSK = "test-kiosk-token-0001"
KIOSK_B = "test-kiosk-token-0002"
DISPLAY = "test-display-token-0001"
DISPLAY_C3 = "test-display-token-0003"
RATING_1 = "test-rating-token-0001"
RATING_2 = "test-rating-token-0002"
AGENT = "test-agent-token-00001"
PASSWORDS = {"clerk1": "clerk1-secret", "clerk2": "clerk2-secret", "clerk3": "clerk3-secret"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_missing(what: str, why: str):
    message = f"{what} is not reachable here ({why})"
    if REQUIRE_SERVICES:
        pytest.fail(message + "; MOTCUA_REQUIRE_SERVICES=1 makes this a failure")
    pytest.skip(message + "; set MOTCUA_TEST_* URLs or start it to run this test")


class ServerProcess:
    """One ``server.py serve`` process; restartable on the same store."""

    def __init__(
        self,
        tmp: Path,
        database_url: str,
        redis_url: str | None = None,
        env: dict | None = None,
        provision: Path | None = CENTRE,
    ):
        self.tmp = tmp
        self.database_url = database_url
        self.redis_url = redis_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.provision = provision
        self.proc: subprocess.Popen | None = None
        self.log_path = tmp / f"server-{self.port}.log"

    def start(self, timeout: float = 20) -> ServerProcess:
        cmd = [
            sys.executable,
            str(ROOT / "server.py"),
            "serve",
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
        ]
        if self.redis_url:
            cmd += ["--redis-url", self.redis_url]
        if self.provision:
            cmd += ["--provision", str(self.provision)]
        env = {
            **os.environ,
            "MOTCUA_INSTANCE_PATH": str(self.tmp / "instance"),
            "MOTCUA_SECRET_KEY": "test-secret",
            "MOTCUA_EVENT_RATE": "1000",
            "MOTCUA_EVENT_BURST": "2000",
            **self.env,
        }
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no chance to flush or say goodbye."""
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def login(self, username: str) -> str:
        r = requests.post(
            self.url + "/api/v1/auth/login",
            json={"username": username, "password": PASSWORDS[username]},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return r.json()["token"]


class Device:
    """A real Socket.IO client on one namespace, recording every event it receives."""

    def __init__(self, server: ServerProcess, namespace: str, auth: dict):
        self.namespace = namespace
        self.events: list[tuple[str, object]] = []  # not yet waited for
        self.history: list[tuple[str, object]] = []  # everything received
        self.cond = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", self._record, namespace=namespace)
        self.connect_error = None
        self.sio.on("connect_error", self._refused, namespace=namespace)
        self.sio.connect(
            server.url, namespaces=[namespace], auth=auth, transports=["websocket"], wait_timeout=10
        )

    def _record(self, event, data=None):
        with self.cond:
            self.events.append((event, data))
            self.history.append((event, data))
            self.cond.notify_all()

    def _refused(self, data=None):
        self.connect_error = data

    def call(self, event: str, data=None, timeout: float = 15):
        if data is None:
            return self.sio.call(event, namespace=self.namespace, timeout=timeout)
        return self.sio.call(event, data, namespace=self.namespace, timeout=timeout)

    def wait_for(self, predicate, timeout: float = 10, what: str = "event"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, (name, data) in enumerate(self.events):
                    if predicate(name, data):
                        return self.events.pop(i)[1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no {what} on {self.namespace} within {timeout}s; got "
                        f"{[n for n, _ in self.events]}"
                    )
                self.cond.wait(remaining)

    def wait_event(self, name: str, timeout: float = 10, **match):
        def pred(n, d):
            return n == name and all(_dig(d, k) == v for k, v in match.items())

        return self.wait_for(pred, timeout, what=f"{name} {match or ''}")

    def seqs(self) -> list[int]:
        with self.cond:
            return [d["seq"] for n, d in self.history if n in ("called", "update")]

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - already gone
            pass


def _dig(data, path: str):
    for part in path.split("__"):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def connect_refused(server: ServerProcess, namespace: str, auth) -> dict:
    """Connect expecting a refusal; returns what the client is told: {"message", "data"}."""
    sio = socketio.Client(reconnection=False)
    refusal = {}
    sio.on("connect_error", lambda data=None: refusal.update(data or {}), namespace=namespace)
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(
            server.url,
            namespaces=[namespace],
            auth=auth,
            transports=["websocket"],
            wait_timeout=10,
        )
    sio.disconnect()
    return refusal


@pytest.fixture
def devices():
    opened: list[Device] = []

    class Opener:
        def __call__(self, server, namespace, auth):
            d = Device(server, namespace, auth)
            opened.append(d)
            return d

        def kiosk(self, server, token=KIOSK):
            return self(server, "/kiosk", {"token": token})

        def counter(self, server, username="clerk1", number=1, token=None):
            return self(
                server, "/counter", {"token": token or server.login(username), "counter": number}
            )

        def display(self, server, token=DISPLAY):
            return self(server, "/display", {"token": token})

        def rating(self, server, token=RATING_1):
            return self(server, "/rating", {"token": token})

    yield Opener()
    for d in opened:
        d.close()


@pytest.fixture
def sqlite_server(tmp_path):
    srv = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'motcua.sqlite3'}").start()
    yield srv
    srv.stop()


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        service_missing("PostgreSQL", str(e).strip().splitlines()[0])
    name = f"motcua_t_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def redis_url():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        service_missing("Redis", str(e))
    return REDIS_URL


@pytest.fixture
def pg_server(tmp_path, pg_url):
    srv = ServerProcess(tmp_path, pg_url).start()
    yield srv
    srv.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_server(request, tmp_path):
    """The same flows on both stores."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'motcua.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_url")
    srv = ServerProcess(tmp_path, url).start()
    yield srv
    srv.stop()
