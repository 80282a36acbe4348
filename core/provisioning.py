"""Create or update a centre from a provisioning file (TOML).

Idempotent: codes, numbers, usernames and device names are the keys; applying the same
file twice changes nothing. Services, staff and devices that a centre's file no longer
lists are deactivated (their history stays; a removed device's token stops working).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import models as m
from .auth import end_sessions, hash_password, password_matches, token_hash
from .errors import Refused
from .estimates import DEFAULT_TARGET_WAIT_S
from .hours import HoursError, OpeningHours
from .permissions import STAFF_ROLES
from .rating import (
    DEFAULT_TIMEOUT_S,
    MAX_REASONS,
    REASON_MAX_LEN,
    TIMEOUT_RANGE,
    clean_text,
)
from .roles import CONFIGURED, DEVICE_KINDS, change_record
from .store import Store, Tx

# Display boards: "auto" picks "office" (large tiles) for a board showing up to 6
# counters (core/views.py OFFICE_MAX_COUNTERS) and "hall" (a grid) above that;
# "hall" or "office" forces one.
BOARD_LAYOUTS = ("auto", "hall", "office")
ANNOUNCE_FORMS = ("digits", "number")  # display.speech.FORMS


class ProvisioningError(Refused):
    """What is wrong with a provisioning file, and where."""

    def __init__(self, path: str, line: int | None, what: str):
        self.path, self.line, self.what = path, line, what
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {what}")


@dataclass
class Summary:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deactivated)

    def lines(self) -> list[str]:
        if not self.changed:
            return ["Không có thay đổi (no changes)."]
        return (
            [f"+ {x}" for x in self.created]
            + [f"~ {x}" for x in self.updated]
            + [f"- {x}" for x in self.deactivated]
        )


class _Locator:
    """Finds the line of the n-th ``[[table]]`` entry, and of a key inside it."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def line(self, table: str, index: int | None = None, key: str | None = None) -> int | None:
        header = re.compile(
            r"^\s*\[\[\s*" + re.escape(table) + r"\s*\]\]"
            if index is not None
            else r"^\s*\[\s*" + re.escape(table) + r"\s*\]"
        )
        seen = -1
        for i, text in enumerate(self.lines):
            if header.match(text):
                seen += 1
                if index is None or seen == index:
                    if key is None:
                        return i + 1
                    for j in range(i + 1, len(self.lines)):
                        if re.match(r"^\s*\[", self.lines[j]):
                            break
                        if re.match(r"^\s*" + re.escape(key) + r"\s*=", self.lines[j]):
                            return j + 1
                    return i + 1
        return None


_SPEC: dict[str, dict[str, tuple[type, bool]]] = {
    "centre": {
        "code": (str, True),
        "name": (str, True),
        "name_en": (str, False),
        "timezone": (str, False),
        "ticket_footer": (str, False),
        "rating_reasons": (list, False),
        "rating_timeout_s": (int, False),
        "notice": (str, False),
        "board_layout": (str, False),
        "announce_form": (str, False),
        "announce_repeats": (int, False),
        # Opening hours, closed days and appointments (core/hours.py, core/appointments.py).
        "hours": (dict, False),
        "closed_days": (list, False),
        "slot_minutes": (int, False),
        "booking_days": (int, False),
        "appointment_share": (float, False),
        "notify_ahead": (int, False),  # text a ticket's holder this few ahead (core/notices.py)
        "target_wait_s": (int, False),
    },
    "services": {
        "code": (str, True),
        "name": (str, True),
        "name_en": (str, False),
        "agency": (str, True),
        "agency_en": (str, False),
        "prefix": (str, True),
        "start": (int, False),
        "service_minutes": (int, False),
        "active": (bool, False),
        "appointments": (int, False),  # bookings a slot takes (0: none; absent: the share)
    },
    "counters": {"number": (int, True), "name": (str, False), "services": (list, True)},
    "staff": {
        "username": (str, True),
        # The code of the centre that owns the account, for one lent to this centre: its
        # password, name and photo stay that centre's (default: this centre owns it).
        "home": (str, False),
        "password": (str, False),
        "full_name": (str, False),
        "role": (str, True),
        "counters": (list, False),
        "photo": (str, False),
    },
    "devices": {
        "name": (str, True),
        "kind": (str, True),
        "token": (str, True),
        "counter": (int, False),
        "counters": (list, False),
        "kiosks": (list, False),
    },
}


