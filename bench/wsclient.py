"""A lean Socket.IO client for the load generator, and python-socketio's as a cross-check.

The load generator is one asyncio process; its default client (``raw``) speaks Engine.IO 4
/ Socket.IO 5 over a WebSocket written on a plain asyncio Protocol, so receiving a
broadcast costs a few microseconds and the load generator stays far from being the
bottleneck on a small machine. ``--client socketio`` uses python-socketio's AsyncClient
instead (needs aiohttp). Everything here targets 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import zlib
from collections import Counter
from time import perf_counter

from harness.process import HOST, ServerProcess


class RefusedError(Exception):
    pass


# Every connection reads into this one buffer (``recv_into``), and each read is consumed
# at once (``buffer_updated``). With a plain Protocol asyncio's ``recv(256 KiB)`` allocates
# 256 KiB a read: glibc serves that with mmap and page faults until something frees a
# larger block and raises its threshold, so the first run in a process read its 1,000
# sockets at 1.7 times the CPU of later runs and timed the server 10-20 ms late at p99
# (py-spy: 38 % of the generator in recv, 7 % in later runs).
_READ = memoryview(bytearray(256 * 1024))


class RawSocketIO(asyncio.BufferedProtocol):
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
        # When each step of connecting was reached (perf_counter): created, TCP (and TLS)
        # up, websocket upgraded, engine.io open, namespace connected.
        self.steps: dict[str, float] = {"start": perf_counter()}
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
        self.steps["transport"] = perf_counter()
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

    def get_buffer(self, sizehint):
        return _READ

    def buffer_updated(self, nbytes):
        self.data_received(_READ[:nbytes])

    def data_received(self, data):
        t = perf_counter()
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
            self.steps["upgraded"] = t
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
                # A handler marked ``raw`` takes the event's JSON text as it came and
                # parses it only if it has not seen the same text (a wave of one batch
                # to 650 displays is one text): the load generator reads the next
                # socket sooner, so its own work stays out of the latencies it measures.
                handler(rest if getattr(handler, "raw", False) else json.loads(rest)[1], t)
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
            self.steps["open"] = t
            self._send_text(self.p_connect + json.dumps(self.auth))
        elif text.startswith(self.p_connect):
            self.steps["connected"] = t
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
        """Send an event with an ack; returns (t_ack, response). On a connection already
        lost, ConnectionError at once (as socket.io-client's buffered emit fails)."""
        if self.closed.done():
            raise ConnectionError(f"{self.ns}: connection lost")
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
        t = perf_counter()
        self.messages += 1
        self.by_event[event] += 1
        handler = self.handlers.get(event)
        if handler is not None:
            handler(data, t)

    def on(self, event, handler):
        self.handlers[event] = handler

    async def call(self, event, data, timeout: float = 30):
        r = await self.sio.call(event, data, namespace=self.ns, timeout=timeout)
        return perf_counter(), r

    async def close(self):
        await self.sio.disconnect()


async def connect(
    server: ServerProcess,
    namespace: str,
    auth: dict,
    *,
    client: str = "raw",
    deflate: bool = True,
    handlers: dict | None = None,
    timeout: float = 30,
    made=None,
    tls_session=None,
):
    """Open one device connection; handlers are installed before any event arrives;
    ``made(conn)`` is told the raw connection before it connects; ``tls_session`` (an
    ``ssl.SSLSession`` of an earlier connection) is resumed, as a browser resumes its
    last session with a host when it reconnects."""
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
    if made is not None:
        made(conn)
    # A server with an ``ssl_context`` (nginx's TLS side, bench/failover.py) is reached
    # over TLS.
    tls = getattr(server, "ssl_context", None)
    if tls is not None and tls_session is not None:
        tls = _Resuming(tls, tls_session)
    await loop.create_connection(
        lambda: conn, HOST, server.port, ssl=tls, server_hostname=HOST if tls else None
    )
    await asyncio.wait_for(conn.connected, timeout)
    return conn


def tls_session(conn):
    """The TLS session of a connection that has read something (TLS 1.3 sends its tickets
    after the handshake), to resume later; None when not over TLS."""
    transport = getattr(conn, "transport", None)
    sslobj = transport.get_extra_info("ssl_object") if transport is not None else None
    return sslobj.session if sslobj is not None else None


class _Resuming:
    """An SSLContext that resumes ``session`` in the connection it wraps (asyncio asks the
    context for the connection's SSL object; the session must be set then)."""

    def __init__(self, context, session):
        self._context = context
        self._session = session

    def wrap_bio(self, incoming, outgoing, server_side=False, server_hostname=None):
        return self._context.wrap_bio(
            incoming, outgoing, server_side, server_hostname, session=self._session
        )

    def __getattr__(self, name):
        return getattr(self._context, name)


async def connect_all(factories, concurrency: int = 16):
    """Run connection coroutines with bounded concurrency; returns their results in order."""
    sem = asyncio.Semaphore(concurrency)

    async def one(f):
        async with sem:
            return await f()

    return await asyncio.gather(*(one(f) for f in factories))
