"""What a client without credentials can do to the server, bounded (docs/security.md).

- **Packets**: an unreadable or unexpected packet (a frame that is no engine.io packet, a
  Socket.IO packet that does not parse, an event that is not a non-empty list, binary
  frames or attachments: the protocol uses none) closes that connection, with one log line,
  even a device's with a valid token (it reconnects and takes a snapshot). Any connection
  sending frames much faster than its event rate allows is closed. Messages are capped at
  :data:`MAX_MESSAGE_BYTES` while they are read.
- **Idle connections**: an engine.io connection that has joined no namespace within
  ``JOIN_TIMEOUT_S`` (or has left its last one that long ago) is closed.
- **HTTP**: a request's line and headers must arrive within ``HEADER_TIMEOUT_S`` (the same
  bound covers an idle keep-alive connection); connections per client address are capped
  (``MAX_CONNECTIONS_PER_ADDRESS``).
- **Logins**: the throttle (core/auth.py) and a small pool of its own for password checks,
  with a bounded queue, so logins never take the threads that queue operations use.
- **Logs**: engine.io's and Socket.IO's loggers and these guards' own lines go through
  :class:`BoundedLog`, a token bucket: a burst, then a line a second at most, saying how
  many were left out.

Hooks used, all on instances: engine.io's ``on()`` handlers (wrapped), its ``_async``
table's websocket class (gateway/websocket.py's, subclassed), the Socket.IO packet class
(``serializer``), gevent pywsgi's handler and server (subclasses).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import threading
import time

from gevent import pywsgi
from socketio import packet as sio_packet

from core import auth
from core.errors import QueueError

from . import collector, perimeter
from .websocket import WebSocket, handshake_problem, refuse

log = logging.getLogger("motcua.guard")

# The largest message a client may send, refused while it is read. Device events are small
# JSON objects (a finish with its dossier codes is well under 4 KiB), but an over-long field
# must still get its bad_request answer (a 200 KB comment, tests/test_bad_input.py), so a
# quarter of engine.io's default (1 MB, which it checked only once the message was whole).
MAX_MESSAGE_BYTES = 256 * 1024
# engine.io packet types a client may send on an established websocket: CLOSE, PONG, MESSAGE
# (PING and UPGRADE only while upgrading from long-polling, which engine.io checks itself).
WEBSOCKET_PACKETS = ("1", "3", "4")
# How often the sockets whose clients stopped answering pings are looked for, and how many
# are looked at between two yields (SocketGuard._ping_sweep).
PING_SWEEP_S = 5.0
SWEEP_CHUNK = 500
# The host itself (its hardware agent, a reverse proxy on the same machine) is not capped.
UNCAPPED = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def _env_number(config, key: str, default, kind=int):
    value = config.get(key)
    if value is None:
        value = os.environ.get("MOTCUA_" + key)
    return kind(value) if value not in (None, "") else default


def settings(config) -> dict:
    """The guards' settings: ``config`` (the app's, overrides included) first, then the
    MOTCUA_* environment, then the defaults (docs/protocol.md §13)."""
    cores = os.cpu_count() or 2
    event_rate = float(config.get("EVENT_RATE", 20))
    event_burst = float(config.get("EVENT_BURST", 40))
    return {
        "JOIN_TIMEOUT_S": _env_number(config, "JOIN_TIMEOUT_S", 10.0, float),
        "HEADER_TIMEOUT_S": _env_number(config, "HEADER_TIMEOUT_S", 10.0, float),
        "MAX_CONNECTIONS_PER_ADDRESS": _env_number(config, "MAX_CONNECTIONS_PER_ADDRESS", 512),
        "PASSWORD_CHECKS": max(
            1, _env_number(config, "PASSWORD_CHECKS", max(1, min(4, cores // 2)))
        ),
        "LOGIN_WAIT_S": _env_number(config, "LOGIN_WAIT_S", LOGIN_WAIT_S, float),
        "LOGIN_THROTTLE_ENTRIES": _env_number(config, "LOGIN_THROTTLE_ENTRIES", 10_000),
        # Frames a connection may send: twice its event allowance, so a client pressing
        # too fast is answered rate_limited and only a flood is cut off.
        "FRAME_RATE": 2 * event_rate + 10,
        "FRAME_BURST": 2 * event_burst + 20,
        "TRUSTED_PROXIES": int(config.get("TRUSTED_PROXIES") or 0),
        # What each device (all its connections together) may make the server do
        # (gateway/limits.py Budget): a burst, then so many a second.
        "DEVICE_RATE": _env_number(config, "DEVICE_RATE", 3.0, float),
        "DEVICE_BURST": _env_number(config, "DEVICE_BURST", 30.0, float),
        # After the server's close frame, how long a client has to answer it before the
        # TCP connection is closed anyway.
        "CLOSE_GRACE_S": _env_number(config, "CLOSE_GRACE_S", 5.0, float),
        "MAX_BODY_BYTES": _env_number(config, "MAX_BODY_BYTES", perimeter.MAX_BODY_BYTES),
        # Connections the kernel holds for the server before it accepts them (the kernel
        # caps it at net.core.somaxconn). gevent's default, 256, overflowed when the
        # devices of a killed process came back at once: SYNs dropped, and retried after
        # 1, 3, 7 s (docs/deployment.md "A process fails").
        "LISTEN_BACKLOG": _env_number(config, "LISTEN_BACKLOG", 4096),
        # engine.io's pings: every PING_INTERVAL_S, and a client that has not answered
        # one within PING_TIMEOUT_S is closed (looked for every PING_SWEEP_S).
        "PING_INTERVAL_S": _env_number(config, "PING_INTERVAL_S", 25.0, float),
        "PING_TIMEOUT_S": _env_number(config, "PING_TIMEOUT_S", 20.0, float),
    }


def budget_settings(config) -> tuple[float, float]:
    s = settings(config)
    return s["DEVICE_RATE"], s["DEVICE_BURST"]


class BoundedLog:
    """A logger that writes ``burst`` lines at once and then at most ``per_s`` a second,
    telling how many it left out; whatever clients send, the log grows by a bounded rate.
    Also a file-like ``write`` for gevent's pywsgi error log."""

    def __init__(self, logger: logging.Logger, burst: float = 20, per_s: float = 1.0):
        self.logger = logger
        self.burst = burst
        self.per_s = per_s
        self._tokens = burst
        self._refilled = time.monotonic()
        self._dropped = 0
        self._lock = threading.Lock()

    def _admit(self) -> int | None:
        """None: drop the line; otherwise how many were dropped before it."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.per_s)
            self._refilled = now
            if self._tokens < 1:
                self._dropped += 1
                return None
            self._tokens -= 1
            dropped, self._dropped = self._dropped, 0
            return dropped

    def log(self, level: int, msg, *args, **kwargs) -> None:
        if not self.logger.isEnabledFor(level):
            return
        dropped = self._admit()
        if dropped is None:
            return
        if dropped:
            msg = f"{msg} ({dropped} similar lines left out)"
        self.logger.log(level, msg, *args, **kwargs)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return self.logger.isEnabledFor(level)

    def debug(self, msg, *args, **kwargs):
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def info(self, msg, *args, **kwargs):
        self.log(logging.INFO, msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        self.log(logging.WARNING, msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs):
        self.log(logging.ERROR, msg, *args, **kwargs)

    def exception(self, msg, *args, exc_info=True, **kwargs):
        self.log(logging.ERROR, msg, *args, exc_info=exc_info, **kwargs)

    def critical(self, msg, *args, **kwargs):
        self.log(logging.CRITICAL, msg, *args, **kwargs)

    def write(self, text: str) -> None:
        text = text.rstrip("\n")
        if text:
            self.log(logging.ERROR, "%s", text)

    def flush(self) -> None:
        pass


guard_log = BoundedLog(log)


def bounded_exception_log(app):
    """Flask's ``log_exception`` through a :class:`BoundedLog`: an error every request can
    cause (issue 20: 300 requests, 10,200 lines of tracebacks) grows the log by a bounded
    rate."""
    from flask import request

    bounded = BoundedLog(app.logger)

    def log_exception(exc_info) -> None:
        bounded.error("Exception on %s [%s]", request.path, request.method, exc_info=exc_info)

    return log_exception


# -- Socket.IO and engine.io ---------------------------------------------------------------
class StrictPacket(sio_packet.Packet):
    """Socket.IO packets as this protocol has them: text only, no binary attachments (a
    header announcing them is refused before anything is held), events a non-empty list,
    acks a list. Anything else raises, and the connection is closed."""

    def decode(self, encoded_packet):
        if not isinstance(encoded_packet, str):
            raise ValueError("a binary packet")
        count = super().decode(encoded_packet)
        if count or self.packet_type in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            raise ValueError("binary attachments")
        if self.packet_type == sio_packet.EVENT and not (isinstance(self.data, list) and self.data):
            raise ValueError("an event that is not a non-empty list")
        if self.packet_type == sio_packet.ACK and not isinstance(self.data, list):
            raise ValueError("an ack that is not a list")
        if _nested_deeper(self.data, MAX_NESTING):
            raise ValueError(f"data nested deeper than {MAX_NESTING}")
        return count


# How deep a packet's data may nest: motcua's deepest is 4 (an event, its object, a list of
# objects, their fields). Python 3.11's json refuses ~1,000 levels (RecursionError);
# 3.13's reads 5,000 and more, which no handler should then walk.
MAX_NESTING = 16


def _nested_deeper(value, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, list | dict):
            if depth > limit:
                return True
            stack.extend(
                (v, depth + 1) for v in (value.values() if isinstance(value, dict) else value)
            )
    return False


def socketio_options(config) -> dict:
    """Keyword arguments for Flask-SocketIO's server."""
    s = settings(config)
    return {
        "ping_interval": s["PING_INTERVAL_S"],
        "ping_timeout": s["PING_TIMEOUT_S"],
        "serializer": StrictPacket,
        "max_http_buffer_size": MAX_MESSAGE_BYTES,
        # Every client of this protocol connects by websocket: long-polling would let one
        # TCP connection hold any number of engine.io sessions (issue 20: 1,500).
        "transports": ["websocket"],
    }


