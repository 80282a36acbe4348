"""Printed tickets: the rendering, and printing it through the real code paths.

Printers are real parts: a TCP printer stand-in that answers ESC/POS status
(harness.printer), pyserial's loop:// and socket:// ports, files, PNG directories. Only
USB uses a test double (there is no USB printer here), put behind the same interface the
pyusb device has. Decoded rasters go to test-artifacts/printing/.
"""

from __future__ import annotations

import socket
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageChops

import hardware.printer as hp
from hardware.printer import PrintError, open_printer, print_ticket
from hardware.ticket import (
    FONT_SETS,
    MIN_TEXT_PX,
    THRESHOLD,
    TicketFace,
    _font,
    draw_text_line,
    font_set,
    preview_png,
    render,
    sample_face,
    wait_text,
)
from harness.printer import FakeNetworkPrinter, decode_raster, decode_tickets

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "printing"
FAST = 0.3  # seconds: status questions to a silent printer wait this long

FACE = sample_face(issued_at=datetime(2026, 11, 26, 2, 5, tzinfo=UTC))

TONES = ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")  # none, huyền sắc ngã hỏi nặng
VOWELS = "aăâeêioôơuưy"
LETTERS = [unicodedata.normalize("NFC", v + t) for v in VOWELS + VOWELS.upper() for t in TONES] + [
    "đ",
    "Đ",
]


def same(a: Image.Image, b: Image.Image) -> bool:
    return (
        a.size == b.size and ImageChops.difference(a.convert("L"), b.convert("L")).getbbox() is None
    )


def keep(name: str, image: Image.Image) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    image.save(ARTIFACTS / f"{name}.png")


# ----------------------------------------------------------------------------- render
@pytest.mark.parametrize("width", [576, 384])
def test_render_size_mode_and_preview(width):
    image = render(FACE, width)
    assert image.mode == "1" and image.width == width and 500 < image.height < 2000
    keep(f"preview-{width}", image)
    import io

    assert same(Image.open(io.BytesIO(preview_png(FACE, width))), image)
    assert same(render(FACE, width), image)  # deterministic


def test_every_vietnamese_letter_has_a_real_glyph():
    assert len(LETTERS) == 146 and all(len(c) == 1 for c in LETTERS)
    for fs in [f for f in FONT_SETS if f.available()]:
        for path in {fs.regular, fs.bold, fs.heavy}:
            font = _font(path, 40)
            missing = draw_text_line("\U000f0000", font, 80)  # private use: no font has it
            seen = {}
            for letter in LETTERS:
                glyph = draw_text_line(letter, font, 80)
                assert ImageChops.invert(glyph).getbbox(), f"{letter!r} is blank"
                assert not same(glyph, missing), f"{fs.name} {path.name}: {letter!r} missing"
                seen.setdefault(glyph.tobytes(), []).append(letter)
            # a font drawing a bare vowel for a toned one would make two letters look alike
            assert all(len(v) == 1 for v in seen.values()), [v for v in seen.values() if len(v) > 1]


def test_tone_marks_survive_the_smallest_text_in_one_bit():
    """At the smallest size on the paper, after thresholding, every letter still differs."""
    font = _font(font_set().regular, MIN_TEXT_PX)
    images = {
        letter: draw_text_line(letter, font, 40).point(
            lambda v: 255 if v >= THRESHOLD else 0, mode="1"
        )
        for letter in LETTERS
    }
    distinct = {im.tobytes() for im in images.values()}
    assert len(distinct) == len(LETTERS)


def test_nfc_and_nfd_give_the_same_ticket():
    nfd = TicketFace(
        **{
            k: unicodedata.normalize("NFD", v) if isinstance(v, str) else v
            for k, v in FACE.__dict__.items()
        }
    )
    assert nfd.service != FACE.service
    for width in (576, 384):
        assert same(render(nfd, width), render(FACE, width))


