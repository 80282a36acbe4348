"""Websocket frames written straight to the socket, in order, by whoever sends them.

python-socketio encodes a room's message once, but engine.io then queues it for each
socket, wakes that socket's writer greenlet and frames it again (then with wsproto, pure
Python): about 100 µs per socket when batches come one at a time, the main cost of the
fan-out (docs/performance.md). A server-to-client text frame without compression is the
same bytes for every client, so a batch is framed once and written to each socket of its
room directly.

The same holds for a clerk's acknowledgement, and there it matters more: engine.io
queued the ack behind a wake-up of the socket's writer greenlet, which the hub ran only
after the whole batch of the same commit had been written to 650 displays, so a clerk
heard of their own call ~45 ms after the first display did (issue 19). Acks and events
to one client now leave from the greenlet that produces them, at once.

Every write to a websocket, engine.io's own writer's included, goes through one
:class:`Out` per socket, which keeps them whole and in order: it writes with one
non-blocking ``send`` (never yielding inside a write); a frame the kernel does
not take whole, and everything after it, waits in the socket's own list, written by a
greenlet of its own as the client reads. A message still in engine.io's queue (a ping,
anything sent before the websocket was ready) is never overtaken: while that queue holds
something, messages go behind it through engine.io as usual.
"""

from __future__ import annotations

import json
import os

import engineio.packet
import engineio.socket
import gevent

from .websocket import Out, text_frame

# Sockets written between two yields of a wave (see FrameSender); a send is 13-23 µs here.
WAVE_CHUNK = int(os.environ.get("MOTCUA_WAVE_CHUNK", "100"))


def _install_socket_hook() -> None:
    """Tell each engine.io socket its websocket's :class:`Out` (gateway/websocket.py,
    which writes engine.io's own frames through it too: pings, queued packets)."""
    original = engineio.socket.Socket._websocket_handler
    if getattr(original, "_motcua", False):
        return

    def handler(self, ws, *args, **kwargs):
        # gateway/websocket.py's websocket has one; another class (engine.io's, outside
        # gevent) keeps engine.io's own way of writing, and no message is written directly.
        out = getattr(ws, "out", None)
        if out is not None:
            out.sid = self.sid
        self._motcua_out = out
        try:
            return original(self, ws, *args, **kwargs)
        finally:
            self._motcua_out = None

    handler._motcua = True
    engineio.socket.Socket._websocket_handler = handler


def event_text(namespace: str, event: str, data) -> str:
    """The engine.io text of a Socket.IO event without acknowledgement or binary data:
    engine.io MESSAGE (4), Socket.IO EVENT (2), the namespace, the JSON array."""
    body = json.dumps([event, data], separators=(",", ":"), ensure_ascii=False)
    return f"42{namespace}," + body if namespace != "/" else "42" + body


def direct_out(sock) -> Out | None:
    """The socket's :class:`Out` if a message may be written to it now without
    overtaking anything engine.io still holds for it, else None."""
    if sock is None:
        return None
    out = getattr(sock, "_motcua_out", None)
    if (
        out is None
        or out.broken
        or not sock.upgraded
        or sock.upgrading
        or sock.closed
        or sock.queue.qsize()
    ):
        return None
    return out


class FrameSender:
    """``send(namespace, room, data)`` for the hub: emits the ``changes`` event to a room.

    Also makes every other text message of ``sio`` to one websocket (acks above all,
    then events to one client) leave at once from its sender's greenlet.

    sio: the python-socketio server (``SocketIO.server``).
    """

    def __init__(self, sio, event: str = "changes"):
        _install_socket_hook()
        self.sio = sio
        self.event = event
        self._install_direct_packets(sio)

    def __call__(self, namespace: str, room: str, data) -> None:
        sio = self.sio
        text = event_text(namespace, self.event, data)
        eio_pkt = frame = None
        sockets = sio.eio.sockets
        # The room's members as they are now (python-socketio copies them), written
        # WAVE_CHUNK at a time: between chunks other greenlets run, so a clerk's event
        # that arrives during a wave to hundreds of boards is read, handed to its
        # transaction and acknowledged then, not after the last board (issue 19).
        for i, (_sid, eio_sid) in enumerate(sio.manager.get_participants(namespace, room)):
            if i and not i % WAVE_CHUNK:
                gevent.sleep(0)
            out = direct_out(sockets.get(eio_sid))
            if out is not None:
                if frame is None:
                    frame = text_frame(text)
                out.write(frame)
                continue
            if eio_pkt is None:
                eio_pkt = engineio.packet.Packet(engineio.packet.MESSAGE, text[1:])
            sio._send_eio_packet(eio_sid, eio_pkt)

    @staticmethod
    def _install_direct_packets(sio) -> None:
        """Acks (``_send_packet``) and events to one client (``_send_eio_packet``) are
        written by the greenlet that sends them when the socket is idle."""
        send_packet, send_eio_packet = sio._send_packet, sio._send_eio_packet
        sockets = sio.eio.sockets

        def direct_packet(eio_sid, pkt):
            out = direct_out(sockets.get(eio_sid))
            if out is not None:
                encoded = pkt.encode()
                if isinstance(encoded, str):  # no binary attachments
                    out.write(text_frame("4" + encoded))
                    return
            send_packet(eio_sid, pkt)

        def direct_eio_packet(eio_sid, eio_pkt):
            out = direct_out(sockets.get(eio_sid))
            if (
                out is not None
                and eio_pkt.packet_type == engineio.packet.MESSAGE
                and not eio_pkt.binary
            ):
                out.write(text_frame(eio_pkt.encode()))
                return
            send_eio_packet(eio_sid, eio_pkt)

        sio._send_packet = direct_packet
        sio._send_eio_packet = direct_eio_packet
