"""engine.io's websocket for gevent's WSGI server: RFC 6455's server side, read in the
connection's own greenlet and written through one :class:`Out`.

engine.io's gevent driver used simple-websocket, which parses and frames with wsproto
(pure Python, with h11 for the handshake), reads in a greenlet of its own that hands each
message over through an event, and duplicates the connection's socket: a reconnecting
hall spent about a quarter of the survivor's CPU there (issue 22), and each device held
two open files (a survivor of 10,000 devices ran out of them). This class does what
this protocol needs and nothing else:

- the handshake: version 13, no subprotocol, no extension (the server's frames are
  never compressed, gateway/frames.py writes them as they are);
- reading: masked frames, text or binary, fragmented or not, ping (answered), pong,
  close (answered, then the end); a message longer than ``max_message_size`` is refused
  from its header (1009) and never buffered; a protocol error closes with 1002, text that
  is not UTF-8 with 1007;
- pacing: each message read yields to the other greenlets first, so a client writing
  without pause cannot keep the server to itself (issue 11: /healthz silent for 75 s);
- one open file: the socket is pywsgi's own, closed by pywsgi when the connection ends;
- writing: every frame, engine.io's and gateway/frames.py's, through the socket's
  :class:`Out`, whole and in order.

engine.io calls it as ``WebSocket(handler, server)(environ, start_response)``; the
handler then calls ``wait()`` for each message and ``send()``/``close()``, as on
simple-websocket's wrapper.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections import deque

import gevent
import gevent.socket

from . import perimeter

log = logging.getLogger("motcua.websocket")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
READ_BYTES = 4096

# Close codes (RFC 6455 §7.4.1)
NORMAL = 1000
PROTOCOL_ERROR = 1002
INVALID_TEXT = 1007
TOO_BIG = 1009

# Opcodes
_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class Out:
    """The one way out of a websocket: whole frames, in the order they were written.

    sock: gevent's socket; the non-blocking socket under it is written directly, gevent's
      waits for a slow reader. A frame the kernel does not take whole, and everything
      after it, waits in the socket's own list, written by a greenlet of its own as the
      client reads.
    broken: nothing more is written (a write failed, or the close frame has gone).
    """

    __slots__ = ("sid", "raw", "fd", "waiting", "broken")

    def __init__(self, sid: str, sock):
        self.sid = sid
        self.raw = sock
        self.fd = sock._sock if isinstance(sock, gevent.socket.socket) else sock
        self.waiting: deque[bytes] | None = None  # frames behind a partial write
        self.broken = False

    def write(self, frame: bytes) -> None:
        if self.broken:
            return
        if self.waiting is not None:
            self.waiting.append(frame)
            return
        try:
            sent = self.fd.send(frame)  # nearly always whole: one syscall, no yield
        except BlockingIOError:
            sent = 0
        except OSError as e:
            self.broken = True
            log.info("writing to %s failed (%s); engine.io will close it", self.sid, e)
            return
        if sent < len(frame):
            self.waiting = deque([frame[sent:]])
            gevent.spawn(self._drain)

    def end(self, frame: bytes) -> None:
        """Write the close frame: the last, nothing is written after it (RFC 6455 §5.5.1)."""
        self.write(frame)
        self.broken = True

    def _drain(self) -> None:
        """Write what waits, as the client reads (``sendall`` yields until it can)."""
        waiting = self.waiting
        try:
            while waiting:
                self.raw.sendall(waiting.popleft())
        except OSError as e:
            self.broken = True
            log.info("writing to %s failed (%s); engine.io will close it", self.sid, e)
        finally:
            self.waiting = None


def frame(opcode: int, data: bytes) -> bytes:
    """A final, unmasked, uncompressed websocket frame (RFC 6455 §5.2)."""
    n = len(data)
    if n < 126:
        header = bytes((0x80 | opcode, n))
    elif n < 1 << 16:
        header = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return header + data


def text_frame(text: str) -> bytes:
    return frame(_TEXT, text.encode("utf-8"))


def binary_frame(data: bytes) -> bytes:
    return frame(_BINARY, bytes(data))


def close_frame(code: int, reason: str = "") -> bytes:
    return frame(_CLOSE, code.to_bytes(2, "big") + reason.encode("utf-8")[:120])


def unmask(data: bytes, mask: bytes) -> bytes:
    """A client's payload unmasked (RFC 6455 §5.3), as one big-integer XOR."""
    n = len(data)
    if not n:
        return b""
    key = (mask * ((n + 3) // 4))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def _may_echo(code: int) -> bool:
    """A close code a frame may carry (not 1004-1006, 1015: RFC 6455 §7.4)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def handshake_problem(environ) -> tuple[str, str, list[tuple[str, str]]] | None:
    """Why a request is no websocket handshake this server takes: (status, reason,
    headers), or None."""
    if environ.get("REQUEST_METHOD") != "GET":
        return "405 Method Not Allowed", "a websocket opens with GET", [("Allow", "GET")]
    if environ.get("HTTP_UPGRADE", "").lower() != "websocket":
        return "400 Bad Request", "no 'Upgrade: websocket' header", []
    tokens = [t.strip() for t in environ.get("HTTP_CONNECTION", "").lower().split(",")]
    if "upgrade" not in tokens:
        return "400 Bad Request", "no 'Connection: Upgrade' header", []
    if environ.get("HTTP_SEC_WEBSOCKET_VERSION", "").strip() != "13":
        version = [("Sec-WebSocket-Version", "13")]
        return "426 Upgrade Required", "websocket version 13 only", version
    try:
        key = base64.b64decode(environ.get("HTTP_SEC_WEBSOCKET_KEY", ""), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 16:
        return "400 Bad Request", "no valid Sec-WebSocket-Key header", []
    return None


def refuse(start_response, problem: tuple[str, str, list[tuple[str, str]]]) -> list[bytes]:
    """Answer a request that is no websocket handshake (``handshake_problem``'s answer)."""
    status, reason, headers = problem
    body = f"Not a websocket handshake: {reason}.\n".encode()
    return perimeter.refuse(start_response, status, body, "text/plain; charset=utf-8", headers)


def _pywsgi_socket(environ):
    """The connection's socket under gevent's pywsgi, and its buffered reader (which
    pywsgi gives as ``wsgi.input`` to a request asking for an upgrade); or (None, None)."""
    rfile = environ.get("wsgi.input")
    sock = getattr(getattr(rfile, "raw", None), "_sock", None)
    if isinstance(sock, gevent.socket.socket):
        return sock, rfile
    return None, None


class ProtocolError(Exception):
    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WebSocket:
    """One websocket connection, for engine.io (its ``_async["websocket"]`` under gevent).

    sock: gevent's socket of the connection, once the handshake is answered;
    out: its :class:`Out`; connected: until a close is sent or received, or the
    connection ends.
    """

    #: the longest message taken (bytes; None: no bound)
    max_message_size: int | None = None
    #: where a client breaking the protocol is told of (one line a connection)
    log: logging.Logger = log

    def __init__(self, handler, server):
        self.app = handler  # engine.io's handler; ``server`` (engine.io's) is not needed
        self.sock = None
        self.out: Out | None = None
        self.connected = False
        self._buf = bytearray()
        self._parts: list[bytes] | None = None  # a fragmented message's parts so far
        self._parts_opcode = _TEXT
        self._parts_len = 0

    def __call__(self, environ, start_response):
        problem = handshake_problem(environ)
        sock, rfile = _pywsgi_socket(environ)
        if problem is None and sock is None:
            problem = ("500 Internal Server Error", "no socket under this WSGI server", [])
        if problem is not None:
            return refuse(start_response, problem)
        accept = accept_key(environ["HTTP_SEC_WEBSOCKET_KEY"])
        try:
            sock.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n"
            )
        except OSError:
            return []
        self.sock = sock
        self.out = Out(environ.get("REMOTE_ADDR", "?"), sock)
        self.connected = True
        try:
            return self.app(self)
        finally:
            self.connected = False
            # No more requests on this connection: pywsgi sees its reader closed, ends the
            # connection and closes the socket (the one file a websocket holds).
            rfile.close()

    # -- engine.io's interface ----------------------------------------------------------
    def send(self, message) -> None:
        if not self.connected:
            raise OSError("the websocket is closed")
        self.out.write(text_frame(message) if isinstance(message, str) else binary_frame(message))

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Send a close frame (once), the last frame; the reader stops at what comes next
        (the client's answer, or the end of the connection)."""
        if self.connected:
            self.connected = False
            self.out.end(close_frame(code, reason))

    def wait(self):
        """The next message (str for text, bytes for binary), or None when the
        connection is closing or closed."""
        gevent.sleep(0)  # pacing: see the module's docstring
        try:
            while self.connected:
                message = self._next()
                if message is not None:
                    return message
                if not self.connected:
                    break
                try:
                    data = self.sock.recv(READ_BYTES)
                except OSError:
                    data = b""
                if not data:
                    self.connected = False
                    break
                self._buf += data
        except ProtocolError as e:
            self.log.info("closed websocket %s: %s", self.out.sid, e.reason)
            self.close(e.code, e.reason)
        return None

    # -- reading ------------------------------------------------------------------------
    def _next(self):
        """The next whole message in the buffer, or None (then more must be read, unless
        the connection is no longer ``connected``)."""
        buf = self._buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if b0 & 0x70:
                raise ProtocolError(PROTOCOL_ERROR, "reserved bits set (no extension agreed)")
            if not b1 & 0x80:
                raise ProtocolError(PROTOCOL_ERROR, "an unmasked frame from a client")
            at = 2
            if n == 126:
                if len(buf) < 4:
                    return None
                n, at = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    return None
                n, at = int.from_bytes(buf[2:10], "big"), 10
            final = b0 & 0x80
            if opcode >= 0x8:
                if not final or n > 125:
                    raise ProtocolError(PROTOCOL_ERROR, "a fragmented or long control frame")
            elif self.max_message_size is not None and (
                self._parts_len + n > self.max_message_size
            ):
                raise ProtocolError(TOO_BIG, "Message is too big")
            end = at + 4 + n
            if len(buf) < end:
                return None
            payload = unmask(bytes(buf[at + 4 : end]), bytes(buf[at : at + 4]))
            del buf[:end]
            if opcode >= 0x8:
                self._control(opcode, payload)
                if not self.connected:
                    return None
                continue
            if opcode == _CONTINUATION:
                if self._parts is None:
                    raise ProtocolError(PROTOCOL_ERROR, "a continuation with no message")
                self._parts.append(payload)
                self._parts_len += n
                if not final:
                    continue
                opcode, payload = self._parts_opcode, b"".join(self._parts)
                self._parts, self._parts_len = None, 0
            elif opcode in (_TEXT, _BINARY):
                if self._parts is not None:
                    raise ProtocolError(PROTOCOL_ERROR, "a new message inside a fragmented one")
                if not final:
                    self._parts, self._parts_opcode, self._parts_len = [payload], opcode, n
                    continue
            else:
                raise ProtocolError(PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
            if opcode == _BINARY:
                return payload
            try:
                return payload.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError(INVALID_TEXT, "a text message that is not UTF-8") from None
        return None

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == _PING:
            self.out.write(frame(_PONG, payload))
        elif opcode == _CLOSE:
            # Answered with its code (or 1000), and the connection is over for reading.
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else NORMAL
            if self.connected:
                self.connected = False
                self.out.end(close_frame(code if _may_echo(code) else NORMAL))
        # a pong answers nothing: engine.io's own pings keep the connection alive