def load(path: str | Path) -> dict[str, Any]:
    """Read and check a provisioning file; raise ProvisioningError naming file and line."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ProvisioningError(path, None, f"không đọc được tệp: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise ProvisioningError(path, None, "tệp phải được lưu ở dạng UTF-8") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = getattr(e, "lineno", None)
        if line is None:
            found = re.search(r"line (\d+)", str(e))
            line = int(found.group(1)) if found else None
        raise ProvisioningError(path, line, f"TOML không hợp lệ: {e}") from e
    _check(path, data, _Locator(text))
    data["_path"] = path
    return data


def _check(path: str, data: dict, loc: _Locator) -> None:
    def fail(table, index, key, what):
        raise ProvisioningError(path, loc.line(table, index, key), what)

    for name in data:
        if name not in _SPEC:
            raise ProvisioningError(path, loc.line(name) or loc.line(name, 0), f"mục lạ “{name}”")
    if "centre" not in data or not isinstance(data["centre"], dict):
        raise ProvisioningError(path, None, "thiếu mục [centre]")

    def check_fields(table, index, entry):
        spec = _SPEC[table]
        for key in entry:
            if key not in spec:
                fail(table, index, key, f"[{table}] có khóa lạ “{key}”")
        for key, (typ, required) in spec.items():
            if key not in entry:
                if required:
                    fail(table, index, None, f"[{table}] thiếu khóa “{key}”")
                continue
            value = entry[key]
            if typ is float and isinstance(value, int) and not isinstance(value, bool):
                value = entry[key] = float(value)  # 1 is as good as 1.0
            ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
            if not ok or (typ is str and not value.strip()):
                fail(table, index, key, f"“{key}” phải là {typ.__name__} không rỗng")

    check_fields("centre", None, data["centre"])
    _check_rating(data["centre"], lambda key, what: fail("centre", None, key, what))
    tz = data["centre"].get("timezone", "Asia/Ho_Chi_Minh")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        fail("centre", None, "timezone", f"múi giờ không tồn tại: “{tz}”")
    if data["centre"].get("board_layout", "auto") not in BOARD_LAYOUTS:
        fail("centre", None, "board_layout", f"“board_layout” phải là {', '.join(BOARD_LAYOUTS)}")
    if data["centre"].get("announce_form", "digits") not in ANNOUNCE_FORMS:
        fail("centre", None, "announce_form", "“announce_form” phải là digits hoặc number")
    if not 0 <= data["centre"].get("announce_repeats", 1) <= 3:
        fail("centre", None, "announce_repeats", "“announce_repeats” phải từ 0 đến 3")
    _check_appointments(data["centre"], lambda key, what: fail("centre", None, key, what))
    if not 60 <= data["centre"].get("target_wait_s", DEFAULT_TARGET_WAIT_S) <= 4 * 3600:
        fail("centre", None, "target_wait_s", "“target_wait_s” phải từ 60 đến 14400 giây")

    for table in ("services", "counters", "staff", "devices"):
        entries = data.get(table, [])
        if not isinstance(entries, list):
            raise ProvisioningError(path, loc.line(table), f"“{table}” phải là [[{table}]]")
        for i, entry in enumerate(entries):
            check_fields(table, i, entry)

    codes: set[str] = set()
    for i, s in enumerate(data.get("services", [])):
        if s["code"] in codes:
            fail("services", i, "code", f"mã lĩnh vực “{s['code']}” bị trùng")
        codes.add(s["code"])
        if not re.fullmatch(r"[A-Z]{1,4}", s["prefix"]):
            fail("services", i, "prefix", "“prefix” phải là 1-4 chữ cái in hoa không dấu")
        if not 0 <= s.get("start", 1) <= 9999:
            fail("services", i, "start", "“start” phải từ 0 đến 9999")
        if not 0 <= s.get("appointments", 0) <= 100:
            fail(
                "services", i, "appointments", "“appointments” phải từ 0 đến 100 lượt một khung giờ"
            )
    numbers: set[int] = set()
    for i, c in enumerate(data.get("counters", [])):
        if c["number"] in numbers or c["number"] < 1:
            fail("counters", i, "number", f"số quầy {c['number']} bị trùng hoặc không hợp lệ")
        numbers.add(c["number"])
        for code in c["services"]:
            if code not in codes:
                fail("counters", i, "services", f"quầy {c['number']}: không có lĩnh vực “{code}”")
    usernames: set[str] = set()
    own = data["centre"]["code"]
    for i, st in enumerate(data.get("staff", [])):
        if st["username"] in usernames:
            fail("staff", i, "username", f"tên đăng nhập “{st['username']}” bị trùng")
        usernames.add(st["username"])
        st["_line"] = loc.line("staff", i, "username")
        if st["role"] not in STAFF_ROLES:
            fail("staff", i, "role", f"“role” phải là một trong: {', '.join(STAFF_ROLES)}")
        if st.get("home", own) != own:
            for key in ("password", "full_name", "photo"):
                if key in st:
                    fail(
                        "staff",
                        i,
                        key,
                        f"cán bộ mượn từ trung tâm “{st['home']}”: “{key}” do trung tâm đó quản lý",
                    )
            continue
        for key in ("password", "full_name"):
            if key not in st:
                fail("staff", i, None, f"[staff] thiếu khóa “{key}”")
        if len(st["password"]) < 8:
            fail("staff", i, "password", "mật khẩu phải có ít nhất 8 ký tự")
        for n in st.get("counters", []):
            if n not in numbers:
                fail("staff", i, "counters", f"không có quầy số {n}")
        if "photo" in st:
            try:
                st["_photo"] = read_photo(Path(path).parent / st["photo"])
            except ValueError as e:
                fail("staff", i, "photo", f"ảnh “{st['photo']}”: {e}")
    names: set[str] = set()
    tokens: set[str] = set()
    for i, d in enumerate(data.get("devices", [])):
        if d["name"] in names:
            fail("devices", i, "name", f"tên thiết bị “{d['name']}” bị trùng")
        names.add(d["name"])
        if d["token"] in tokens or len(d["token"]) < 16:
            fail(
                "devices", i, "token", "mã thiết bị phải riêng cho từng thiết bị, ít nhất 16 ký tự"
            )
        tokens.add(d["token"])
        if d["kind"] not in DEVICE_KINDS:
            fail("devices", i, "kind", f"“kind” phải là một trong: {', '.join(DEVICE_KINDS)}")
        if d["kind"] == "rating" and d.get("counter") not in numbers:
            fail("devices", i, "counter", "máy đánh giá cần “counter” là một quầy có thật")
        for n in d.get("counters", []):
            if n not in numbers:
                fail("devices", i, "counters", f"không có quầy số {n}")
    kinds = {d["name"]: d["kind"] for d in data.get("devices", [])}
    printed: set[str] = set()
    for i, d in enumerate(data.get("devices", [])):
        if d.get("kiosks") and d["kind"] != "agent":
            fail("devices", i, "kiosks", 'chỉ máy trạm phần cứng (kind = "agent") in cho kiosk')
        for name in d.get("kiosks", []):
            if kinds.get(name) != "kiosk":
                fail("devices", i, "kiosks", f"không có kiosk “{name}” trong tệp")
            if name in printed:
                fail("devices", i, "kiosks", f"kiosk “{name}” đã được một máy trạm khác in")
            printed.add(name)


def _check_appointments(c: dict, fail) -> None:
    try:
        OpeningHours.parse(c.get("hours"), c.get("closed_days"))
    except HoursError as e:
        fail("hours" if "hours" in c else "closed_days", str(e))
    if c.get("slot_minutes", 30) not in (10, 15, 20, 30, 60):
        fail("slot_minutes", "“slot_minutes” phải là 10, 15, 20, 30 hoặc 60")
    if not 1 <= c.get("booking_days", 14) <= 90:
        fail("booking_days", "“booking_days” phải từ 1 đến 90 ngày")
    if not 1 <= c.get("notify_ahead", 3) <= 20:
        fail("notify_ahead", "“notify_ahead” phải từ 1 đến 20 người")
    if not 0 <= c.get("appointment_share", 0.5) <= 0.8:
        fail(
            "appointment_share",
            "“appointment_share” phải từ 0 đến 0.8 (phần còn lại cho người đến trực tiếp)",
        )


def _check_rating(c: dict, fail) -> None:
    reasons = c.get("rating_reasons")
    if reasons is not None:
        if not 1 <= len(reasons) <= MAX_REASONS:
            fail("rating_reasons", f"“rating_reasons” cần từ 1 đến {MAX_REASONS} lý do")
        for r in reasons:
            if not isinstance(r, str) or not clean_text(r):
                fail("rating_reasons", "mỗi lý do phải là một chuỗi không rỗng")
            if len(clean_text(r)) > REASON_MAX_LEN:
                fail("rating_reasons", f"lý do dài quá {REASON_MAX_LEN} ký tự: “{r[:40]}…”")
        cleaned = [clean_text(r) for r in reasons]
        if len(set(cleaned)) != len(cleaned):
            fail("rating_reasons", "“rating_reasons” có lý do bị trùng")
        c["rating_reasons"] = cleaned
    low, high = TIMEOUT_RANGE
    if not low <= c.get("rating_timeout_s", DEFAULT_TIMEOUT_S) <= high:
        fail("rating_timeout_s", f"“rating_timeout_s” phải từ {low} đến {high} giây")


PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_SIZE = 360  # pixels, the longer side of the JPEG kept


def read_photo(path: Path) -> bytes:
    """A staff photo as the tablet gets it: a JPEG of at most PHOTO_SIZE pixels, made
    the same way every time (applying the file again changes nothing)."""
    import io

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        if path.stat().st_size > PHOTO_MAX_BYTES:
            raise ValueError("tệp ảnh lớn quá 10 MB")
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            img.thumbnail((PHOTO_SIZE, PHOTO_SIZE))
            out = io.BytesIO()
            img.save(out, "JPEG", quality=85, optimize=True)
    except OSError as e:
        if isinstance(e, UnidentifiedImageError):
            raise ValueError("không phải tệp ảnh (JPEG, PNG, WebP)") from e
        raise ValueError(f"không đọc được tệp: {e.strerror or e}") from e
    return out.getvalue()


def provision(store: Store, path: str | Path) -> list[str]:
    """Apply a provisioning file through the store's write path; returns what changed.
    Raises ProvisioningError for an invalid file."""
    data = load(path)
    summary = store.write(lambda tx: apply(tx, data), centre_id=0, actor="provisioning")
    return summary.lines()


def file_digest(data: dict) -> str:
    """What a checked provisioning file says, as one digest (photos by their bytes)."""

    def plain(value):
        if isinstance(value, bytes):
            return hashlib.sha256(value).hexdigest()
        if isinstance(value, dict):  # where it was read from is not what it says
            return {k: plain(v) for k, v in value.items() if k not in ("_path", "_line")}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    text = json.dumps(plain(data), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def apply(tx: Tx, data: dict) -> Summary:
    """Bring the store in line with a checked provisioning file, in the caller's
    transaction; a change is recorded (audited, numbered) so devices take new snapshots.

    A file the same as the last one applied to its centre changes nothing and is not
    applied again: applying checks every clerk's password against its hash (scrypt,
    ~0.16 s each), which a server started with ``--provision`` would otherwise pay at
    every start."""
    digest = file_digest(data)
    c = m.centres
    last = tx.conn.execute(
        sa.select(c.c.provisioned_digest).where(c.c.code == data["centre"]["code"])
    ).scalar()
    if last == digest:
        return Summary()
    summary, centre_id = _apply(tx.conn, data)
    tx.conn.execute(c.update().where(c.c.id == centre_id).values(provisioned_digest=digest))
    if summary.changed:
        tx.change(
            centre_id,
            CONFIGURED,
            "provisioning",
            change=change_record(CONFIGURED),
            details={"summary": summary.lines()},
        )
    return summary


def _apply(conn: Connection, data: dict) -> tuple[Summary, int]:
    summary = Summary()
    c = data["centre"]
    centre_id = _upsert(
        conn,
        m.centres,
        {"code": c["code"]},
        {
            "name": c["name"],
            "name_en": c.get("name_en"),
            "timezone": c.get("timezone", "Asia/Ho_Chi_Minh"),
            "ticket_footer": c.get("ticket_footer"),
            "rating_reasons": c.get("rating_reasons"),
            "rating_timeout_s": c.get("rating_timeout_s"),
            "notice": c.get("notice"),
            "board_layout": c.get("board_layout", "auto"),
            "announce_form": c.get("announce_form", "digits"),
            "announce_repeats": c.get("announce_repeats", 1),
            "opening_hours": c.get("hours"),
            "closed_days": c.get("closed_days"),
            "slot_minutes": c.get("slot_minutes", 30),
            "booking_days": c.get("booking_days", 14),
            "appointment_share": c.get("appointment_share", 0.5),
            "notify_ahead": c.get("notify_ahead", 3),
            "target_wait_s": c.get("target_wait_s"),
        },
        summary,
        f"centre {c['code']}",
    )

    service_ids = {}
    for s in data.get("services", []):
        values = {
            "name": s["name"],
            "name_en": s.get("name_en"),
            "agency": s["agency"],
            "agency_en": s.get("agency_en"),
            "prefix": s["prefix"],
            "start": s.get("start", 1),
            "active": s.get("active", True),
            "slot_capacity": s.get("appointments"),
        }
        insert_only = {"avg_service_s": float(s.get("service_minutes", 5) * 60)}
        service_ids[s["code"]] = _upsert(
            conn,
            m.services,
            {"centre_id": centre_id, "code": s["code"]},
            values,
            summary,
            f"service {s['code']}",
            insert_only=insert_only,
        )
    _deactivate(
        conn, m.services, centre_id, m.services.c.code, set(service_ids), summary, "service"
    )

    counter_ids = {}
    for ct in data.get("counters", []):
        counter_ids[ct["number"]] = _upsert(
            conn,
            m.counters,
            {"centre_id": centre_id, "number": ct["number"]},
            {"name": ct.get("name") or f"Quầy {ct['number']}"},
            summary,
            f"counter {ct['number']}",
        )
        _set_links(
            conn,
            m.counter_services,
            "counter_id",
            counter_ids[ct["number"]],
            "service_id",
            {service_ids[code] for code in ct["services"]},
            summary,
            f"counter {ct['number']}",
        )

    _apply_staff(conn, data, centre_id, counter_ids, summary)

    names = set()
    device_ids = {}
    for d in data.get("devices", []):
        names.add(d["name"])
        values = {
            "kind": d["kind"],
            "token_hash": token_hash(d["token"]),
            "active": True,
            "counter_id": counter_ids[d["counter"]] if d.get("counter") else None,
        }
        device_id = _upsert(
            conn,
            m.devices,
            {"centre_id": centre_id, "name": d["name"]},
            values,
            summary,
            f"device {d['name']}",
        )
        device_ids[d["name"]] = device_id
        _set_links(
            conn,
            m.device_counters,
            "device_id",
            device_id,
            "counter_id",
            {counter_ids[n] for n in d.get("counters", [])},
            summary,
            f"device {d['name']}",
        )
    # Which agent prints each kiosk's tickets (none: the kiosk only shows them).
    printer_of = {
        k: device_ids[d["name"]] for d in data.get("devices", []) for k in d.get("kiosks", [])
    }
    for d in data.get("devices", []):
        if d["kind"] == "kiosk":
            _upsert(
                conn,
                m.devices,
                {"centre_id": centre_id, "name": d["name"]},
                {"printed_by": printer_of.get(d["name"])},
                summary,
                f"device {d['name']}",
            )
    _deactivate(conn, m.devices, centre_id, m.devices.c.name, names, summary, "device")
    return summary, centre_id


def _apply_staff(conn, data: dict, centre_id: int, counter_ids: dict, summary: Summary):
    """The centre's staff: accounts it owns (created, updated, deactivated when no longer
    listed) and accounts lent by another centre (``home``), which get a role and counters
    here and are otherwise left as their centre keeps them. A username that another
    centre owns is refused unless the entry says it is lent, so two centres' files never
    move an account between them."""
    st_, sr = m.staff, m.staff_roles
    own = data["centre"]["code"]
    codes = dict(conn.execute(sa.select(m.centres.c.id, m.centres.c.code)).all())

    def fail(entry, what):
        raise ProvisioningError(data.get("_path", ""), entry.get("_line"), what)

    usernames = set()
    for st in data.get("staff", []):
        usernames.add(st["username"])
        existing = conn.execute(sa.select(st_).where(st_.c.username == st["username"])).first()
        home = st.get("home", own)
        label = f"staff {st['username']}"
        if home != own:
            if existing is None or codes.get(existing.centre_id) != home:
                fail(st, f"trung tâm “{home}” không có cán bộ “{st['username']}” để cho mượn")
            staff_id = existing.id
        else:
            if existing is not None and existing.centre_id != centre_id:
                other = codes[existing.centre_id]
                fail(
                    st,
                    f"tên đăng nhập “{st['username']}” đã thuộc trung tâm “{other}”: hãy đặt "
                    f'tên khác, hoặc ghi home = "{other}" để mượn cán bộ này',
                )
            photo = st.get("_photo")
            values = {
                "centre_id": centre_id,
                "full_name": st["full_name"],
                "active": True,
                "photo_digest": hashlib.sha256(photo).hexdigest()[:16] if photo else None,
            }
            if existing is None or existing.photo_digest != values["photo_digest"]:
                values["photo"] = photo
            if existing is None or not password_matches(existing.password_hash, st["password"]):
                values["password_hash"] = hash_password(st["password"])
            staff_id = _upsert(conn, st_, {"username": st["username"]}, values, summary, label)
            if existing is not None and "password_hash" in values:
                end_sessions(conn, staff_id)  # a new password ends the old sessions
        _upsert(
            conn,
            sr,
            {"staff_id": staff_id, "centre_id": centre_id},
            {"role": st["role"]},
            summary,
            label,
            key=("staff_id", "centre_id"),
        )
        _set_links(
            conn,
            m.staff_counters,
            "staff_id",
            staff_id,
            "counter_id",
            {counter_ids[n] for n in st.get("counters", [])},
            summary,
            label,
            within=sa.select(m.counters.c.id).where(m.counters.c.centre_id == centre_id),
        )
    _deactivate(conn, st_, centre_id, st_.c.username, usernames, summary, "staff")
    # Roles here of accounts the file no longer lists (lent ones included) end.
    gone = sa.select(st_.c.id).where(st_.c.username.not_in(usernames))
    conn.execute(sa.delete(sr).where(sr.c.centre_id == centre_id, sr.c.staff_id.in_(gone)))


def _upsert(
    conn,
    table,
    keys: dict,
    values: dict,
    summary: Summary,
    label: str,
    insert_only: dict | None = None,
    key: tuple[str, ...] = ("id",),
):
    """Insert or update the row of ``keys``; its ``key`` columns' value (the id)."""
    where = [table.c[k] == v for k, v in keys.items()]
    row = conn.execute(sa.select(table).where(*where)).first()
    if row is None:
        if label not in summary.created:
            summary.created.append(label)
        inserted = conn.execute(
            table.insert()
            .values(**keys, **values, **(insert_only or {}))
            .returning(*(table.c[k] for k in key))
        ).one()
        return inserted[0] if len(key) == 1 else tuple(inserted)
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    if changed:
        conn.execute(sa.update(table).where(*where).values(**changed))
        summary.updated.append(f"{label} ({', '.join(sorted(changed))})")
    found = tuple(getattr(row, k) for k in key)
    return found[0] if len(key) == 1 else found


