"""The few ESC/POS bytes motcua sends, and the meaning of the status bytes it reads back.

Kept apart from the transports (``hardware.printer``) because both sides of the tests use
them: the printer code to build a job and to read status, the printer stand-in
(``harness.printer``) to answer status the way a printer does.

A job is: ``ESC @`` (reset), the ticket as ``GS v 0`` raster bands (python-escpos,
``bitImageRaster``), ``ESC d 6`` (feed past the cutter), ``GS V 1`` (partial cut). No
text mode: code pages cannot print Vietnamese reliably.

Real-time status (Epson ESC/POS ``DLE EOT n``): the printer answers one byte at once,
even while busy or offline. Every answer has bits 1 and 4 set and bits 0 and 7 clear,
which tells an answer apart from stray bytes (an echo, automatic status back packets).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from escpos.printer import Dummy
from PIL import Image

DLE, EOT, ESC, GS = b"\x10", b"\x04", b"\x1b", b"\x1d"

# DLE EOT n: 1 printer status, 2 offline cause, 3 error cause, 4 paper roll sensor.
PRINTER_STATUS, OFFLINE_CAUSE, ERROR_CAUSE, PAPER_SENSOR = 1, 2, 3, 4
ANSWER_MASK, ANSWER_FIXED = 0x93, 0x12

OFFLINE = 0x08  # in PRINTER_STATUS
COVER_OPEN = 0x04  # in OFFLINE_CAUSE
PAPER_END_STOP = 0x20  # in OFFLINE_CAUSE: printing stopped because the paper ended
ERROR = 0x40  # in OFFLINE_CAUSE
PAPER_NEAR_END = 0x0C  # in PAPER_SENSOR (bits 2 and 3)
PAPER_END = 0x60  # in PAPER_SENSOR (bits 5 and 6)

# Rows per GS v 0 band. python-escpos defaults to 960; smaller bands keep within the
# receive buffer of cheap printers, and bands print without a visible seam.
BAND_ROWS = 512
FEED_LINES = 6


def status_query(n: int) -> bytes:
    """``DLE EOT n``."""
    return DLE + EOT + bytes((n,))


def is_status_answer(byte: int) -> bool:
    return byte & ANSWER_MASK == ANSWER_FIXED


@dataclass(frozen=True)
class StatusBits:
    """The decoded answers; a field is None when its question got no answer."""

    online: bool | None = None
    cover_open: bool | None = None
    error: bool | None = None
    paper: str = "unknown"


def decode_status(printer: int | None, offline: int | None, paper: int | None) -> StatusBits:
    """Turn the answers to DLE EOT 1, 2 and 4 into words."""
    if paper is None:
        paper_word = "unknown"
    elif paper & PAPER_END:
        paper_word = "out"
    elif paper & PAPER_NEAR_END:
        paper_word = "near_end"
    else:
        paper_word = "ok"
    return StatusBits(
        online=None if printer is None else not printer & OFFLINE,
        cover_open=None if offline is None else bool(offline & COVER_OPEN),
        error=None if offline is None else bool(offline & ERROR),
        paper=paper_word,
    )


def job_bytes(image: Image.Image) -> bytes:
    """The complete ESC/POS job printing ``image`` once, then feeding and cutting."""
    printer = Dummy()
    _set_paper_width(printer, image.width)
    printer.hw("INIT")
    printer.image(image, impl="bitImageRaster", fragment_height=BAND_ROWS)
    printer.cut(mode="PART")  # feeds FEED_LINES first (ESC d 6), then GS V 1
    return printer.output


def _set_paper_width(printer: Dummy, width: int) -> None:
    """Give python-escpos's default profile a paper width, for this printer only.

    Without a width, python-escpos prints a warning on stdout for every image. The
    profile's data is shared by every instance of its class, hence the copy.
    """
    profile = printer.profile
    profile.profile_data = copy.deepcopy(profile.profile_data)
    profile.profile_data["media"]["width"]["pixels"] = width
