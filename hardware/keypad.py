"""Counter call keypads over serial lines: decoders behind one interface, and the line
that reads them.

A clerk's call keypad has a key per counter action. Two protocols, chosen per keypad in
the agent's file (docs/hardware.md, "Call keypads"):

- ``line``: ASCII lines ``<counter>:<KEY>\\r\\n`` (``1:NEXT\\r\\n``), one keypad per port,
  no display. The agent answers each press with a line: ``<counter>:OK[ <ticket>]\\r\\n``
  when it was done, ``<counter>:ERR <CODE>\\r\\n`` when not (``OFFLINE``: the server is
  unreachable and the press was dropped; ``NOANSWER``; or the server's error code in
  capitals: ``CONFLICT``, ``QUEUE_EMPTY``, ``FORBIDDEN``...).
- ``bus``: several keypads on one RS-485 pair, by address (1-99), with a checksum.
  A press is 4 bytes, ``0xAA, address, key code, checksum``; the agent sends
  ``0xAB, address, command, length, payload, checksum``: ``A`` accepted (no payload),
  ``E`` error (1 byte: 1 offline, 2 refused, 3 no answer), ``D`` display (9 bytes: the
  current ticket number, 6 ASCII bytes padded with spaces; the number waiting for the
  counter's services, 2 bytes big-endian; the counter's status, ``O``pen, ``P``aused or
  ``C``losed). Every frame's checksum makes the sum of all its bytes 0 modulo 256.

Keys (both protocols) and the /counter event each one is:

    NEXT 0x01 call_next   RECALL 0x02 recall   START 0x03 start   FINISH 0x04 finish
    NOSHOW 0x05 no_show   PAUSE 0x06 pause     RESUME 0x07 resume

A ``KeypadLine`` owns one serial port (any pyserial ``serial_for_url`` URL) and a thread:
it reads, decodes, drops repeated keys (the same key of the same counter within
``debounce_s`` of the previous one: a bouncing contact, a held key, a keypad repeating an
unacknowledged frame), hands each press to a callback, writes what it is given to write,
and after a port error closes the port and opens it again, retrying. Garbage, partial
lines and bad checksums are ignored and logged (at most ``LOG_BURST`` lines a minute per
line, then counted). Nothing here talks to the server: the agent does (hardware/agent.py).

Try a keypad by hand on a pty: ``python -m hardware.keypad --simulate PTY`` (below).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from hardware.serial_line import SerialLine, port_errors, pty_at

log = logging.getLogger("motcua.keypad")

# key -> (bus key code, the counter action it is)
KEYS: dict[str, tuple[int, str]] = {
    "NEXT": (0x01, "call_next"),
    "RECALL": (0x02, "recall"),
    "START": (0x03, "start"),
    "FINISH": (0x04, "finish"),
    "NOSHOW": (0x05, "no_show"),
    "PAUSE": (0x06, "pause"),
    "RESUME": (0x07, "resume"),
}
KEY_OF_CODE = {code: key for key, (code, _) in KEYS.items()}

PRESS_START, AGENT_START = 0xAA, 0xAB
ACCEPTED, ERROR, DISPLAY = ord("A"), ord("E"), ord("D")
# Why a press was not done, as the bus's error frame says it.
ERR_OFFLINE, ERR_REFUSED, ERR_NOANSWER = 1, 2, 3
STATUS_BYTE = {"open": ord("O"), "paused": ord("P"), "closed": ord("C")}
MAX_ADDRESS = 99
NUMBER_WIDTH = 6

MAX_LINE = 32  # longer without an end of line: garbage
LINE_GAP_S = 0.3  # a keypad sends a line or a frame at once: bytes older than this are stale
LOG_BURST = 10  # rejected input logged per minute and line; the rest are counted


@dataclass(frozen=True)
class Press:
    counter: int
    key: str  # a key of KEYS
    address: int | None = None  # the bus address it came from

    @property
    def action(self) -> str:
        return KEYS[self.key][1]


@dataclass(frozen=True)
class Display:
    """What a keypad's display shows: the counter's current ticket, how many wait for its
    services, and its status ("open", "paused", "closed")."""

    number: str = ""
    waiting: int = 0
    status: str = "closed"


def checksum(body: bytes) -> int:
    """The byte that makes the sum of ``body`` and itself 0 modulo 256."""
    return -sum(body) & 0xFF


def press_frame(address: int, key: str) -> bytes:
    """A bus keypad's press frame (what a keypad sends)."""
    body = bytes([PRESS_START, address, KEYS[key][0]])
    return body + bytes([checksum(body)])


