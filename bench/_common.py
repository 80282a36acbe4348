"""Shared pieces of the benchmarks: the server process, a generated centre, a lean
Socket.IO client, counters that call, displays that record, and the statistics.

Everything here targets 127.0.0.1 only. The load generator is one asyncio process; its
default client (``raw``) speaks Engine.IO 4 / Socket.IO 5 over a WebSocket written on a
plain asyncio Protocol, so receiving a broadcast costs a few microseconds and the load
generator stays far from being the bottleneck on a small machine. ``--client socketio``
uses python-socketio's AsyncClient instead (needs aiohttp) as a cross-check.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
perf = time.perf_counter


# -- arguments shared by both benchmarks ---------------------------------------------------


def common_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server and store")
    g.add_argument(
        "--database-url",
        help="store URL given to the server (default: a fresh "
        "SQLite file in a temporary directory). A PostgreSQL URL is used as is.",
    )
    g.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_PG_ADMIN,
        metavar="ADMIN_URL",
        help="create a fresh PostgreSQL database through ADMIN_URL (default "
        f"{DEFAULT_PG_ADMIN}), run against it, drop it afterwards",
    )
    g.add_argument("--redis-url", help="also run the server with this Redis URL")
    g.add_argument(
        "--server-script",
        metavar="FILE",
        default=str(ROOT / "server.py"),
        help="run this instead of server.py (same arguments): for A/B experiments "
        "with a patched server, see docs/performance.md",
    )
    g.add_argument(
        "--event-rate",
        type=float,
        default=None,
        help="server's per-connection event rate (MOTCUA_EVENT_RATE; burst is twice "
        "it). Default: the server's own default unless the benchmark says otherwise",
    )
    g = p.add_argument_group("load generator")
    g.add_argument(
        "--client",
        choices=("raw", "socketio"),
        default="raw",
        help="raw: the lean built-in Socket.IO client (default); socketio: "
        "python-socketio AsyncClient over aiohttp",
    )
    g.add_argument(
        "--no-deflate",
        dest="deflate",
        action="store_false",
        help="do not offer permessage-deflate (browsers offer it, so by default the "
        "raw client does too and the server compresses every message per socket)",
    )
    g.add_argument("--seed", type=int, default=1, help="random seed for services and jitter")
    g = p.add_argument_group("output")
    g.add_argument(
        "--profile",
        metavar="FILE",
        help="attach py-spy to the server for the "
        "measured window and write collapsed stacks to FILE (perturbs the figures)",
    )
    g.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    g.add_argument("--keep", action="store_true", help="keep the temporary directory")


# -- the centre ---------------------------------------------------------------------------

SERVICES = [
    ("TP", "Lý lịch tư pháp", "Sở Tư pháp", "A"),
    ("HT", "Hộ tịch", "Sở Tư pháp", "B"),
    ("DD", "Đất đai", "Sở Nông nghiệp và Môi trường", "C"),
    ("DN", "Đăng ký doanh nghiệp", "Sở Tài chính", "D"),
    ("XD", "Cấp phép xây dựng", "Sở Xây dựng", "E"),
    ("LD", "Lao động, việc làm", "Sở Nội vụ", "G"),
]


@dataclass
class Centre:
    toml: str
    services: list[str]
    clerks: list[tuple[str, str, int]]  # username, password, counter number
    kiosks: list[str]
    displays: list[str]
    ratings: list[str]


def make_centre(
    *, counters: int, kiosks: int, displays: int, ratings: int, services: int = 4
) -> Centre:
    """A centre where every counter serves every service, one clerk per counter."""
    services = max(1, min(services, len(SERVICES)))
    n_counters = max(1, counters)
    svc = SERVICES[:services]
    codes = [s[0] for s in svc]
    out = [
        "[centre]",
        'code = "BENCH"',
        'name = "Trung tâm thử tải"',
        'timezone = "Asia/Ho_Chi_Minh"',
        "",
    ]
    for code, name, agency, prefix in svc:
        out += [
            "[[services]]",
            f'code = "{code}"',
            f'name = "{name}"',
            f'agency = "{agency}"',
            f'prefix = "{prefix}"',
            "",
        ]
    for n in range(1, n_counters + 1):
        out += [
            "[[counters]]",
            f"number = {n}",
            f'name = "Quầy {n}"',
            "services = [" + ", ".join(f'"{c}"' for c in codes) + "]",
            "",
        ]
    clerks = []
    for n in range(1, counters + 1):
        user, pw = f"clerk{n:03d}", f"bench-secret-{n:03d}"
        clerks.append((user, pw, n))
        out += [
            "[[staff]]",
            f'username = "{user}"',
            f'password = "{pw}"',
            f'full_name = "Cán bộ {n}"',
            'role = "clerk"',
            f"counters = [{n}]",
            "",
        ]

    def devices(kind, count, extra=lambda i: []):
        tokens = []
        for i in range(1, count + 1):
            token = f"bench-{kind}-token-{i:04d}"
            tokens.append(token)
            out.extend(
                [
                    "[[devices]]",
                    f'name = "{kind} {i}"',
                    f'kind = "{kind}"',
                    f'token = "{token}"',
                    *extra(i),
                    "",
                ]
            )
        return tokens

    k = devices("kiosk", kiosks)
    d = devices("display", displays)
    r = devices("rating", ratings, lambda i: [f"counter = {(i - 1) % n_counters + 1}"])
    return Centre("\n".join(out), codes, clerks, k, d, r)


# -- the server process -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """``server.py serve`` on 127.0.0.1 with a fresh instance folder; always stopped."""

    def __init__(
        self,
        tmp: Path,
        database_url: str,
        provision: Path,
        *,
        redis_url: str | None = None,
        env: dict | None = None,
        script: str | None = None,
    ):
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.cmd = [
            sys.executable,
            script or str(ROOT / "server.py"),
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--database-url",
            database_url,
            "--provision",
            str(provision),
        ]
        if redis_url:
            self.cmd += ["--redis-url", redis_url]
        self.env = {
            **os.environ,
            "MOTCUA_INSTANCE_PATH": str(tmp / "instance"),
            "MOTCUA_SECRET_KEY": "bench-secret",
            "MOTCUA_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.log_path = tmp / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> Server:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=self._log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.log()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (all its threads)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def check_store_args(args) -> str | None:
    """The error to print for contradictory store arguments, or None."""
    if args.database_url and args.postgres:
        return "give --database-url or --postgres, not both"
    return None


def print_call_target(r: dict, target_ms: float, label: str) -> None:
    """The call -> every display verdict, then the profile if one was taken."""
    every = r["call_to_every_display_ms"]
    if every.get("n"):
        ok = every["p99"] <= target_ms and not r["calls_incomplete"]
        print(
            f"target       {label} (p99 call -> every display <= {target_ms:.0f} ms): "
            f"{'MET' if ok else 'NOT MET'} ({every['p99']:.1f} ms)"
        )
    if r["profile"]:
        print()
        print(r["profile"])


def login(base_url: str, username: str, password: str) -> str:
    body = json.dumps({"username": username, "password": password}).encode()
    req = urllib.request.Request(
        base_url + "/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())["token"]


@contextlib.contextmanager
def bench_environment(args, centre: Centre, server_env: dict | None = None):
    """Temp dir, store (fresh SQLite or PostgreSQL database), provisioning file, server."""
    tmp = Path(tempfile.mkdtemp(prefix="motcua-bench-"))
    pg_admin = pg_name = None
    server = None
    try:
        (tmp / "centre.toml").write_text(centre.toml, encoding="utf-8")
        url = args.database_url
        if args.postgres:
            import psycopg

            pg_admin = psycopg.connect(args.postgres, autocommit=True, connect_timeout=5)
            pg_name = f"motcua_bench_{secrets.token_hex(4)}"
            pg_admin.execute(f'CREATE DATABASE "{pg_name}"')
            url = f"{args.postgres.rsplit('/', 1)[0]}/{pg_name}"
        if not url:
            url = f"sqlite:///{tmp / 'motcua.sqlite3'}"
        env = dict(server_env or {})
        if args.event_rate is not None:
            env["MOTCUA_EVENT_RATE"] = str(args.event_rate)
            env["MOTCUA_EVENT_BURST"] = str(args.event_rate * 2)
        server = Server(
            tmp,
            url,
            tmp / "centre.toml",
            redis_url=args.redis_url,
            env=env,
            script=args.server_script,
        )
        server.database_url = url
        server.start()
        yield server
    finally:
        if server is not None:
            server.stop()
        if pg_admin is not None:
            pg_admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            pg_admin.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


# -- a lean Socket.IO client --------------------------------------------------------------


class RefusedError(Exception):
    pass


class RawSocketIO(asyncio.Protocol):
    """One WebSocket carrying one Socket.IO namespace, with acks and event callbacks.

    Only what the benchmark needs: text frames, permessage-deflate (optional, as browsers
    offer it), Engine.IO ping/pong, connect/connect_error, events and acks. Events with no
    handler are counted but not parsed. ``t`` passed to callbacks is ``perf_counter()``
    when the bytes reached this process (``data_received``).
    """

    def __init__(self, namespace: str, auth: dict, deflate: bool):
        self.ns = namespace
        self.auth = auth
        self.deflate = deflate
        loop = asyncio.get_running_loop()
        self.connected: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()
        self.handlers: dict[str, object] = {}
        self.acks: dict[int, asyncio.Future] = {}
        self.next_id = 0
        self.transport = None
        self.buf = bytearray()
        self.upgraded = False
        self.inflater = None
        self.reset_inflater = False
        self.frags: list[bytes] = []
        self.frag_compressed = False
        self.messages = 0
        self.wire_bytes = 0
        self.text_bytes = 0
        self.by_event: Counter = Counter()
        self.p_event = f"42{namespace},"
        self.p_ack = f"43{namespace},"
        self.p_connect = f"40{namespace},"
        self.p_error = f"44{namespace},"

    # -- asyncio.Protocol --
    def connection_made(self, transport):
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        ext = (
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            if self.deflate
            else ""
        )
        transport.write(
            (
                f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {HOST}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{ext}\r\n"
            ).encode()
        )

    def connection_lost(self, exc):
        for fut in (self.connected, self.closed):
            if not fut.done():
                fut.set_result(None) if fut is self.closed else fut.set_exception(
                    ConnectionError(f"{self.ns}: connection lost ({exc})")
                )
        for fut in self.acks.values():
            if not fut.done():
                fut.set_exception(ConnectionError("connection lost"))
        self.acks.clear()

    def data_received(self, data: bytes):
        t = perf()
        self.wire_bytes += len(data)
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1").split("\r\n")
            del buf[: end + 4]
            if " 101 " not in head[0]:
                self._fail(ConnectionError(f"{self.ns}: handshake refused: {head[0]}"))
                return
            for line in head[1:]:
                name, _, value = line.partition(":")
                if (
                    name.strip().lower() == "sec-websocket-extensions"
                    and "permessage-deflate" in value
                ):
                    self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    self.reset_inflater = "server_no_context_takeover" in value
            self.upgraded = True
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, hl = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, hl = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, hl = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if b1 & 0x80:
                hl += 4  # a masked frame from a server is wrong, but skip the key
            if n - pos < hl + length:
                break
            payload = bytes(buf[pos + hl : pos + hl + length])
            pos += hl + length
            opcode = b0 & 0x0F
            if opcode in (1, 2, 0):
                if opcode:
                    self.frags = [payload]
                    self.frag_compressed = bool(b0 & 0x40)
                else:
                    self.frags.append(payload)
                if b0 & 0x80:
                    self._message(b"".join(self.frags), t)
                    self.frags = []
            elif opcode == 9:  # ping
                self._send_frame(payload, 0xA)
            elif opcode == 8:
                self.transport.close()
                break
        del buf[:pos]

    # -- messages --
    def _message(self, payload: bytes, t: float) -> None:
        if self.frag_compressed:
            payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
            if self.reset_inflater:
                self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        text = payload.decode("utf-8")
        self.messages += 1
        self.text_bytes += len(payload)
        if text.startswith(self.p_event):
            rest = text[len(self.p_event) :]
            name = rest[2 : rest.index('"', 2)]
            self.by_event[name] += 1
            handler = self.handlers.get(name)
            if handler is not None:
                handler(json.loads(rest)[1], t)
        elif text.startswith(self.p_ack):
            rest = text[len(self.p_ack) :]
            i = 0
            while rest[i].isdigit():
                i += 1
            fut = self.acks.pop(int(rest[:i]), None)
            if fut is not None and not fut.done():
                fut.set_result((t, json.loads(rest[i:])[0]))
        elif text == "2":
            self._send_text("3")
        elif text.startswith("0{"):
            self._send_text(self.p_connect + json.dumps(self.auth))
        elif text.startswith(self.p_connect):
            if not self.connected.done():
                self.connected.set_result(True)
        elif text.startswith(self.p_error):
            self._fail(RefusedError(f"{self.ns}: {text[len(self.p_error) :]}"))
        elif text == "1":
            self.transport.close()

    def _fail(self, exc):
        if not self.connected.done():
            self.connected.set_exception(exc)
        self.transport.close()

    def _send_frame(self, payload: bytes, opcode: int = 1) -> None:
        n = len(payload)
        if n < 126:
            header = bytes((0x80 | opcode, 0x80 | n))
        elif n < 65536:
            header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
        else:
            header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        body = (int.from_bytes(payload, "big") ^ m).to_bytes(n, "big") if n else b""
        self.transport.write(header + mask + body)

    def _send_text(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send_frame(text.encode("utf-8"))

    # -- API --
    def on(self, event: str, handler) -> None:
        """handler(data, t) for every ``event`` received."""
        self.handlers[event] = handler

    async def call(self, event: str, data, timeout: float = 30):
        """Send an event with an ack; returns (t_ack, response)."""
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.acks[self.next_id] = fut
        self._send_text(f"{self.p_event}{self.next_id}" + json.dumps([event, data]))
        return await asyncio.wait_for(fut, timeout)

    async def close(self):
        if self.transport is not None and not self.transport.is_closing():
            self._send_text(f"41{self.ns},")
            self._send_frame(b"\x03\xe8", 8)
            self.transport.close()


class SocketIOClient:
    """The same interface over python-socketio's AsyncClient (needs aiohttp)."""

    def __init__(self, namespace: str, auth: dict, deflate: bool):
        import socketio

        self.ns = namespace
        self.auth = auth
        self.sio = socketio.AsyncClient(reconnection=False)
        self.messages = 0
        self.wire_bytes = self.text_bytes = 0  # not measured with this client
        self.by_event: Counter = Counter()
        self.handlers: dict[str, object] = {}
        self.sio.on("*", self._any, namespace=namespace)

    async def _any(self, event, data=None):
        t = perf()
        self.messages += 1
        self.by_event[event] += 1
        handler = self.handlers.get(event)
        if handler is not None:
            handler(data, t)

    def on(self, event, handler):
        self.handlers[event] = handler

    async def call(self, event, data, timeout: float = 30):
        r = await self.sio.call(event, data, namespace=self.ns, timeout=timeout)
        return perf(), r

    async def close(self):
        await self.sio.disconnect()


