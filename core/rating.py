"""What a rating may carry besides its level: the reasons a centre offers after a low
score, and a short comment, kept as plain text.

A rating is stored once and never changed (``QueueEngine.rate`` inserts; nothing updates
or deletes a rating). Its comment is text, never markup: whatever shows it must escape it
(Jinja2 and the pages' ``textContent`` do), and text that looks like markup is refused
outright, so that no report or export can be tricked by it.
"""

from __future__ import annotations

import re
import unicodedata

from .errors import QueueError
from .validation import REQUEST_ID, Field

LEVELS = {1: "Không hài lòng", 2: "Hài lòng", 3: "Rất hài lòng"}
LOW = 1  # the level that asks for reasons


def N_(msgid: str) -> str:  # noqa: N802 - marks words for the catalog (scripts/messages.py)
    return msgid


# What a centre offers when its provisioning file lists no `rating_reasons`. The words
# are Vietnamese, stored as given; the pages show the catalog's English on request.
DEFAULT_REASONS = (
    N_("Thái độ phục vụ chưa tốt"),
    N_("Thời gian chờ quá lâu"),
    N_("Hướng dẫn không rõ ràng"),
    N_("Yêu cầu bổ sung giấy tờ nhiều lần"),
    N_("Giải quyết chậm, trễ hẹn"),
)
MAX_REASONS = 10
REASON_MAX_LEN = 100
COMMENT_MAX_LEN = 200
# How long a tablet waits for an answer before going back to idle (nothing recorded).
DEFAULT_TIMEOUT_S = 30
TIMEOUT_RANGE = (10, 300)

# What a rating carries: the tablet's `rate` (with its ticket_id) and the status page's.
RATING_FIELDS = {
    "score": Field(int, required=True, min=1, max=3),
    "reasons": Field(list, items=str, max_items=MAX_REASONS, max_len=REASON_MAX_LEN),
    "comment": Field(str, max_len=COMMENT_MAX_LEN, nullable=True),
    "request_id": REQUEST_ID,
}

_MARKUP = re.compile(r"<\s*[A-Za-z/!?]|&#?\w+;")
_SPACES = re.compile(r"\s+")


def _bad(field: str, vi: str, en: str) -> QueueError:
    return QueueError("bad_request", "bad_value", field=field, why=(vi, en))


def clean_text(value: str) -> str:
    """NFC (a tablet and a phone may send the same word composed differently), one space
    for every run of spaces and line breaks, trimmed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip()


def check_comment(comment: str | None) -> str | None:
    """The comment as stored (None when empty), or bad_request."""
    if comment is None:
        return None
    text = clean_text(comment)
    if len(text) > COMMENT_MAX_LEN:
        raise _bad("comment", f"dài quá {COMMENT_MAX_LEN} ký tự", f"longer than {COMMENT_MAX_LEN}")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs") for ch in text):
        raise _bad("comment", "chứa ký tự điều khiển", "contains control characters")
    if _MARKUP.search(text):
        raise _bad("comment", "không được chứa mã HTML", "must not contain markup")
    return text or None


def check_reasons(reasons: list[str] | None, score: int, offered: list[str]) -> list[str]:
    """The reasons as stored: each one the centre offers, once, in the order offered;
    only with the low level."""
    picked = {clean_text(r) for r in reasons or []}
    if not picked:
        return []
    if score != LOW:
        raise _bad(
            "reasons",
            "chỉ chọn lý do khi “Không hài lòng” (score = 1)",
            "reasons go only with 'not satisfied' (score = 1)",
        )
    unknown = sorted(picked - set(offered))
    if unknown:
        raise _bad(
            "reasons",
            f"trung tâm không có lý do “{unknown[0][:REASON_MAX_LEN]}”",
            f"the centre offers no reason '{unknown[0][:REASON_MAX_LEN]}'",
        )
    return [r for r in offered if r in picked]


def offered_reasons(configured) -> list[str]:
    """A centre's reasons (its `rating_reasons` column; null: the defaults)."""
    return list(configured) if configured else list(DEFAULT_REASONS)


def settings(centre_row) -> dict:
    """What a rating page needs to ask: the reasons, the timeout, the comment's length."""
    return {
        "reasons": offered_reasons(centre_row.rating_reasons),
        "timeout_s": centre_row.rating_timeout_s or DEFAULT_TIMEOUT_S,
        "comment_max_len": COMMENT_MAX_LEN,
    }
