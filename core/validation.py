"""Checks a payload against the fields an event accepts; anything else is a bad_request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import QueueError

_TYPE_NAMES = {
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


def _type_ok(value: Any, expected: type) -> bool:
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _wrong_type(name: str, expected: type) -> QueueError:
    return QueueError("bad_request", "wrong_type", field=name, expected=_TYPE_NAMES[expected])


def _bad(name: str, vi: str, en: str) -> QueueError:
    return QueueError("bad_request", "bad_value", field=name, why=(vi, en))


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
            value = value.strip()
            if spec.required and not value:
                raise _bad(name, "rỗng", "empty")
            if spec.max_len is not None and len(value) > spec.max_len:
                raise _bad(name, f"dài quá {spec.max_len} ký tự", f"longer than {spec.max_len}")
        if isinstance(value, int):
            if spec.min is not None and value < spec.min:
                raise _bad(name, f"nhỏ hơn {spec.min}", f"less than {spec.min}")
            if spec.max is not None and value > spec.max:
                raise _bad(name, f"lớn hơn {spec.max}", f"greater than {spec.max}")
        if isinstance(value, list):
            if spec.max_items is not None and len(value) > spec.max_items:
                raise _bad(
                    name, f"nhiều hơn {spec.max_items} phần tử", f"more than {spec.max_items} items"
                )
            for item in value:
                if spec.items is not None and not _type_ok(item, spec.items):
                    vi, en = _TYPE_NAMES[spec.items]
                    raise _bad(name, f"mỗi phần tử phải là {vi}", f"every item must be {en}")
                if isinstance(item, str) and spec.max_len is not None and len(item) > spec.max_len:
                    raise _bad(
                        name,
                        f"phần tử dài quá {spec.max_len} ký tự",
                        f"item longer than {spec.max_len}",
                    )
        out[name] = value
    return out


REQUEST_ID = Field(str, max_len=64)
