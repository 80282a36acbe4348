"""Create or update a centre from a provisioning file (TOML).

Idempotent: codes, numbers, usernames and device names are the keys; applying the same
file twice changes nothing. Services, staff and devices that a centre's file no longer
lists are deactivated (their history stays; a removed device's token stops working);
counters stay unless an entry says ``active = false``.

The fields and their checks are core/fields.py's; each entry is applied by a function of
its own (:func:`apply_service`, :func:`apply_counter`, :func:`apply_staff`,
:func:`apply_device`), which the admin API calls too (core/admin.py). A staff entry
without ``password`` keeps the account's password, a device without ``token`` its token
(new ones get none that works until an admin sets them): the export (:func:`export`,
:func:`to_toml`) writes no secrets and is accepted back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import models as m
from .auth import end_sessions, hash_password, password_matches, token_hash
from .clock import iso
from .errors import Refused
from .fields import (
    FIELDS,
    KEYS,
    FieldRefused,
    Known,
    check_centre_rules,
    check_counter_refs,
    check_device_refs,
    check_entry,
    check_staff_refs,
)
from .roles import CONFIGURED, STAFF_CHANGED, change_record
from .store import Store, Tx


class ProvisioningError(Refused):
    """What is wrong with a provisioning file, and where."""

    def __init__(self, path: str, line: int | None, what: str, centre: str | None = None):
        self.path, self.line, self.what, self.centre = path, line, what, centre
        where = f"{path}:{line}" if line else path
        # In a province (core/province.py), the centre too: "xa/x120.toml:31: trung tâm
        # “X120”: …".
        said = f"trung tâm “{centre}”: {what}" if centre else what
        super().__init__(f"{where}: {said}")


@dataclass
class Summary:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deactivated)

    def changes(self) -> list[str]:
        """What changed, as labels ("staff canbo1 (password_hash)"), without the signs."""
        return [*self.created, *self.updated, *self.deactivated]

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
                    sub = re.compile(r"^\s*\[\s*" + re.escape(f"{table}.{key}") + r"\s*\]")
                    for j in range(i + 1, len(self.lines)):
                        if sub.match(self.lines[j]):  # the entry's subtable: [services.hours]
                            return j + 1
                        if re.match(r"^\s*\[", self.lines[j]) and not re.match(
                            r"^\s*\[\s*" + re.escape(table) + r"\.", self.lines[j]
                        ):
                            break
                        if re.match(r"^\s*" + re.escape(key) + r"\s*=", self.lines[j]):
                            return j + 1
                    return i + 1
        return None


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
    """Check a file's entries with core/fields.py's definition (its Vietnamese words, at
    the line of the field named, or of the entry when the field is missing), then what
    they refer to within the file. Each entry keeps its line (``_line``)."""

    def fail(table, index, key, what):
        raise ProvisioningError(path, loc.line(table, index, key), what)

    for name in data:
        if name not in FIELDS:
            raise ProvisioningError(path, loc.line(name) or loc.line(name, 0), f"mục lạ “{name}”")
    if "centre" not in data or not isinstance(data["centre"], dict):
        raise ProvisioningError(path, None, "thiếu mục [centre]")

    def checked(table, index, entry, refs=None, known=None):
        if not isinstance(entry, dict):
            fail(table, index, None, f"mỗi mục [[{table}]] phải là một bảng")
        try:
            if refs is None:
                check_entry(table, entry)
            else:
                refs(entry, known)
        except FieldRefused as e:
            fail(table, index, e.field if e.field in entry else None, e.vi)

    checked("centre", None, data["centre"])
    try:
        check_centre_rules(data["centre"])
    except FieldRefused as e:
        fail("centre", None, e.field, e.vi)

    for table, key in KEYS.items():
        entries = data.get(table, [])
        if not isinstance(entries, list):
            raise ProvisioningError(path, loc.line(table), f"“{table}” phải là [[{table}]]")
        for i, entry in enumerate(entries):
            checked(table, i, entry)
            entry["_line"] = loc.line(table, i, key)

    codes: set[str] = set()
    for i, a in enumerate(data.get("agencies", [])):
        if a["code"] in codes:
            fail("agencies", i, "code", f"mã cơ quan “{a['code']}” bị trùng")
        codes.add(a["code"])
    known = Known(own=data["centre"]["code"])
    for i, s in enumerate(data.get("services", [])):
        if s["code"] in known.services:
            fail("services", i, "code", f"mã lĩnh vực “{s['code']}” bị trùng")
        known.services.add(s["code"])
    for i, c in enumerate(data.get("counters", [])):
        if c["number"] in known.counters:
            fail("counters", i, "number", f"số quầy {c['number']} bị trùng")
        checked("counters", i, c, check_counter_refs, known)
        known.counters.add(c["number"])
    usernames: set[str] = set()
    for i, st in enumerate(data.get("staff", [])):
        if st["username"] in usernames:
            fail("staff", i, "username", f"tên đăng nhập “{st['username']}” bị trùng")
        usernames.add(st["username"])
        checked("staff", i, st, check_staff_refs, known)
        if "photo" in st:
            try:
                st["_photo"] = read_photo(Path(path).parent / st["photo"])
            except ValueError as e:
                fail("staff", i, "photo", f"ảnh “{st['photo']}”: {e}")
    tokens: set[str] = set()
    for i, d in enumerate(data.get("devices", [])):
        if d["name"] in known.devices:
            fail("devices", i, "name", f"tên thiết bị “{d['name']}” bị trùng")
        known.devices[d["name"]] = d["kind"]
        if "token" in d:
            if d["token"] in tokens:
                fail("devices", i, "token", "mã thiết bị phải riêng cho từng thiết bị")
            tokens.add(d["token"])
    for i, d in enumerate(data.get("devices", [])):
        checked("devices", i, d, check_device_refs, known)
        known.printers.update((name, d["name"]) for name in d.get("kiosks", []))


PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_SIZE = 360  # pixels, the longer side of the JPEG kept


def read_photo(path: Path) -> bytes:
    """A staff photo as the tablet gets it: a JPEG of at most PHOTO_SIZE pixels, made
    the same way every time (applying the file again changes nothing)."""
    try:
        if path.stat().st_size > PHOTO_MAX_BYTES:
            raise ValueError("tệp ảnh lớn quá 10 MB")
        with path.open("rb") as f:
            return photo_jpeg(f)
    except OSError as e:
        raise ValueError(f"không đọc được tệp: {e.strerror or e}") from e


PHOTO_MAX_PIXELS = 40_000_000  # a camera's picture is 12-50 MP; a bigger one is refused


def photo_jpeg(source) -> bytes:
    """The tablet's JPEG of the picture in ``source`` (a binary file), as
    :func:`read_photo` makes it; the admin API's upload uses it too. ValueError for
    what is not a picture (JPEG, PNG, WebP), or one too large to open safely."""
    import io

    from PIL import Image, ImageOps

    try:
        with Image.open(source) as img:
            if img.format not in ("JPEG", "PNG", "WEBP"):
                raise ValueError("không phải tệp ảnh (JPEG, PNG, WebP)")
            if img.width * img.height > PHOTO_MAX_PIXELS:
                raise ValueError("ảnh lớn quá 40 triệu điểm ảnh")
            img = ImageOps.exif_transpose(img).convert("RGB")
            img.thumbnail((PHOTO_SIZE, PHOTO_SIZE))
            out = io.BytesIO()
            img.save(out, "JPEG", quality=85, optimize=True)
    except (OSError, Image.DecompressionBombError, SyntaxError) as e:
        raise ValueError("không phải tệp ảnh (JPEG, PNG, WebP)") from e
    return out.getvalue()


def provision(store: Store, path: str | Path) -> list[str]:
    """Apply a provisioning file through the store's write path; returns what changed.
    Raises ProvisioningError for an invalid file."""
    data = load(path)
    summary = store.write(
        lambda tx: apply(tx, data), centre_id=0, actor="provisioning", operation="provisioning"
    )
    return summary.lines()


class _Planned(Refused):
    """A dry run's outcome, raised inside the write so that the store undoes it (a batch
    of files, a centre's or a province's, is planned and applied by core/province.py)."""

    def __init__(self, lines: list[str], overwritten: list[str], changed: int = 0):
        super().__init__("dry run")
        self.lines = lines
        self.overwritten = overwritten
        self.changed = changed


def api_changes(conn: Connection, code: str) -> dict[str, tuple[str, str]]:
    """The entries of centre ``code`` the admin API changed since a file was last applied
    to it, by their summary label (``service CC``): who changed each last, and when."""
    c, a = m.centres, m.audit_log
    centre = conn.execute(sa.select(c.c.id, c.c.timezone).where(c.c.code == code)).first()
    if centre is None:
        return {}
    last_file = conn.execute(
        sa.select(sa.func.max(a.c.id)).where(
            a.c.centre_id == centre.id, a.c.actor == "provisioning"
        )
    ).scalar()
    rows = conn.execute(
        sa.select(a.c.at, a.c.details)
        .where(
            a.c.centre_id == centre.id,
            a.c.action == CONFIGURED,
            a.c.actor.like("staff:%"),
            a.c.id > (last_file or 0),
        )
        .order_by(a.c.id)
    )
    changed = {}
    for at, details in rows:
        entity = details.get("entity")
        label = f"{LABELS.get(entity, entity)} {details.get('key')}"
        changed[label] = (details.get("by", "?"), iso(at, centre.timezone))
    return changed


# Not what a file says: where it was read from, and what core/province.py prepared from
# its passwords before the transaction.
_NOT_SAID = frozenset(("_path", "_line", "_password_hash", "_password_kept"))


def file_digest(data: dict, key: bytes | None = None) -> str:
    """What a checked provisioning file says, as one digest (photos by their bytes).

    The file holds passwords in plain text, so the digest is an HMAC keyed with a secret
    kept outside the database (``key``: the server's secret key, server.py): a copy of
    the database alone gives no cheap test of a guessed password (a plain SHA-256 of the
    file would be one, a billion guesses a second, beside scrypt's few a second). Without
    a key (benchmarks, tests calling this module directly), a plain SHA-256."""

    def plain(value):
        if isinstance(value, bytes):
            return hashlib.sha256(value).hexdigest()
        if isinstance(value, dict):  # where it was read from is not what it says
            return {k: plain(v) for k, v in value.items() if k not in _NOT_SAID}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    text = json.dumps(plain(data), sort_keys=True, ensure_ascii=False, default=str)
    if key is None:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def apply(tx: Tx, data: dict, key: bytes | None = None) -> Summary:
    """Bring the store in line with a checked provisioning file, in the caller's
    transaction; a change is recorded (audited, numbered) so devices take new snapshots.

    A file the same as the last one applied to its centre changes nothing and is not
    applied again: applying checks every clerk's password against its hash (scrypt,
    ~0.16 s each), which a server started with ``--provision`` would otherwise pay at
    every start. ``key``: :func:`file_digest`'s."""
    digest = file_digest(data, key)
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
        _accounts_elsewhere(tx, centre_id, summary)
    return summary


def _accounts_elsewhere(tx: Tx, centre_id: int, summary: Summary) -> None:
    """The accounts the file changed (a password, deactivated, a role or counters), told to
    the other centres they work for (:func:`tell_elsewhere`)."""
    labelled = (re.fullmatch(r"staff (.+?)( \(.*\))?", x) for x in summary.changes())
    names = {found.group(1) for found in labelled if found}
    st = m.staff
    for staff_id, username in tx.conn.execute(
        sa.select(st.c.id, st.c.username).where(st.c.username.in_(sorted(names))).order_by(st.c.id)
    ):
        heard = change_record(STAFF_CHANGED, {"staff": {"id": staff_id, "username": username}})
        details = {"by": "provisioning", "username": username}
        tell_elsewhere(tx, "provisioning", centre_id, heard, details)


def tell_elsewhere(tx: Tx, actor: str, centre_id: int, heard: dict, details: dict) -> None:
    """An account's change (``staff_changed``, ``sessions_ended``) told to the other
    centres it works for too: a clerk lent to another centre is connected there, maybe in
    a process that follows only that centre, and is cut off at once like the others
    (gateway/sessions.py), not by the periodic check. One audit record in each of them
    (the action is the change's kind, not a change of their configuration; ``details``
    and ``centre``, the code of the centre where it was made)."""
    staff = heard["staff"]
    sr, c = m.staff_roles, m.centres
    here = tx.conn.execute(sa.select(c.c.code).where(c.c.id == centre_id)).scalar()
    others = tx.conn.execute(
        sa.select(sr.c.centre_id)
        .where(sr.c.staff_id == staff["id"], sr.c.centre_id != centre_id)
        .order_by(sr.c.centre_id)
    ).scalars()
    for other in list(others):
        tx.change(other, heard["kind"], actor, change=heard, details={**details, "centre": here})


def _apply(conn: Connection, data: dict) -> tuple[Summary, int]:
    """The file's entries, one by one through the functions the admin API calls too
    (core/admin.py); then what the file no longer lists is retired."""
    summary = Summary()
    c = data["centre"]
    centre_id = apply_centre(conn, c, summary)

    def each(table, fn, *args, **kw):
        """``fn(conn, centre_id, entry, *args, summary)`` for each entry of ``table``; a
        refusal is the file's, at the entry's line."""
        out = {}
        for entry in data.get(table, []):
            try:
                out[entry[KEYS[table]]] = fn(conn, centre_id, entry, *args, summary, **kw)
            except FieldRefused as e:
                raise ProvisioningError(data.get("_path", ""), entry.get("_line"), e.vi) from e
        return out

    agency_codes = set(each("agencies", apply_agency))
    service_ids = each("services", apply_service)
    _deactivate(
        conn, m.services, centre_id, m.services.c.code, set(service_ids), summary, "service"
    )
    # The agencies the file lists, and those its services name the old way, stay.
    a, s_ = m.agencies, m.services
    agency_codes |= set(
        conn.execute(
            sa.select(a.c.code)
            .join(s_, s_.c.agency_id == a.c.id)
            .where(s_.c.id.in_(list(service_ids.values())))
        ).scalars()
    )
    _deactivate(conn, a, centre_id, a.c.code, agency_codes, summary, "agency")
    counter_ids = each("counters", apply_counter, service_ids)
    usernames = set(each("staff", apply_staff, c["code"], counter_ids, photo=True))
    _deactivate(conn, m.staff, centre_id, m.staff.c.username, usernames, summary, "staff")
    # Roles here of accounts the file no longer lists (lent ones included) end.
    st_, sr = m.staff, m.staff_roles
    gone = sa.select(st_.c.id).where(st_.c.username.not_in(usernames))
    conn.execute(sa.delete(sr).where(sr.c.centre_id == centre_id, sr.c.staff_id.in_(gone)))
    device_ids = each("devices", apply_device, counter_ids)
    # Which agent prints each kiosk's tickets (none: the kiosk only shows them).
    printer_of = {
        k: device_ids[d["name"]] for d in data.get("devices", []) for k in d.get("kiosks", [])
    }
    for d in data.get("devices", []):
        if d["kind"] == "kiosk":
            set_printer(conn, centre_id, d["name"], printer_of.get(d["name"]), summary)
    _deactivate(conn, m.devices, centre_id, m.devices.c.name, set(device_ids), summary, "device")
    return summary, centre_id


# -- one entry at a time: the file's entries and the admin API's requests -----------------
# Each takes a checked entry (core/fields.py) and the ids of what it refers to, creates
# or updates its rows (noting what changed in ``summary``) and returns the entry's id; a
# refusal that needs the store (an account another centre owns) is a FieldRefused.
LOCKED = "!"  # a password hash no password matches: the account waits for one
LABELS = {
    "agencies": "agency",
    "services": "service",
    "counters": "counter",
    "staff": "staff",
    "devices": "device",
}


def apply_centre(conn, c: dict, summary: Summary) -> int:
    """The centre's settings (its ``[centre]`` table); a setting left out takes its
    default."""
    return _upsert(
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


def apply_agency(conn, centre_id: int, a: dict, summary: Summary) -> int:
    """An agency of the centre, by its code (retired with ``active = false``). Two
    agencies of a centre never share a name: a service may name its agency by name, and
    reports group by it."""
    ag = m.agencies
    other = conn.execute(
        sa.select(ag.c.code).where(
            ag.c.centre_id == centre_id, ag.c.name == a["name"], ag.c.code != a["code"]
        )
    ).scalar()
    if other is not None:
        raise FieldRefused(
            "name",
            f"“{a['name']}” đã là tên của cơ quan “{other}”: mỗi cơ quan một tên riêng",
            f"'{a['name']}' is already the name of agency '{other}': each agency has its own",
        )
    return _upsert(
        conn,
        m.agencies,
        {"centre_id": centre_id, "code": a["code"]},
        {"name": a["name"], "name_en": a.get("name_en"), "active": a.get("active", True)},
        summary,
        f"agency {a['code']}",
    )


def agency_code(name: str, taken: set[str]) -> str:
    """A code for an agency known only by its name: the initials of its words without
    diacritics, a word in capitals whole ("Sở Tư pháp" STP, "UBND xã Tân Hòa" UBNDXTH),
    a number after it when ``taken`` has it already (then added to ``taken``)."""
    plain = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    words = re.findall(r"[A-Za-z0-9]+", plain)
    base = "".join(w if w.isupper() else w[0] for w in words).upper()[:28] or "CQ"
    code, n = base, 1
    while code in taken:
        n += 1
        code = f"{base}{n}"
    taken.add(code)
    return code


def resolve_agency(conn, centre_id: int, s: dict, summary: Summary) -> int:
    """The id of service ``s``'s agency: the centre's agency whose code is ``agency``;
    else (a file written before agencies were entries) the one whose name it is, or a
    new one of that name and ``agency_en``, with a code from :func:`agency_code`. An
    active service's agency must be active; ``agency_en`` goes only with a name."""
    a = m.agencies
    rows = conn.execute(sa.select(a).where(a.c.centre_id == centre_id)).all()
    given = s["agency"]
    found = next((r for r in rows if r.code == given), None)
    if found is not None and "agency_en" in s:
        raise FieldRefused(
            "agency_en",
            f"“agency_en” chỉ đi cùng tên cơ quan; “{given}” là mã một cơ quan: tên tiếng"
            " Anh của nó ghi ở mục [[agencies]] của cơ quan đó",
            f"'agency_en' goes only with an agency's name; '{given}' is an agency's code:"
            " its English name belongs to that agency's [[agencies]] entry",
        )
    found = found or next((r for r in rows if r.name == given), None)
    if found is None:
        return apply_agency(
            conn,
            centre_id,
            {
                "code": agency_code(given, {r.code for r in rows}),
                "name": given,
                **({"name_en": s["agency_en"]} if "agency_en" in s else {}),
            },
            summary,
        )
    if not found.active and s.get("active", True):
        raise FieldRefused(
            "agency",
            f"cơ quan “{found.code}” ({found.name}) đã ngừng: hãy dùng lại cơ quan đó"
            " trước, hoặc chọn cơ quan khác",
            f"agency '{found.code}' ({found.name}) is retired: bring it back first, or"
            " choose another",
        )
    return found.id


def apply_service(conn, centre_id: int, s: dict, summary: Summary) -> int:
    """A service; its agency is :func:`resolve_agency`'s."""
    values = {
        "name": s["name"],
        "name_en": s.get("name_en"),
        "agency_id": resolve_agency(conn, centre_id, s, summary),
        "prefix": s["prefix"],
        "start": s.get("start", 1),
        "active": s.get("active", True),
        "slot_capacity": s.get("appointments"),
        "opening_hours": s.get("hours"),
        "priorities": s.get("priorities"),
    }
    insert_only = {"avg_service_s": float(s.get("service_minutes", 5) * 60)}
    return _upsert(
        conn,
        m.services,
        {"centre_id": centre_id, "code": s["code"]},
        values,
        summary,
        f"service {s['code']}",
        insert_only=insert_only,
    )


def apply_counter(conn, centre_id: int, ct: dict, service_ids: dict, summary: Summary) -> int:
    """``service_ids``: the centre's services' ids by code."""
    label = f"counter {ct['number']}"
    counter_id = _upsert(
        conn,
        m.counters,
        {"centre_id": centre_id, "number": ct["number"]},
        {"name": ct.get("name") or f"Quầy {ct['number']}", "active": ct.get("active", True)},
        summary,
        label,
    )
    wanted = {service_ids[code] for code in ct["services"]}
    _set_links(
        conn, m.counter_services, "counter_id", counter_id, "service_id", wanted, summary, label
    )
    return counter_id


def apply_staff(
    conn, centre_id: int, st: dict, own: str, counter_ids: dict, summary: Summary, photo: bool
) -> int:
    """One of the centre's staff: an account it owns (created or updated) or one lent by
    another centre (``home``), which gets a role and counters here and is otherwise left
    as its centre keeps it. A username that another centre owns is refused unless the
    entry says it is lent, so two centres never move an account between them.

    Without ``password`` an account keeps its password (a new one gets none that works:
    :data:`LOCKED`). ``_password_hash``, when given, is ``password`` already hashed: it
    is set as it is (a password given through the API is a new one, its sessions end).
    ``photo``: the entry says the photo (``_photo``; none without it),
    as a file does; the API leaves it as it is."""
    st_, sr = m.staff, m.staff_roles
    existing = conn.execute(sa.select(st_).where(st_.c.username == st["username"])).first()
    home = st.get("home", own)
    label = f"staff {st['username']}"

    def code_of(centre):
        return conn.execute(sa.select(m.centres.c.code).where(m.centres.c.id == centre)).scalar()

    if home != own:
        if existing is None or code_of(existing.centre_id) != home:
            raise FieldRefused(
                "home",
                f"trung tâm “{home}” không có cán bộ “{st['username']}” để cho mượn",
                f"centre '{home}' has no staff member '{st['username']}' to lend",
                "conflict",
            )
        staff_id = existing.id
    else:
        if existing is not None and existing.centre_id != centre_id:
            other = code_of(existing.centre_id)
            raise FieldRefused(
                "username",
                f"tên đăng nhập “{st['username']}” đã thuộc trung tâm “{other}”: hãy đặt "
                f'tên khác, hoặc ghi home = "{other}" để mượn cán bộ này',
                f"username '{st['username']}' belongs to centre '{other}': choose another, "
                f'or say home = "{other}" to borrow this account',
                "conflict",
            )
        values = {"centre_id": centre_id, "full_name": st["full_name"], "active": True}
        if photo:
            jpeg = st.get("_photo")
            values["photo_digest"] = hashlib.sha256(jpeg).hexdigest()[:16] if jpeg else None
            if existing is None or existing.photo_digest != values["photo_digest"]:
                values["photo"] = jpeg
        if "_password_hash" in st:  # hashed before the transaction (the admin API, a batch)
            values["password_hash"] = st["_password_hash"]
        elif st.get("_password_kept") and existing is not None:
            pass  # checked against the stored hash before the transaction (a batch)
        elif "password" in st:
            if existing is None or not password_matches(existing.password_hash, st["password"]):
                values["password_hash"] = hash_password(st["password"])
        elif existing is None:
            values["password_hash"] = LOCKED
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
    return staff_id


def apply_device(conn, centre_id: int, d: dict, counter_ids: dict, summary: Summary) -> int:
    """A device and the counters it is bound to (which agent prints a kiosk's tickets is
    :func:`set_printer`'s). Without ``token`` a device keeps its token; a new one, or one
    retired before, gets one nobody knows (the admin API issues one), so a revoked token
    never comes back."""
    d_ = m.devices
    existing = conn.execute(
        sa.select(d_).where(d_.c.centre_id == centre_id, d_.c.name == d["name"])
    ).first()
    values = {
        "kind": d["kind"],
        "active": True,
        "counter_id": counter_ids[d["counter"]] if d.get("counter") else None,
    }
    if "token" in d:
        values["token_hash"] = token_hash(d["token"])
        holder = conn.execute(
            sa.select(d_.c.centre_id, d_.c.name).where(d_.c.token_hash == values["token_hash"])
        ).first()
        if holder is not None and (holder.centre_id, holder.name) != (centre_id, d["name"]):
            raise FieldRefused(
                "token",
                "mã thiết bị này đã được dùng cho một thiết bị khác",
                "this token is already another device's",
                "conflict",
            )
    elif existing is None or not existing.active:
        values["token_hash"] = token_hash(secrets.token_urlsafe(32))
    device_id = _upsert(
        conn,
        d_,
        {"centre_id": centre_id, "name": d["name"]},
        values,
        summary,
        f"device {d['name']}",
    )
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
    return device_id


def set_printer(conn, centre_id: int, kiosk: str, agent_id: int | None, summary: Summary):
    """Which agent prints kiosk ``kiosk``'s tickets (None: the kiosk only shows them)."""
    _upsert(
        conn,
        m.devices,
        {"centre_id": centre_id, "name": kiosk},
        {"printed_by": agent_id},
        summary,
        f"device {kiosk}",
    )


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
        retire(conn, table, row.id, summary, f"{label} {row[1]}")


def retire(conn, table, row_id: int, summary: Summary, label: str) -> None:
    """Mark a service, counter, account or device inactive (its history stays); an
    account's sessions end."""
    conn.execute(sa.update(table).where(table.c.id == row_id).values(active=False))
    if table is m.staff:
        end_sessions(conn, row_id)
    summary.deactivated.append(label)


# -- the centre as a provisioning file ----------------------------------------------------
def export(conn, centre_id: int) -> dict:
    """The centre's configuration as a provisioning file says it, without passwords,
    tokens and photos (see :func:`to_toml`); ``provision`` accepts it back."""
    return {
        "centre": centre_entry(conn, centre_id),
        **{t: entries(conn, centre_id, t) for t in EXPORTED},
    }


def centre_entry(conn, centre_id: int) -> dict:
    """The centre's ``[centre]`` table as a file writes it (``hours`` last: a subtable)."""
    c = conn.execute(sa.select(m.centres).where(m.centres.c.id == centre_id)).one()
    centre = {"code": c.code, "name": c.name}
    optional = {
        "name_en": c.name_en,
        "timezone": c.timezone,
        "ticket_footer": c.ticket_footer,
        "notice": c.notice,
        "rating_reasons": c.rating_reasons,
        "rating_timeout_s": c.rating_timeout_s,
        "board_layout": c.board_layout,
        "announce_form": c.announce_form,
        "announce_repeats": c.announce_repeats,
        "closed_days": c.closed_days,
        "slot_minutes": c.slot_minutes,
        "booking_days": c.booking_days,
        "appointment_share": c.appointment_share,
        "notify_ahead": c.notify_ahead,
        "target_wait_s": c.target_wait_s,
        "hours": c.opening_hours,
    }
    centre.update({k: v for k, v in optional.items() if v is not None})
    return centre


def entries(conn, centre_id: int, table: str, key=None) -> list[dict]:
    """The centre's entries of ``table`` as a provisioning file writes them (only the one
    whose code, number, username or name is ``key``, when given): what the export lists
    and what the audit log keeps before and after a change."""
    return EXPORTED[table](conn, centre_id, key)


def _agencies(conn, centre_id, key):
    a = m.agencies
    query = sa.select(a).where(a.c.centre_id == centre_id).order_by(a.c.id)
    out = []
    for r in conn.execute(query if key is None else query.where(a.c.code == key)):
        e = {"code": r.code, "name": r.name, "name_en": r.name_en}
        if not r.active:
            e["active"] = False
        out.append({k: v for k, v in e.items() if v is not None})
    return out


def _services(conn, centre_id, key):
    s, a = m.services, m.agencies
    query = (
        sa.select(s, a.c.code.label("agency"))
        .join(a, a.c.id == s.c.agency_id)
        .where(s.c.centre_id == centre_id)
        .order_by(s.c.id)
    )
    out = []
    for r in conn.execute(query if key is None else query.where(s.c.code == key)):
        e = {"code": r.code, "name": r.name, "name_en": r.name_en, "agency": r.agency}
        e.update(prefix=r.prefix, start=r.start)
        e["service_minutes"] = min(480, max(1, round(r.avg_service_s / 60)))
        e["appointments"] = r.slot_capacity
        e["priorities"] = r.priorities
        if not r.active:
            e["active"] = False
        e["hours"] = r.opening_hours  # last: a subtable in a file
        out.append({k: v for k, v in e.items() if v is not None})
    return out


def _counters(conn, centre_id, key):
    c, cs, s = m.counters, m.counter_services, m.services
    query = sa.select(c).where(c.c.centre_id == centre_id).order_by(c.c.number)
    out = []
    for r in conn.execute(query if key is None else query.where(c.c.number == key)):
        codes = conn.execute(
            sa.select(s.c.code)
            .join(cs, cs.c.service_id == s.c.id)
            .where(cs.c.counter_id == r.id)
            .order_by(s.c.id)
        ).scalars()
        e = {"number": r.number, "name": r.name, "services": list(codes)}
        if not r.active:
            e["active"] = False
        out.append(e)
    return out


def _numbers(conn, link, owner_col: str, owner_id: int, centre_id: int) -> list[int]:
    c = m.counters
    return list(
        conn.execute(
            sa.select(c.c.number)
            .join(link, link.c.counter_id == c.c.id)
            .where(link.c[owner_col] == owner_id, c.c.centre_id == centre_id)
            .order_by(c.c.number)
        ).scalars()
    )


def _staff(conn, centre_id, key):
    st, sr, c = m.staff, m.staff_roles, m.centres
    query = (
        sa.select(st, sr.c.role, c.c.code.label("home"))
        .join(sr, sr.c.staff_id == st.c.id)
        .join(c, c.c.id == st.c.centre_id)
        .where(sr.c.centre_id == centre_id)
        .where(sa.or_(st.c.centre_id != centre_id, st.c.active.is_(True)))
        .order_by(st.c.id)
    )
    out = []
    for r in conn.execute(query if key is None else query.where(st.c.username == key)):
        e = {"username": r.username}
        if r.centre_id == centre_id:
            e["full_name"] = r.full_name
        else:
            e["home"] = r.home
        e["role"] = r.role
        numbers = _numbers(conn, m.staff_counters, "staff_id", r.id, centre_id)
        if numbers:
            e["counters"] = numbers
        out.append(e)
    return out


def _devices(conn, centre_id, key):
    d, c = m.devices, m.counters
    query = (
        sa.select(d, c.c.number)
        .outerjoin(c, c.c.id == d.c.counter_id)
        .where(d.c.centre_id == centre_id, d.c.active.is_(True))
        .order_by(d.c.id)
    )
    out = []
    for r in conn.execute(query if key is None else query.where(d.c.name == key)):
        e = {"name": r.name, "kind": r.kind}
        if r.number is not None:
            e["counter"] = r.number
        numbers = _numbers(conn, m.device_counters, "device_id", r.id, centre_id)
        if numbers:
            e["counters"] = numbers
        if r.kind == "agent":
            printed = sa.select(d.c.name).where(d.c.printed_by == r.id, d.c.active.is_(True))
            kiosks = list(conn.execute(printed.order_by(d.c.id)).scalars())
            if kiosks:
                e["kiosks"] = kiosks
        out.append(e)
    return out


EXPORTED = {
    "agencies": _agencies,
    "services": _services,
    "counters": _counters,
    "staff": _staff,
    "devices": _devices,
}

EXPORT_HEADER = """\
# The centre's configuration, exported from motcua (docs/admin.md). `provision` accepts it
# back. It holds no passwords, tokens or photos: applied to this server, accounts and
# devices keep theirs; applied to a new one, an account has no password that works and a
# device no token until an admin sets them (PUT /api/v1/admin/staff/…, …/devices/…).
# A staff photo is not exported: an entry without `photo` removes it, so add the line
# `photo = "…"` back before applying this file where photos matter."""


def to_toml(data: dict) -> str:
    """A provisioning file's text for ``data`` (strings, numbers, booleans, lists of them,
    and the centre's and services' ``hours`` tables): JSON's string escapes are TOML's."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"no TOML for {v!r}")

    def table(entry: dict) -> list[str]:
        return [f"{k} = {value(v)}" for k, v in entry.items() if not isinstance(v, dict)]

    def subtables(prefix: str, entry: dict) -> list[str]:
        # After the entry's own keys (TOML's [[services]] then [services.hours]).
        out = []
        for name, sub in entry.items():
            if isinstance(sub, dict):
                out += ["", f"[{prefix}.{name}]", *table(sub)]
        return out

    lines = [EXPORT_HEADER, "", "[centre]", *table(data["centre"])]
    lines += subtables("centre", data["centre"])
    for name in EXPORTED:
        for entry in data.get(name, []):
            lines += ["", f"[[{name}]]", *table(entry), *subtables(name, entry)]
    return "\n".join(lines) + "\n"