def _why(e: BaseException) -> str:
    text = str(e)[:80]
    return f"unreadable packet ({type(e).__name__}{': ' + text if text else ''})"


class SocketGuard:
    """Closes connections that send what no client of this protocol sends, and those that
    join no namespace in time. Installed on a python-socketio server (``install``)."""

    def __init__(
        self,
        sio,
        join_timeout_s: float,
        frame_rate: float,
        frame_burst: float,
        close_grace_s: float = 5.0,
    ) -> None:
        self.sio = sio
        self.close_grace_s = close_grace_s
        self.eio = eio = sio.eio
        self.join_timeout_s = join_timeout_s
        self.frame_rate = frame_rate
        self.frame_burst = frame_burst
        self._unjoined: dict[str, float] = {}  # engine.io sid -> since when
        # Connections whose namespace connect the server is handling (authenticating,
        # reading its snapshot's first parts): a hall reconnecting at once keeps it busy
        # for seconds, and a client waiting for the server is not one that joins nothing.
        self._joining: set[str] = set()
        self._sweeper = None
        self._on_connect = eio.handlers["connect"]
        self._on_message = eio.handlers["message"]
        self._on_disconnect = eio.handlers["disconnect"]
        eio.on("connect", self._connect)
        eio.on("message", self._message)
        eio.on("disconnect", self._disconnect)
        # Websockets are served under gevent only (gateway/websocket.py); the threading
        # mode, for tests of HTTP routes, answers a websocket request 400.
        websocket = _guarded_websocket(self) if eio.async_mode == "gevent" else None
        eio._async = {**eio._async, "websocket": websocket}
        eio.handle_request = self._handshake_checked(eio.handle_request)
        eio._service_task = self._ping_sweep
        eio.logger = BoundedLog(eio.logger)
        sio.logger = BoundedLog(sio.logger)

    @staticmethod
    def _handshake_checked(handle_request):
        """engine.io's requests, a websocket's refused before engine.io sees it unless it is
        a handshake (engine.io would answer one without ``Connection: Upgrade`` as a poll,
        with no status: a 500)."""

        def checked(environ, start_response):
            if "transport=websocket" in environ.get("QUERY_STRING", ""):
                problem = handshake_problem(environ)
                if problem is not None:
                    return refuse(start_response, problem)
            return handle_request(environ, start_response)

        return checked

    # -- engine.io handlers ----------------------------------------------------------------
    def _connect(self, eio_sid, environ):
        collector.arrival()
        self._unjoined[eio_sid] = time.monotonic()
        if self._sweeper is None and self.join_timeout_s > 0:
            self._sweeper = self.sio.start_background_task(self._sweep)
        return self._on_connect(eio_sid, environ)

    def _message(self, eio_sid, data):
        sock = self.eio.sockets.get(eio_sid)
        if sock is None or sock.closed or sock.closing:
            return None  # being closed: whatever is still queued is ignored
        try:
            if not isinstance(data, str):
                raise ValueError("a binary message")
            if data[:1] == "1":  # leaves a namespace: it must join one again in time
                self._unjoined.setdefault(eio_sid, time.monotonic())
            if data[:1] != "0":
                return self._on_message(eio_sid, data)
            self._joining.add(eio_sid)  # a connect is handled within this call
            try:
                return self._on_message(eio_sid, data)
            finally:
                self._joining.discard(eio_sid)
        except Exception as e:  # noqa: BLE001 - any client packet python-socketio cannot take
            # Joined or not: a client that sends what no motcua client sends is broken or
            # hostile, and cannot be answered (no ack id can be read). It reconnects.
            self.reject(eio_sid, _why(e))
            return None

    def _disconnect(self, eio_sid, reason=None):
        self._unjoined.pop(eio_sid, None)
        self._joining.discard(eio_sid)
        return self._on_disconnect(eio_sid, reason)

    # -- closing ---------------------------------------------------------------------------
    def reject(self, eio_sid: str, why: str, level: int = logging.WARNING) -> None:
        """Close the connection, with one log line (the first reason only)."""
        sock = self.eio.sockets.get(eio_sid)
        if sock is None or sock.closed or sock.closing:
            return
        environ = self.sio.environ.get(eio_sid) or {}
        guard_log.log(
            level,
            "closed connection %s from %s: %s",
            eio_sid,
            environ.get("REMOTE_ADDR", "?"),
            why,
        )
        sock.close(wait=False, reason=self.eio.reason.SERVER_DISCONNECT)

    def _joined(self, eio_sid: str) -> bool:
        """Connected to a namespace (one being connected is ``_joining``: refused, it
        stays unjoined)."""
        manager = self.sio.manager
        for ns in list(manager.get_namespaces()):
            sid = manager.sid_from_eio_sid(eio_sid, ns)
            if sid is not None and manager.is_connected(sid, ns):
                return True
        return False

    def _sweep(self) -> None:
        interval = min(1.0, self.join_timeout_s / 4)
        while True:
            self.sio.sleep(interval)
            now = time.monotonic()
            for eio_sid, since in list(self._unjoined.items()):
                sock = self.eio.sockets.get(eio_sid)
                if sock is None or sock.closed or self._joined(eio_sid):
                    self._unjoined.pop(eio_sid, None)
                elif now - since >= self.join_timeout_s and eio_sid not in self._joining:
                    self._unjoined.pop(eio_sid, None)
                    self.reject(
                        eio_sid,
                        f"joined no namespace within {self.join_timeout_s:g} s",
                        logging.INFO,
                    )

    def _ping_sweep(self) -> None:
        """engine.io's service task, cheaper: every ``PING_SWEEP_S`` the sockets whose
        client stopped answering pings are closed and the closed ones forgotten, in
        chunks between which other greenlets run. engine.io's own visits one socket per
        ping_timeout / N seconds, each behind a timer of its own: with 10,000 devices a
        wake-up every 2 ms, 3-5 % of a process while a hall reconnects. (A websocket's
        writer closes a silent client itself, waiting for no packet longer than a ping's
        interval and timeout: this is the backstop.)"""
        eio = self.eio
        while True:
            self.sio.sleep(PING_SWEEP_S)
            for i, sock in enumerate(list(eio.sockets.values())):
                if i and not i % SWEEP_CHUNK:
                    self.sio.sleep(0)
                if sock.closed:
                    eio.sockets.pop(sock.sid, None)
                elif not sock.closing:
                    try:
                        sock.check_ping_timeout()
                    except Exception:  # noqa: BLE001 - one socket's fault ends no sweep
                        guard_log.exception("checking %s's pings failed", sock.sid)

    def frame_problem(self, ws, sock, data) -> str | None:
        """Why a websocket frame closes its connection (None: it does not)."""
        now = time.monotonic()
        ws.tokens = min(self.frame_burst, ws.tokens + (now - ws.refilled) * self.frame_rate)
        ws.refilled = now
        if ws.tokens < 1:
            return f"more than {self.frame_rate:g} messages a second"
        ws.tokens -= 1
        if not isinstance(data, str):
            return "a binary frame (the protocol has none)"
        if sock.upgraded and data[:1] not in WEBSOCKET_PACKETS:
            return f"an unexpected engine.io packet {data[:8]!r}"
        return None


