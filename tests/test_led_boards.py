"""Counter LED boards over real pty pairs: the exact bytes on the wire (Modbus RTU function
06 with its CRC, the framed protocol with addresses and checksums), a call reaching the
right board through the real agent and server, garbage on the line and a port that
goes away and comes back."""

from __future__ import annotations

import os
import select
import threading
import time
from pathlib import Path

import pytest

from hardware.ledboard import (
    BLANK,
    BoardLine,
    FramedBoard,
    ModbusBoard,
    Shown,
    crc16_modbus,
    framed,
    modbus_write_register,
)
from hardware.serial_line import pty_at

pytestmark = pytest.mark.timeout(90)


def crc_residue(frame: bytes) -> int:
    """A Modbus frame checked the way a receiver does, independently of how it was made:
    the CRC over the whole frame, its own CRC included (low byte first), is 0."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            lsb = crc & 1
            crc >>= 1
            if lsb:
                crc ^= 0xA001
    return crc


def test_modbus_frames_are_exact():
    # The Modbus specification's own example: write 3 to register 1 of unit 1.
    assert modbus_write_register(1, 1, 3) == bytes.fromhex("01 06 00 01 00 03 98 0b")
    frame = ModbusBoard("b", unit=17, register=0x10).frame(Shown("number", "A023"))
    assert frame[:6] == bytes([17, 0x06, 0x00, 0x10, 0x00, 23])
    assert crc_residue(frame) == 0
    assert crc16_modbus(frame[:6]) == frame[6] | frame[7] << 8
    # A recall writes the same value again; pause and blank their configured values.
    board = ModbusBoard("b", unit=2, pause_value=0xFFFE, blank_value=0xFFFF)
    assert board.frame(Shown("recall", "B1023"))[4:6] == (1023).to_bytes(2, "big")
    assert board.frame(Shown("pause", "TAM DUNG"))[4:6] == b"\xff\xfe"
    assert board.frame(BLANK)[4:6] == b"\xff\xff"
    for f in (board.frame(Shown("pause")), board.frame(BLANK)):
        assert crc_residue(f) == 0
    with pytest.raises(ValueError):
        modbus_write_register(0, 0, 1)


def test_framed_frames_are_exact():
    board = FramedBoard("b", address=3)
    # STX, address, command, length, text, XOR of address..text, ETX.
    check = 3 ^ ord("N") ^ 4 ^ ord("A") ^ ord("0") ^ ord("2") ^ ord("3")
    assert board.frame(Shown("number", "A023")) == b"\x02\x03N\x04A023" + bytes([check]) + b"\x03"
    assert board.frame(Shown("recall", "A023"))[2:3] == b"R"
    # Vietnamese text loses its marks: these boards have ASCII segments.
    assert board.frame(Shown("pause", "Tạm dừng")) == framed(3, "T", "Tam dung")
    assert board.frame(Shown("pause", "Tạm dừng"))[4:12] == b"Tam dung"
    assert board.frame(BLANK) == b"\x02\x03C\x00" + bytes([3 ^ ord("C")]) + b"\x03"


class FakeLine:
    """A serial line made of a real pty pair: the agent opens ``path`` (a symlink to the
    slave side, as udev names a USB adapter); the boards on it read the master side.
    ``unplug`` and ``plug`` take the line away and bring a new one at the same path."""

    def __init__(self, path: Path, protocol: str, garbage_for: bytes | None = None):
        self.path = path
        self.protocol = protocol
        self.garbage_for = garbage_for  # the first time this frame comes, answer nonsense
        self.frames: list[bytes] = []
        self.lock = threading.Lock()
        self.master = self.slave = None
        self.plug()

    def plug(self):
        self.master, self.slave = pty_at(self.path)
        self.running = True
        self.thread = threading.Thread(target=self._read, args=(self.master,), daemon=True)
        self.thread.start()

    def unplug(self):
        self.running = False
        self.thread.join(timeout=2)
        os.close(self.master)
        os.close(self.slave)

    def _read(self, fd):
        buffer = b""
        while self.running:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                buffer += os.read(fd, 256)
            except OSError:
                return
            buffer = self._frames(fd, buffer)

    def _frames(self, fd, buffer: bytes) -> bytes:
        while True:
            if self.protocol == "modbus":
                if len(buffer) < 8:
                    return buffer
                frame, buffer = buffer[:8], buffer[8:]
                assert crc_residue(frame) == 0, frame.hex(" ")
                if frame == self.garbage_for:  # a confused board answers nonsense once
                    self.garbage_for = None
                    os.write(fd, b"\xff\x00garbage!")
                else:
                    os.write(fd, frame)  # function 06 is answered with its echo
            else:
                start = buffer.find(b"\x02")
                if start < 0 or len(buffer) < start + 4:
                    return buffer
                n = buffer[start + 3]
                end = start + 4 + n + 2
                if len(buffer) < end:
                    return buffer
                frame, buffer = buffer[start:end], buffer[end:]
                check = 0
                for b in frame[1:-2]:
                    check ^= b
                assert frame[-1] == 0x03 and frame[-2] == check, frame.hex(" ")
            with self.lock:
                self.frames.append(frame)

    def shown(self) -> list[bytes]:
        with self.lock:
            return list(self.frames)

    def wait_for(self, frame: bytes, timeout: float = 10, after: int = 0) -> int:
        """Wait until ``frame`` arrives (after the first ``after`` frames); its index."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frames = self.shown()
            for i in range(after, len(frames)):
                if frames[i] == frame:
                    return i
            time.sleep(0.02)
        raise AssertionError(f"{frame.hex(' ')} never came; got {[f.hex(' ') for f in frames]}")