def agent_frame(address: int, command: int, payload: bytes = b"") -> bytes:
    """A frame from the agent to a bus keypad."""
    if not 1 <= address <= MAX_ADDRESS:
        raise ValueError(f"a keypad's bus address must be 1-{MAX_ADDRESS}, not {address}")
    body = bytes([AGENT_START, address, command, len(payload)]) + payload
    return body + bytes([checksum(body)])


def display_payload(shown: Display) -> bytes:
    number = shown.number.encode("ascii", "replace")[-NUMBER_WIDTH:].ljust(NUMBER_WIDTH)
    waiting = max(0, min(shown.waiting, 0xFFFF))
    return number + waiting.to_bytes(2, "big") + bytes([STATUS_BYTE.get(shown.status, 0x43)])


class Decoder(Protocol):
    """A keypad protocol: bytes in, presses out; what to write back."""

    counters: frozenset[int]  # the counters its keypads drive

    def feed(self, data: bytes, now: float) -> tuple[list[Press], list[str]]:
        """Presses decoded from ``data`` (appended to what came before) and why any
        input was rejected."""

    def idle(self, now: float) -> list[str]:
        """Nothing came for a while: a partial line or frame is dropped (why)."""

    def answer(self, press: Press, ok: bool, code: str = "", ticket: str | None = None) -> bytes:
        """What tells the keypad how its press went (``code``: why not)."""

    def display(self, counter: int, shown: Display) -> dict[object, bytes]:
        """Frames that make the counter's keypads show ``shown``, by keypad (empty: no
        display)."""


_LINE = re.compile(rb"^(\d{1,4}):([A-Z]{1,8})$")


class _Buffered:
    def __init__(self):
        self.buffer = b""
        self.last = 0.0

    def _take(self, data: bytes, now: float) -> list[str]:
        rejected = []
        if self.buffer and now - self.last > LINE_GAP_S:
            rejected.append(f"partial input dropped: {self.buffer!r}")
            self.buffer = b""
        if data:
            self.buffer += data
            self.last = now
        return rejected

    def idle(self, now: float) -> list[str]:
        return self._take(b"", now)


class LineDecoder(_Buffered):
    """``<counter>:<KEY>\\r\\n``; ``counters``: the counters this keypad may name (empty:
    any; the server refuses those the agent is not bound to)."""

    def __init__(self, counters=()):
        super().__init__()
        self.counters = frozenset(counters)

    def feed(self, data: bytes, now: float) -> tuple[list[Press], list[str]]:
        rejected = self._take(data, now)
        presses = []
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            line = line.rstrip(b"\r").strip()
            match = _LINE.match(line)
            if not match or match.group(2).decode() not in KEYS:
                rejected.append(f"not a key line: {line[:MAX_LINE]!r}")
                continue
            counter = int(match.group(1))
            if self.counters and counter not in self.counters:
                rejected.append(f"counter {counter} is not this keypad's")
                continue
            presses.append(Press(counter, match.group(2).decode()))
        if len(self.buffer) > MAX_LINE:
            rejected.append(f"line too long: {self.buffer[:MAX_LINE]!r}...")
            self.buffer = b""
        return presses, rejected

    def answer(self, press: Press, ok: bool, code: str = "", ticket: str | None = None) -> bytes:
        if ok:
            text = f"{press.counter}:OK" + (f" {ticket}" if ticket else "")
        else:
            text = f"{press.counter}:ERR {code.upper() or 'REFUSED'}"
        return text.encode("ascii", "replace") + b"\r\n"

    def display(self, counter: int, shown: Display) -> dict[object, bytes]:
        return {}