def _guarded_websocket(guard: SocketGuard):
    """engine.io's websocket class for this server (gateway/websocket.py), its messages
    bounded and checked by the guard."""

    class GuardedWebSocket(WebSocket):
        # refused from a frame's header on, never buffered
        max_message_size = MAX_MESSAGE_BYTES
        log = guard_log

        def __init__(self, handler, server):
            super().__init__(handler, server)
            self.eio_socket = getattr(handler, "__self__", None)
            self.tokens = guard.frame_burst
            self.refilled = time.monotonic()

        def close(self, *args, **kwargs):
            super().close(*args, **kwargs)
            # The close frame is sent; a client that does not answer it (a hostile one
            # keeps reading nothing) would hold the TCP connection and its reader forever.
            if guard.close_grace_s > 0 and self.sock is not None:
                import gevent

                gevent.spawn_later(guard.close_grace_s, _hang_up, self.sock)

        def wait(self):
            sock = self.eio_socket
            if sock is not None and (sock.closed or sock.closing):
                return None  # closed by the guard: stop reading
            data = super().wait()
            if data is None or sock is None:
                return data
            why = guard.frame_problem(self, sock, data)
            if why:
                guard.reject(sock.sid, why)
                return None
            return data

    return GuardedWebSocket


def _hang_up(sock) -> None:
    """End a websocket's TCP connection if its client has not closed it yet: the reader
    sees the end and the handler finishes (a socket pywsgi has closed since is left be)."""
    import socket

    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: the client answered in time