@pytest.fixture
def lines(tmp_path):
    made = []

    def make(name, protocol, **kw):
        line = FakeLine(tmp_path / name, protocol, **kw)
        made.append(line)
        return line

    yield make
    for line in made:
        if line.running:
            line.unplug()


def test_a_line_writes_each_change_survives_garbage_and_a_lost_port(lines):
    board = ModbusBoard("counter 5", unit=5)
    wire = lines("modbus0", "modbus", garbage_for=board.frame(Shown("number", "A023")))
    line = BoardLine(str(wire.path), [board], timeout=0.3, refresh_s=60, retry_s=0.2).start()
    try:
        line.show("counter 5", Shown("number", "A023"))
        want = board.frame(Shown("number", "A023"))
        # The first answer is garbage: the agent writes the frame again until echoed.
        first = wire.wait_for(want)
        wire.wait_for(want, after=first + 1)
        line.show("counter 5", Shown("recall", "A023"))  # a recall: the same value again
        count = len(wire.shown())
        wire.wait_for(want, after=count)
        line.show("counter 5", Shown("pause", "Tạm dừng"))
        wire.wait_for(board.frame(Shown("pause")))

        # The adapter is pulled out and put back (a new pty at the same path): the
        # board shows the right state again, without being told anything new.
        wire.unplug()
        line.show("counter 5", Shown("number", "A024"))
        time.sleep(0.5)
        wire.plug()
        wire.wait_for(board.frame(Shown("number", "A024")), timeout=10)
    finally:
        line.stop()


@pytest.fixture
def board_agent(tmp_path, sqlite_server, agent_factory, lines):
    """The real agent with three boards: counter 1 on a Modbus line (unit 1), counters
    1 and 2 on a framed line (addresses 7 and 2)."""
    modbus = lines("ttyMODBUS", "modbus")
    text = lines("ttyTEXT", "framed")
    extra = (
        "board_refresh_s = 2\n"
        f'[[boards]]\ncounter = 1\nurl = "{modbus.path}"\ndriver = "modbus"\nunit = 1\n'
        f'[[boards]]\ncounter = 1\nurl = "{text.path}"\ndriver = "framed"\nunit = 7\n'
        f'[[boards]]\ncounter = 2\nurl = "{text.path}"\ndriver = "framed"\nunit = 2\n'
        'pause_text = "Tạm dừng"\n'
    )
    agent = agent_factory(sqlite_server, "png:///dev/null", extra=extra).start()
    return agent, modbus, text


