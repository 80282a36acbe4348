"""Checks a payload against the fields an event accepts; anything else is a bad_request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import QueueError

TYPE_NAMES = {
    str: ("một chuỗi ký tự", "a string"),
    int: ("một số nguyên", "an integer"),
    list: ("một danh sách", "a list"),
    dict: ("một đối tượng", "an object"),
}


@dataclass(frozen=True)
class Field:
    type: type
    required: bool = False
    max_len: int | None = None
    min: int | None = None
    max: int | None = None
    items: type | None = None
    max_items: int | None = None
    nullable: bool = False
    strip: bool = True  # trim surrounding spaces (never for passwords)


def _type_ok(value: Any, expected: type) -> bool:
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _wrong_type(name: str, expected: type) -> QueueError:
    return QueueError("bad_request", "wrong_type", field=name, expected=TYPE_NAMES[expected])


def _bad(name: str, vi: str, en: str) -> QueueError:
    return QueueError("bad_request", "bad_value", field=name, why=(vi, en))


INT_LIMIT = 2**31  # ids and numbers fit a 32-bit signed column on every store


def _check_text(name: str, value: str, max_len: int | None) -> None:
    """Text every store can keep: bounded, valid UTF-8 (no lone surrogates), no NUL."""
    if max_len is not None and len(value) > max_len:
        raise _bad(name, f"dài quá {max_len} ký tự", f"longer than {max_len}")
    if "\x00" in value:
        raise _bad(name, "chứa ký tự NUL", "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(name, "không phải văn bản UTF-8 hợp lệ", "is not valid UTF-8 text") from None


def parse(payload: Any, fields: dict[str, Field]) -> dict[str, Any]:
    """Return the payload's fields, or raise bad_request naming the first thing wrong."""
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise QueueError("bad_request", "bad_payload")
    for name in payload:
        if name not in fields:
            raise QueueError("bad_request", "unknown_field", field=str(name)[:40])
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in payload:
            if spec.required:
                raise QueueError("bad_request", "missing_field", field=name)
            out[name] = None
            continue
        value = payload[name]
        if value is None and spec.nullable:
            out[name] = None
            continue
        if not _type_ok(value, spec.type):
            raise _wrong_type(name, spec.type)
        if isinstance(value, str):
            value = value.strip() if spec.strip else value
            if spec.required and not value:
                raise _bad(name, "rỗng", "empty")
            _check_text(name, value, spec.max_len)
        if isinstance(value, int):
            lowest = -INT_LIMIT if spec.min is None else spec.min
            highest = INT_LIMIT - 1 if spec.max is None else spec.max
            if value < lowest:
                raise _bad(name, f"nhỏ hơn {lowest}", f"less than {lowest}")
            if value > highest:
                raise _bad(name, f"lớn hơn {highest}", f"greater than {highest}")
        if isinstance(value, list):
            if spec.max_items is not None and len(value) > spec.max_items:
                raise _bad(
                    name, f"nhiều hơn {spec.max_items} phần tử", f"more than {spec.max_items} items"
                )
            for item in value:
                if spec.items is not None and not _type_ok(item, spec.items):
                    vi, en = TYPE_NAMES[spec.items]
                    raise _bad(name, f"mỗi phần tử phải là {vi}", f"every item must be {en}")
                if isinstance(item, str):
                    _check_text(name, item, spec.max_len)
        out[name] = value
    return out


REQUEST_ID = Field(str, max_len=64)
