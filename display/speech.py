"""The words of a Vietnamese call announcement: how numbers, ticket numbers and counters are
read aloud, as a list of clip names that a voice pack (``display.voicepack``) can play.

Everything is expressed as clip names first and text second, so the words a board speaks
from recorded clips and the text shown or fed to a whole-sentence synthesiser can never
disagree: the text is only the clips' texts joined.

Reading rules (Northern standard, the one used on radio and in public offices):

- 0 alone is "không"; inside a number a zero group is silent, but a group after the first
  one always says its hundreds ("một nghìn không trăm linh năm").
- A tens digit of 0 after a hundreds word says "linh" (or "lẻ", a setting: Southern
  speakers and many centres prefer it) before the units: 105 "một trăm linh năm".
- Ten is "mười" (falling tone); twenty and up say "mươi" (level tone): 20 "hai mươi".
- After "mươi" (21 and up) a 1 is "mốt" and a 4 is "tư"; after "mười" they stay "một" and
  "bốn" (11 "mười một", 14 "mười bốn"). After "mười" or "mươi" a 5 is "lăm" (15 "mười
  lăm", 25 "hai mươi lăm"); everywhere else it is "năm" (105 "một trăm linh năm").
- Thousands are "nghìn" (or "ngàn", Southern), then "triệu", "tỷ".
"""

from __future__ import annotations

import re
from typing import Literal

Form = Literal["digits", "number"]
FORMS: tuple[Form, ...] = ("digits", "number")

# The spoken sentence around the ticket and the counter.
PHRASES: dict[str, str] = {
    "moi_cong_dan_co_so_thu_tu": "Mời công dân có số thứ tự",
    "den_quay_so": "đến quầy số",
}

# Number words. Names are the word without diacritics; where two words share that spelling
# the tone is named after the underscore (mot/mot_sac, muoi_huyen/muoi_ngang).
NUMBER_WORDS: dict[str, str] = {
    "khong": "không",
    "mot": "một",
    "mot_sac": "mốt",
    "hai": "hai",
    "ba": "ba",
    "bon": "bốn",
    "tu": "tư",
    "nam": "năm",
    "lam": "lăm",
    "sau": "sáu",
    "bay": "bảy",
    "tam": "tám",
    "chin": "chín",
    "muoi_huyen": "mười",
    "muoi_ngang": "mươi",
    "tram": "trăm",
    "linh": "linh",
    "le": "lẻ",
    "nghin": "nghìn",
    "ngan": "ngàn",
    "trieu": "triệu",
    "ty": "tỷ",
}

# Letters as Vietnamese speakers name them when reading a code aloud (the names taught in
# school for the Vietnamese letters, and the customary ones for F, J, W, Z, which are not
# Vietnamese letters). G is "gờ", not "giê": in the Northern accent "giê" sounds exactly
# like D "dê", and a hall must never mistake one ticket for another. Ticket prefixes are
# usually A-Z; Đ is there for centres that use it.
LETTERS: dict[str, tuple[str, str]] = {
    "A": ("chu_a", "a"),
    "B": ("chu_b", "bê"),
    "C": ("chu_c", "xê"),
    "D": ("chu_d", "dê"),
    "Đ": ("chu_dd", "đê"),
    "E": ("chu_e", "e"),
    "F": ("chu_f", "ép"),
    "G": ("chu_g", "gờ"),
    "H": ("chu_h", "hát"),
    "I": ("chu_i", "i"),
    "J": ("chu_j", "gi"),
    "K": ("chu_k", "ca"),
    "L": ("chu_l", "e lờ"),
    "M": ("chu_m", "em mờ"),
    "N": ("chu_n", "en nờ"),
    "O": ("chu_o", "o"),
    "P": ("chu_p", "pê"),
    "Q": ("chu_q", "quy"),
    "R": ("chu_r", "e rờ"),
    "S": ("chu_s", "ét"),
    "T": ("chu_t", "tê"),
    "U": ("chu_u", "u"),
    "V": ("chu_v", "vê"),
    "W": ("chu_w", "vê kép"),
    "X": ("chu_x", "ích"),
    "Y": ("chu_y", "i dài"),
    "Z": ("chu_z", "dét"),
}
LETTER_WORDS: dict[str, str] = dict(LETTERS.values())

# A pause between items read one by one ("A, không, hai, ba"): a clip name with no clip.
PAUSE = ","

WORDS: dict[str, str] = {**PHRASES, **LETTER_WORDS, **NUMBER_WORDS}

_DIGITS = ("khong", "mot", "hai", "ba", "bon", "nam", "sau", "bay", "tam", "chin")
_SCALES = ("", "nghin", "trieu", "ty")
_TICKET = re.compile(r"([A-ZĐ]{0,4})([0-9]+)")
LIMIT = 10**12  # "nghìn tỷ" and beyond are not needed for tickets or counters