def test_calls_reach_the_right_boards_and_come_back_after_restarts(
    board_agent, sqlite_server, devices
):
    agent, modbus, text = board_agent
    kiosk = devices.kiosk(sqlite_server)
    clerk1 = devices.counter(sqlite_server, "clerk1", 1)
    clerk2 = devices.counter(sqlite_server, "clerk2", 2)
    for _ in range(3):
        assert kiosk.call("issue", {"service": "TP"})["ok"]
    # Counter 1 closed at first... opened by its clerk: blank until a call.
    unit1 = ModbusBoard("", unit=1)
    modbus.wait_for(unit1.frame(BLANK))
    text.wait_for(framed(7, "C"))

    first = clerk1.call("call_next", {})["ticket"]
    assert first["number"] == "A001"
    modbus.wait_for(modbus_write_register(1, 0, 1))
    text.wait_for(framed(7, "N", "A001"))
    second = clerk2.call("call_next", {})["ticket"]
    assert second["number"] == "A002"
    text.wait_for(framed(2, "N", "A002"))
    # Counter 2's call went to counter 2's board only.
    assert framed(7, "N", "A002") not in text.shown()
    assert modbus_write_register(1, 0, 2) not in modbus.shown()

    n = len(text.shown())
    assert clerk1.call("recall", {"ticket_id": first["id"]})["ok"]
    text.wait_for(framed(7, "R", "A001"), after=n)
    n = len(text.shown())
    assert clerk2.call("no_show", {"ticket_id": second["id"]})["ok"]
    text.wait_for(framed(2, "C"), after=n)
    answer = clerk2.call("pause", {"reason": "Họp"})
    assert answer["ok"], answer
    text.wait_for(framed(2, "T", "Tam dung"))

    # The agent restarts: every board shows the right state again.
    agent.stop()
    n_modbus, n_text = len(modbus.shown()), len(text.shown())
    agent.start()
    modbus.wait_for(modbus_write_register(1, 0, 1), after=n_modbus, timeout=20)
    text.wait_for(framed(7, "N", "A001"), after=n_text, timeout=20)
    text.wait_for(framed(2, "T", "Tam dung"), after=n_text, timeout=20)

    # The server restarts while a call is made just before: the boards catch up.
    sqlite_server.stop()
    sqlite_server.restart()
    clerk1 = devices.counter(sqlite_server, "clerk1", 1)
    assert clerk1.call("no_show", {"ticket_id": first["id"]})["ok"]
    assert clerk1.call("call_next", {})["ticket"]["number"] == "A003"
    modbus.wait_for(modbus_write_register(1, 0, 3), timeout=30)
    text.wait_for(framed(7, "N", "A003"), timeout=30)


def test_a_server_restart_writes_every_board_again(
    tmp_path, sqlite_server, agent_factory, lines, devices
):
    """Nothing changed while the server was away, and no periodic refresh is due (an
    hour): the snapshot after the reconnection writes every board again all the same."""
    modbus = lines("ttyMODBUS", "modbus")
    text = lines("ttyTEXT", "framed")
    extra = (
        "board_refresh_s = 3600\n"
        f'[[boards]]\ncounter = 1\nurl = "{modbus.path}"\ndriver = "modbus"\nunit = 1\n'
        f'[[boards]]\ncounter = 2\nurl = "{text.path}"\ndriver = "framed"\nunit = 2\n'
    )
    agent = agent_factory(sqlite_server, "png:///dev/null", extra=extra).start()
    kiosk = devices.kiosk(sqlite_server)
    clerk1 = devices.counter(sqlite_server, "clerk1", 1)
    assert kiosk.call("issue", {"service": "TP"})["ok"]
    assert clerk1.call("call_next", {})["ticket"]["number"] == "A001"
    modbus.wait_for(modbus_write_register(1, 0, 1))
    text.wait_for(framed(2, "C"))  # counter 2: closed, blank
    time.sleep(1)
    n_modbus, n_text = len(modbus.shown()), len(text.shown())

    sqlite_server.restart()
    deadline = time.monotonic() + 30
    while agent.log.read_text(encoding="utf-8").count("connected to") < 2:
        assert time.monotonic() < deadline, agent.log.read_text(encoding="utf-8")
        time.sleep(0.1)
    modbus.wait_for(modbus_write_register(1, 0, 1), after=n_modbus, timeout=5)
    text.wait_for(framed(2, "C"), after=n_text, timeout=5)