@pytest.mark.parametrize("width", [576, 384])
def test_long_names_wrap_inside_the_width(width):
    long_face = TicketFace(
        **{
            **FACE.__dict__,
            "centre": "Trung tâm Phục vụ hành chính công xã Nguyễn Việt Khái huyện "
            "Phú Tân tỉnh Cà Mau (cơ sở 2, điểm tiếp nhận ngoài giờ hành chính)",
            "service": "Cấp phiếu lý lịch tư pháp số 1 và số 2 cho công dân Việt Nam, "
            "người nước ngoài đang cư trú tại Việt Nam; "
            + "Chứngthựcbảnsaotừbảnchínhgiấytờvănbản"
            * 2,
        }
    )
    short, long_ = render(FACE, width), render(long_face, width)
    keep(f"long-names-{width}", long_)
    assert long_.width == width
    assert long_.height > short.height + 100  # the extra words took lines, not got cut
    edge = 8  # margins stay paper white: nothing ran off the side
    for box in ((0, 0, edge, long_.height), (width - edge, 0, width, long_.height)):
        assert long_.crop(box).convert("L").getextrema() == (255, 255)


def test_time_is_printed_in_the_centre_timezone():
    local = FACE.issued_at.astimezone(datetime.now().astimezone().tzinfo)
    moved = TicketFace(**{**FACE.__dict__, "issued_at": local})
    later = TicketFace(**{**FACE.__dict__, "issued_at": FACE.issued_at + timedelta(hours=1)})
    assert same(render(moved), render(FACE))  # same instant, any zone: same ticket
    assert not same(render(later), render(FACE))
    with pytest.raises(ValueError):
        render(TicketFace(**{**FACE.__dict__, "issued_at": datetime(2026, 11, 26, 9, 5)}))


def test_wait_words():
    assert wait_text(0).endswith("sắp\u00a0đến\u00a0lượt")
    assert wait_text(61) == "Thời gian chờ dự kiến: khoảng\u00a02\u00a0phút"
    assert wait_text(3600).endswith("khoảng\u00a01\u00a0giờ")
    assert wait_text(4500).endswith("1\u00a0giờ\u00a015\u00a0phút")


# ------------------------------------------------------------------- network printing
@pytest.mark.parametrize("width", [576, 384])
def test_printed_raster_is_the_preview_pixel_for_pixel(width):
    image = render(FACE, width)
    with FakeNetworkPrinter("ok") as printer:
        outcome = print_ticket(printer.url, image, timeout=FAST)
        data = printer.received
    assert outcome.printed and outcome.error is None
    assert outcome.before.online is True and outcome.before.paper == "ok"
    assert outcome.after.online is True and outcome.after.paper == "ok"
    assert len(decode_raster(data)) >= 2  # sent in bands
    (printed,) = decode_tickets(data)
    keep(f"printed-tcp-{width}", printed)
    assert same(printed, image)
    status = b"\x10\x04\x01\x10\x04\x02\x10\x04\x04"  # DLE EOT 1, 2, 4
    job = data[len(status) : -len(status)]
    assert data.startswith(status) and data.endswith(status)  # asked before and after
    assert job.startswith(b"\x1b@") and job.endswith(b"\x1bd\x06\x1dV\x01")  # feed, cut


def test_paper_near_end_is_reported_after_printing():
    with FakeNetworkPrinter("near_end") as printer:
        outcome = print_ticket(printer.url, render(FACE), timeout=FAST)
        assert decode_tickets(printer.received)
    assert outcome.printed
    assert outcome.before.paper == "near_end" and outcome.after.paper == "near_end"
    assert outcome.message == "the paper roll is nearly finished"