async def connect(
    server: Server,
    namespace: str,
    auth: dict,
    *,
    client: str = "raw",
    deflate: bool = True,
    handlers: dict | None = None,
    timeout: float = 30,
):
    """Open one device connection; handlers are installed before any event arrives."""
    if client == "socketio":
        c = SocketIOClient(namespace, auth, deflate)
        for name, h in (handlers or {}).items():
            c.on(name, h)
        await c.sio.connect(
            server.url,
            namespaces=[namespace],
            auth=auth,
            transports=["websocket"],
            wait_timeout=timeout,
        )
        return c
    loop = asyncio.get_running_loop()
    conn = RawSocketIO(namespace, auth, deflate)
    for name, h in (handlers or {}).items():
        conn.on(name, h)
    await loop.create_connection(lambda: conn, HOST, server.port)
    await asyncio.wait_for(conn.connected, timeout)
    return conn


async def connect_all(factories, concurrency: int = 16):
    """Run connection coroutines with bounded concurrency; returns their results in order."""
    sem = asyncio.Semaphore(concurrency)

    async def one(f):
        async with sem:
            return await f()

    return await asyncio.gather(*(one(f) for f in factories))


# -- devices ------------------------------------------------------------------------------


class DisplayWall:
    """Every display records when each ``called`` event reached it, by (ticket id, recall)."""

    def __init__(self):
        self.arrivals: dict[tuple[int, bool], list[float]] = defaultdict(list)
        self.n = 0

    def handler(self):
        self.n += 1

        def on_called(data, t):
            self.arrivals[(data["ticket"]["id"], bool(data.get("recall")))].append(t)

        return on_called


