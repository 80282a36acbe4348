"""The configuration's fields, defined once: each entry of a provisioning file's tables
(and the same entry sent to the admin API) with its fields' types, which are required,
their checks and the words of a refusal, in Vietnamese and English, naming the field.

core/provisioning.py checks a file with it (the Vietnamese words, with the file and the
line); admin/api.py checks a request with it (the words in the request's language, the
field named in the answer). Both refuse the same input with the same words.

:func:`check_entry` checks one entry on its own; the ``check_*_refs`` functions check
what it refers to (services, counters, devices) against :class:`Known`, which the file
fills from itself and the API from the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import QueueError
from .hours import HoursError, OpeningHours
from .permissions import STAFF_ROLES
from .priorities import PRIORITIES
from .rating import MAX_REASONS, REASON_MAX_LEN, TIMEOUT_RANGE, clean_text
from .roles import DEVICE_KINDS

# What a value of each type is called, after "must be".
TYPE_WORDS: dict[type, tuple[str, str]] = {
    str: ("một chuỗi ký tự không rỗng", "a non-empty string"),
    int: ("một số nguyên", "a whole number"),
    float: ("một số", "a number"),
    bool: ("true hoặc false", "true or false"),
    list: ("một danh sách", "a list"),
    dict: ("một bảng", "a table"),
}
ITEM_WORDS: dict[type, tuple[str, str]] = {
    str: ("một danh sách chuỗi ký tự", "a list of strings"),
    int: ("một danh sách số nguyên", "a list of whole numbers"),
}
# Each table's key: what names an entry in a file, and in the admin API's addresses.
KEYS = {
    "agencies": "code",
    "services": "code",
    "counters": "number",
    "staff": "username",
    "devices": "name",
}
PASSWORD_MIN = 8
TOKEN_MIN = 16


@dataclass(frozen=True)
class Spec:
    """One field: its type, whether an entry must have it, the type of a list's items, the
    longest text its column keeps, and a check with what it asks for ``(vi, en)``: the
    words after the field's name ("phải từ 0 đến 9999", "must be from 0 to 9999")."""

    type: type
    required: bool = False
    items: type | None = None
    max_len: int | None = None
    check: Callable[[Any], bool] | None = None
    must: tuple[str, str] | None = None


class FieldRefused(QueueError):
    """A configuration value refused, naming its field: ``vi`` and ``en`` are the whole
    sentence. The API answers it with ``field`` beside ``code`` and ``message``; a
    provisioning file's check says ``vi`` with its file and line."""

    def __init__(self, name: str, vi: str, en: str, code: str = "bad_request"):
        super().__init__(code, "config_refused", why=(vi, en))
        self.field, self.vi, self.en = name, vi, en

    def as_dict(self, lang: str = "vi") -> dict:
        return {**super().as_dict(lang), "field": self.field}


def refuse(name: str, must: tuple[str, str], code: str = "bad_request") -> FieldRefused:
    """``“name” <must>``: the field's name, then what it must be."""
    return FieldRefused(name, f"“{name}” {must[0]}", f"'{name}' {must[1]}", code)


def _between(low, high, unit: tuple[str, str] = ("", "")) -> dict:
    vi_unit = f" {unit[0]}" if unit[0] else ""
    en_unit = f" {unit[1]}" if unit[1] else ""
    return {
        "check": lambda v: low <= v <= high,
        "must": (f"phải từ {low} đến {high}{vi_unit}", f"must be from {low} to {high}{en_unit}"),
    }


def _one_of(values) -> dict:
    words = ", ".join(map(str, values))
    return {
        "check": lambda v: v in values,
        "must": (f"phải là một trong: {words}", f"must be one of: {words}"),
    }


def _zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_PREFIX = re.compile(r"[A-Z]{1,4}")
BOARD_LAYOUTS = ("auto", "hall", "office")
ANNOUNCE_FORMS = ("digits", "number")  # display.speech.FORMS
SLOT_MINUTES = (10, 15, 20, 30, 60)