@pytest.mark.parametrize(
    "mode, code, reason",
    [
        ("out", "out_of_paper", lambda st: st.paper == "out"),
        ("offline", "offline", lambda st: st.error is True),
        ("cover_open", "offline", lambda st: st.cover_open is True),
    ],
)
def test_job_is_not_sent_to_a_printer_that_cannot_print(mode, code, reason):
    with FakeNetworkPrinter(mode) as printer:
        outcome = print_ticket(printer.url, render(FACE), timeout=FAST)
        data = printer.received
    assert not outcome.printed and outcome.error == code and outcome.message
    assert decode_raster(data) == [] and b"\x1dv0" not in data  # only status questions
    assert outcome.before.online is False and reason(outcome.before)


def test_silent_printer_is_unknown_not_fine():
    with FakeNetworkPrinter("silent") as printer:
        with open_printer(printer.url, timeout=FAST) as p:
            started = time.monotonic()
            status = p.status()
            took = time.monotonic() - started
        assert status.online is None and status.paper == "unknown" and not status.known
        assert FAST * 0.9 < took < FAST * 3  # one timeout, not one per question
        outcome = print_ticket(printer.url, render(FACE, 384), timeout=FAST)
        (printed,) = decode_tickets(printer.received)
    # Unknown is not a reason to refuse (many printers never answer), but not "ok" either.
    assert outcome.printed and outcome.before.paper == "unknown" and outcome.after.online is None
    assert same(printed, render(FACE, 384))


def test_unreachable_printer():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    outcome = print_ticket(f"tcp://127.0.0.1:{port}", render(FACE), timeout=FAST)
    assert time.monotonic() - started < 2
    assert not outcome.printed and outcome.error == "unreachable"
    assert str(port) in outcome.message and outcome.before.paper == "unknown"


def test_connection_dropped_mid_job():
    with FakeNetworkPrinter("ok", drop_after=20_000) as printer:
        outcome = print_ticket(printer.url, render(FACE), timeout=FAST)
        assert len(printer.received) == 20_000
    assert not outcome.printed and outcome.error == "io_error"
    assert outcome.before.paper == "ok" and outcome.after.paper == "unknown"
    assert "may not have printed" in outcome.message or "lost" in outcome.message


# --------------------------------------------------------------------- other printers
def test_serial_port_to_a_printer_answering_status():
    """pyserial's socket:// port: the serial code path, with real status answers."""
    with FakeNetworkPrinter("near_end") as printer:
        url = f"serial:socket://127.0.0.1:{printer.port}"
        outcome = print_ticket(url, render(FACE, 384), timeout=FAST)
        (printed,) = decode_tickets(printer.received)
    assert outcome.printed and outcome.after.paper == "near_end"
    assert same(printed, render(FACE, 384))


def test_serial_loopback_prints_with_unknown_status():
    outcome = print_ticket("serial:loop://", render(FACE, 384), timeout=0.2)
    assert outcome.printed and outcome.before.paper == "unknown" and outcome.error is None


def test_file_printer_appends_raw_jobs(tmp_path):
    target = tmp_path / "capture.bin"
    url = f"file://{target}"
    for width in (576, 384):
        outcome = print_ticket(url, render(FACE, width))
        assert outcome.printed and outcome.path == str(target)
        assert outcome.before.online is None and outcome.after.paper == "unknown"
    tickets = decode_tickets(target.read_bytes())
    assert [t.width for t in tickets] == [576, 384]
    assert same(tickets[1], render(FACE, 384))


def test_png_files_are_named_by_the_centre_date_and_the_english_name_is_printed(tmp_path):
    # 20:05 UTC on 26/11 is 03:05 on 27/11 in the centre: the ticket says 27/11, so does
    # its file (the machine's clock, here UTC, would say 20261126).
    late = sample_face(issued_at=datetime(2026, 11, 26, 20, 5, tzinfo=UTC))
    outcome = print_ticket(f"png://{tmp_path}", render(late, 384))
    assert Path(outcome.path).name.startswith("ticket-20261127-030500-A023-")
    both = render(sample_face(issued_at=late.issued_at, service_en="Criminal records"))
    keep("ticket-english", both)
    assert both.height > render(late).height  # one more line: the service in English
    assert not same(both.crop((0, 0, 576, 700)), render(late).crop((0, 0, 576, 700)))
    # The same name in both languages is not printed twice.
    assert same(
        render(sample_face(issued_at=late.issued_at, service_en=late.service)), render(late)
    )