@dataclass
class CallRecord:
    counter: int
    t_sent: float
    t_ack: float
    ticket_id: int | None
    error: str | None


class Clerk:
    """A counter that calls the next ticket, starts serving it, waits, and calls again
    (the next call_next finishes the ticket being served, as the engine allows)."""

    def __init__(self, number: int, conn, interval: float, rng: random.Random):
        self.number = number
        self.conn = conn
        self.interval = interval
        self.rng = rng
        self.calls: list[CallRecord] = []
        self.errors: Counter = Counter()
        self.opened = asyncio.get_running_loop().create_future()

    def on_state(self, data, t):
        if data.get("counter", {}).get("status") == "open" and not self.opened.done():
            self.opened.set_result(True)

    async def run(self, t_end: float, start_delay: float = 0.0):
        await asyncio.sleep(start_delay)
        while perf() < t_end:
            t0 = perf()
            try:
                t_ack, r = await self.conn.call("call_next", {})
            except (TimeoutError, ConnectionError) as e:
                self.calls.append(CallRecord(self.number, t0, perf(), None, type(e).__name__))
                await asyncio.sleep(0.1)
                continue
            if r.get("ok"):
                tid = r["ticket"]["id"]
                self.calls.append(CallRecord(self.number, t0, t_ack, tid, None))
                _, s = await self.conn.call("start", {"ticket_id": tid})
                if not s.get("ok"):
                    self.errors["start:" + s["error"]["code"]] += 1
            else:
                code = r["error"]["code"]
                self.calls.append(CallRecord(self.number, t0, t_ack, None, code))
                self.errors[code] += 1
            # Jittered so that counters do not press at the same instant.
            await asyncio.sleep(
                max(0.0, self.interval * self.rng.uniform(0.5, 1.5) - (perf() - t0))
            )