# -- HTTP ------------------------------------------------------------------------------------
class AddressLimits:
    """How many connections (or, behind a proxy, requests) each client address holds."""

    def __init__(self, cap: int):
        self.cap = cap
        self._held: dict[str, int] = {}
        self._warned: set[str] = set()

    def acquire(self, address: str) -> bool:
        if self.cap <= 0 or address in UNCAPPED:
            return True
        held = self._held.get(address, 0)
        if held >= self.cap:
            if address not in self._warned:
                self._warned.add(address)
                guard_log.warning(
                    "refusing connections from %s: it holds %d (MOTCUA_MAX_CONNECTIONS_PER_"
                    "ADDRESS)",
                    address,
                    held,
                )
            return False
        self._held[address] = held + 1
        return True

    def release(self, address: str) -> None:
        if self.cap <= 0 or address in UNCAPPED:
            return
        held = self._held.get(address, 0) - 1
        if held > 0:
            self._held[address] = held
        else:
            self._held.pop(address, None)
        if held < self.cap:
            self._warned.discard(address)


class HeaderTimeout(ValueError):
    """The request line and headers did not arrive in time."""


class TooManyConnections(ValueError):
    """The client address holds as many connections as it may."""


class TooLarge(ValueError):
    """The request announces a body larger than the server takes."""


