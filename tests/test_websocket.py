"""The server's websocket (gateway/websocket.py) against a client by hand: the handshake,
frames of every shape a client may send, the ways a client breaks the protocol, and one
open file per connection."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from gateway.guard import MAX_MESSAGE_BYTES
from harness.centre import KIOSK, KIOSK_B
from harness.rawws import (
    client_frame,
    closed_within,
    connect_raw,
    handshake,
    join,
    raw_websocket,
    read_frame,
)

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def _head_lines(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}


def _close_code(sock) -> int | None:
    """Read until the server's close frame: its code (None: the connection ended first)."""
    while True:
        frame = read_frame(sock)
        if frame is None:
            return None
        if frame[0] == CLOSE:
            return int.from_bytes(frame[1][:2], "big")


def test_the_handshake_answers_rfc_6455_and_refuses_bad_ones_with_a_reason(sqlite_server):
    key = base64.b64encode(os.urandom(16)).decode()
    sock = connect_raw(sqlite_server)
    head, rest = handshake(
        sock, {"Sec-WebSocket-Key": key, "Sec-WebSocket-Extensions": "permessage-deflate"}
    )
    assert head.startswith(b"HTTP/1.1 101 "), head
    headers = _head_lines(head)
    expected = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    assert headers["sec-websocket-accept"] == base64.b64encode(expected).decode()
    assert headers["upgrade"].lower() == "websocket"
    # No extension is agreed: the server's frames are never compressed.
    assert "sec-websocket-extensions" not in headers
    opened = read_frame(sock, rest)
    assert opened[0] == TEXT and opened[1].startswith(b"0{")
    sock.close()

    refused = {
        "no key": ({"Sec-WebSocket-Key": None}, "400", "Sec-WebSocket-Key"),
        "a short key": ({"Sec-WebSocket-Key": "c2hvcnQ="}, "400", "Sec-WebSocket-Key"),
        "no Connection: Upgrade": ({"Connection": "keep-alive"}, "400", "Connection: Upgrade"),
        "version 8": ({"Sec-WebSocket-Version": "8"}, "426", "version 13"),
    }
    for name, (headers, status, words) in refused.items():
        sock = connect_raw(sqlite_server)
        head, body = handshake(sock, headers)
        assert head.startswith(f"HTTP/1.1 {status} ".encode()), (name, head)
        while len(body) < int(_head_lines(head)["content-length"]):
            body += sock.recv(4096)
        assert words in body.decode(), (name, body)
        if status == "426":
            assert _head_lines(head)["sec-websocket-version"] == "13"
        sock.close()


def test_fragments_pings_and_the_close_handshake(sqlite_server):
    """A message in three fragments with a ping between them is one message (the kiosk
    joins with it); a ping is answered with its payload; a close is answered with its
    code and the connection ends."""
    sock = raw_websocket(sqlite_server)
    join = f'40/kiosk,{{"token":"{KIOSK}"}}'
    sock.sendall(client_frame(join[:5], final=False))
    sock.sendall(client_frame(b"hello", opcode=PING))
    assert read_frame(sock) == (PONG, b"hello")
    sock.sendall(client_frame(join[5:12].encode(), opcode=CONTINUATION, final=False))
    sock.sendall(client_frame(join[12:].encode(), opcode=CONTINUATION))
    while True:
        frame = read_frame(sock)
        assert frame is not None and frame[0] == TEXT, frame
        assert not frame[1].startswith(b"44/kiosk,"), frame
        if frame[1].startswith(b"40/kiosk,"):
            break
    sock.sendall(client_frame((4000).to_bytes(2, "big") + b"bye", opcode=CLOSE))
    assert _close_code(sock) == 4000
    assert read_frame(sock) is None, "the server keeps the connection after the close"
    sock.close()


BROKEN = {
    "an unmasked frame": (client_frame("40/kiosk,", masked=False), 1002),
    "a reserved bit": (client_frame("40/kiosk,", rsv=4), 1002),
    "a continuation of nothing": (client_frame(b"x", opcode=CONTINUATION), 1002),
    "a new message inside a fragmented one": (
        client_frame("4", final=False) + client_frame("0/kiosk,"),
        1002,
    ),
    "an unknown opcode": (client_frame(b"x", opcode=0x3), 1002),
    "a long ping": (client_frame(b"p" * 126, opcode=PING), 1002),
    "text that is not UTF-8": (client_frame(b"40\xff\xfe", opcode=TEXT), 1007),
    # Only the header: the server refuses it from there, it waits for nothing more.
    "a message past the limit": (client_frame(b"", length=MAX_MESSAGE_BYTES + 1), 1009),
    "fragments past the limit": (
        client_frame("4" * 1000, final=False)
        + client_frame(b"", opcode=CONTINUATION, length=MAX_MESSAGE_BYTES - 999),
        1009,
    ),
}


@pytest.mark.parametrize("name", BROKEN)
def test_frames_breaking_the_protocol_close_with_their_code(sqlite_server, name):
    frames, code = BROKEN[name]
    sock = raw_websocket(sqlite_server)
    sock.sendall(frames)
    assert _close_code(sock) == code
    sock.close()


def test_a_websocket_is_one_open_file_in_its_process(sqlite_server):
    """A province's survivor holds 10,000 devices: two files each would not fit a limit of
    20,000 (simple-websocket kept a duplicate of every connection's socket)."""
    fds = Path(f"/proc/{sqlite_server.pid}/fd")

    def files() -> int:
        return len(os.listdir(fds))

    first = raw_websocket(sqlite_server)  # whatever a first connection opens for good
    before = files()
    socks = [raw_websocket(sqlite_server) for _ in range(40)]
    opened = files() - before
    for sock in [first, *socks]:
        sock.close()
    # A file or two of the process's own may open or close meanwhile; two per websocket
    # would be 80.
    assert 36 <= opened <= 44, f"40 websockets hold {opened} open files"


def test_a_client_that_stops_answering_pings_is_closed_and_one_that_answers_is_not(
    guarded_server,
):
    """engine.io's pings with MOTCUA_PING_*: a device that went away without closing is let
    go (its writer waits for no packet longer than a ping's interval and timeout), a live
    one stays."""
    srv = guarded_server(MOTCUA_PING_INTERVAL_S=1, MOTCUA_PING_TIMEOUT_S=1)
    silent, alive = raw_websocket(srv), raw_websocket(srv)
    join(silent, "/kiosk", {"token": KIOSK})
    join(alive, "/kiosk", {"token": KIOSK_B})
    pings = []

    def answer():
        while True:
            try:
                frame = read_frame(alive)
            except OSError:
                return
            if frame is None or frame[0] == CLOSE:
                return
            if frame[1] == b"2":
                pings.append(time.monotonic())
                alive.sendall(client_frame("3"))

    answering = threading.Thread(target=answer, daemon=True)
    answering.start()
    # A ping after 1 s, unanswered after 2 s; the sweep comes within 5 s more.
    assert closed_within(silent, 10), "a client answering no ping was kept"
    closed_at = time.monotonic()
    time.sleep(2.5)
    assert answering.is_alive(), "the client answering its pings was closed"
    assert [t for t in pings if t > closed_at], "no ping since: the connection is dead"
    alive.close()