def call_latencies(clerks: list[Clerk], wall: DisplayWall, t_start: float, t_end: float):
    """For each successful call sent inside the window: ack latency and the time until its
    ``called`` event had reached every display (plus every single delivery)."""
    every, each, ack, first, spread = [], [], [], [], []
    incomplete = 0
    failed: Counter = Counter()
    for clerk in clerks:
        for c in clerk.calls:
            if not (t_start <= c.t_sent < t_end):
                continue
            if c.error:
                failed[c.error] += 1
                continue
            ack.append(c.t_ack - c.t_sent)
            if not wall.n:
                continue
            arr = wall.arrivals.get((c.ticket_id, False), [])
            each.extend(t - c.t_sent for t in arr)
            if arr:
                first.append(min(arr) - c.t_sent)
            if len(arr) < wall.n:
                incomplete += 1
            else:
                every.append(max(arr) - c.t_sent)
                spread.append(max(arr) - min(arr))
    return {
        "to_every_display": every,
        "to_first_display": first,
        "first_to_last_display": spread,
        "to_each_display": each,
        "ack": ack,
        "incomplete": incomplete,
        "failed": dict(failed),
    }


class LoopLag:
    """How late the load generator's event loop wakes up (its own share of any latency)."""

    def __init__(self, period: float = 0.005):
        self.period = period
        self.lags: list[float] = []
        self.task = None

    async def _run(self):
        while True:
            t = perf()
            await asyncio.sleep(self.period)
            self.lags.append(perf() - t - self.period)

    def start(self):
        self.task = asyncio.get_running_loop().create_task(self._run())

    def stop(self):
        if self.task:
            self.task.cancel()