class BusDecoder(_Buffered):
    """Keypads on one RS-485 pair by address; ``addresses``: address -> counter."""

    def __init__(self, addresses: dict[int, int]):
        super().__init__()
        for a in addresses:
            if not 1 <= a <= MAX_ADDRESS:
                raise ValueError(f"a keypad's bus address must be 1-{MAX_ADDRESS}, not {a}")
        self.addresses = dict(addresses)
        self.counters = frozenset(addresses.values())

    def feed(self, data: bytes, now: float) -> tuple[list[Press], list[str]]:
        rejected = self._take(data, now)
        presses = []
        while self.buffer:
            start = self.buffer.find(bytes([PRESS_START]))
            if start < 0:
                rejected.append(f"garbage: {self.buffer.hex(' ')}")
                self.buffer = b""
                break
            if start > 0:
                rejected.append(f"garbage: {self.buffer[:start].hex(' ')}")
                self.buffer = self.buffer[start:]
            if len(self.buffer) < 4:
                break  # the rest of the frame is coming (or is stale soon)
            frame = self.buffer[:4]
            if sum(frame) & 0xFF:
                rejected.append(f"bad checksum: {frame.hex(' ')}")
                self.buffer = self.buffer[1:]  # look for the next start byte
                continue
            self.buffer = self.buffer[4:]
            address, code = frame[1], frame[2]
            if address not in self.addresses:
                rejected.append(f"unknown address {address}: {frame.hex(' ')}")
            elif code not in KEY_OF_CODE:
                rejected.append(f"unknown key code {code:#04x} from address {address}")
            else:
                presses.append(Press(self.addresses[address], KEY_OF_CODE[code], address))
        return presses, rejected

    def answer(self, press: Press, ok: bool, code: str = "", ticket: str | None = None) -> bytes:
        if ok:
            return agent_frame(press.address, ACCEPTED)
        why = {"OFFLINE": ERR_OFFLINE, "NOANSWER": ERR_NOANSWER}.get(code.upper(), ERR_REFUSED)
        return agent_frame(press.address, ERROR, bytes([why]))

    def display(self, counter: int, shown: Display) -> dict[object, bytes]:
        payload = display_payload(shown)
        return {
            address: agent_frame(address, DISPLAY, payload)
            for address, c in self.addresses.items()
            if c == counter
        }


