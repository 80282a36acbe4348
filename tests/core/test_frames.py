"""The batch frame written straight to sockets is what python-socketio would send."""

from __future__ import annotations

import json

import engineio.packet
import socketio.packet

from gateway.frames import event_text, text_frame


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