# -- profiling ----------------------------------------------------------------------------


class Profiler:
    """py-spy attached to the server for the measured window (raw collapsed stacks)."""

    def __init__(self, path: str | None, pid: int, duration: float):
        self.path = path
        self.proc = None
        if not path:
            return
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(exe).exists():
            print("warning: py-spy not found; no profile", file=sys.stderr)
            self.path = None
            return
        self.cmd = [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(duration))),
            "--rate",
            "200",
            "--format",
            "raw",
            "--threads",
            "--nonblocking",
            "--output",
            path,
        ]

    def start(self):
        if self.path:
            self.proc = subprocess.Popen(
                self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )

    def finish(self) -> str:
        if not self.proc:
            return ""
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if self.proc.returncode != 0:
            return f"py-spy failed: {err.decode(errors='replace')[-500:]}"
        return summarise_profile(self.path)


def summarise_profile(path: str, top: int = 25) -> str:
    """Top functions by own samples and by inclusive samples, from py-spy raw output."""
    own: Counter = Counter()
    incl: Counter = Counter()
    threads: Counter = Counter()
    total = 0
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        n = int(n)
        total += n
        frames = stack.split(";")[1:]
        if any("_WorkerGreenlet" in f for f in frames):
            threads["thread pool (Store._run_batch and reads, SQLite)"] += n
        else:
            threads["main thread (gevent hub: sockets, fan-out, engine on PostgreSQL)"] += n
        if frames:
            own[_short(frames[-1])] += n
        for f in {_short(f) for f in frames}:
            incl[f] += n
    lines = [f"py-spy: {total} samples with a thread running (200 Hz)", "by thread:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in threads.most_common(8)]
    lines.append("own time (top functions):")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("inclusive time (top functions):")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in incl.most_common(top + 15)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    parts = path.split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    elif "main" in parts:
        parts = parts[parts.index("main") + 1 :]
    else:
        parts = parts[-2:]
    return f"{name} ({'/'.join(parts)})"


# -- statistics ---------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def stats_ms(values: list[float]) -> dict:
    v = sorted(values)
    if not v:
        return {"n": 0}
    return {
        "n": len(v),
        "p50": 1000 * percentile(v, 50),
        "p95": 1000 * percentile(v, 95),
        "p99": 1000 * percentile(v, 99),
        "max": 1000 * v[-1],
        "mean": 1000 * sum(v) / len(v),
    }


def fmt_ms(s: dict) -> str:
    if not s.get("n"):
        return "n=0"
    return (
        f"n={s['n']:<6} p50 {s['p50']:7.1f}  p95 {s['p95']:7.1f}  p99 {s['p99']:7.1f}  "
        f"max {s['max']:7.1f}  mean {s['mean']:6.1f} ms"
    )


def machine() -> dict:
    import platform
    import sqlite3

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
    }


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds used so far by each thread of a process, by thread id."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