FIELDS: dict[str, dict[str, Spec]] = {
    # The centre's settings (the admin API does not change them yet). Opening hours and
    # rating reasons are checked by core/provisioning.py with core/hours.py and
    # core/rating.py's rules.
    "centre": {
        "code": Spec(str, True, max_len=32),
        "name": Spec(str, True, max_len=255),
        "name_en": Spec(str, max_len=255),
        "timezone": Spec(
            str,
            max_len=64,
            check=_zone,
            must=(
                "phải là một múi giờ có thật, ví dụ Asia/Ho_Chi_Minh",
                "must be a time zone that exists, e.g. Asia/Ho_Chi_Minh",
            ),
        ),
        "ticket_footer": Spec(str),
        "rating_reasons": Spec(list),
        "rating_timeout_s": Spec(int, **_between(*TIMEOUT_RANGE, ("giây", "seconds"))),
        "notice": Spec(str),
        # Display boards: "auto" picks "office" (large tiles) for a board showing up to 6
        # counters (core/views.py OFFICE_MAX_COUNTERS) and "hall" (a grid) above that;
        # "hall" or "office" forces one.
        "board_layout": Spec(str, **_one_of(BOARD_LAYOUTS)),
        "announce_form": Spec(str, **_one_of(ANNOUNCE_FORMS)),
        "announce_repeats": Spec(int, **_between(0, 3)),  # 0: silent
        # Opening hours, closed days and appointments (core/hours.py, core/appointments.py).
        "hours": Spec(dict),
        "closed_days": Spec(list),
        "slot_minutes": Spec(int, **_one_of(SLOT_MINUTES)),
        "booking_days": Spec(int, **_between(1, 90, ("ngày", "days"))),
        "appointment_share": Spec(
            float,
            **_between(
                0, 0.8, ("(phần còn lại cho người đến trực tiếp)", "(the rest for walk-ins)")
            ),
        ),
        # Text a ticket's holder this few ahead (core/notices.py).
        "notify_ahead": Spec(int, **_between(1, 20, ("người", "people"))),
        "target_wait_s": Spec(int, **_between(60, 4 * 3600, ("giây", "seconds"))),
    },
    # The agencies whose procedures the centre receives (cơ quan: "Sở Tư pháp").
    "agencies": {
        "code": Spec(str, True, max_len=32),
        "name": Spec(str, True, max_len=255),
        "name_en": Spec(str, max_len=255),
        "active": Spec(bool),  # false: retired (refused while an active service is its)
    },
    "services": {
        "code": Spec(str, True, max_len=32),
        "name": Spec(str, True, max_len=255),
        "name_en": Spec(str, max_len=255),
        # The code of its agency. Files written before agencies were entries name the
        # agency itself here (and its English name in ``agency_en``): an agency of that
        # name is taken, or made (core/provisioning.py resolve_agency).
        "agency": Spec(str, True, max_len=255),
        "agency_en": Spec(str, max_len=255),
        "prefix": Spec(
            str,
            True,
            check=_PREFIX.fullmatch,
            must=(
                "phải là 1-4 chữ cái in hoa không dấu",
                "must be 1-4 capital letters without diacritics",
            ),
        ),
        "start": Spec(int, **_between(0, 9999)),
        # The expected service time of a new service (then learnt from its visits).
        "service_minutes": Spec(int, **_between(1, 480, ("phút", "minutes"))),
        "active": Spec(bool),
        # Bookings a slot takes (0: none; absent: the centre's share of the counters' time).
        "appointments": Spec(int, **_between(0, 100, ("lượt một khung giờ", "a slot"))),
        # Its own opening hours, the centre's ``hours`` form (absent: the centre's hours);
        # the centre's closed days close it too. Checked by check_service_rules.
        "hours": Spec(dict),
        # The priority groups it accepts (absent: every group).
        "priorities": Spec(
            list,
            items=str,
            check=lambda v: 0 < len(v) == len(set(v)) and all(g in PRIORITIES for g in v),
            must=(
                f"phải là một hoặc vài nhóm ưu tiên khác nhau trong: {', '.join(PRIORITIES)}"
                " (bỏ trống: nhận mọi nhóm)",
                f"must be one or more different priority groups among: {', '.join(PRIORITIES)}"
                " (leave it out: every group)",
            ),
        ),
    },
    "counters": {
        "number": Spec(int, True, **_between(1, 9999)),
        "name": Spec(str, max_len=255),
        "services": Spec(list, True, items=str),
        "active": Spec(bool),  # false: retired (its history and reports stay)
    },
    "staff": {
        "username": Spec(str, True, max_len=64),
        # The code of the centre that owns the account, for one lent to this centre: its
        # password, name and photo stay that centre's (default: this centre owns it).
        "home": Spec(str, max_len=32),
        # Absent: an existing account keeps its password; a new one gets none that works
        # (the admin API sets or generates one).
        "password": Spec(
            str,
            check=lambda v: len(v) >= PASSWORD_MIN,
            must=(
                f"phải có ít nhất {PASSWORD_MIN} ký tự",
                f"must be at least {PASSWORD_MIN} characters",
            ),
        ),
        "full_name": Spec(str, max_len=255),
        "role": Spec(str, True, **_one_of(tuple(STAFF_ROLES))),
        "counters": Spec(list, items=int),
        "photo": Spec(str),
    },
    "devices": {
        "name": Spec(str, True, max_len=255),
        "kind": Spec(str, True, **_one_of(DEVICE_KINDS)),
        # Absent: an existing device keeps its token; a new one gets none that works (the
        # admin API generates one).
        "token": Spec(
            str,
            check=lambda v: len(v) >= TOKEN_MIN,
            must=(
                f"phải có ít nhất {TOKEN_MIN} ký tự",
                f"must be at least {TOKEN_MIN} characters",
            ),
        ),
        "counter": Spec(int),
        "counters": Spec(list, items=int),
        "kiosks": Spec(list, items=str),
    },
}