_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_REQUEST_TIMEOUT = _REQUEST_TIMEOUT.replace(
    b"\r\n\r\n", b"\r\n" + perimeter.RAW_SECURITY_HEADERS + b"\r\n"
)
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 10\r\nConnection: close\r\n"
    + perimeter.RAW_SECURITY_HEADERS
    + b"Content-Length: 0\r\n\r\n"
)

# Query parameters and path parts that carry a secret (device tokens, announcement keys, a
# ticket's key, a dossier's second factor): the access log shows them as "…".
SECRET_PARAMS = re.compile(r"(?<=[?&])(token|k|key|pin)=[^&\s]*", re.IGNORECASE)
SECRET_PATHS = re.compile(r"^(/t/)[^/?\s]+")


def redacted(path: str) -> str:
    """A request's path and query string as the access log may show it."""
    return SECRET_PATHS.sub(r"\1…", SECRET_PARAMS.sub(r"\1=…", path))


def forwarded_for(environ_or_headers, trusted: int) -> str | None:
    """The client address as werkzeug's ProxyFix(x_for=trusted) reads it."""
    value = environ_or_headers.get("X-Forwarded-For") or ""
    values = [v.strip() for v in value.split(",") if v.strip()]
    if trusted <= 0 or len(values) < trusted:
        return None
    address = values[-trusted]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address[:64]


