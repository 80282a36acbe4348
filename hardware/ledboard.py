"""Counter LED number boards over serial lines: drivers behind one interface, and the line
that keeps every board on it showing what it should.

Two drivers, chosen per board in the agent's file (docs/hardware.md, "LED boards"):

- ``modbus``: Modbus RTU over RS-485, the common 7-segment boards. Function 06 (write
  single register) at the board's unit id: ``unit, 0x06, register (2 bytes), value
  (2 bytes), CRC-16/MODBUS (2 bytes, low byte first)``. The board echoes the request; an
  echo that does not match is logged and the value written again at the next refresh.
  The value is the ticket's digits as a number (A023 -> 23); pause and blank write the
  configured ``pause_value`` / ``blank_value``.
- ``framed``: a simple framed byte protocol for text boards, several on one line by
  address: ``STX (0x02), address, command, length, text (ASCII), checksum, ETX (0x03)``.
  Commands: ``N`` show a number, ``R`` show it again as a recall (boards blink), ``T``
  show a text (pause), ``C`` clear. The checksum is the XOR of address, command, length
  and text. Boards do not answer.

A ``BoardLine`` owns one serial port (any pyserial ``serial_for_url`` URL) and a thread: it
writes a board's state when it changes, every board's state again every ``refresh_s``
(a board that lost power shows the right number within that), and after a port error
closes the port and opens it again, retrying, then writes every board's state. Nothing
here blocks the caller: ``show`` only records what a board should show.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from hardware.serial_line import SerialLine, port_errors

log = logging.getLogger("motcua.ledboard")

STX, ETX = 0x02, 0x03
MAX_TEXT = 32


@dataclass(frozen=True)
class Shown:
    """What a board shows: ``kind`` is "number" (a ticket number), "recall" (the same,
    called again), "pause" (the counter paused: ``text`` is the pause text) or "blank"."""

    kind: str
    text: str = ""


BLANK = Shown("blank")


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (polynomial 0xA001 reflected, initial 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def modbus_write_register(unit: int, register: int, value: int) -> bytes:
    """A Modbus RTU "write single register" (function 06) request, CRC appended."""
    if not 1 <= unit <= 247:
        raise ValueError(f"Modbus unit id must be 1-247, not {unit}")
    if not 0 <= register <= 0xFFFF or not 0 <= value <= 0xFFFF:
        raise ValueError("register and value must fit in 16 bits")
    body = bytes([unit, 0x06, register >> 8, register & 0xFF, value >> 8, value & 0xFF])
    crc = crc16_modbus(body)
    return body + bytes([crc & 0xFF, crc >> 8])


def ascii_text(text: str) -> bytes:
    """A board's text in ASCII: Vietnamese letters lose their marks (Đ becomes D)."""
    text = text.replace("Đ", "D").replace("đ", "d")
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore")
    return plain[:MAX_TEXT]


def framed(address: int, command: str, text: str = "") -> bytes:
    """A frame of the simple framed protocol (see the module's docstring)."""
    if not 1 <= address <= 254:
        raise ValueError(f"a framed board's address must be 1-254, not {address}")
    payload = ascii_text(text)
    body = bytes([address, ord(command), len(payload)]) + payload
    check = 0
    for b in body:
        check ^= b
    return bytes([STX]) + body + bytes([check, ETX])


def ticket_value(number: str) -> int:
    """The digits of a ticket number as a board's value: "A023" -> 23 (at most 9999)."""
    digits = re.sub(r"\D", "", number)
    return int(digits[-4:]) if digits else 0


class Driver(Protocol):
    name: str

    def frame(self, shown: Shown) -> bytes: ...

    def reply(self, request: bytes) -> bytes | None:
        """The answer the board must give to ``request`` (None: it does not answer)."""


@dataclass(frozen=True)
class ModbusBoard:
    name: str
    unit: int
    register: int = 0
    pause_value: int = 0
    blank_value: int = 0

    def frame(self, shown: Shown) -> bytes:
        if shown.kind in ("number", "recall"):
            value = ticket_value(shown.text)
        elif shown.kind == "pause":
            value = self.pause_value
        else:
            value = self.blank_value
        return modbus_write_register(self.unit, self.register, value)

    def reply(self, request: bytes) -> bytes | None:
        return request  # function 06 is answered with its own echo