@dataclass
class CpuWindow:
    """CPU used by the server (its main thread, where the gevent hub and every socket run,
    and its other threads, gevent's thread pool where SQLite batches run) and by this load
    generator over the measured window, in % of one core."""

    server: Server
    t0: float = 0.0
    s0: tuple = (0.0, 0.0, 0.0, {})
    c0: float = 0.0
    result: dict = field(default_factory=dict)

    def _sample(self):
        pid = self.server.pid
        return (
            self.server.cpu_seconds(),
            thread_cpu(pid).get(pid, 0.0),
            machine_busy_seconds(),
            named_processes_cpu("postgres"),
        )

    def start(self):
        self.t0, self.s0, self.c0 = perf(), self._sample(), time.process_time()

    def stop(self):
        wall = perf() - self.t0
        s1 = self._sample()
        total, main = s1[0] - self.s0[0], s1[1] - self.s0[1]
        mine = time.process_time() - self.c0
        pg = sum(v - self.s0[3].get(pid, 0.0) for pid, v in s1[3].items())
        self.result = {
            "machine_busy_pct": 100 * (s1[2] - self.s0[2]) / wall,
            "postgres_cpu_pct": 100 * pg / wall,
            "other_processes_cpu_pct": 100
            * max(0.0, s1[2] - self.s0[2] - total - mine - pg)
            / wall,
            "server_cpu_pct": 100 * total / wall,
            "server_main_thread_cpu_pct": 100 * main / wall,
            "server_other_threads_cpu_pct": 100 * (total - main) / wall,
            "loadgen_cpu_pct": 100 * mine / wall,
        }
        return self.result


