"""A websocket client by hand, for tests that send what a library will not: frames of
every shape (fragmented, unmasked, oversized, control), garbage, floods."""

from __future__ import annotations

import base64
import json
import os
import socket
import time

from harness.process import HOST

_BUFFERS: dict[int, bytes] = {}  # bytes read past a frame, per socket
PATH = "/socket.io/?EIO=4&transport=websocket"


def connect_raw(server, source: str | None = None, timeout: float = 5) -> socket.socket:
    sock = socket.create_connection(
        (HOST, server.port), timeout=timeout, source_address=(source, 0) if source else None
    )
    sock.settimeout(timeout)
    return sock


def handshake(sock: socket.socket, headers: dict[str, str] | None = None) -> tuple[bytes, bytes]:
    """Ask engine.io for a websocket; the server's answer head and what followed it.
    ``headers`` replace the standard ones (a value of None leaves that header out)."""
    standard = {
        "Host": HOST,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    standard.update(headers or {})
    lines = "".join(f"{k}: {v}\r\n" for k, v in standard.items() if v is not None)
    sock.sendall(f"GET {PATH} HTTP/1.1\r\n{lines}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"closed during the handshake: {head!r}"
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    return head, rest


def raw_websocket(server, source: str | None = None) -> socket.socket:
    """A websocket to engine.io (no namespace joined), past its OPEN packet."""
    sock = connect_raw(server, source)
    head, rest = handshake(sock)
    assert head.startswith(b"HTTP/1.1 101"), head
    opened = read_frame(sock, rest)
    assert opened and opened[1].startswith(b"0{"), opened
    return sock


def read_frame(sock: socket.socket, buf: bytes = b"") -> tuple[int, bytes] | None:
    """One frame from the server as (opcode, payload); None when the connection ended."""
    buf = _BUFFERS.pop(id(sock), b"") + buf

    def need(n):
        nonlocal buf
        while len(buf) < n:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                _BUFFERS[id(sock)] = buf
                raise
            if not chunk:
                raise EOFError
            buf += chunk
        out, buf = buf[:n], buf[n:]
        return out

    try:
        b0, b1 = need(2)
        assert not b1 & 0x80, "a server's frame is never masked"
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(need(2), "big")
        elif n == 127:
            n = int.from_bytes(need(8), "big")
        frame = b0 & 0x0F, need(n)
    except (EOFError, ConnectionError):
        return None
    _BUFFERS[id(sock)] = buf
    return frame


def client_frame(
    payload: str | bytes,
    opcode: int | None = None,
    final: bool = True,
    masked: bool = True,
    rsv: int = 0,
    length: int | None = None,
) -> bytes:
    """A client frame: masked text for str, binary for bytes, unless told otherwise;
    ``length`` claims another payload length than the payload's."""
    data = payload.encode() if isinstance(payload, str) else payload
    if opcode is None:
        opcode = 0x1 if isinstance(payload, str) else 0x2
    n = len(data) if length is None else length
    b0 = (0x80 if final else 0) | rsv << 4 | opcode
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((b0, mask_bit | n))
    elif n < 1 << 16:
        head = bytes((b0, mask_bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, mask_bit | 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + data
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server ends the connection (a close frame or EOF) within ``seconds``."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                frame = read_frame(sock)
            except TimeoutError:
                return False
            if frame is None or frame[0] == 0x8:
                return True
        return False
    except OSError:
        return True
    finally:
        _BUFFERS.pop(id(sock), None)
        sock.close()


def join(sock: socket.socket, namespace: str, auth: dict) -> None:
    sock.sendall(client_frame(f"40{namespace}," + json.dumps(auth)))
    while True:
        frame = read_frame(sock)
        assert frame is not None, "closed instead of joining"
        if frame[1].startswith(f"40{namespace},".encode()):
            return
        assert not frame[1].startswith(f"44{namespace},".encode()), frame