class GuardedHandler(pywsgi.WSGIHandler):
    """gevent's WSGI handler with a deadline for each request's line and headers (also
    closing a keep-alive connection idle that long) and, behind trusted proxies, a cap on
    the requests in progress per forwarded client address."""

    _header_timer = None
    _counted: str | None = None

    def read_requestline(self):
        self._header_timer = self.server.header_timer()
        try:
            return super().read_requestline()
        except HeaderTimeout:
            return ""  # nothing, or half a line: close quietly

    def read_request(self, raw_requestline):
        try:
            result = super().read_request(raw_requestline)
        finally:
            self._cancel_timer()
        if result and self.server.trusted_proxies:
            address = forwarded_for(self.headers, self.server.trusted_proxies)
            address = address or self.client_address[0]
            if not self.server.limits.acquire(address):
                raise TooManyConnections(address)
            self._counted = address
        if result and (self.content_length or 0) > self.server.max_body:
            raise TooLarge(self.content_length)
        return result

    def run_application(self):
        try:
            super().run_application()
        finally:
            body = self.wsgi_input
            if body is not None and (
                body.chunked_input or body.position < (body.content_length or 0)
            ):
                # A body the application did not read to its end (refused, or past the
                # limit while chunked) is not read now either: pywsgi would read it to its
                # end, however long. The connection is closed instead.
                self.close_connection = True
                body._chunked_input_error = True  # pywsgi's "do not discard" state

    def format_request(self):
        line = super().format_request()
        path = getattr(self, "path", None) or ""
        return line.replace(path, redacted(path), 1) if path else line

    def handle_one_request(self):
        try:
            return super().handle_one_request()
        finally:
            self._cancel_timer()
            if self._counted is not None:
                self.server.limits.release(self._counted)
                self._counted = None

    def _cancel_timer(self):
        if self._header_timer is not None:
            self._header_timer.close()
            self._header_timer = None

    def _handle_client_error(self, ex):
        if isinstance(ex, HeaderTimeout):
            return ("408", _REQUEST_TIMEOUT)
        if isinstance(ex, TooManyConnections):
            return ("503", _BUSY)
        if isinstance(ex, TooLarge):
            return ("413", perimeter.too_large_response())
        return super()._handle_client_error(ex)


