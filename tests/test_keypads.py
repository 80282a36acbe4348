"""Call keypads over real pty pairs: the exact bytes of both protocols, the keypad line's
reading (garbage, partial lines, bad checksums, repeats, a lost port), and presses
through the real agent and server becoming the clerk's calls, once, for the clerk on
duty, refused where the agent is not bound, dropped and signalled while the server is
down."""

from __future__ import annotations

import json
import logging
import os
import select
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from hardware.keypad import (
    BusDecoder,
    Display,
    KeypadLine,
    LineDecoder,
    Press,
    agent_frame,
    display_payload,
    press_frame,
)
from hardware.serial_line import pty_at

pytestmark = pytest.mark.timeout(120)


def test_frames_are_exact():
    # A press: start, address, key code, checksum; the sum of the frame is 0 mod 256.
    assert press_frame(3, "NEXT") == bytes([0xAA, 0x03, 0x01, (-(0xAA + 3 + 1)) & 0xFF])
    assert press_frame(3, "NEXT") == bytes.fromhex("aa 03 01 52")
    for key in ("RECALL", "START", "FINISH", "NOSHOW", "PAUSE", "RESUME"):
        assert sum(press_frame(99, key)) & 0xFF == 0
    # From the agent: start, address, command, length, payload, checksum.
    assert agent_frame(3, ord("A")) == bytes.fromhex("ab 03 41 00 11")
    assert agent_frame(3, ord("E"), b"\x01") == bytes.fromhex("ab 03 45 01 01 0b")
    payload = display_payload(Display("A023", 260, "open"))
    assert payload == b"A023  " + bytes([0x01, 0x04]) + b"O"
    frame = agent_frame(7, ord("D"), payload)
    assert frame[:4] == bytes([0xAB, 7, ord("D"), 9]) and sum(frame) & 0xFF == 0
    assert display_payload(Display("", 0, "paused")) == b"      \x00\x00P"
    assert display_payload(Display("B1023456", 70000, "closed"))[:8] == b"023456\xff\xff"
    with pytest.raises(ValueError):
        agent_frame(0, ord("A"))


def test_decoders_take_presses_and_reject_the_rest():
    line = LineDecoder(counters=[1, 2])
    presses, rejected = line.feed(b"1:NEXT\r\n2:RECALL\n", 0.0)
    assert presses == [Press(1, "NEXT"), Press(2, "RECALL")] and rejected == []
    assert presses[0].action == "call_next" and presses[1].action == "recall"
    presses, rejected = line.feed(b"\xff\xfegarbage\r\n3:NEXT\r\n1:FROB\r\n1:NO", 1.0)
    assert presses == [] and len(rejected) == 3
    # The rest of a line that came too late: the start was dropped as partial.
    presses, rejected = line.feed(b"SHOW\r\n", 2.0)
    assert presses == [] and len(rejected) == 2 and "partial" in rejected[0]
    assert line.feed(b"1:NOSHOW\r\n", 2.05)[0] == [Press(1, "NOSHOW")]
    assert line.answer(Press(1, "NEXT"), True, ticket="A001") == b"1:OK A001\r\n"
    assert line.answer(Press(1, "NEXT"), False, "queue_empty") == b"1:ERR QUEUE_EMPTY\r\n"
    assert line.display(1, Display("A001", 1, "open")) == {}

    bus = BusDecoder({1: 5, 2: 6})
    good = press_frame(1, "NEXT")
    bad = bytes([0xAA, 2, 1, 0x00])  # wrong checksum
    presses, rejected = bus.feed(b"\x00\x13" + good + bad + press_frame(2, "FINISH"), 0.0)
    assert presses == [Press(5, "NEXT", 1), Press(6, "FINISH", 2)]
    assert any("checksum" in r for r in rejected) and any("garbage" in r for r in rejected)
    assert bus.feed(press_frame(9, "NEXT"), 0.1) == ([], ["unknown address 9: aa 09 01 4c"])
    half = press_frame(2, "START")
    assert bus.feed(half[:2], 0.2) == ([], [])
    assert bus.feed(half[2:], 0.25)[0] == [Press(6, "START", 2)]
    assert set(bus.display(5, Display("A1", 0, "open"))) == {1}
    assert bus.answer(Press(5, "NEXT", 1), False, "OFFLINE") == agent_frame(1, ord("E"), b"\x01")