def _type_ok(value, typ: type) -> bool:
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typ)


def check_entry(table: str, entry: dict) -> None:
    """Check one entry of ``table`` on its own: no unknown key, every required one, each
    value of its type and passing its check. Raises :class:`FieldRefused`. An integer is
    taken for a float (1 for 1.0) and written back as one."""
    spec = FIELDS[table]
    for key in entry:
        if key not in spec:
            raise FieldRefused(
                str(key)[:40],
                f"[{table}] có khóa lạ “{str(key)[:40]}”",
                f"[{table}] has an unknown key '{str(key)[:40]}'",
            )
    for key, s in spec.items():
        if key not in entry:
            if s.required:
                raise missing(table, key)
            continue
        value = entry[key]
        if s.type is float and _type_ok(value, int):
            value = entry[key] = float(value)  # 1 is as good as 1.0
        if not _type_ok(value, s.type) or (s.type is str and not value.strip()):
            raise refuse(key, _must_be(TYPE_WORDS[s.type]))
        if s.items is not None and not all(_type_ok(v, s.items) for v in value):
            raise refuse(key, _must_be(ITEM_WORDS[s.items]))
        for text in [value] if s.type is str else value if s.items is str else ():
            if not _storable(text):
                raise refuse(key, ("chứa ký tự không hợp lệ", "contains an invalid character"))
        if s.max_len is not None and len(value) > s.max_len:
            raise refuse(key, (f"dài quá {s.max_len} ký tự", f"is longer than {s.max_len}"))
        if s.check is not None and not s.check(value):
            raise refuse(key, s.must)
    if table == "services":
        check_service_rules(entry)


