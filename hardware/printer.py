"""Ticket printers behind one URL: open, ask the status, print a raster ticket, report.

Why a URL: a centre's configuration names its printer in one string, whatever the cable.

- ``tcp://host[:port]``   network printer, raw port 9100 by default
- ``serial:<pyserial URL>`` ``serial:/dev/ttyUSB0?baudrate=19200``, ``serial:socket://h:p``,
  ``serial:loop://`` (anything ``serial.serial_for_url`` opens)
- ``usb://VID:PID``       USB printer through python-escpos and pyusb (libusb)
- ``file:///path``        appends the raw ESC/POS bytes (a device node or a capture file)
- ``png:///dir``          virtual printer for the demo: one PNG per ticket in ``dir``
- ``cups://queue``        a raw job through ``lp -d queue -o raw``

Status is the printer's own real-time answer (``DLE EOT 1/2/4``, see
``hardware.escpos_codes``) wherever the link can read. No answer in time is "unknown",
never "fine": a kiosk must not promise a ticket it has no reason to believe printed.

Everything here blocks (sockets, serial ports, libusb), so it runs in the hardware agent
or a print worker thread, never in the server's gevent loop. Each step (connect, one
status question, one chunk of the job) waits at most about ``timeout`` seconds.
A ``Printer`` is not thread-safe; open one per job (``print_ticket`` does).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from PIL import Image

from hardware import escpos_codes as codes

__all__ = [
    "PrintError",
    "PrintOutcome",
    "Printer",
    "PrinterStatus",
    "UNKNOWN",
    "open_printer",
    "print_ticket",
]

CODES = ("unreachable", "offline", "out_of_paper", "io_error", "unsupported")
CHUNK = 4096  # bytes per write: a stalled printer is noticed within one timeout


@dataclass(frozen=True)
class PrinterStatus:
    """What the printer said about itself. None / "unknown": it did not say."""

    online: bool | None
    paper: str  # "ok" | "near_end" | "out" | "unknown"
    cover_open: bool | None = None
    error: bool | None = None

    @property
    def known(self) -> bool:
        return self.online is not None or self.paper != "unknown"


UNKNOWN = PrinterStatus(online=None, paper="unknown")
VIRTUAL_OK = PrinterStatus(online=True, paper="ok", cover_open=False, error=False)


class PrintError(Exception):
    """A printer failure with a machine-readable ``code`` (see ``CODES``)."""

    def __init__(self, code: str, message: str):
        if code not in CODES:
            raise ValueError(f"unknown PrintError code {code!r}")
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------- links
class Link(Protocol):
    """A byte pipe to a printer. ``read`` returns b"" when nothing came in time."""

    can_read: bool

    def write(self, data: bytes) -> None: ...
    def read(self, timeout: float) -> bytes: ...
    def drain(self) -> None: ...
    def close(self) -> None: ...


class _TcpLink:
    can_read = True

    def __init__(self, host: str, port: int, timeout: float):
        self.timeout = timeout
        self.where = f"{host}:{port}"
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as e:
            raise PrintError("unreachable", f"no answer from {self.where} in {timeout:g} s") from e
        except OSError as e:
            raise PrintError("unreachable", f"cannot connect to {self.where}: {e}") from e
        # Status questions are 3 bytes each; Nagle's algorithm would hold one back while
        # the end of a job or the previous question waits for a delayed ACK.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        self.sock.settimeout(self.timeout)
        try:
            for i in range(0, len(data), CHUNK):
                self.sock.sendall(data[i : i + CHUNK])
        except TimeoutError as e:
            raise PrintError("io_error", f"{self.where} stopped accepting data") from e
        except OSError as e:
            raise PrintError("io_error", f"connection to {self.where} lost: {e}") from e

    def read(self, timeout: float) -> bytes:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(64)
        except TimeoutError:
            return b""
        except OSError as e:
            raise PrintError("io_error", f"connection to {self.where} lost: {e}") from e
        if not data:
            raise PrintError("io_error", f"{self.where} closed the connection")
        return data

    def drain(self) -> None:
        while self.read(0.001):
            pass

    def close(self) -> None:
        self.sock.close()


class _SerialLink:
    can_read = True
    # Options accepted after "?" on a device path (pyserial URLs carry their own).
    OPTIONS = {
        "baudrate": int,
        "bytesize": int,
        "parity": str,
        "stopbits": float,
        "rtscts": lambda v: v.lower() in ("1", "true", "yes"),
        "xonxoff": lambda v: v.lower() in ("1", "true", "yes"),
        "dsrdtr": lambda v: v.lower() in ("1", "true", "yes"),
    }

    def __init__(self, target: str, timeout: float):
        import serial

        self.timeout = timeout
        self.where = target
        options = {}
        if "://" not in target and "?" in target:
            target, query = target.split("?", 1)
            for key, value in parse_qsl(query, keep_blank_values=True):
                if key not in self.OPTIONS:
                    known = ", ".join(self.OPTIONS)
                    raise PrintError("unsupported", f"unknown serial option {key!r} ({known})")
                try:
                    options[key] = self.OPTIONS[key](value)
                except ValueError as e:
                    raise PrintError("unsupported", f"bad serial option {key}={value!r}") from e
        try:
            self.port = serial.serial_for_url(
                target, timeout=timeout, write_timeout=timeout, **options
            )
        except ValueError as e:
            raise PrintError("unsupported", f"bad serial port {target!r}: {e}") from e
        except (OSError, serial.SerialException) as e:
            raise PrintError("unreachable", f"cannot open serial port {target!r}: {e}") from e
        self.errors = (OSError, serial.SerialException)

    def write(self, data: bytes) -> None:
        """Write in small chunks, each allowed its time on the wire plus ``timeout``.

        A ticket is some 40-75 kB: 80 s at 9600 baud, 7 s at 115200. Input is dropped
        before each chunk: nothing a printer sends mid-job is an answer we wait for, and a
        loopback port would otherwise fill up with its own echo. (Before, not after: an
        answer to a status question written here must survive.)
        """
        import serial

        chunk = 1024
        try:
            self.port.write_timeout = self.timeout + 10 * chunk / self.port.baudrate
            for i in range(0, len(data), chunk):
                self.port.reset_input_buffer()
                self.port.write(data[i : i + chunk])
        except serial.SerialTimeoutException as e:
            raise PrintError("io_error", f"{self.where} stopped accepting data") from e
        except self.errors as e:
            raise PrintError("io_error", f"serial port {self.where} failed: {e}") from e

    def read(self, timeout: float) -> bytes:
        try:
            self.port.timeout = max(timeout, 0.001)
            return self.port.read(1)
        except self.errors as e:
            raise PrintError("io_error", f"serial port {self.where} failed: {e}") from e

    def drain(self) -> None:
        try:
            self.port.reset_input_buffer()
        except self.errors as e:
            raise PrintError("io_error", f"serial port {self.where} failed: {e}") from e

    def close(self) -> None:
        self.port.close()


class UsbDevice(Protocol):
    """What the USB link needs from a device: bulk out, bulk in with a timeout, close.

    ``open_usb_device`` gives one backed by python-escpos and pyusb; tests put a double
    behind this same interface (there is no USB printer on a build machine).
    """

    def write(self, data: bytes, timeout_ms: int) -> None: ...
    def read(self, size: int, timeout_ms: int) -> bytes: ...
    def close(self) -> None: ...


class _EscposUsbDevice:
    """A python-escpos ``Usb`` printer (which finds the device, detaches the kernel
    driver and configures it) with timeouts on both endpoints."""

    def __init__(self, vendor: int, product: int, in_ep: int, out_ep: int):
        import usb.core
        from escpos.exceptions import DeviceNotFoundError
        from escpos.printer import Usb

        self._usb = usb.core
        self.printer = Usb(vendor, product, in_ep=in_ep, out_ep=out_ep)
        name = f"{vendor:04x}:{product:04x}"
        try:
            self.printer.open()
        except usb.core.NoBackendError as e:
            raise PrintError(
                "unsupported", "pyusb finds no libusb: install it (apt install libusb-1.0-0)"
            ) from e
        except DeviceNotFoundError as e:
            raise PrintError(
                "unreachable",
                f"USB printer {name} not found, or no permission to open it (a udev rule "
                f"giving the agent's user access is needed): {e}",
            ) from e
        self.device, self.in_ep, self.out_ep = self.printer.device, in_ep, out_ep

    def write(self, data: bytes, timeout_ms: int) -> None:
        self.device.write(self.out_ep, data, timeout_ms)

    def read(self, size: int, timeout_ms: int) -> bytes:
        try:
            return bytes(self.device.read(self.in_ep, size, timeout_ms))
        except self._usb.USBTimeoutError:
            return b""

    def close(self) -> None:
        self.printer.close()


def open_usb_device(vendor: int, product: int, in_ep: int, out_ep: int) -> UsbDevice:
    """The real USB opener. Replaced by a test double in tests (module attribute)."""
    from escpos.printer import Usb

    if not Usb.is_usable():
        raise PrintError(
            "unsupported",
            "USB printers need pyusb and libusb: pip install pyusb and "
            "apt install libusb-1.0-0 (or connect the printer by network or serial)",
        )
    return _EscposUsbDevice(vendor, product, in_ep, out_ep)


usb_opener = open_usb_device


class _UsbLink:
    can_read = True

    def __init__(self, vendor: int, product: int, in_ep: int, out_ep: int, timeout: float):
        self.timeout_ms = max(1, int(timeout * 1000))
        self.where = f"USB {vendor:04x}:{product:04x}"
        try:
            self.device = usb_opener(vendor, product, in_ep, out_ep)
        except PrintError:
            raise
        except Exception as e:  # pyusb: USBError (access denied, busy) and the like
            raise PrintError("unreachable", f"cannot open {self.where}: {e}") from e

    def _guard(self, what, *args):
        try:
            return what(*args)
        except PrintError:
            raise
        except Exception as e:  # pyusb raises USBError (an OSError) and a few others
            raise PrintError("io_error", f"{self.where} failed: {e}") from e

    def write(self, data: bytes) -> None:
        for i in range(0, len(data), CHUNK):
            self._guard(self.device.write, data[i : i + CHUNK], self.timeout_ms)

    def read(self, timeout: float) -> bytes:
        return self._guard(self.device.read, 64, max(1, int(timeout * 1000)))

    def drain(self) -> None:
        while self.read(0.01):
            pass

    def close(self) -> None:
        self.device.close()


class _FileLink:
    """Appends to a file: a capture for inspection, or a device node such as the kernel's
    USB printer class driver (``file:///dev/usb/lp0``). Nothing to read back."""

    can_read = False

    def __init__(self, path: Path):
        self.where = str(path)
        try:
            self.file = open(path, "ab")  # noqa: SIM115 (held for the printer's life)
        except OSError as e:
            raise PrintError("unreachable", f"cannot open {path}: {e}") from e

    def write(self, data: bytes) -> None:
        try:
            self.file.write(data)
            self.file.flush()
        except OSError as e:
            raise PrintError("io_error", f"cannot write {self.where}: {e}") from e

    def read(self, timeout: float) -> bytes:
        return b""

    def drain(self) -> None:
        pass

    def close(self) -> None:
        self.file.close()


class _CupsLink:
    """One raw job per write through ``lp``: CUPS owns the device, no status comes back."""

    can_read = False

    def __init__(self, queue: str, timeout: float):
        self.lp = shutil.which("lp")
        if self.lp is None:
            raise PrintError(
                "unsupported", "cups:// needs the lp command (apt install cups-client)"
            )
        self.queue, self.timeout = queue, timeout

    def write(self, data: bytes) -> None:
        cmd = [self.lp, "-d", self.queue, "-o", "raw", "-t", "motcua ticket"]
        try:
            done = subprocess.run(cmd, input=data, capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as e:
            raise PrintError("io_error", f"lp did not finish in {self.timeout:g} s") from e
        except OSError as e:
            raise PrintError("io_error", f"cannot run lp: {e}") from e
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
            raise PrintError("io_error", f"lp -d {self.queue} refused the job: {why}")

    def read(self, timeout: float) -> bytes:
        return b""

    def drain(self) -> None:
        pass

    def close(self) -> None:
        pass


# -------------------------------------------------------------------------- printers
class Printer:
    """An open printer. Use as a context manager, or call ``close``.

    ``last_path`` is where the last job went when that is a file (``png://``, ``file://``),
    else None.
    """

    def __init__(self, url: str, timeout: float):
        self.url, self.timeout = url, timeout
        self.last_path: Path | None = None

    def status(self) -> PrinterStatus:
        return UNKNOWN

    def print_image(self, image: Image.Image) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Printer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EscposPrinter(Printer):
    """A printer spoken to in ESC/POS bytes over some ``Link``."""

    def __init__(self, url: str, timeout: float, link: Link, path: Path | None = None):
        super().__init__(url, timeout)
        self.link, self.path = link, path

    def status(self) -> PrinterStatus:
        """Ask DLE EOT 1, 2 and 4, each answer awaited up to ``timeout``.

        A printer that does not answer the first question is not asked the others: the
        answer is "unknown" after one timeout, not three. (The first answer may be slow
        after a job: the printer reads the question only after the job's bytes.) Raises
        PrintError("io_error") when the connection itself is gone.
        """
        if not self.link.can_read:
            return UNKNOWN
        printer = self._ask(codes.PRINTER_STATUS)
        if printer is None:
            return UNKNOWN
        offline = self._ask(codes.OFFLINE_CAUSE)
        paper = self._ask(codes.PAPER_SENSOR)
        bits = codes.decode_status(printer, offline, paper)
        return PrinterStatus(bits.online, bits.paper, bits.cover_open, bits.error)

    def _ask(self, n: int) -> int | None:
        deadline = time.monotonic() + self.timeout
        self.link.drain()  # a late answer to an earlier question must not count as this one
        self.link.write(codes.status_query(n))
        while (left := deadline - time.monotonic()) > 0:
            for byte in self.link.read(left):
                if codes.is_status_answer(byte):
                    return byte
        return None

    def print_image(self, image: Image.Image) -> None:
        self.link.write(codes.job_bytes(image))
        self.last_path = self.path

    def close(self) -> None:
        self.link.close()


class PngPrinter(Printer):
    """The demo's virtual printer: each ticket becomes ``ticket-<date>-<time>-<number>-<n>.png``,
    named by the centre's date and time of issue when the image carries them (``render``
    puts them in ``image.info["ticket"]``), by this machine's clock otherwise."""

    _counter = itertools.count(1)

    def __init__(self, url: str, timeout: float, directory: Path):
        super().__init__(url, timeout)
        self.directory = directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PrintError("unreachable", f"cannot create {directory}: {e}") from e

    def status(self) -> PrinterStatus:
        return VIRTUAL_OK

    def print_image(self, image: Image.Image) -> None:
        stamp = image.info.get("ticket") or datetime.now().strftime("%Y%m%d-%H%M%S")
        while True:
            path = self.directory / f"ticket-{stamp}-{next(self._counter):04d}.png"
            try:
                with open(path, "xb") as f:  # never overwrite an earlier ticket
                    image.save(f, format="PNG")
                break
            except FileExistsError:
                continue
            except OSError as e:
                raise PrintError("io_error", f"cannot write {path}: {e}") from e
        self.last_path = path


# ------------------------------------------------------------------------------- open
SCHEMES = (
    "tcp://host[:port], serial:<pyserial URL>, usb://VID:PID, file:///path, png:///dir, "
    "cups://queue"
)


def _unsupported(url: str, why: str) -> PrintError:
    return PrintError("unsupported", f"bad printer URL {url!r}: {why} (supported: {SCHEMES})")


def _local_path(url: str, parts) -> Path:
    if parts.netloc not in ("", "localhost") or not parts.path:
        raise _unsupported(url, "expected an absolute path, e.g. file:///var/lib/motcua/x")
    return Path(unquote(parts.path))


def open_printer(url: str, timeout: float = 5.0) -> Printer:
    """Open the printer a URL names; PrintError("unsupported") says what is wrong with it."""
    if not isinstance(url, str) or not url.strip():
        raise _unsupported(str(url), "empty")
    url = url.strip()
    if url.startswith("serial:"):
        target = url[len("serial:") :]
        if not target:
            raise _unsupported(url, "no serial port after serial:")
        return EscposPrinter(url, timeout, _SerialLink(target, timeout))
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "tcp":
        try:
            host, port = parts.hostname, parts.port or 9100
        except ValueError as e:
            raise _unsupported(url, f"bad port ({e})") from e
        if not host or parts.path not in ("", "/"):
            raise _unsupported(url, "expected tcp://host[:port]")
        return EscposPrinter(url, timeout, _TcpLink(host, port, timeout))
    if scheme == "usb":
        vendor, product, in_ep, out_ep = _usb_ids(url, parts)
        return EscposPrinter(url, timeout, _UsbLink(vendor, product, in_ep, out_ep, timeout))
    if scheme == "file":
        path = _local_path(url, parts)
        return EscposPrinter(url, timeout, _FileLink(path), path=path)
    if scheme == "png":
        return PngPrinter(url, timeout, _local_path(url, parts))
    if scheme == "cups":
        queue = parts.netloc
        if not queue or not all(c.isalnum() or c in "-_." for c in queue):
            raise _unsupported(url, "expected cups://QUEUE (letters, digits, - _ .)")
        return EscposPrinter(url, timeout, _CupsLink(queue, timeout))
    raise _unsupported(url, f"unknown scheme {parts.scheme or url!r}")


def _usb_ids(url: str, parts) -> tuple[int, int, int, int]:
    """``usb://04b8:0202`` or ``usb://0x04b8:0x0202``, optional ``?in_ep=0x82&out_ep=0x01``."""
    try:
        vendor, product = (int(x, 16) for x in parts.netloc.split(":"))
        eps = {k: int(v, 16) for k, v in parse_qsl(parts.query)}
    except ValueError as e:
        hint = "expected usb://VENDOR:PRODUCT in hex, e.g. usb://0x04b8:0x0202"
        raise _unsupported(url, hint) from e
    if set(eps) - {"in_ep", "out_ep"} or not (0 < vendor < 0x10000 and 0 < product < 0x10000):
        raise _unsupported(url, "expected usb://VENDOR:PRODUCT[?in_ep=0x82&out_ep=0x01]")
    return vendor, product, eps.get("in_ep", 0x82), eps.get("out_ep", 0x01)


# ------------------------------------------------------------------------ print_ticket
@dataclass(frozen=True)
class PrintOutcome:
    """What happened to one ticket. ``printed`` means the whole job reached the printer
    without error; ``path`` is the file it went to, if any (``png://``, ``file://``)."""

    printed: bool
    before: PrinterStatus
    after: PrinterStatus
    error: str | None
    message: str | None
    path: str | None = None


def _refusal(status: PrinterStatus) -> PrintError | None:
    """Why not to send a job to a printer in this state (None: send it)."""
    if status.paper == "out":
        return PrintError("out_of_paper", "the printer is out of paper")
    if status.online is False:
        why = "its cover is open" if status.cover_open else "it reports an error or is paused"
        return PrintError("offline", f"the printer is offline: {why}")
    return None


def print_ticket(url: str, image: Image.Image, timeout: float = 5.0) -> PrintOutcome:
    """Print one ticket image; every printer failure comes back in the outcome.

    Status before: a printer that says it is out of paper or offline is not sent the
    job (it would print it whenever it came back, long after the citizen left). Status
    after: paper near end (or out) is reported so the caller can raise a device alert.
    """

    def failed(e: PrintError, before=UNKNOWN, after=UNKNOWN) -> PrintOutcome:
        return PrintOutcome(False, before, after, e.code, str(e))

    try:
        printer = open_printer(url, timeout)
    except PrintError as e:
        return failed(e)
    with printer:
        try:
            before = printer.status()
        except PrintError as e:
            return failed(e)
        refusal = _refusal(before)
        if refusal is not None:
            return failed(refusal, before, before)
        try:
            printer.print_image(image)
        except PrintError as e:
            return failed(e, before)
        try:
            after = printer.status()
        except PrintError as e:
            lost = PrintError("io_error", f"{e}; the ticket may not have printed")
            return failed(lost, before)
        path = str(printer.last_path) if printer.last_path else None
        return PrintOutcome(True, before, after, None, _after_note(after), path)


def _after_note(after: PrinterStatus) -> str | None:
    if after.paper == "near_end":
        return "the paper roll is nearly finished"
    if after.paper == "out":
        return "sent, but the printer is now out of paper: the ticket may be incomplete"
    if after.online is False:
        return "sent, but the printer is now offline"
    return None


# --------------------------------------------------------------------------------- CLI
def describe(status: PrinterStatus) -> str:
    """One line for people wiring printers."""
    online = {True: "online", False: "OFFLINE", None: "online: unknown"}[status.online]
    paper = {
        "ok": "paper ok",
        "near_end": "paper NEAR END",
        "out": "paper OUT",
        "unknown": "paper: unknown",
    }[status.paper]
    extra = [
        label
        for label, flag in (("cover OPEN", status.cover_open), ("ERROR", status.error))
        if flag
    ]
    note = "" if status.known else " (the printer did not answer status questions)"
    return ", ".join([online, paper, *extra]) + note


def _sample_face():
    from hardware.ticket import sample_face

    return sample_face(
        status_url="http://motcua.local/t/thu-in",
        footer="Phiếu in thử: ắ ằ ẳ ẵ ặ ấ ầ ẩ ẫ ậ ế ề ể ễ ệ ố ồ ổ ỗ ộ ớ ờ ở ỡ ợ ứ ừ ử ữ ự đ Đ",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hardware.printer",
        description="Show a ticket printer's status, or print a sample Vietnamese ticket.",
    )
    parser.add_argument("url", help=f"printer URL ({SCHEMES})")
    parser.add_argument("--test", action="store_true", help="print a sample ticket")
    parser.add_argument("--width", type=int, default=576, help="dots: 576 (80 mm), 384 (58 mm)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per step")
    args = parser.parse_args(argv)
    if args.test:
        from hardware.ticket import render

        outcome = print_ticket(args.url, render(_sample_face(), args.width), args.timeout)
        print(f"before: {describe(outcome.before)}")
        print(f"after:  {describe(outcome.after)}")
        if outcome.printed:
            print("printed" + (f" to {outcome.path}" if outcome.path else ""))
            if outcome.message:
                print(f"note: {outcome.message}")
            return 0
        print(f"NOT printed ({outcome.error}): {outcome.message}")
        return 1
    try:
        with open_printer(args.url, args.timeout) as printer:
            print(describe(printer.status()))
    except PrintError as e:
        print(f"{e.code}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
