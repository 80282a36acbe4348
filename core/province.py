"""A province on one installation: many centres' provisioning files applied as one batch.

A province file names the centre files it is made of, by paths or globs relative to
itself (docs/admin.md, "A province"); each centre file is the usual one (core/provisioning.py)
and can still be applied on its own::

    [province]
    code = "AG"
    name = "Tỉnh An Giang"
    centres = ["trung-tam-tinh.toml", "xa/*.toml"]

``server.py provision FILE`` takes either kind of file; a centre file is a batch of one.
A batch is applied in four steps, so that nothing is written unless every centre can be:

1. **read and check** every file (:func:`load`): each centre file as alone (its lines
   named), then across files: a centre code, an account or a device token in two files;
   centres ordered so that one lending an account (``home``) comes after its home;
2. **passwords** (:func:`prepare_passwords`), before any transaction, on every core: a
   new account's password hashed, an existing account's checked against its stored hash
   (scrypt, ~0.16 s of one core each, which releases the GIL, so threads run them in
   parallel). Centres whose file is the one last applied (their digest,
   provisioning.file_digest) are skipped whole: none of their passwords is checked;
3. **apply** (:func:`apply`): every centre in order, in one transaction, committed only
   when every centre was accepted and (unless ``--force``) none would overwrite what the
   admin pages changed since the last file (exit 3); otherwise rolled back, as a dry run
   always is. So centre 120 of 200 refused (an account another centre owns, say) means
   nothing written, the refusal naming its file, line and centre; fix it and run again.

One transaction, rather than a check in one rolled back and then one per centre: the
same guarantee at half the database work (~200 statements a commune office, ~0.4 ms
each on PostgreSQL here: the check alone would be ~20 s of the 60 s target for 200
centres). Its cost: while it runs, the centres it changes wait for it (PostgreSQL locks
each changed centre's row until the commit; SQLite has one writer, so a live SQLite
server's writes wait, up to its 10 s busy timeout). Centres whose file did not change are
skipped before any write and hold nothing. So apply a whole new province before its
centres open, or in a quiet hour (docs/admin.md "A province").
"""

from __future__ import annotations

import glob
import os
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from . import models as m
from . import provisioning
from .auth import hash_password, password_matches
from .provisioning import ProvisioningError, Summary, _Locator, _Planned
from .store import Store, Tx

# A map over items, run in parallel: the default uses threads (scrypt releases the GIL);
# the gevent server passes one over its native thread pool (server.py).
Mapper = Callable[[Callable[[Any], Any], list], list]

PROVINCE_KEYS = {"code", "name", "name_en", "centres"}


def thread_map(fn: Callable[[Any], Any], items: list, workers: int | None = None) -> list:
    """``[fn(x) for x in items]`` on one thread per core (scrypt: 32 MiB a thread)."""
    if len(items) <= 1:
        return [fn(x) for x in items]
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


@dataclass
class Batch:
    """The centres of a file, checked, in the order they are applied."""

    path: str
    province: dict | None  # the [province] table; None for a centre file
    centres: list[dict] = field(default_factory=list)

    @property
    def is_province(self) -> bool:
        return self.province is not None


