"""A province on one installation (docs/deployment.md section 3): two server processes
behind Debian's nginx with the site `server.py deploy-config` writes, devices connecting
through its TLS (the clients' side of TLS done by harness/nginx.py's TlsTunnel: see there
why), sharing PostgreSQL and Redis, each behind a proxy the test can cut. What devices
see when a process is killed, Redis or PostgreSQL goes away, nginx reloads."""

from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa

from harness.centre import COMMUNE, DISPLAY, CentreServer
from harness.nginx import Nginx
from harness.process import HOST
from harness.proxy import CuttableProxy

pytestmark = pytest.mark.timeout(180)

# What the guide promises (docs/deployment.md, "When something fails"): a change committed
# while Redis is away reaches every device through the 1 s sweep; allow for a loaded box.
RESYNC_S = 3
T2_KIOSK = "t2-kiosk-token-00001"


def consecutive_ports(n: int) -> list[int]:
    """``n`` free ports in a row, as the generated site's upstream has them: below the
    ephemeral range, so that no port chosen by the system (free_port(), a client's
    connection) takes one of them before the servers listen."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        first = random.randrange(max(1024, low - 12000), low - n)
        try:
            for port in range(first, first + n):
                with socket.socket() as s:
                    s.bind((HOST, port))
        except OSError:
            continue
        return list(range(first, first + n))
    raise RuntimeError(f"no {n} free ports in a row")


@dataclass
class Province:
    front: Nginx
    servers: list[CentreServer]
    postgres: CuttableProxy
    redis: CuttableProxy

    def displays(self, devices, n: int = 4) -> list:
        """``n`` T1 boards through nginx, which spreads them over both processes."""
        boards = [devices(self.front, "/display", {"token": DISPLAY}, reconnect=True)]
        boards += [devices(self.front, "/display", {"token": DISPLAY}, True) for _ in range(n - 1)]
        for board in boards:
            board.wait_event("snapshot")
        return boards


@pytest.fixture
def province(tmp_path, pg_url, redis_url):
    """Two processes on consecutive ports, behind nginx, their PostgreSQL and Redis each
    behind a CuttableProxy; the processes read the settings file deploy-config wrote."""
    pg = sa.engine.make_url(pg_url)
    postgres = CuttableProxy((pg.host, pg.port or 5432))
    redis_target = urlsplit(redis_url)
    redis = CuttableProxy((redis_target.hostname, redis_target.port or 6379))
    database_url = pg.set(port=postgres.port).render_as_string(hide_password=False)
    redis_proxied = f"redis://{HOST}:{redis.port}{redis_target.path or '/0'}"
    ports = consecutive_ports(2)
    front = Nginx(tmp_path / "nginx", ports, database_url, redis_proxied, reload_grace=1)
    # The generated settings, less the paths of a real installation (/var/lib/motcua).
    env = {
        k: v
        for k, v in front.settings().items()
        if k not in ("MOTCUA_INSTANCE_PATH", "MOTCUA_VOICE_PACK")
    }
    assert env["MOTCUA_TRUSTED_PROXIES"] == "1"
    servers = []
    for i, port in enumerate(ports):
        folder = tmp_path / f"p{port}"
        folder.mkdir()
        first = {} if i == 0 else {"provision": None}
        srv = CentreServer(folder, database_url, redis_proxied, env, **first)
        srv.port, srv.url = port, f"http://{HOST}:{port}"
        srv.log_path = folder / "server.log"
        servers.append(srv)
    try:
        servers[0].start()
        servers[0].provision_also(COMMUNE)
        servers[1].start()
        front.start()
        yield Province(front, servers, postgres, redis)
    finally:
        front.stop()
        for srv in servers:
            srv.stop()
        postgres.cut()
        redis.cut()


def calls_seen(board) -> set[str]:
    """Every ticket number a board was told was called: in its snapshots' recent calls
    (taken after each reconnection) and in its batches."""
    seen = set()
    with board.cond:
        for name, data in board.history:
            if name == "snapshot":
                seen |= {c["ticket"]["number"] for c in data["recent_calls"]}
            elif name == "change" and data["kind"] == "called":
                seen.add(data["ticket"]["number"])
    return seen


def until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        time.sleep(0.05)


def call_one(province, devices, counter) -> str:
    """A ticket issued at a kiosk through nginx and called at ``counter``."""
    assert devices.kiosk(province.front).call("issue", {"service": "TP"}, timeout=30)["ok"]
    return _called(counter)


def test_calls_reach_boards_on_both_processes_and_centres_stay_apart(province, devices):
    front = province.front
    boards = province.displays(devices)
    counter = devices.counter(front, "clerk1", 1)
    number = call_one(province, devices, counter)
    for board in boards:
        assert board.wait_change("called", timeout=10)["ticket"]["number"] == number
    # nginx spread the devices over both processes (each follows the centre for its
    # own), so the call crossed from one to the other, through Redis.
    for srv in province.servers:
        assert "following centre" in srv.log()
        assert requests.get(srv.url + "/healthz", timeout=10).json()["redis"] == "ok"
    assert front.get("/healthz").json() == {"status": "ok", "database": "ok", "redis": "ok"}

    # The other centre (T2) on the same installation: T1's boards hear nothing of T2's
    # ticket, T2's kiosk nothing of T1's call (a sweep's time allowed for a leak).
    t2 = devices.kiosk(front, T2_KIOSK)
    t2.wait_event("services")
    heard = [len(b.batches()) for b in boards]
    issued = t2.call("issue", {"service": "HT"}, timeout=30)
    assert issued["ok"], issued
    time.sleep(1.5)
    assert [len(b.batches()) for b in boards] == heard, "a T1 board heard of T2's ticket"
    t2_heard = len(t2.batches())
    number = call_one(province, devices, counter)
    for board in boards:
        assert board.wait_change("called")["ticket"]["number"] == number
        assert board.chain_problem() is None
    time.sleep(1.5)
    assert len(t2.batches()) == t2_heard, "T2's kiosk heard of T1's tickets"

    # The site: plain HTTP redirects to TLS; /metrics is refused from outside.
    r = requests.get(front.http_url + "/healthz", allow_redirects=False, timeout=10)
    assert r.status_code == 301 and r.headers["Location"] == front.url + "/healthz"
    assert front.get("/metrics").status_code == 403


def test_a_killed_process_s_devices_reconnect_through_nginx_and_miss_no_call(province, devices):
    first, second = province.servers
    boards = province.displays(devices)
    # The kiosk and the clerk stay on the first process; the boards are on both.
    counter = devices.counter(first, "clerk1", 1)
    before = _call_on(first, devices, counter)
    second.kill()
    called = [_call_on(first, devices, counter) for _ in range(3)]
    for board in boards:
        until(lambda b=board: {before, *called} <= calls_seen(b), 15, "every call on the board")
    # Those that were on the killed process reconnected through nginx (a new snapshot);
    # the others kept their connection and every batch, in order.
    reconnected = [b for b in boards if _snapshots(b) > 1]
    assert reconnected, "no board was on the killed process"
    assert len(reconnected) < len(boards), "no board was on the surviving process"
    for board in boards:
        assert board.sio.connected
        if board not in reconnected:
            assert board.chain_problem() is None
    # Started again (as systemd does), the process serves the same state.
    second.start()
    board = devices.display(second)
    assert {before, *called} <= {
        c["ticket"]["number"] for c in board.wait_event("snapshot")["recent_calls"]
    }


def _snapshots(board) -> int:
    with board.cond:
        return sum(1 for n, _ in board.history if n == "snapshot")


def _call_on(server, devices, counter) -> str:
    assert devices.kiosk(server).call("issue", {"service": "TP"})["ok"]
    return _called(counter)


def _called(counter) -> str:
    """Call the next number, then mark it absent so that the counter may call again."""
    ack = counter.call("call_next", {}, timeout=30)
    assert ack["ok"], ack
    assert counter.call("no_show", {"ticket_id": ack["ticket"]["id"]}, timeout=30)["ok"]
    return ack["ticket"]["number"]


def test_without_redis_changes_commit_and_reach_every_board_by_the_sweep(province, devices):
    boards = province.displays(devices)
    counter = devices.counter(province.front, "clerk1", 1)
    province.redis.cut()
    for srv in province.servers:
        until(
            lambda s=srv: (
                requests.get(s.url + "/healthz", timeout=10).json()["redis"] == "unreachable"
            ),
            10,
            "healthz says Redis is unreachable",
        )
    started = time.monotonic()
    number = call_one(province, devices, counter)
    for board in boards:
        assert board.wait_change("called", timeout=RESYNC_S)["ticket"]["number"] == number
    took = time.monotonic() - started
    assert took < RESYNC_S, took
    assert province.front.get("/healthz").json()["status"] == "degraded"

    province.redis.restore()
    for srv in province.servers:
        until(
            lambda s=srv: requests.get(s.url + "/healthz", timeout=10).json()["redis"] == "ok",
            15,
            "Redis is used again",
        )
    number = call_one(province, devices, counter)
    for board in boards:
        assert board.wait_change("called", timeout=RESYNC_S)["ticket"]["number"] == number
        assert board.chain_problem() is None, "a board missed a change"


def test_without_postgresql_operations_are_unavailable_then_resume(province, devices):
    boards = province.displays(devices)
    counter = devices.counter(province.front, "clerk1", 1)
    kiosk = devices.kiosk(province.front)
    kiosk.wait_event("services")
    first = call_one(province, devices, counter)
    province.postgres.cut()
    refused = kiosk.call("issue", {"service": "TP"}, timeout=30)
    assert refused["ok"] is False and refused["error"]["code"] == "unavailable", refused
    refused = counter.call("call_next", {}, timeout=30)
    assert refused["ok"] is False and refused["error"]["code"] == "unavailable", refused
    assert province.front.get("/healthz").status_code == 503

    province.postgres.restore()
    until(lambda: province.front.get("/healthz").status_code == 200, 20, "service resumes")
    for srv in province.servers:
        until(
            lambda s=srv: requests.get(s.url + "/healthz", timeout=10).status_code == 200,
            20,
            "each process resumes",
        )
    # Nothing half-done: the refused issue took no number, the refused call no ticket.
    issued = kiosk.call("issue", {"service": "TP"}, timeout=30)
    assert issued["ok"] and issued["ticket"]["number"] == "A002", issued
    again = counter.call("call_next", {}, timeout=30)
    assert again["ok"] and again["ticket"]["number"] == "A002", again
    for board in boards:
        assert calls_seen(board) >= {first}
        board.wait_change("called", timeout=RESYNC_S, ticket__number="A002")
        assert board.chain_problem() is None


def test_nginx_reloaded_devices_reconnect_and_lose_nothing(province, devices):
    front = province.front
    boards = province.displays(devices)
    counter = devices.counter(province.servers[0], "clerk1", 1)
    old_workers = set(front.workers())
    called = [_call_on(province.servers[0], devices, counter)]
    front.reload()
    called.append(_call_on(province.servers[0], devices, counter))
    # The old worker keeps the boards for --reload-grace (1 s here), then closes them:
    # they reconnect through the new worker and take a snapshot.
    until(lambda: not old_workers & set(front.workers()), 10, "the old worker leaves")
    for board in boards:
        until(lambda b=board: _snapshots(b) >= 2 and b.sio.connected, 10, "the board reconnects")
    called.append(_call_on(province.servers[0], devices, counter))
    for board in boards:
        until(lambda b=board: set(called) <= calls_seen(b), 10, "every call on the board")
    assert "emerg" not in front.log()