def _group(n: int, full: bool, odd: str) -> list[str]:
    """Clips for 0 < n < 1000; ``full`` for a group after the first, which always says its
    hundreds ("không trăm") and uses "linh" after them."""
    hundreds, tens, units = n // 100, n // 10 % 10, n % 10
    out: list[str] = []
    if hundreds or full:
        out += [_DIGITS[hundreds], "tram"]
    if tens == 0:
        if units:
            if out:
                out.append(odd)
            out.append(_DIGITS[units])
    elif tens == 1:
        out.append("muoi_huyen")
        if units:
            out.append("lam" if units == 5 else _DIGITS[units])
    else:
        out += [_DIGITS[tens], "muoi_ngang"]
        if units:
            out.append({1: "mot_sac", 4: "tu", 5: "lam"}.get(units, _DIGITS[units]))
    return out


def number_clips(n: int, *, odd: str = "linh", thousand: str = "nghìn") -> list[str]:
    """Clip names reading ``n`` (0 <= n < 10**12) as a Vietnamese number.

    ``odd`` is "linh" (default) or "lẻ"; ``thousand`` is "nghìn" (default) or "ngàn".
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"a number to read must be an int, not {type(n).__name__}")
    if not 0 <= n < LIMIT:
        raise ValueError(f"cannot read {n}: numbers from 0 to {LIMIT - 1} only")
    odd_clip = {"linh": "linh", "lẻ": "le"}.get(odd)
    thousand_clip = {"nghìn": "nghin", "ngàn": "ngan"}.get(thousand)
    if odd_clip is None:
        raise ValueError(f'odd must be "linh" or "lẻ", not {odd!r}')
    if thousand_clip is None:
        raise ValueError(f'thousand must be "nghìn" or "ngàn", not {thousand!r}')
    if n == 0:
        return ["khong"]
    groups = []
    while n:
        groups.append(n % 1000)
        n //= 1000
    out: list[str] = []
    for scale in range(len(groups) - 1, -1, -1):
        value = groups[scale]
        if value == 0:
            continue
        out += _group(value, full=bool(out), odd=odd_clip)
        if scale:
            out.append(thousand_clip if scale == 1 else _SCALES[scale])
    return out


def text(clips: list[str]) -> str:
    """The words of a clip list as text; a ``PAUSE`` becomes a comma after the word before."""
    words: list[str] = []
    for clip in clips:
        if clip == PAUSE:
            if words:
                words[-1] += ","
        elif clip in WORDS:
            words.append(WORDS[clip])
        elif clip != "chime":
            raise KeyError(f"no text for clip {clip!r}")
    return " ".join(words)


def read_number(n: int, *, odd: str = "linh", thousand: str = "nghìn") -> str:
    """``n`` read aloud: ``read_number(1005) == "một nghìn không trăm linh năm"``."""
    return text(number_clips(n, odd=odd, thousand=thousand))


def parse_ticket(number: str) -> tuple[str, str]:
    """Split a ticket number such as "A023" into its letters and digits ("A", "023").

    A ticket number is 0 to 4 capital letters then at least one digit; anything else is
    refused, so a typo in a prefix cannot be read out as something else.
    """
    match = _TICKET.fullmatch(number.strip()) if isinstance(number, str) else None
    if match is None:
        raise ValueError(
            f"cannot read ticket number {number!r}: expected 0-4 capital letters then digits,"
            ' such as "A023" or "1023"'
        )
    return match.group(1), match.group(2)


def ticket_clips(number: str, form: Form = "digits", **reading: str) -> list[str]:
    """Clip names reading a ticket number.

    ``form="digits"``: the letters, then each digit ("A, không, hai, ba"), with a pause
    between items, the way a code is read so that nothing is lost in a noisy hall.
    ``form="number"``: the letters, then the value ("A hai mươi ba"). ``reading`` passes
    ``odd``/``thousand`` to ``number_clips``.
    """
    letters, digits = parse_ticket(number)
    out = [LETTERS[c][0] for c in letters]
    if form == "digits":
        for d in digits:
            if out:
                out.append(PAUSE)
            out.append(_DIGITS[int(d)])
    elif form == "number":
        out += number_clips(int(digits), **reading)
    else:
        raise ValueError(f"form must be one of {FORMS}, not {form!r}")
    return out


def read_ticket(number: str, form: Form = "digits", **reading: str) -> str:
    """A ticket number read aloud: ``read_ticket("A023") == "a, không, hai, ba"``."""
    return text(ticket_clips(number, form, **reading))


def announcement(
    number: str, counter: int, form: Form = "digits", *, chime: bool = True, **reading: str
) -> list[str]:
    """Clip names for "Mời công dân có số thứ tự <number> đến quầy số <counter>".

    The chime comes first (``chime=False`` leaves it out); the counter is always read as a
    number ("quầy số mười lăm"), because counters are numbered, not coded.
    """
    if isinstance(counter, bool) or not isinstance(counter, int) or counter < 0:
        raise ValueError(f"counter must be a whole number >= 0, not {counter!r}")
    return [
        *(["chime"] if chime else []),
        "moi_cong_dan_co_so_thu_tu",
        *ticket_clips(number, form, **reading),
        "den_quay_so",
        *number_clips(counter, **reading),
    ]


def announcement_text(number: str, counter: int, form: Form = "digits", **reading: str) -> str:
    """The announcement's spoken words as text, e.g. "Mời công dân có số thứ tự a, không,
    hai, ba đến quầy số năm": what the clips say, and what a whole-sentence synthesiser is
    given."""
    return text(announcement(number, counter, form, chime=False, **reading))