def _set_links(
    conn,
    table,
    owner_col: str,
    owner_id: int,
    other_col: str,
    wanted: set[int],
    summary: Summary,
    label: str,
    within=None,
) -> None:
    """Make the owner's links exactly ``wanted`` (among ``within``, a select of the other
    side's ids, when the owner has links elsewhere that are not this file's)."""
    query = sa.select(table.c[other_col]).where(table.c[owner_col] == owner_id)
    if within is not None:
        query = query.where(table.c[other_col].in_(within))
    have = set(conn.execute(query).scalars())
    if have == wanted:
        return
    for other in have - wanted:
        conn.execute(
            sa.delete(table).where(table.c[owner_col] == owner_id, table.c[other_col] == other)
        )
    for other in wanted - have:
        conn.execute(table.insert().values(**{owner_col: owner_id, other_col: other}))
    if label not in summary.created:
        summary.updated.append(f"{label} ({other_col.removesuffix('_id')}s)")


def _deactivate(conn, table, centre_id: int, key_col, keep: set, summary: Summary, label: str):
    rows = conn.execute(
        sa.select(table.c.id, key_col).where(
            table.c.centre_id == centre_id, table.c.active.is_(True), key_col.not_in(keep)
        )
    ).all()
    for row in rows:
        conn.execute(sa.update(table).where(table.c.id == row.id).values(active=False))
        if table is m.staff:
            end_sessions(conn, row.id)
        summary.deactivated.append(f"{label} {row[1]}")