def _storable(text: str) -> bool:
    """Text every store keeps: no NUL (PostgreSQL refuses it), valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _must_be(words: tuple[str, str]) -> tuple[str, str]:
    return (f"phải là {words[0]}", f"must be {words[1]}")


def missing(table: str, key: str) -> FieldRefused:
    return FieldRefused(key, f"[{table}] thiếu khóa “{key}”", f"[{table}] lacks the key '{key}'")


def check_centre_rules(c: dict) -> None:
    """The centre's settings that have rules of their own: the opening hours and closed
    days (core/hours.py) and the rating reasons (cleaned in place, as stored)."""
    try:
        OpeningHours.parse(c.get("hours"), c.get("closed_days"))
    except HoursError as e:
        raise FieldRefused("hours" if "hours" in c else "closed_days", e.vi, e.en) from None
    reasons = c.get("rating_reasons")
    if reasons is None:
        return

    def bad(vi, en):
        return FieldRefused("rating_reasons", vi, en)

    if not 1 <= len(reasons) <= MAX_REASONS:
        raise bad(
            f"“rating_reasons” cần từ 1 đến {MAX_REASONS} lý do",
            f"'rating_reasons' needs 1 to {MAX_REASONS} reasons",
        )
    for r in reasons:
        if not isinstance(r, str) or not clean_text(r):
            raise bad(
                "mỗi lý do phải là một chuỗi không rỗng", "each reason must be a non-empty string"
            )
        if len(clean_text(r)) > REASON_MAX_LEN:
            raise bad(
                f"lý do dài quá {REASON_MAX_LEN} ký tự: “{r[:40]}…”",
                f"a reason is longer than {REASON_MAX_LEN} characters: '{r[:40]}…'",
            )
    cleaned = [clean_text(r) for r in reasons]
    if len(set(cleaned)) != len(cleaned):
        raise bad("“rating_reasons” có lý do bị trùng", "'rating_reasons' repeats a reason")
    c["rating_reasons"] = cleaned


def check_service_rules(s: dict) -> None:
    """A service's own opening hours: the centre's rules (core/hours.py), and at least one
    range (a service without hours of its own leaves ``hours`` out)."""
    if "hours" not in s:
        return
    try:
        hours = OpeningHours.parse(s["hours"])
    except HoursError as e:
        raise FieldRefused("hours", e.vi, e.en) from None
    if not any(hours.week):
        raise refuse(
            "hours",
            (
                "cần ít nhất một khoảng giờ (bỏ trống: theo giờ của trung tâm)",
                "needs at least one range (leave it out: the centre's hours)",
            ),
        )


@dataclass
class Known:
    """What entries may refer to in a centre (``own``: its code): its services' codes, its
    counters' numbers, its devices' kinds by name and the agent printing each kiosk."""

    own: str
    services: set[str] = field(default_factory=set)
    counters: set[int] = field(default_factory=set)
    devices: dict[str, str] = field(default_factory=dict)
    printers: dict[str, str] = field(default_factory=dict)


def check_counter_refs(entry: dict, known: Known) -> None:
    for code in entry["services"]:
        if code not in known.services:
            raise FieldRefused(
                "services",
                f"quầy {entry['number']}: không có lĩnh vực “{code}”",
                f"counter {entry['number']}: there is no service '{code}'",
            )


def _counters_exist(numbers, known: Known, name: str = "counters") -> None:
    for n in numbers:
        if n not in known.counters:
            raise FieldRefused(name, f"không có quầy số {n}", f"there is no counter {n}")


def check_staff_refs(entry: dict, known: Known) -> None:
    """An account lent by another centre (``home``) sets only its role and counters here;
    one this centre owns needs its full name."""
    home = entry.get("home", known.own)
    if home != known.own:
        for key in ("password", "full_name", "photo"):
            if key in entry:
                raise FieldRefused(
                    key,
                    f"cán bộ mượn từ trung tâm “{home}”: “{key}” do trung tâm đó quản lý",
                    f"staff lent by centre '{home}': '{key}' is that centre's to set",
                )
    elif "full_name" not in entry:
        raise missing("staff", "full_name")
    _counters_exist(entry.get("counters", ()), known)


def check_device_refs(entry: dict, known: Known) -> None:
    if entry["kind"] == "rating" and entry.get("counter") not in known.counters:
        raise FieldRefused(
            "counter",
            "máy đánh giá cần “counter” là một quầy có thật",
            "a rating tablet needs 'counter', a counter of the centre",
        )
    if "counter" in entry:
        _counters_exist([entry["counter"]], known, "counter")
    _counters_exist(entry.get("counters", ()), known)
    kiosks = entry.get("kiosks", [])
    if kiosks and entry["kind"] != "agent":
        raise FieldRefused(
            "kiosks",
            'chỉ máy trạm phần cứng (kind = "agent") in cho kiosk',
            'only a hardware agent (kind = "agent") prints for kiosks',
        )
    for name in kiosks:
        if known.devices.get(name) != "kiosk":
            raise FieldRefused("kiosks", f"không có kiosk “{name}”", f"there is no kiosk '{name}'")
        printer = known.printers.get(name)
        if printer is not None and printer != entry["name"]:
            raise FieldRefused(
                "kiosks",
                f"kiosk “{name}” đã được một máy trạm khác in",
                f"kiosk '{name}' is already printed by another agent",
            )
