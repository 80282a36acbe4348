"""Fixtures: real ``server.py serve`` processes, their stores, and devices connected to
them. Tests import helpers and constants from ``harness``, not from here.

PostgreSQL and Redis come from MOTCUA_TEST_POSTGRES_URL and MOTCUA_TEST_REDIS_URL (the
local defaults otherwise). Where they cannot be reached the tests that need them skip
with the reason, unless MOTCUA_REQUIRE_SERVICES=1 (set by .ci/run): then they fail.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from harness.agent import AgentProcess
from harness.browser import CHROMIUM, FLAGS
from harness.centre import DISPLAY, KIOSK, RATING_1, CentreServer
from harness.devices import Device
from harness.services import (
    POSTGRES_URL,
    REDIS_URL,
    require_redis,
    scratch_database,
    service_missing,
)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium (never a downloaded browser), one for the whole run."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def agent_factory(tmp_path):
    made = []

    def make(server, printer_url, **kw):
        a = AgentProcess(tmp_path, server, printer_url, **kw)
        made.append(a)
        return a

    yield make
    for a in made:
        a.stop(signal.SIGKILL)


@pytest.fixture
def devices():
    opened: list[Device] = []

    class Opener:
        def __call__(self, server, namespace, auth, reconnect=False):
            d = Device(server, namespace, auth, reconnect)
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
    srv = CentreServer(tmp_path, f"sqlite:///{tmp_path / 'motcua.sqlite3'}").start()
    yield srv
    srv.stop()


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    with scratch_database(
        POSTGRES_URL, "motcua_t", connect_timeout=3, unreachable=service_missing
    ) as url:
        yield url


@pytest.fixture
def redis_url():
    return require_redis(REDIS_URL)


@pytest.fixture
def pg_server(tmp_path, pg_url):
    srv = CentreServer(tmp_path, pg_url).start()
    yield srv
    srv.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store_url(request, tmp_path):
    """A fresh store of each kind: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'motcua.sqlite3'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def any_server(tmp_path, any_store_url):
    """The same flows on both stores."""
    srv = CentreServer(tmp_path, any_store_url).start()
    yield srv
    srv.stop()


@pytest.fixture
def guarded_server(tmp_path):
    """A server with short guard timeouts, so these tests run in seconds."""
    started = []

    def start(**env):
        srv = CentreServer(
            tmp_path / f"s{len(started)}",
            f"sqlite:///{tmp_path / f'motcua{len(started)}.sqlite3'}",
            env={k: str(v) for k, v in env.items()},
        )
        (tmp_path / f"s{len(started)}").mkdir()
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()