@dataclass(frozen=True)
class FramedBoard:
    name: str
    address: int

    def frame(self, shown: Shown) -> bytes:
        command = {"number": "N", "recall": "R", "pause": "T"}.get(shown.kind, "C")
        return framed(self.address, command, shown.text if command != "C" else "")

    def reply(self, request: bytes) -> bytes | None:
        return None


class BoardLine(SerialLine):
    """One serial line and the boards on it, kept showing their states by a thread."""

    def __init__(
        self,
        url: str,
        boards: list,
        *,
        baudrate: int = 9600,
        timeout: float = 0.5,
        refresh_s: float = 30.0,
        retry_s: float = 1.0,
    ):
        super().__init__(url, baudrate, timeout, timeout, log, "board line")
        self.boards = {b.name: b for b in boards}
        self.refresh_s = refresh_s
        self.retry_s = retry_s
        self.wanted: dict[str, tuple[int, Shown]] = {b.name: (0, BLANK) for b in boards}
        self.written: dict[str, int] = {}
        self.changed = threading.Condition()
        self.stopping = False
        self.thread: threading.Thread | None = None
        self.next_refresh = 0.0

    # -- what boards should show (any thread) ------------------------------------------
    def show(self, name: str, shown: Shown) -> None:
        """Board ``name`` should show ``shown``; a recall is written even if unchanged."""
        with self.changed:
            generation, before = self.wanted[name]
            if before == shown and shown.kind != "recall":
                return
            self.wanted[name] = (generation + 1, shown)
            self.changed.notify()

    def rewrite(self) -> None:
        """Every board written again, changed or not (after the server's snapshot: a
        board may have lost power, or been written by someone else, meanwhile)."""
        with self.changed:
            self.written.clear()
            self.changed.notify()

    def start(self) -> BoardLine:
        self.thread = threading.Thread(target=self.run, name=f"boards {self.url}", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        with self.changed:
            self.stopping = True
            self.changed.notify()
        if self.thread is not None:
            self.thread.join(timeout=5)
        self.close()

    # -- the line's thread ---------------------------------------------------------------
    def run(self) -> None:
        while True:
            with self.changed:
                while not self.stopping and not self._due():
                    self.changed.wait(timeout=max(0.05, self.next_refresh - time.monotonic()))
                if self.stopping:
                    return
                if time.monotonic() >= self.next_refresh:
                    self.written.clear()  # every board again
                    self.next_refresh = time.monotonic() + self.refresh_s
                todo = [
                    (name, generation, shown)
                    for name, (generation, shown) in self.wanted.items()
                    if self.written.get(name) != generation
                ]
            for name, generation, shown in todo:
                if self._write(self.boards[name], shown):
                    with self.changed:
                        self.written[name] = generation
                else:
                    with self.changed:
                        self.changed.wait(timeout=self.retry_s)
                    break

    def _due(self) -> bool:
        if time.monotonic() >= self.next_refresh:
            return True
        return any(self.written.get(n) != g for n, (g, _) in self.wanted.items())

    def opened(self) -> None:
        self.written.clear()  # a reopened line: every board again

    def _write(self, board, shown: Shown) -> bool:
        """Write one board's frame; False after a port error (the port is closed, to be
        opened again) or a wrong answer."""
        request = board.frame(shown)
        try:
            port = self.open()
            port.reset_input_buffer()  # whatever came before is no answer to this
            port.write(request)
            port.flush()
            expected = board.reply(request)
            if expected is None:
                return True
            answer = port.read(len(expected))
        except port_errors() as e:
            log.warning("board line %s: %s; opening it again", self.url, e)
            self.close()
            return False
        if answer != expected:
            log.warning(
                "board %s on %s answered %s instead of %s",
                board.name,
                self.url,
                answer.hex(" ") or "nothing",
                expected.hex(" "),
            )
            return False
        return True