def named_processes_cpu(name: str) -> dict[int, float]:
    """CPU seconds used so far by each process whose command name is ``name``."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            head, tail = (proc / "stat").read_text().rsplit(")", 1)
            if head.split("(", 1)[1] == name:
                f = tail.split()
                out[int(proc.name)] = (int(f[11]) + int(f[12])) / tick
    return out


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine have spent busy (not idle nor iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def cpu_line(r: dict) -> str:
    line = (
        f"CPU                     server {r.get('server_cpu_pct', 0):.0f}% of one core "
        f"(main thread {r.get('server_main_thread_cpu_pct', 0):.0f}%, thread pool "
        f"{r.get('server_other_threads_cpu_pct', 0):.0f}%), load generator "
        f"{r.get('loadgen_cpu_pct', 0):.0f}%, "
        + (f"PostgreSQL {r['postgres_cpu_pct']:.0f}%, " if r.get("postgres_cpu_pct") else "")
        + f"other processes "
        f"{r.get('other_processes_cpu_pct', 0):.0f}%"
    )
    if r.get("other_processes_cpu_pct", 0) > 15:
        line += "\nwarning                 other processes were busy: figures are not clean"
    return line


# -- a whole centre of devices --------------------------------------------------------------


@dataclass
class Devices:
    kiosks: list
    displays: list
    ratings: list
    counters: list
    clerks: list
    wall: DisplayWall

    @property
    def all(self) -> list:
        return self.displays + self.kiosks + self.ratings + self.counters

    def traffic(self) -> tuple[int, int, int]:
        """(messages, bytes on the wire, bytes of text) received so far by all devices."""
        devs = self.all
        return (
            sum(d.messages for d in devs),
            sum(d.wire_bytes for d in devs),
            sum(d.text_bytes for d in devs),
        )

    async def close(self):
        for d in self.all:
            with contextlib.suppress(Exception):
                await d.close()


async def connect_centre(
    server: Server, centre: Centre, tokens: list[str], args, call_interval: float
) -> Devices:
    """Connect every device of ``centre``; counters are ready (open) when this returns."""
    kw = {"client": args.client, "deflate": args.deflate}
    wall = DisplayWall()
    displays = await connect_all(
        [
            lambda tok=tok: connect(
                server, "/display", {"token": tok}, handlers={"called": wall.handler()}, **kw
            )
            for tok in centre.displays
        ]
    )
    kiosks = await connect_all(
        [lambda tok=tok: connect(server, "/kiosk", {"token": tok}, **kw) for tok in centre.kiosks]
    )
    ratings = await connect_all(
        [lambda tok=tok: connect(server, "/rating", {"token": tok}, **kw) for tok in centre.ratings]
    )
    clerks = [
        Clerk(n, None, call_interval, random.Random(args.seed * 1000 + n))
        for _, _, n in centre.clerks[: len(tokens)]
    ]
    counters = await connect_all(
        [
            lambda cl=cl, tok=tok: connect(
                server,
                "/counter",
                {"token": tok, "counter": cl.number},
                handlers={"counter_state": cl.on_state},
                **kw,
            )
            for cl, tok in zip(clerks, tokens, strict=True)
        ]
    )
    for cl, conn in zip(clerks, counters, strict=True):
        cl.conn = conn
    await asyncio.wait_for(asyncio.gather(*(cl.opened for cl in clerks)), 60)
    return Devices(kiosks, displays, ratings, counters, clerks, wall)


def login_clerks(server: Server, centre: Centre, n: int | None = None) -> list[str]:
    from concurrent.futures import ThreadPoolExecutor

    clerks = centre.clerks if n is None else centre.clerks[:n]
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda cl: login(server.url, cl[0], cl[1]), clerks))


def print_machine(r: dict) -> None:
    m = r["machine"]
    print(
        f"machine      {m['nproc']} cores ({m['cpu']}), Python {m['python']}, "
        f"SQLite {m['sqlite']}, Linux {m['kernel']}"
    )
