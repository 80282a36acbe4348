"""The printed queue ticket, drawn as a 1-bit image at the printer's dot width.

Why an image: ESC/POS text mode goes through code pages, and no code page prints
Vietnamese reliably (cp1258 cannot encode NFC "ờ"; TCVN-3 support varies by firmware).
So the whole ticket is drawn with Pillow in a Vietnamese-capable font and sent as a
raster (``hardware.printer``). The same image is the PNG preview the kiosk shows when
printing fails, and what the tests compare the printed raster with, so ``render`` must be
deterministic: same face, same pixels.

Widths: 576 dots is an 80 mm printer, 384 dots a 58 mm one (203 dpi). Sizes below are
given for 576 and scaled, so both widths keep the same proportions.
"""

from __future__ import annotations

import io
import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import segno
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "FONT_SETS",
    "FontSet",
    "TicketFace",
    "draw_text_line",
    "file_stem",
    "font_set",
    "preview_png",
    "render",
    "wait_text",
]

REFERENCE_WIDTH = 576
# Anti-aliased grey below this prints black. A little above the middle: thermal dots are
# small and round, so hairlines of the diacritics would vanish at a lower threshold.
THRESHOLD = 150
# Smallest text size in dots (about 2 mm at 203 dpi): below it a tone mark is a speck.
MIN_TEXT_PX = 17
NBSP = "\u00a0"
# Letters whose stacked marks reach highest and whose tails reach lowest: line boxes are
# measured on them so that no Vietnamese letter is ever clipped.
_TALLEST = "ẪẴỖỠỮỸẤẦẨ"
_DEEPEST = "gjpqyỵỵ"


@dataclass(frozen=True)
class TicketFace:
    """What a ticket says. Plain data: the caller (kiosk agent, print worker) fills it."""

    centre: str
    number: str
    service: str
    agency: str | None
    issued_at: datetime
    timezone: str
    ahead: int
    estimated_wait_s: int
    status_url: str
    priority: str | None = None
    footer: str = ""
    # The service's English name, printed under the Vietnamese one when the citizen took
    # the ticket in English (None: Vietnamese only).
    service_en: str | None = None
    # "09:00": the ticket of an appointment booked for that time, checked in in its window
    # (called ahead of walk-ins from then); None for everyone else.
    appointment: str | None = None


@dataclass(frozen=True)
class FontSet:
    """Three weights of one family: body text, headings, and the big number.

    Body text uses a medium weight where the family has one: the hairlines of a regular
    weight and its small diacritics come out faint on thermal paper.
    """

    name: str
    regular: Path
    bold: Path
    heavy: Path

    def available(self) -> bool:
        return all(p.is_file() for p in (self.regular, self.bold, self.heavy))


def _be_vietnam_pro() -> FontSet | None:
    try:
        import fontpkg_be_vietnam_pro
    except ImportError:
        return None
    files = Path(fontpkg_be_vietnam_pro.ROOT) / "files"
    return FontSet(
        "Be Vietnam Pro",
        files / "BeVietnamPro-Medium.ttf",
        files / "BeVietnamPro-Bold.ttf",
        files / "BeVietnamPro-ExtraBold.ttf",
    )


_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
# In order of preference. Both cover all 134 precomposed Vietnamese letters and đ/Đ.
FONT_SETS: tuple[FontSet, ...] = tuple(
    fs
    for fs in (
        _be_vietnam_pro(),
        FontSet(
            "DejaVu Sans",
            _DEJAVU / "DejaVuSans.ttf",
            _DEJAVU / "DejaVuSans-Bold.ttf",
            _DEJAVU / "DejaVuSans-Bold.ttf",
        ),
    )
    if fs is not None
)


@lru_cache(maxsize=1)
def font_set() -> FontSet:
    """The first installed font set; a clear error when none is (nothing to draw with)."""
    for fs in FONT_SETS:
        if fs.available():
            return fs
    raise RuntimeError(
        "no Vietnamese-capable font: install the Python package fontpkg-be-vietnam-pro "
        "or Debian's fonts-dejavu-core"
    )


@lru_cache(maxsize=64)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


@lru_cache(maxsize=64)
def _line_box(font: ImageFont.FreeTypeFont) -> tuple[int, int]:
    """(space above the baseline, space below it) that fits every Vietnamese letter."""
    _, descent = font.getmetrics()
    top = max(font.getmetrics()[0], -font.getbbox(_TALLEST, anchor="ls")[1])
    bottom = max(descent, font.getbbox(_DEEPEST, anchor="ls")[3])
    return top, bottom