class FakeKeypad:
    """The keypad end of a real pty pair: the agent opens ``path`` (a symlink to the slave
    side); the test presses keys on the master side and reads what comes back.
    ``unplug`` and ``plug`` take the line away and bring a new one at the same path."""

    def __init__(self, path: Path):
        self.path = path
        self.received = b""
        self.cond = threading.Condition()
        self.running = False
        self.plug()

    def plug(self):
        self.master, self.slave = pty_at(self.path)
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def unplug(self):
        self.running = False
        self.thread.join(timeout=2)
        os.close(self.master)
        os.close(self.slave)

    def _read(self):
        while self.running:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(self.master, 256)
                except OSError:
                    return
                with self.cond:
                    self.received += data
                    self.cond.notify_all()

    def press(self, data: bytes):
        os.write(self.master, data)

    def mark(self) -> int:
        with self.cond:
            return len(self.received)

    def wait_for(self, data: bytes, after: int = 0, timeout: float = 15) -> int:
        """Wait until ``data`` comes (after byte ``after``); where it ends."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                at = self.received.find(data, after)
                if at >= 0:
                    return at + len(data)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{data!r} never came; got {self.received[after:]!r}")
                self.cond.wait(remaining)


@pytest.fixture
def keypads(tmp_path):
    made = []

    def make(name):
        k = FakeKeypad(tmp_path / name)
        made.append(k)
        return k

    yield make
    for k in made:
        if k.running:
            k.unplug()


def test_a_keypad_line_reads_presses_ignores_the_rest_and_survives_a_lost_port(keypads, caplog):
    caplog.set_level(logging.INFO, logger="motcua.keypad")
    wire = keypads("ttyKEYS")
    got: list[Press] = []
    line = KeypadLine(
        str(wire.path), LineDecoder(), lambda _line, p: got.append(p), retry_s=0.2
    ).start()
    try:
        _until(lambda: line.port is not None)  # opening a port flushes what came before
        wire.press(b"1:NEXT\r\n")
        _until(lambda: got == [Press(1, "NEXT")])
        # A burst of the same key (a bouncing contact, a held key): once.
        for _ in range(5):
            wire.press(b"1:RECALL\r\n")
            time.sleep(0.05)
        wire.press(b"\x00\xffnoise\r\n1:STA")  # garbage, then a partial line
        time.sleep(0.6)
        wire.press(b"RT\r\n2:START\r\n")
        _until(lambda: got[-1:] == [Press(2, "START")])
        assert got == [Press(1, "NEXT"), Press(1, "RECALL"), Press(2, "START")]
        _until(lambda: line.rejected == 3)
        assert "ignored" in caplog.text and "partial" in caplog.text
        line.send(b"1:OK\r\n")
        wire.wait_for(b"1:OK\r\n")

        # The adapter is pulled out and put back: the line opens again and reads on.
        wire.unplug()
        time.sleep(0.5)
        wire.plug()
        _until(lambda: "open again" in caplog.text, timeout=10)
        wire.press(b"1:FINISH\r\n")
        _until(lambda: got[-1:] == [Press(1, "FINISH")], timeout=10)
    finally:
        line.stop()


def _until(predicate, timeout: float = 5):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def _bus_display(address: int, number: str, waiting: int, status: str) -> bytes:
    return agent_frame(address, ord("D"), display_payload(Display(number, waiting, status)))


def test_presses_through_the_agent_call_once_for_the_clerk(
    tmp_path, sqlite_server, agent_factory, keypads, devices
):
    """A line keypad (counters 1 and 3; the agent is bound to 1 and 2) and a bus of two
    keypads (addresses 1 and 2: counters 1 and 2), through the real agent and server."""
    line_pad = keypads("ttyLINE")
    bus = keypads("ttyBUS")
    extra = (
        "board_refresh_s = 60\n"
        f'[[keypads]]\nurl = "{line_pad.path}"\nprotocol = "line"\ncounters = [1, 3]\n'
        f'[[keypads]]\nurl = "{bus.path}"\nprotocol = "bus"\naddresses = {{ 1 = 1, 2 = 2 }}\n'
    )
    agent = agent_factory(sqlite_server, "png:///dev/null", extra=extra).start()
    _until(lambda: agent.log.read_text(encoding="utf-8").count("keypad line") >= 2, 20)
    kiosk = devices.kiosk(sqlite_server)
    display = devices.display(sqlite_server)
    for _ in range(4):
        assert kiosk.call("issue", {"service": "TP"})["ok"]
    # Counter 2 has no clerk yet (closed): its keypad is refused, and told.
    bus.wait_for(_bus_display(2, "", 4, "closed"))
    n = bus.mark()
    bus.press(press_frame(2, "NEXT"))
    bus.wait_for(agent_frame(2, ord("E"), b"\x02"), after=n)

    clerk1 = devices.counter(sqlite_server, "clerk1", 1)
    bus.wait_for(_bus_display(1, "", 4, "open"))
    # A burst of NEXT on the line keypad: one call.
    n = line_pad.mark()
    for _ in range(5):
        line_pad.press(b"1:NEXT\r\n")
        time.sleep(0.05)
    line_pad.wait_for(b"1:OK A001\r\n", after=n)
    called = display.wait_event("change", kind="called")
    assert called["ticket"]["number"] == "A001" and called["counter"]["number"] == 1
    clerk1.wait_event("change", kind="called")
    bus.wait_for(_bus_display(1, "A001", 3, "open"))
    time.sleep(1.5)
    assert [e for n_, e in display.events if n_ == "change" and e["kind"] == "called"] == []
    assert line_pad.received[n:].count(b"1:OK") == 1

    # Garbage, a partial line and a bad checksum are ignored (and logged); what follows works.
    n = line_pad.mark()
    line_pad.press(b"\xff\xfe\x00garbage\r\n1:STA")
    time.sleep(0.6)
    line_pad.press(b"RT\r\n1:START\r\n")
    line_pad.wait_for(b"1:OK A001\r\n", after=n)
    display_started = clerk1.wait_event("change", kind="started")
    assert display_started["ticket"]["number"] == "A001"
    bus.press(bytes([0xAA, 1, 0x04, 0x00]))  # FINISH with a bad checksum: ignored
    time.sleep(0.5)
    assert clerk1.fresh_snapshot("counter_state")["current"]["status"] == "serving"
    # FINISH from the bus keypad: the visit is the clerk's.
    n = bus.mark()
    bus.press(press_frame(1, "FINISH"))
    bus.wait_for(agent_frame(1, ord("A")), after=n)
    finished = display.wait_event("change", kind="finished")
    assert finished["staff"] == {"full_name": "Nguyễn Văn A"}
    bus.wait_for(_bus_display(1, "", 3, "open"), after=n)
    log = agent.log.read_text(encoding="utf-8")
    assert "ignored" in log and "bad checksum" in log and "partial" in log

    # A counter the agent is not bound to is refused.
    n = line_pad.mark()
    line_pad.press(b"3:NEXT\r\n")
    line_pad.wait_for(b"3:ERR FORBIDDEN\r\n", after=n)

    # The bus drives two counters by address.
    clerk2 = devices.counter(sqlite_server, "clerk2", 2)
    bus.wait_for(_bus_display(2, "", 3, "open"))
    n = bus.mark()
    bus.press(press_frame(2, "NEXT"))
    bus.wait_for(agent_frame(2, ord("A")), after=n)
    assert clerk2.wait_event("change", kind="called")["ticket"]["number"] == "A002"
    bus.wait_for(_bus_display(2, "A002", 2, "open"), after=n)
    bus.press(press_frame(1, "NEXT"))
    assert display.wait_event("change", kind="called")["counter"]["number"] == 2
    called = display.wait_event("change", kind="called")
    assert called["counter"]["number"] == 1 and called["ticket"]["number"] == "A003"

    # The audit: the agent's device did it, for the clerk on duty.
    db = sqlite3.connect(tmp_path / "motcua.sqlite3")
    rows = db.execute(
        "SELECT action, actor, details FROM audit_log WHERE action IN ('called', 'finished')"
        " ORDER BY seq"
    ).fetchall()
    db.close()
    agent_id = rows[0][1]
    assert agent_id.startswith("device:")
    assert [(a, json.loads(d)["on_behalf_of"]["full_name"]) for a, _, d in rows] == [
        ("called", "Nguyễn Văn A"),
        ("finished", "Nguyễn Văn A"),
        ("called", "Trần Thị Bình"),
        ("called", "Nguyễn Văn A"),
    ]
    assert {actor for _, actor, _ in rows} == {agent_id}

    # The line keypad's adapter is pulled out and put back: presses work again.
    line_pad.unplug()
    time.sleep(1)
    line_pad.plug()
    time.sleep(1.5)
    n = line_pad.mark()
    line_pad.press(b"1:RECALL\r\n")
    line_pad.wait_for(b"1:OK A003\r\n", after=n)
    recalled = display.wait_event("change", kind="called")
    assert recalled["recall"] is True and recalled["ticket"]["number"] == "A003"

    # The server goes down: a press is dropped and the keypad told, at once.
    sqlite_server.stop()
    _until(lambda: "connection lost" in agent.log.read_text(encoding="utf-8"), 10)
    n, m = line_pad.mark(), bus.mark()
    line_pad.press(b"1:START\r\n")
    bus.press(press_frame(2, "START"))
    line_pad.wait_for(b"1:ERR OFFLINE\r\n", after=n, timeout=5)
    bus.wait_for(agent_frame(2, ord("E"), b"\x01"), after=m, timeout=5)
    # It comes back: the agent reconnects, and the dropped presses are not replayed.
    m = bus.mark()
    sqlite_server.start()
    clerk1 = devices.counter(sqlite_server, "clerk1", 1)
    _until(lambda: agent.log.read_text(encoding="utf-8").count("connected to") >= 2, 40)
    # Its snapshot writes both displays again (no refresh is due: board_refresh_s = 60).
    _until(lambda: all(bytes([0xAB, a, ord("D")]) in bus.received[m:] for a in (1, 2)), 5)
    time.sleep(1.5)
    state = clerk1.fresh_snapshot("counter_state")
    assert state["current"]["number"] == "A003" and state["current"]["status"] == "called"
    n = line_pad.mark()
    line_pad.press(b"1:START\r\n")
    line_pad.wait_for(b"1:OK A003\r\n", after=n)
    assert clerk1.wait_event("change", kind="started")["ticket"]["number"] == "A003"