class KeypadLine(SerialLine):
    """One serial line and the keypads on it, read by a thread.

    ``on_press(line, press)`` is called in the line's thread for each press that is not
    a repeat: it must not block (the agent queues it)."""

    def __init__(
        self,
        url: str,
        decoder: Decoder,
        on_press,
        *,
        baudrate: int = 9600,
        debounce_s: float = 1.0,
        refresh_s: float = 30.0,
        retry_s: float = 1.0,
    ):
        super().__init__(url, baudrate, 0.1, 1, log, "keypad line")
        self.decoder = decoder
        self.on_press = on_press
        self.debounce_s = debounce_s
        self.refresh_s = refresh_s
        self.retry_s = retry_s
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.wanted: dict[object, bytes] = {}  # keypad -> its display frame
        self.written: dict[object, bytes] = {}
        self.next_refresh = 0.0
        self.last_key: dict[tuple[int, str], float] = {}
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.log_window = (0.0, 0)  # (minute start, lines logged in it)
        self.unlogged = 0
        self.rejected = 0  # everything ignored, for tests and the curious

    # -- any thread -------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Write ``data`` to the line (soon, from its thread)."""
        if data:
            self.outbox.put(data)

    def show(self, counter: int, shown: Display) -> None:
        """The counter's keypads (those with a display) should show ``shown``."""
        with self.lock:
            self.wanted.update(self.decoder.display(counter, shown))

    def rewrite(self) -> None:
        """Every display written again, changed or not (after the server's snapshot)."""
        with self.lock:
            self.written.clear()

    def start(self) -> KeypadLine:
        self.thread = threading.Thread(target=self.run, name=f"keypads {self.url}", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        self.close()

    # -- the line's thread --------------------------------------------------------------
    def run(self) -> None:
        failing = False
        while not self.stopping.is_set():
            try:
                port = self.open()
                if failing:
                    log.info("keypad line %s open again", self.url)
                failing = False
                self._write_pending(port)
                data = port.read(1)
                if data and port.in_waiting:
                    data += port.read(port.in_waiting)
            except port_errors() as e:
                if not failing:
                    log.warning("keypad line %s: %s; opening it again", self.url, e)
                failing = True
                self.close()
                self.stopping.wait(self.retry_s)
                continue
            now = time.monotonic()
            if data:
                presses, rejected = self.decoder.feed(data, now)
            else:
                presses, rejected = [], self.decoder.idle(now)
            for why in rejected:
                self._reject(why)
            for press in presses:
                self._pressed(press, now)

    def _pressed(self, press: Press, now: float) -> None:
        key = (press.counter, press.key)
        last = self.last_key.get(key)
        self.last_key[key] = now
        if last is not None and now - last < self.debounce_s:
            log.info("keypad %s: %s %s repeated; ignored", self.url, press.counter, press.key)
            return
        log.info("keypad %s: counter %s %s", self.url, press.counter, press.key)
        self.on_press(self, press)

    def _reject(self, why: str) -> None:
        self.rejected += 1
        now = time.monotonic()
        start, count = self.log_window
        if now - start >= 60:
            if self.unlogged:
                log.warning("keypad line %s: %d more inputs ignored", self.url, self.unlogged)
            start, count, self.unlogged = now, 0, 0
        if count < LOG_BURST:
            log.warning("keypad line %s: ignored %s", self.url, why)
            count += 1
        else:
            self.unlogged += 1
        self.log_window = (start, count)

    def _write_pending(self, port) -> None:
        now = time.monotonic()
        with self.lock:
            if now >= self.next_refresh:
                self.written.clear()  # every display again
                self.next_refresh = now + self.refresh_s
            frames = [(k, f) for k, f in self.wanted.items() if self.written.get(k) != f]
        out = b""
        while not self.outbox.empty():
            out += self.outbox.get_nowait()
        for _, frame in frames:
            out += frame
        if out:
            port.write(out)
            port.flush()
        with self.lock:
            for k, f in frames:
                self.written[k] = f

    def opened(self) -> None:
        with self.lock:
            self.written.clear()  # a reopened line: every display again


def simulate(link: str, protocol: str, counter: int, address: int) -> int:
    """Be a keypad at the far end of a new pty pair whose near end is ``link`` (a symlink:
    the ``url`` of the agent's [[keypads]]): type a key (NEXT, RECALL... or N, R, S, F, X,
    P, U) and Enter; what the agent writes back is printed. POSIX only."""
    import os
    import select
    import sys
    from pathlib import Path

    short = {"N": "NEXT", "R": "RECALL", "S": "START", "F": "FINISH", "X": "NOSHOW"}
    short.update({"P": "PAUSE", "U": "RESUME"})
    path = Path(link)
    master, slave = pty_at(path)
    keys = ", ".join(f"{k} ({s})" for s, k in short.items())
    print(f"keypad ({protocol}) at {path} -> {os.ttyname(slave)}; keys: {keys}", flush=True)
    buffer = b""
    try:
        while True:
            ready, _, _ = select.select([master, sys.stdin], [], [])
            if master in ready:
                buffer += os.read(master, 256)
                if protocol == "line":
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        print("<", line.decode("ascii", "replace").strip(), flush=True)
                else:
                    while buffer and buffer[0] != AGENT_START:
                        buffer = buffer[1:]
                    while len(buffer) >= 5 and len(buffer) >= 5 + buffer[3]:
                        frame, buffer = buffer[: 5 + buffer[3]], buffer[5 + buffer[3] :]
                        print("<", describe(frame), flush=True)
            if sys.stdin in ready:
                raw = sys.stdin.readline()
                if not raw:
                    break
                key = short.get(raw.strip().upper(), raw.strip().upper())
                if key not in KEYS:
                    print("? keys:", keys, flush=True)
                elif protocol == "line":
                    os.write(master, f"{counter}:{key}\r\n".encode())
                else:
                    os.write(master, press_frame(address, key))
    except KeyboardInterrupt:
        pass
    finally:
        path.unlink(missing_ok=True)
    return 0


def describe(frame: bytes) -> str:
    """An agent's bus frame in words."""
    if len(frame) < 5 or sum(frame) & 0xFF:
        return f"bad frame {frame.hex(' ')}"
    address, command, payload = frame[1], frame[2], frame[4:-1]
    if command == ACCEPTED:
        return f"{address}: accepted"
    if command == ERROR:
        why = {ERR_OFFLINE: "offline", ERR_NOANSWER: "no answer"}.get(payload[0], "refused")
        return f"{address}: ERROR ({why})"
    if command == DISPLAY:
        number = payload[:NUMBER_WIDTH].decode("ascii", "replace").strip() or "-"
        waiting = int.from_bytes(payload[NUMBER_WIDTH : NUMBER_WIDTH + 2], "big")
        return f"{address}: shows {number}, {waiting} waiting, {chr(payload[-1])}"
    return f"{address}: command {command:#04x} {payload.hex(' ')}"


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m hardware.keypad", description="Drive the agent's keypad line by hand."
    )
    p.add_argument(
        "--simulate", metavar="PATH", required=True, help="where the agent's end appears (url)"
    )
    p.add_argument("--protocol", choices=("line", "bus"), default="line")
    p.add_argument("--counter", type=int, default=1, help="line protocol: the counter")
    p.add_argument("--address", type=int, default=1, help="bus protocol: the address")
    a = p.parse_args(argv)
    return simulate(a.simulate, a.protocol, a.counter, a.address)


if __name__ == "__main__":
    raise SystemExit(main())