def draw_text_line(text: str, font: ImageFont.FreeTypeFont, width: int, align: str = "center"):
    """One line of text as a greyscale strip of ``width`` (0 = black ink, 255 = paper).

    Public so the tests can look at single glyphs drawn exactly as the ticket draws them.
    """
    top, bottom = _line_box(font)
    strip = Image.new("L", (width, top + bottom), 255)
    length = font.getlength(text)
    x = {"center": (width - length) / 2, "left": 0, "right": width - length}[align]
    ImageDraw.Draw(strip).text((round(x), top), text, font=font, fill=0, anchor="ls")
    return strip


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Break at spaces to fit ``width``; a word longer than a line is broken by letters.

    Names are never cut: a long centre or service name simply takes more lines. A
    no-break space (U+00A0) keeps words together ("khoảng 21 phút" never ends a line
    with "21") and is drawn as a plain space.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in (w for w in paragraph.split(" ") if w.strip()):
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            while font.getlength(word) > width:
                cut = max(
                    1, max(i for i in range(1, len(word) + 1) if font.getlength(word[:i]) <= width)
                )
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return [line.replace(NBSP, " ") for line in lines]


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def wait_text(estimated_wait_s: int) -> str:
    """The estimated wait in words, rounded up to whole minutes (a promise, not a bound).

    The phrase after the colon is held together with no-break spaces (see ``_wrap``).
    """
    if estimated_wait_s <= 0:
        phrase = "sắp đến lượt"
    else:
        minutes = math.ceil(estimated_wait_s / 60)
        hours, rest = divmod(minutes, 60)
        if not hours:
            phrase = f"khoảng {minutes} phút"
        else:
            phrase = f"khoảng {hours} giờ" + (f" {rest} phút" if rest else "")
    return "Thời gian chờ dự kiến: " + phrase.replace(" ", NBSP)


def _issued_local(face: TicketFace) -> datetime:
    if face.issued_at.tzinfo is None:
        raise ValueError("TicketFace.issued_at must be timezone-aware")
    return face.issued_at.astimezone(ZoneInfo(face.timezone))


def _issued_text(face: TicketFace) -> str:
    return _issued_local(face).strftime("%d/%m/%Y %H:%M")


def file_stem(face: TicketFace) -> str:
    """A name for the ticket's file (the demo's PNG printer): the centre's date and time
    of issue and the number, ``20261207-052301-A023``: the date the ticket says, not the
    machine's (a centre at UTC+7 is a day ahead of UTC before 07:00)."""
    number = "".join(ch for ch in _nfc(face.number) if ch.isalnum()) or "ticket"
    return f"{_issued_local(face):%Y%m%d-%H%M%S}-{number}"