def test_png_printer_writes_one_file_per_ticket(tmp_path):
    url = f"png://{tmp_path / 'tickets'}"
    paths = []
    for _ in range(3):
        outcome = print_ticket(url, render(FACE, 384))
        assert outcome.printed and outcome.before.paper == "ok"
        paths.append(Path(outcome.path))
    assert len(set(paths)) == 3 and all(p.name.startswith("ticket-") for p in paths)
    assert same(Image.open(paths[0]), render(FACE, 384))
    with open_printer(url) as p:
        p.print_image(render(FACE))
        assert p.last_path.parent == tmp_path / "tickets"


class UsbDouble:
    """A USB printer's two bulk endpoints, carried to the TCP stand-in (the test double)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port))

    def write(self, data: bytes, timeout_ms: int) -> None:
        self.sock.settimeout(timeout_ms / 1000)
        self.sock.sendall(data)

    def read(self, size: int, timeout_ms: int) -> bytes:
        self.sock.settimeout(timeout_ms / 1000)
        try:
            return self.sock.recv(size)
        except TimeoutError:
            return b""

    def close(self) -> None:
        self.sock.close()


def test_usb_printer_through_a_double(monkeypatch):
    opened = []
    with FakeNetworkPrinter("near_end") as printer:

        def opener(vendor, product, in_ep, out_ep):
            opened.append((vendor, product, in_ep, out_ep))
            return UsbDouble(printer.port)

        monkeypatch.setattr(hp, "usb_opener", opener)
        outcome = print_ticket("usb://0x04b8:0x0202?in_ep=0x81", render(FACE), timeout=FAST)
        (printed,) = decode_tickets(printer.received)
    assert opened == [(0x04B8, 0x0202, 0x81, 0x01)]
    assert outcome.printed and outcome.after.paper == "near_end"
    assert same(printed, render(FACE))


def test_usb_without_pyusb_says_what_to_install():
    try:
        import usb  # noqa: F401
    except ImportError:
        with pytest.raises(PrintError) as e:
            open_printer("usb://0x04b8:0x0202")
        assert e.value.code == "unsupported" and "pyusb" in str(e.value)
    else:
        pytest.skip("pyusb is installed here")


@pytest.mark.parametrize(
    "url",
    [
        "",
        "lpt1",
        "http://printer/",
        "tcp://",
        "tcp://host:notaport",
        "usb://04b8",
        "usb://zz:01",
        "usb://04b8:0202?endpoint=1",
        "serial:",
        "serial:/dev/ttyUSB0?speed=9600",
        "serial:nosuch://x",
        "file://relative/path",
        "png://",
        "cups://bad queue",
    ],
)
def test_bad_urls_are_unsupported_with_a_reason(url):
    with pytest.raises(PrintError) as e:
        open_printer(url)
    assert e.value.code == "unsupported" and len(str(e.value)) > 20
    outcome = print_ticket(url, render(FACE, 384))
    assert not outcome.printed and outcome.error == "unsupported"


def test_cli_status_and_test_ticket(tmp_path, capsys):
    with FakeNetworkPrinter("near_end") as printer:
        assert hp.main([printer.url, "--timeout", str(FAST)]) == 0
        assert "paper NEAR END" in capsys.readouterr().out
        assert hp.main([printer.url, "--test", "--width", "384"]) == 0
        assert "printed" in capsys.readouterr().out
        assert len(decode_tickets(printer.received)) == 1
    assert hp.main([f"png://{tmp_path}", "--test"]) == 0
    assert "ticket-" in capsys.readouterr().out
    assert hp.main(["nosuch://x"]) == 1
