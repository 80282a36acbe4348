"""A network ticket printer stand-in, and a decoder for what it receives.

``FakeNetworkPrinter`` is a real TCP server on 127.0.0.1 (an ephemeral port, one thread
per connection) that records every byte and answers ESC/POS real-time status requests
(``DLE EOT n``) as a printer does, in the state it is set to. Status requests inside a
raster image are image data, not requests: like a printer, the stand-in parses the
stream and only answers requests between commands.

``decode_raster`` rebuilds every ``GS v 0`` image from recorded bytes, so a test can
compare what reached the "printer" with ``hardware.ticket.render`` pixel for pixel.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass

from PIL import Image

from hardware import escpos_codes as codes

MODES = ("ok", "near_end", "out", "offline", "cover_open", "silent")

# Commands the parser knows, by prefix: total length when fixed. GS V has two forms.
_FIXED = {
    b"\x1b@": 2,  # ESC @ initialise
    b"\x1b2": 2,  # ESC 2 default line spacing
    b"\x10\x04": 3,  # DLE EOT n real-time status
    b"\x10\x05": 3,  # DLE ENQ n real-time request
    b"\x1bd": 3,  # ESC d n print and feed n lines
    b"\x1bJ": 3,  # ESC J n print and feed n dots
    b"\x1ba": 3,  # ESC a n justification
    b"\x1b3": 3,  # ESC 3 n line spacing
    b"\x1b!": 3,  # ESC ! n print mode
    b"\x1bE": 3,  # ESC E n emphasis
    b"\x1b-": 3,  # ESC - n underline
    b"\x1bM": 3,  # ESC M n font
    b"\x1bt": 3,  # ESC t n code page
    b"\x1d!": 3,  # GS ! n character size
    b"\x1da": 3,  # GS a n automatic status back
}


@dataclass(frozen=True)
class Command:
    """One parsed command: ``kind`` is "status", "raster", "cut", "feed", "text", ..."""

    kind: str
    start: int
    end: int
    arg: int | None = None


class Incomplete(Exception):
    """The buffer ends inside a command."""


def next_command(data: bytes, pos: int) -> Command:
    """Parse the command starting at ``pos``; Incomplete if ``data`` ends inside it.

    Bytes outside ESC/GS/DLE/FS are text or LF and count one each. An unknown escape
    raises ValueError: a decoder that guessed lengths would report wrong images.
    """
    first = data[pos]
    if first not in (0x10, 0x1B, 0x1C, 0x1D):
        return Command("text", pos, pos + 1, first)
    if pos + 1 >= len(data):
        raise Incomplete
    prefix = data[pos : pos + 2]
    if prefix == b"\x1dv":  # GS v 0 m xL xH yL yH d1...dk
        if pos + 8 > len(data):
            raise Incomplete
        if data[pos + 2] not in (0x00, 0x30):
            raise ValueError(f"GS v followed by {data[pos + 2]:#x} at {pos}")
        xbytes, rows = struct.unpack_from("<HH", data, pos + 4)
        end = pos + 8 + xbytes * rows
        if end > len(data):
            raise Incomplete
        return Command("raster", pos, end, data[pos + 3])
    if prefix == b"\x1dV":  # GS V m, or GS V m n for m in 65, 66, 97, 98, 103, 104
        if pos + 3 > len(data):
            raise Incomplete
        m = data[pos + 2]
        end = pos + (4 if m in (65, 66, 97, 98, 103, 104) else 3)
        if end > len(data):
            raise Incomplete
        return Command("cut", pos, end, m)
    if prefix in _FIXED:
        end = pos + _FIXED[prefix]
        if end > len(data):
            raise Incomplete
        kind = {b"\x10\x04": "status", b"\x1bd": "feed", b"\x1bJ": "feed"}.get(prefix, "set")
        return Command(kind, pos, end, data[end - 1] if end - pos > 2 else None)
    raise ValueError(f"unknown ESC/POS command {prefix.hex(' ')} at byte {pos}")


def commands(data: bytes) -> list[Command]:
    """Every command in a complete recorded stream."""
    out, pos = [], 0
    while pos < len(data):
        try:
            cmd = next_command(data, pos)
        except Incomplete:
            raise ValueError(f"stream ends inside a command at byte {pos}") from None
        out.append(cmd)
        pos = cmd.end
    return out


def raster_image(data: bytes, cmd: Command) -> Image.Image:
    """The mode "1" image of one GS v 0 command (set bit = black dot)."""
    xbytes, rows = struct.unpack_from("<HH", data, cmd.start + 4)
    bits = data[cmd.start + 8 : cmd.end]
    # In mode "1" a set bit is white; on paper a set bit is a dot: invert.
    return Image.frombytes("1", (xbytes * 8, rows), bytes(b ^ 0xFF for b in bits))


def decode_raster(data: bytes) -> list[Image.Image]:
    """Every GS v 0 image in ``data``, in order (one per band the job was split into)."""
    return [raster_image(data, c) for c in commands(data) if c.kind == "raster"]


def decode_tickets(data: bytes) -> list[Image.Image]:
    """The bands of each job stacked into one image per cut: one image per ticket."""
    tickets: list[Image.Image] = []
    bands: list[Image.Image] = []
    for c in commands(data):
        if c.kind == "raster":
            bands.append(raster_image(data, c))
        elif c.kind == "cut" and bands:
            tickets.append(stack(bands))
            bands = []
    if bands:
        tickets.append(stack(bands))
    return tickets


def stack(images: list[Image.Image]) -> Image.Image:
    width = max(im.width for im in images)
    out = Image.new("1", (width, sum(im.height for im in images)), 1)
    y = 0
    for im in images:
        out.paste(im, (0, y))
        y += im.height
    return out


def status_answer(mode: str, n: int) -> bytes:
    """The byte a printer in ``mode`` answers to DLE EOT n (nothing when silent)."""
    if mode == "silent":
        return b""
    byte = codes.ANSWER_FIXED
    stopped = mode in ("out", "offline", "cover_open")
    if n == codes.PRINTER_STATUS and stopped:
        byte |= codes.OFFLINE
    elif n == codes.OFFLINE_CAUSE:
        byte |= {
            "cover_open": codes.COVER_OPEN,
            "out": codes.PAPER_END_STOP,
            "offline": codes.ERROR,
        }.get(mode, 0)
    elif n == codes.PAPER_SENSOR:
        byte |= {
            "near_end": codes.PAPER_NEAR_END,
            "out": codes.PAPER_NEAR_END | codes.PAPER_END,
        }.get(mode, 0)
    return bytes((byte,))


class FakeNetworkPrinter:
    """A printer on ``self.url`` in state ``mode`` (changeable while it runs).

    ``drop_after``: abort each connection (TCP reset) once it has received that many
    bytes, status requests included, as a printer that loses power or its network mid-job.
    ``connections`` holds the bytes received per connection, ``status_requests`` the n of
    every DLE EOT n it answered (or, when silent, ignored).
    """

    def __init__(self, mode: str = "ok", drop_after: int | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode, self.drop_after = mode, drop_after
        self.connections: list[bytearray] = []
        self.status_requests: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)
        self.port = self._server.getsockname()[1]
        self.url = f"tcp://127.0.0.1:{self.port}"
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def received(self) -> bytes:
        """Everything received, all connections in order."""
        with self._lock:
            return b"".join(bytes(c) for c in self.connections)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                record = bytearray()
                self.connections.append(record)
            t = threading.Thread(target=self._serve, args=(conn, record), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket, record: bytearray) -> None:
        conn.settimeout(0.05)
        # A status answer is one byte that must leave at once: without this, Nagle's
        # algorithm holds it while the previous answer waits for a delayed ACK.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        parsed = 0  # bytes of ``record`` already parsed into whole commands
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                if self.drop_after is not None:
                    chunk = chunk[: max(0, self.drop_after - len(record))]
                with self._lock:
                    record.extend(chunk)
                parsed = self._answer(conn, record, parsed)
                if self.drop_after is not None and len(record) >= self.drop_after:
                    # SO_LINGER 0: close with a reset, as a printer switched off would.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return

    def _answer(self, conn: socket.socket, record: bytearray, pos: int) -> int:
        data = bytes(record)
        while pos < len(data):
            try:
                cmd = next_command(data, pos)
            except Incomplete:
                break
            except ValueError:
                cmd = Command("unknown", pos, pos + 1)  # a printer skips what it can't parse
            if cmd.kind == "status":
                self.status_requests.append(cmd.arg)
                answer = status_answer(self.mode, cmd.arg)
                if answer:
                    try:
                        conn.sendall(answer)
                    except OSError:
                        pass
            pos = cmd.end
        return pos

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        for t in self._threads:
            t.join(timeout=2)

    def __enter__(self) -> FakeNetworkPrinter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