class _Sheet:
    """Strips stacked top to bottom; ``image()`` thresholds them into the 1-bit ticket."""

    def __init__(self, width: int):
        self.width = width
        self.scale = width / REFERENCE_WIDTH
        self.margin = round(16 * self.scale)
        self.inner = width - 2 * self.margin
        self.strips: list[Image.Image] = []

    def px(self, reference: float) -> int:
        return max(1, round(reference * self.scale))

    def font(self, weight: str, reference_size: float) -> ImageFont.FreeTypeFont:
        # Type shrinks less than the paper: on 58 mm, text at two thirds of its 80 mm size
        # loses its diacritics. It wraps a little more instead.
        size = max(MIN_TEXT_PX, round(reference_size * (1 + self.scale) / 2))
        return _font(getattr(font_set(), weight), size)

    def space(self, reference: float) -> None:
        self.strips.append(Image.new("L", (self.width, self.px(reference)), 255))

    def text(self, text: str, weight: str, size: float, align: str = "center") -> None:
        font = self.font(weight, size)
        for line in _wrap(text, font, self.inner):
            strip = draw_text_line(line, font, self.inner, align)
            self.strips.append(self._pad(strip))

    def rule(self, thickness: float = 2) -> None:
        strip = Image.new("L", (self.width, self.px(thickness)), 0)
        strip.paste(255, (0, 0, self.margin, strip.height))
        strip.paste(255, (self.width - self.margin, 0, self.width, strip.height))
        self.strips.append(strip)

    def banner(self, text: str, size: float) -> None:
        """White on black: the priority group must be seen at a glance by the clerk."""
        font = self.font("bold", size)
        pad = self.px(8)
        for line in _wrap(text, font, self.inner - 2 * pad):
            strip = draw_text_line(line, font, self.inner - 2 * pad)
            box = Image.new("L", (self.inner, strip.height + 2 * pad), 0)
            box.paste(Image.eval(strip, lambda v: 255 - v), (pad, pad))
            self.strips.append(self._pad(box))

    def number(self, text: str) -> None:
        """The ticket number, as large as fits: the one thing everybody must read."""
        font = self.font("heavy", 190)
        while font.getlength(text) > self.inner and font.size > 20:
            font = _font(font.path, int(font.size * 0.92))
        # Digits and capitals carry no marks: trim the empty space the line box keeps.
        strip = draw_text_line(text, font, self.inner)
        top, _ = _line_box(font)
        bbox = font.getbbox(text, anchor="ls")
        strip = strip.crop((0, top + bbox[1], self.inner, top + max(bbox[3], 0)))
        self.strips.append(self._pad(strip))

    def qr(self, url: str, share: float = 0.5) -> None:
        code = segno.make(url, error="m", micro=False)
        modules = code.symbol_size(border=4)[0]
        module = max(2, int(self.width * share) // modules)
        rows = bytes(
            0 if bit else 255 for row in code.matrix_iter(scale=1, border=4) for bit in row
        )
        img = Image.frombytes("L", (modules, modules), rows)
        img = img.resize((modules * module, modules * module), Image.Resampling.NEAREST)
        strip = Image.new("L", (self.width, img.height), 255)
        strip.paste(img, ((self.width - img.width) // 2, 0))
        self.strips.append(strip)

    def _pad(self, inner: Image.Image) -> Image.Image:
        strip = Image.new("L", (self.width, inner.height), 255)
        strip.paste(inner, (self.margin, 0))
        return strip

    def image(self) -> Image.Image:
        height = sum(s.height for s in self.strips)
        sheet = Image.new("L", (self.width, height), 255)
        y = 0
        for s in self.strips:
            sheet.paste(s, (0, y))
            y += s.height
        return sheet.point(lambda v: 255 if v >= THRESHOLD else 0, mode="1")


def render(face: TicketFace, width: int = 576) -> Image.Image:
    """The ticket as a mode "1" image exactly ``width`` dots wide, top to bottom."""
    if width < 200 or width % 8:
        raise ValueError(f"ticket width must be a multiple of 8 dots, at least 200: {width}")
    s = _Sheet(width)
    s.space(12)
    s.text(_nfc(face.centre).upper(), "bold", 24)
    s.space(10)
    s.rule()
    s.space(12)
    s.text("SỐ THỨ TỰ", "regular", 24)
    s.space(10)
    s.number(_nfc(face.number))
    s.space(16)
    if face.priority:
        s.banner(f"Ưu tiên: {_nfc(face.priority)}", 26)
        s.space(12)
    if face.appointment:
        s.banner(f"Lịch hẹn {face.appointment}", 26)
        s.space(12)
    s.text(_nfc(face.service), "bold", 32)
    if face.service_en and _nfc(face.service_en) != _nfc(face.service):
        s.space(2)
        s.text(_nfc(face.service_en), "regular", 26)
    if face.agency:
        s.space(4)
        s.text(_nfc(face.agency), "regular", 26)
    s.space(14)
    s.text(_issued_text(face), "regular", 26)
    s.space(10)
    s.rule(1)
    s.space(10)
    s.text(f"Số người chờ trước Ông/Bà: {max(0, face.ahead)}", "bold", 26)
    s.space(4)
    s.text(wait_text(face.estimated_wait_s), "regular", 24)
    s.space(16)
    s.qr(_nfc(face.status_url))
    s.space(4)
    s.text("Quét mã để theo dõi lượt của Ông/Bà", "regular", 22)
    footer = _nfc(face.footer)
    if footer:
        s.space(10)
        s.rule(1)
        s.space(8)
        s.text(footer, "regular", 20)
    s.space(24)
    image = s.image()
    image.info["ticket"] = file_stem(face)  # not drawn: a name for a file printer
    return image


def sample_face(**changes) -> TicketFace:
    """A ticket with every kind of field filled, for printer checks, tests and benchmarks."""
    from dataclasses import replace
    from datetime import UTC

    face = TicketFace(
        centre="Trung tâm Phục vụ hành chính công tỉnh An Giang",
        number="A023",
        service="Lý lịch tư pháp",
        agency="Sở Tư pháp",
        issued_at=datetime.now(UTC),
        timezone="Asia/Ho_Chi_Minh",
        ahead=7,
        estimated_wait_s=1260,
        status_url="http://192.168.1.10:8080/t/k3J9xQ2mPz",
        priority="Người cao tuổi",
        footer="Vui lòng giữ phiếu đến khi được phục vụ.\nĐịa chỉ: phường Rạch Giá, tỉnh An Giang",
    )
    return replace(face, **changes)


def preview_png(face: TicketFace, width: int = 576) -> bytes:
    """``render`` as PNG bytes: the kiosk's on-screen fallback and the admin preview."""
    out = io.BytesIO()
    render(face, width).save(out, format="PNG", optimize=False)
    return out.getvalue()