class GuardedWSGIServer(pywsgi.WSGIServer):
    """gevent's WSGI server capping connections per client address (the TCP peer; behind
    trusted proxies, the handler counts requests per forwarded address instead)."""

    def __init__(
        self,
        *args,
        header_timeout_s: float,
        limits: AddressLimits,
        trusted_proxies: int,
        max_body: int = perimeter.MAX_BODY_BYTES,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.max_body = max_body
        self.header_timeout_s = header_timeout_s
        self.limits = limits
        self.trusted_proxies = trusted_proxies

    def header_timer(self):
        import gevent

        if self.header_timeout_s <= 0:
            return None
        return gevent.Timeout.start_new(self.header_timeout_s, HeaderTimeout)

    def handle(self, sock, address):
        peer = address[0] if isinstance(address, tuple) else str(address)
        if self.trusted_proxies:
            return super().handle(sock, address)
        if not self.limits.acquire(peer):
            try:
                sock.sendall(_BUSY)
            except OSError:
                pass
            sock.close()
            return None
        try:
            return super().handle(sock, address)
        finally:
            self.limits.release(peer)


def wsgi_server(app, host: str, port: int, handler_class=GuardedHandler, **kwargs):
    """The WSGI server for ``app`` with the guards its config asks for; ``handler_class``
    must derive from :class:`GuardedHandler`."""
    s = settings(app.config)
    assert issubclass(handler_class, GuardedHandler)
    return GuardedWSGIServer(
        (host, port),
        app,
        handler_class=handler_class,
        header_timeout_s=s["HEADER_TIMEOUT_S"],
        limits=AddressLimits(s["MAX_CONNECTIONS_PER_ADDRESS"]),
        trusted_proxies=s["TRUSTED_PROXIES"],
        max_body=s["MAX_BODY_BYTES"],
        backlog=s["LISTEN_BACKLOG"],
        error_log=BoundedLog(logging.getLogger("motcua.http")),
        **kwargs,
    )


# -- logins ----------------------------------------------------------------------------------
# How much less the password-check threads get of the CPU than the event loop (a nice
# value): on a 2-core PC a check takes a whole core for ~0.16 s, and the queue operations
# must not wait for it. Linux keeps a nice value per thread.
CHECK_NICENESS = 10
_niced = threading.local()


def _niced_check(stored: str, password: str) -> tuple[bool, float]:
    """auth.password_matches on a pool thread, lowered in priority the first time; and
    how long it took (the thread's CPU is what a check costs, whatever else runs)."""
    if not getattr(_niced, "done", False):
        _niced.done = True
        try:
            os.setpriority(os.PRIO_PROCESS, 0, CHECK_NICENESS)  # this thread only, on Linux
        except (AttributeError, OSError):
            pass
    t0 = time.perf_counter()
    return auth.password_matches(stored, password), time.perf_counter() - t0


# How long a login may expect to wait for its password check before it is refused
# (``rate_limited``) rather than queued: a centre's clerks all log in at opening time, and
# waiting is better than being turned away (issue 22: 1,000 clerks of a province within
# one minute, none refused).
LOGIN_WAIT_S = 60.0


class PasswordChecks:
    """Password checks, at most ``size`` at once on threads of their own (so a flood of
    logins never takes the thread pool that the store uses). Logins beyond those wait their
    turn while the wait they can expect (those ahead of them, times a check's recent
    duration, over ``size``) is at most ``wait_s``; beyond that a login is answered
    ``rate_limited`` at once. A waiting login holds a request, not a check's 32 MiB.
    Without gevent (tests in one process) the check runs in the caller, bounded alike."""

    def __init__(self, size: int, use_gevent: bool, wait_s: float = LOGIN_WAIT_S):
        self.size = size
        self.wait_s = wait_s
        self.check_s = 0.2  # a check's duration, smoothed over the last ones
        self._pool = None
        if use_gevent:
            from gevent.threadpool import ThreadPool

            self._pool = ThreadPool(size)
        self._slots = threading.BoundedSemaphore(size)
        self._pending = 0
        self._lock = threading.Lock()

    def _full(self) -> bool:
        ahead = self._pending - self.size + 1  # the checks this one would wait for
        return ahead > 0 and ahead * self.check_s / self.size > self.wait_s

    def __call__(self, stored: str, password: str) -> bool:
        with self._lock:
            if self._full():
                raise QueueError("rate_limited", "rate_limited")
            self._pending += 1
        try:
            if self._pool is not None:
                matches, took = self._pool.apply(_niced_check, (stored, password))
            else:
                with self._slots:
                    t0 = time.perf_counter()
                    matches = auth.password_matches(stored, password)
                    took = time.perf_counter() - t0
            self.check_s += (took - self.check_s) / 8
            return matches
        finally:
            with self._lock:
                self._pending -= 1


class LoginGuard:
    """What the login route needs: the throttle and the bounded password checks."""

    def __init__(self, throttle: auth.LoginThrottle, check: PasswordChecks):
        self.throttle = throttle
        self.check = check


def install(app, sio, counts=None) -> LoginGuard:
    """Guard ``sio`` (python-socketio's server) and give ``app`` its login guard
    (``app.extensions["motcua.login"]``), with the settings of ``app.config``; the login
    throttle keeps its counts in ``counts`` (core/limits.py; this process's memory if None)."""
    s = settings(app.config)
    SocketGuard(sio, s["JOIN_TIMEOUT_S"], s["FRAME_RATE"], s["FRAME_BURST"], s["CLOSE_GRACE_S"])
    login = LoginGuard(
        auth.LoginThrottle(max_entries=s["LOGIN_THROTTLE_ENTRIES"], counts=counts),
        PasswordChecks(
            s["PASSWORD_CHECKS"],
            use_gevent=app.config.get("OFFLOAD") is not None,
            wait_s=s["LOGIN_WAIT_S"],
        ),
    )
    app.extensions["motcua.login"] = login
    return login
