"""The batch frame written straight to sockets is what python-socketio would send."""

from __future__ import annotations

import json

import engineio.packet
import socketio.packet

from gateway.frames import event_text
from gateway.websocket import text_frame


def test_event_text_decodes_as_the_same_socketio_event():
    data = {"after": 1, "seq": 2, "events": [{"kind": "called", "counter": {"name": "Quầy 1"}}]}
    text = event_text("/display", "changes", data)
    eio = engineio.packet.Packet(encoded_packet=text)
    assert eio.packet_type == engineio.packet.MESSAGE
    pkt = socketio.packet.Packet(encoded_packet=eio.data)
    assert pkt.packet_type == socketio.packet.EVENT and pkt.namespace == "/display"
    assert pkt.data == ["changes", data]
    assert "Quầy" in text  # UTF-8, not \\u escapes: smaller frames for Vietnamese


def test_text_frames_carry_their_length_for_every_size():
    for n in (0, 125, 126, 65535, 65536):
        payload = "x" * n
        frame = text_frame(payload)
        assert frame[0] == 0x81  # FIN, text, unmasked
        if n < 126:
            assert frame[1] == n and frame[2:] == payload.encode()
        elif n < 65536:
            assert frame[1] == 126 and int.from_bytes(frame[2:4], "big") == n
        else:
            assert frame[1] == 127 and int.from_bytes(frame[2:10], "big") == n
    assert json.loads(text_frame('{"a":1}')[2:]) == {"a": 1}


def _read_frames(data: bytes) -> list[bytes]:
    frames, pos = [], 0
    while pos < len(data):
        n, hl = data[pos + 1] & 0x7F, 2
        if n == 126:
            n, hl = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
        elif n == 127:
            n, hl = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
        assert data[pos] == 0x81
        frames.append(data[pos + hl : pos + hl + n])
        pos += hl + n
    return frames


def test_frames_a_slow_reader_cannot_take_at_once_arrive_whole_and_in_order():
    """A socket whose buffer fills: the rest of a frame, and every frame written after it,
    wait in the socket's own list and leave in order as the reader reads; writing never
    blocks the writer."""
    import socket as stdlib_socket

    import gevent
    import gevent.socket

    from gateway.websocket import Out, text_frame

    a, b = gevent.socket.socketpair()
    a.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, 4096)
    out = Out("sid", a)
    sent = [f"{i:05d}:" + "x" * (i % 7 * 3000) for i in range(300)]
    for text in sent:
        out.write(text_frame(text))  # returns at once: nothing here yields
    assert out.waiting, "the buffer should have filled (the test would not test anything)"

    received = bytearray()

    def reader():
        while len(received) < sum(len(text_frame(t)) for t in sent):
            gevent.sleep(0.001)  # a slow reader
            received.extend(b.recv(65536))

    gevent.spawn(reader).join(timeout=30)
    assert [f.decode() for f in _read_frames(bytes(received))] == sent
    assert out.waiting is None and not out.broken
    a.close()
    b.close()


def test_a_wave_to_many_sockets_lets_other_greenlets_run_between_chunks():
    """A clerk's event that arrives while a batch is written to hundreds of boards is
    handled (and acknowledged) during the wave, within WAVE_CHUNK sockets, not after the
    last board."""
    from types import SimpleNamespace

    import gevent

    from gateway import frames

    written: list[str] = []

    class Recorder:
        broken = False

        def __init__(self, sid):
            self.sid = sid

        def write(self, frame):
            written.append(self.sid)

    n = 5 * frames.WAVE_CHUNK + 7
    sockets = {
        f"e{i}": SimpleNamespace(
            _motcua_out=Recorder(f"e{i}"),
            upgraded=True,
            upgrading=False,
            closed=False,
            queue=SimpleNamespace(qsize=lambda: 0),
        )
        for i in range(n)
    }
    sio = SimpleNamespace(
        eio=SimpleNamespace(sockets=sockets),
        manager=SimpleNamespace(
            get_participants=lambda ns, room: iter([(f"s{i}", f"e{i}") for i in range(n)])
        ),
        _send_packet=None,
        _send_eio_packet=None,
    )
    send = frames.FrameSender(sio)
    ran_after: list[int] = []
    gevent.spawn(lambda: ran_after.append(len(written)))  # ready before the wave starts
    send("/display", "room", {"after": 1, "seq": 2})
    assert len(written) == n
    assert ran_after and 0 < ran_after[0] <= frames.WAVE_CHUNK