def load(path: str | Path) -> Batch:
    """A province file or a centre file, read and checked (step 1); ProvisioningError
    names the file, the line and, in a province, the centre."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        data = None  # provisioning.load says what is wrong, as for any centre file
    if data is None or "province" not in data:
        return Batch(path, None, [provisioning.load(path)])
    loc = _Locator(text)
    province = data["province"]
    for name in data:
        if name != "province":
            raise ProvisioningError(
                path,
                loc.line(name) or loc.line(name, 0),
                f"mục lạ “{name}”: tệp tỉnh chỉ có mục [province]; mỗi trung tâm là một tệp"
                " riêng, ghi trong “centres”",
            )
    if not isinstance(province, dict):
        raise ProvisioningError(path, None, "[province] phải là một bảng")
    for key in province:
        if key not in PROVINCE_KEYS:
            raise ProvisioningError(
                path, loc.line("province", None, key), f"[province] có khóa lạ “{key}”"
            )
    for key in ("code", "name"):
        value = province.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ProvisioningError(
                path,
                loc.line("province", None, key if key in province else None),
                f"[province] thiếu khóa “{key}”"
                if key not in province
                else f"“{key}” phải là một chuỗi ký tự không rỗng",
            )
    patterns = province.get("centres")
    where = loc.line("province", None, "centres")
    if (
        not isinstance(patterns, list)
        or not patterns
        or not all(isinstance(p, str) and p for p in patterns)
    ):
        raise ProvisioningError(
            path,
            where,
            "“centres” phải là danh sách tệp của các trung tâm (đường dẫn hoặc mẫu như"
            ' "xa/*.toml", tính từ thư mục của tệp này)',
        )
    base = Path(path).parent
    files: list[str] = []
    for pattern in patterns:
        found = sorted(glob.glob(str(base / pattern), recursive=True))
        if not found:
            raise ProvisioningError(path, where, f"“{pattern}” không khớp tệp nào")
        files += [
            f for f in found if f not in files and os.path.abspath(f) != os.path.abspath(path)
        ]
    batch = Batch(path, province)
    for f in files:
        try:
            batch.centres.append(provisioning.load(f))
        except ProvisioningError as e:
            raise ProvisioningError(e.path, e.line, e.what, _code_in(f)) from e
    _check_across(batch)
    batch.centres = _ordered(batch.centres)
    return batch


def _code_in(path: str) -> str | None:
    """The centre code a file gives, if it can be read at all (for a refusal's words)."""
    try:
        code = tomllib.loads(Path(path).read_text(encoding="utf-8"))["centre"]["code"]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


def _check_across(batch: Batch) -> None:
    """What no centre file can see alone: two files for one centre, one account owned by
    two centres, one device token in two files."""
    centres: dict[str, str] = {}
    owners: dict[str, tuple[str, str]] = {}
    tokens: dict[str, str] = {}
    for data in batch.centres:
        path, code = data["_path"], data["centre"]["code"]
        if code in centres:
            raise ProvisioningError(
                path,
                None,
                f"mã trung tâm “{code}” đã có trong tệp {centres[code]}",
                code,
            )
        centres[code] = path
    for data in batch.centres:
        path, code = data["_path"], data["centre"]["code"]
        for st in data.get("staff", []):
            if st.get("home", code) != code:
                continue
            name = st["username"]
            if name in owners:
                other, other_path = owners[name]
                raise ProvisioningError(
                    path,
                    st.get("_line"),
                    f"tên đăng nhập “{name}” đã thuộc trung tâm “{other}” ({other_path}): hãy"
                    f' đặt tên khác, hoặc ghi home = "{other}" để mượn cán bộ này',
                    code,
                )
            owners[name] = (code, path)
        for d in data.get("devices", []):
            if "token" in d:
                if d["token"] in tokens:
                    raise ProvisioningError(
                        path,
                        d.get("_line"),
                        f"mã của thiết bị “{d['name']}” đã dùng trong tệp {tokens[d['token']]}:"
                        " mỗi thiết bị một mã riêng",
                        code,
                    )
                tokens[d["token"]] = path


def _ordered(centres: list[dict]) -> list[dict]:
    """The centres in their files' order, except that a centre lending an account from
    another of the batch comes after it (a loop of loans keeps the files' order: the
    refusal then names the entry)."""
    by_code = {d["centre"]["code"]: d for d in centres}
    out: list[dict] = []
    placed: set[str] = set()
    visiting: set[str] = set()

    def place(data):
        code = data["centre"]["code"]
        if code in placed or code in visiting:
            return
        visiting.add(code)
        for st in data.get("staff", []):
            home = st.get("home")
            if home and home != code and home in by_code:
                place(by_code[home])
        visiting.discard(code)
        placed.add(code)
        out.append(data)

    for data in centres:
        place(data)
    return out


# -- passwords, before the transactions ------------------------------------------------
@dataclass
class Passwords:
    hashed: int = 0  # new passwords hashed
    checked: int = 0  # stored hashes checked against the file's password
    skipped_centres: int = 0  # centres whose file is the one last applied


def _chunks(items: list, size: int = 900) -> Iterable[list]:  # SQLite's 999 parameters
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _pairs(store: Store, key, value, keys: list) -> dict:
    """``{key: value}`` of the rows whose column ``key`` is one of ``keys`` (read in
    chunks)."""

    def read(conn):
        found = {}
        for part in _chunks(keys):
            found.update(conn.execute(sa.select(key, value).where(key.in_(part))).all())
        return found

    return store.read(read)


def prepare_passwords(
    store: Store, batch: Batch, key: bytes | None = None, mapper: Mapper | None = None
) -> Passwords:
    """Step 2: each file password of a centre whose file changed, made ready for
    ``apply_staff`` outside any transaction and in parallel: a new account's hashed
    (``_password_hash``); an existing account's checked against its stored hash, kept
    when it matches (``_password_kept``), hashed anew when not. A centre whose file is the
    one last applied is skipped: apply leaves it as it is (its digest), so none of its
    passwords is checked."""
    mapper = mapper or thread_map
    out = Passwords()
    codes = [d["centre"]["code"] for d in batch.centres]
    last = _pairs(store, m.centres.c.code, m.centres.c.provisioned_digest, codes)
    entries = []
    for data in batch.centres:
        code = data["centre"]["code"]
        if last.get(code) is not None and last[code] == provisioning.file_digest(data, key):
            out.skipped_centres += 1
            continue
        for st in data.get("staff", []):
            st.pop("_password_hash", None)
            st.pop("_password_kept", None)
            if "password" in st and st.get("home", code) == code:
                entries.append(st)
    if not entries:
        return out
    names = sorted({e["username"] for e in entries})
    hashes = _pairs(store, m.staff.c.username, m.staff.c.password_hash, names)

    def ready(entry):
        old = hashes.get(entry["username"])
        if old is not None and password_matches(old, entry["password"]):
            return None
        return hash_password(entry["password"])

    for entry, new in zip(entries, mapper(ready, entries), strict=True):
        if entry["username"] in hashes:
            out.checked += 1
        if new is None:
            entry["_password_kept"] = True
        else:
            entry["_password_hash"] = new
            out.hashed += 1
    return out


# -- plan and write, in one transaction ---------------------------------------------------
def _label(data: dict) -> str:
    c = data["centre"]
    return f"== {c['code']} {c['name']} ({data['_path']})"


def _refused_in(data: dict, batch: Batch, e: ProvisioningError) -> ProvisioningError:
    if not batch.is_province or e.centre:
        return e
    return ProvisioningError(e.path, e.line, e.what, data["centre"]["code"])


@dataclass
class Outcome:
    lines: list[str]  # what changed (or would), as the command prints it
    overwritten: list[str]  # of which, what the admin pages changed since the last file
    changed: int = 0  # centres changed (or that would be)
    written: bool = False  # committed; False: a dry run, or refused for ``overwritten``


def apply(
    store: Store,
    batch: Batch,
    key: bytes | None = None,
    *,
    write: bool = True,
    force: bool = False,
) -> Outcome:
    """Steps 3 and 4: every centre applied in order in one transaction, which is committed
    only when every centre was accepted, and, unless ``force``, none overwrites a change
    made through the admin pages since the last file (``overwritten``); otherwise (and for
    a dry run, ``write`` false) it is rolled back and nothing is written. A refusal
    (ProvisioningError) names the file, the line and, in a province, the centre."""

    def op(tx: Tx):
        out = Outcome([], [])
        for data in batch.centres:
            api = provisioning.api_changes(tx.conn, data["centre"]["code"])
            try:
                summary = provisioning.apply(tx, data, key)
            except ProvisioningError as e:
                raise _refused_in(data, batch, e) from e
            if summary.changed:
                out.changed += 1
                if batch.is_province:
                    out.lines.append(_label(data))
            if summary.changed or not batch.is_province:
                out.lines += summary.lines()
            out.overwritten += _overwrites(summary, api, data if batch.is_province else None)
        if not write or (out.overwritten and not force):
            raise _Planned(out.lines, out.overwritten, out.changed)
        out.written = True
        return out

    try:
        return store.write(op, centre_id=0, actor="provisioning", operation="provisioning")
    except _Planned as planned:
        return Outcome(planned.lines, planned.overwritten, planned.changed)


def _overwrites(summary: Summary, changed: dict, data: dict | None) -> list[str]:
    items = [
        *(("+", x) for x in summary.created),
        *(("~", x) for x in summary.updated),
        *(("-", x) for x in summary.deactivated),
    ]
    out = []
    where = f"[{data['centre']['code']}] " if data else ""
    for sign, item in items:
        for label, (by, at) in changed.items():
            if item == label or item.startswith(label + " ("):
                out.append(f"{sign} {where}{item}  ← API: {by}, {at}")
                break
    return out


def totals(batch: Batch, changed: int, passwords: Passwords, seconds: float) -> str:
    """The province's last line: how many centres, changed, passwords, time."""
    p = batch.province or {}
    return (
        f"Tỉnh {p.get('code', '?')} ({p.get('name', '')}): {len(batch.centres)} trung tâm, "
        f"{changed} thay đổi, {len(batch.centres) - changed} không đổi; "
        f"{passwords.hashed} mật khẩu mới được băm, {passwords.checked} được kiểm tra; "
        f"{seconds:.1f} s. ({len(batch.centres)} centres, {changed} changed; "
        f"{passwords.hashed} passwords hashed, {passwords.checked} checked)"
    )
