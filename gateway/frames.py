"""One websocket frame per batch, written straight to every socket of its room.

python-socketio encodes a room's message once, but engine.io then queues it for each
socket, wakes that socket's writer greenlet and frames it again with wsproto (pure
Python): about 100 µs per socket when batches come one at a time, the main cost of the
fan-out (docs/performance.md). A server-to-client text frame without compression is the
same bytes for every client, so this frames a batch once and writes those bytes to each
idle socket directly. A socket with packets still queued (a snapshot, an ack, an earlier
batch) or not on a websocket gets the batch through engine.io as usual, behind them, so
each socket still receives its messages in order.
"""

from __future__ import annotations

import json
import logging

import engineio.packet
import engineio.socket

log = logging.getLogger("motcua.frames")


def _remember_websocket() -> None:
    """Let each engine.io socket keep its websocket (engine.io keeps it only in a local)."""
    original = engineio.socket.Socket._websocket_handler
    if getattr(original, "_motcua", False):
        return

    def handler(self, ws, *args, **kwargs):
        self._motcua_ws = ws
        try:
            return original(self, ws, *args, **kwargs)
        finally:
            self._motcua_ws = None

    handler._motcua = True
    engineio.socket.Socket._websocket_handler = handler


def text_frame(text: str) -> bytes:
    """A final, unmasked, uncompressed websocket text frame (RFC 6455 §5.2)."""
    data = text.encode("utf-8")
    n = len(data)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 1 << 16:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + data


def event_text(namespace: str, event: str, data) -> str:
    """The engine.io text of a Socket.IO event without acknowledgement or binary data:
    engine.io MESSAGE (4), Socket.IO EVENT (2), the namespace, the JSON array."""
    body = json.dumps([event, data], separators=(",", ":"), ensure_ascii=False)
    return f"42{namespace}," + body if namespace != "/" else "42" + body


class FrameSender:
    """``send(namespace, room, data)`` for the hub: emits the ``changes`` event to a room.

    sio: the python-socketio server (``SocketIO.server``).
    """

    def __init__(self, sio, event: str = "changes"):
        _remember_websocket()
        self.sio = sio
        self.event = event

    def __call__(self, namespace: str, room: str, data) -> None:
        sio = self.sio
        text = event_text(namespace, self.event, data)
        eio_pkt = frame = None
        sockets = sio.eio.sockets
        for _sid, eio_sid in list(sio.manager.get_participants(namespace, room)):
            sock = sockets.get(eio_sid)
            ws = getattr(sock, "_motcua_ws", None)
            if (
                ws is not None
                and sock.upgraded
                and not sock.upgrading
                and not sock.closed
                and sock.queue.empty()
                and ws.ws.connected
            ):
                if frame is None:
                    frame = text_frame(text)
                try:
                    raw = ws.ws.sock
                    sent = raw.send(frame)  # nearly always whole: one syscall, no yield
                    if sent < len(frame):
                        raw.sendall(frame[sent:])
                except OSError as e:
                    log.info("writing to %s failed (%s); engine.io will close it", eio_sid, e)
                continue
            if eio_pkt is None:
                eio_pkt = engineio.packet.Packet(engineio.packet.MESSAGE, text[1:])
            sio._send_eio_packet(eio_sid, eio_pkt)
