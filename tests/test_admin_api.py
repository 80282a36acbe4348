"""The admin API (docs/admin.md) on a real server process, on SQLite and PostgreSQL: who
may call it, every field's refusal in both languages with nothing written (and the same
words from a provisioning file), services, counters, staff and devices created, changed
and retired with their audit, a device's token issued and revoked on a real Socket.IO
connection, and the export applied to a fresh database reproducing both centres.

The centre changed is the commune office (tests/commune.toml: its admin ``quantri2``,
its manager ``quanly2``, the province's admin ``tinh``, clerk1 lent by T1)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
import socketio
import sqlalchemy as sa

from core import models as m
from core import provisioning as p
from core.hours import WEEKDAYS
from core.roles import DEVICE_KINDS
from core.store import Store, normalise_url
from harness.centre import COMMUNE, COMMUNE_PASSWORDS, PASSWORDS
from harness.process import login

API = "/api/v1/admin"
ROLES = "clerk, manager, admin, installation_admin"
KIOSK_T2 = "t2-kiosk-token-00001"


def call(server, method, path, token=None, body=None, lang=""):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    query = "?lang=en" if lang == "en" else ""
    return requests.request(
        method, server.url + API + path + query, headers=headers, json=body, timeout=30
    )


def connects(server, namespace, token) -> bool:
    """Whether a real Socket.IO client is let in with ``token``."""
    sio = socketio.Client(reconnection=False)
    try:
        sio.connect(
            server.url,
            namespaces=[namespace],
            auth={"token": token},
            transports=["websocket"],
            wait_timeout=5,
        )
        return True
    except socketio.exceptions.ConnectionError:
        return False
    finally:
        sio.disconnect()


# Tables a change writes: without what a server writes by itself (a device's presence and
# its offline alert, with the centre's seq that alert advances), and of the audit log the
# configuration's changes.
WATCHED = (
    m.centres,
    m.agencies,
    m.services,
    m.counters,
    m.counter_services,
    m.staff,
    m.staff_roles,
    m.staff_counters,
    m.staff_sessions,
    m.devices,
    m.device_counters,
    m.audit_log,
)


OWN_WRITES = {
    "last_seen",
    "online",
    "alert",
    "alert_since",
    "alert_acked_by",
    "alert_acked_at",
    "seq",
}


def tables(url) -> dict:
    engine = sa.create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            out = {}
            for t in WATCHED:
                cols = [c for c in t.c if c.name not in OWN_WRITES]
                query = sa.select(*cols).order_by(*t.primary_key.columns)
                if t is m.audit_log:
                    query = query.where(t.c.action == "configured")
                out[t.name] = [tuple(r) for r in conn.execute(query)]
            return out
    finally:
        engine.dispose()


def audit(url, since: int = 0) -> list:
    engine = sa.create_engine(normalise_url(url))
    a = m.audit_log
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(a.c.id, a.c.action, a.c.actor, a.c.details)
                .where(a.c.id > since, a.c.action == "configured")
                .order_by(a.c.id)
            ).all()
    finally:
        engine.dispose()
    return [(r.id, r.action, r.actor, r.details) for r in rows]


@pytest.fixture
def office(any_server):
    any_server.provision_also(COMMUNE)
    return any_server


# -- who may call it ----------------------------------------------------------------------
ENDPOINTS = [
    ("PUT", "/centre", {"name": "Bộ phận Một cửa xã thử nghiệm"}),
    ("PUT", "/agencies/TP", {"name": "Sở Tư pháp"}),
    ("PUT", "/services/CC", {"name": "Công chứng", "agency": "TP", "prefix": "C"}),
    ("DELETE", "/services/CC", None),
    ("DELETE", "/agencies/TP", None),
    ("PUT", "/counters/7", {"services": ["HT"]}),
    ("DELETE", "/counters/7", None),
    ("PUT", "/staff/moi1", {"full_name": "Cán Bộ Mới", "role": "clerk"}),
    ("DELETE", "/staff/moi1", None),
    ("PUT", "/devices/Bảng 7", {"kind": "display", "counters": [1]}),
    ("DELETE", "/devices/Bảng 7", None),
    ("GET", "/export", None),
]


def test_admins_only_and_a_token_first(office):
    tokens = {u: office.login(u) for u in ("quantri2", "tinh", "quanly2", "clerk1")}
    for method, path, body in ENDPOINTS:
        nobody = call(office, method, path, body=body)
        assert nobody.status_code == 401, (method, path, nobody.text)
        assert nobody.json()["error"]["code"] == "unauthorized"
        for user in ("quanly2", "clerk1"):
            refused = call(office, method, path, tokens[user], body)
            assert refused.status_code == 403, (method, path, user, refused.text)
            assert refused.json()["error"]["code"] == "forbidden"
            assert "cấu hình trung tâm" in refused.json()["error"]["message"]
        for user in ("quantri2", "tinh"):
            answer = call(office, method, path, tokens[user], body)
            assert answer.status_code in (200, 201), (method, path, user, answer.text)
    # A device's token is no staff session.
    assert call(office, "GET", "/export", KIOSK_T2).status_code == 401
    # The installation's admin acts in any centre (?centre=); T2's admin only in T2.
    t1 = requests.get(
        office.url + API + "/export?centre=T1",
        headers={"Authorization": f"Bearer {tokens['tinh']}"},
        timeout=30,
    )
    assert t1.status_code == 200 and 'code = "T1"' in t1.text
    other = requests.get(
        office.url + API + "/export?centre=T1",
        headers={"Authorization": f"Bearer {tokens['quantri2']}"},
        timeout=30,
    )
    assert other.status_code == 403


# -- bad input on every field ---------------------------------------------------------------
BASE = {
    "agencies": ("TP", {"name": "Sở Tư pháp", "name_en": "Department of Justice"}),
    "services": ("CC", {"name": "Công chứng", "agency": "Sở Tư pháp", "prefix": "C"}),
    "counters": (9, {"name": "Quầy 9", "services": ["HT"]}),
    "staff": ("moi1", {"full_name": "Cán Bộ Mới", "role": "clerk", "counters": [1]}),
    "devices": ("Bảng 9", {"kind": "display", "counters": [1]}),
}
STR = ("phải là một chuỗi ký tự không rỗng", "must be a non-empty string")
INT = ("phải là một số nguyên", "must be a whole number")
BOOL = ("phải là true hoặc false", "must be true or false")
TABLE = ("phải là một bảng", "must be a table")
LIST = ("phải là một danh sách", "must be a list")
GROUPS = "elderly, disabled, pregnant, infant, merit"


def named(field, words):
    return (f"“{field}” {words[0]}", f"'{field}' {words[1]}")


# (table, changes to the base entry (None: drop the field), the field named, vi, en, status,
#  whether a provisioning file can say it too)
CASES = [
    ("agencies", {"name": ""}, "name", *named("name", STR), 400, True),
    ("agencies", {"name": ["Sở"]}, "name", *named("name", STR), 400, True),
    (
        "agencies",
        {"name": None},
        "name",
        "[agencies] thiếu khóa “name”",
        "[agencies] lacks the key 'name'",
        400,
        True,
    ),
    (
        "agencies",
        {"name": "x" * 256},
        "name",
        "“name” dài quá 255 ký tự",
        "'name' is longer than 255",
        400,
        True,
    ),
    (
        "agencies",
        {"name_en": "Sở\x00"},
        "name_en",
        "“name_en” chứa ký tự không hợp lệ",
        "'name_en' contains an invalid character",
        400,
        False,
    ),
    ("agencies", {"name_en": 1}, "name_en", *named("name_en", STR), 400, True),
    ("agencies", {"active": "no"}, "active", *named("active", BOOL), 400, True),
    (
        "agencies",
        {"name": "UBND xã"},
        "name",
        "“UBND xã” đã là tên của cơ quan “UBND”: mỗi cơ quan một tên riêng",
        "'UBND xã' is already the name of agency 'UBND': each agency has its own",
        400,
        False,
    ),
    (
        "agencies",
        {"ten": "Sở Tư pháp"},
        "ten",
        "[agencies] có khóa lạ “ten”",
        "[agencies] has an unknown key 'ten'",
        400,
        True,
    ),
    (
        "agencies",
        {"code": "KHAC"},
        "code",
        "“code” phải giống trong địa chỉ (TP)",
        "'code' must be the address's (TP)",
        400,
        False,
    ),
    # A service's agency: a retired one, or a code given with an English name.
    (
        "services",
        {"agency": "CU"},
        "agency",
        "cơ quan “CU” (Cơ quan cũ) đã ngừng: hãy dùng lại cơ quan đó trước, hoặc chọn cơ quan khác",
        "agency 'CU' (Cơ quan cũ) is retired: bring it back first, or choose another",
        400,
        False,
    ),
    (
        "services",
        {"agency": "UBND", "agency_en": "People's Committee"},
        "agency_en",
        "“agency_en” chỉ đi cùng tên cơ quan; “UBND” là mã một cơ quan: tên tiếng Anh của nó"
        " ghi ở mục [[agencies]] của cơ quan đó",
        "'agency_en' goes only with an agency's name; 'UBND' is an agency's code: its English"
        " name belongs to that agency's [[agencies]] entry",
        400,
        False,
    ),
    ("services", {"name": ""}, "name", *named("name", STR), 400, True),
    ("services", {"name": 5}, "name", *named("name", STR), 400, True),
    (
        "services",
        {"name": None},
        "name",
        "[services] thiếu khóa “name”",
        "[services] lacks the key 'name'",
        400,
        True,
    ),
    (
        "services",
        {"name": "Công\x00chứng"},
        "name",
        "“name” chứa ký tự không hợp lệ",
        "'name' contains an invalid character",
        400,
        False,
    ),
    (
        "services",
        {"name_en": "x" * 256},
        "name_en",
        "“name_en” dài quá 255 ký tự",
        "'name_en' is longer than 255",
        400,
        True,
    ),
    ("services", {"agency": ["Sở"]}, "agency", *named("agency", STR), 400, True),
    ("services", {"agency_en": 1}, "agency_en", *named("agency_en", STR), 400, True),
    (
        "services",
        {"prefix": "ab"},
        "prefix",
        "“prefix” phải là 1-4 chữ cái in hoa không dấu",
        "'prefix' must be 1-4 capital letters without diacritics",
        400,
        True,
    ),
    (
        "services",
        {"start": 10000},
        "start",
        "“start” phải từ 0 đến 9999",
        "'start' must be from 0 to 9999",
        400,
        True,
    ),
    ("services", {"start": "1"}, "start", *named("start", INT), 400, True),
    (
        "services",
        {"service_minutes": 0},
        "service_minutes",
        "“service_minutes” phải từ 1 đến 480 phút",
        "'service_minutes' must be from 1 to 480 minutes",
        400,
        True,
    ),
    ("services", {"active": "yes"}, "active", *named("active", BOOL), 400, True),
    (
        "services",
        {"appointments": 101},
        "appointments",
        "“appointments” phải từ 0 đến 100 lượt một khung giờ",
        "'appointments' must be from 0 to 100 a slot",
        400,
        True,
    ),
    # A service's own hours (the centre's rules) and the priority groups it accepts.
    ("services", {"hours": "07:30-11:30"}, "hours", *named("hours", TABLE), 400, True),
    (
        "services",
        {"hours": {"tue": ["7:30-11:30"]}},
        "hours",
        "khoảng giờ “7:30-11:30” (tue) phải có dạng 07:30-11:30",
        "the range '7:30-11:30' (tue) must look like 07:30-11:30",
        400,
        True,
    ),
    (
        "services",
        {"hours": {"tuesday": ["07:30-11:30"]}},
        "hours",
        "ngày lạ “tuesday” trong “hours” (dùng mon, tue, wed, thu, fri, sat, sun)",
        "unknown day 'tuesday' in 'hours' (use mon, tue, wed, thu, fri, sat, sun)",
        400,
        True,
    ),
    (
        "services",
        {"hours": {"thu": ["13:30-17:00", "07:30-11:30"]}},
        "hours",
        "các khoảng giờ của thu phải tăng dần, không chồng nhau",
        "the ranges of thu must go forward without overlapping",
        400,
        True,
    ),
    (
        "services",
        {"hours": {}},
        "hours",
        "“hours” cần ít nhất một khoảng giờ (bỏ trống: theo giờ của trung tâm)",
        "'hours' needs at least one range (leave it out: the centre's hours)",
        400,
        True,
    ),
    ("services", {"priorities": "elderly"}, "priorities", *named("priorities", LIST), 400, True),
    *(
        (
            "services",
            {"priorities": groups},
            "priorities",
            "“priorities” phải là một hoặc vài nhóm ưu tiên khác nhau trong: "
            f"{GROUPS} (bỏ trống: nhận mọi nhóm)",
            "'priorities' must be one or more different priority groups among: "
            f"{GROUPS} (leave it out: every group)",
            400,
            True,
        )
        for groups in (["old"], [], ["elderly", "elderly"])
    ),
    (
        "services",
        {"colour": "red"},
        "colour",
        "[services] có khóa lạ “colour”",
        "[services] has an unknown key 'colour'",
        400,
        True,
    ),
    (
        "services",
        {"code": "KHAC"},
        "code",
        "“code” phải giống trong địa chỉ (CC)",
        "'code' must be the address's (CC)",
        400,
        False,
    ),
    ("counters", {"name": ""}, "name", *named("name", STR), 400, True),
    (
        "counters",
        {"services": "HT"},
        "services",
        "“services” phải là một danh sách",
        "'services' must be a list",
        400,
        True,
    ),
    (
        "counters",
        {"services": [1]},
        "services",
        "“services” phải là một danh sách chuỗi ký tự",
        "'services' must be a list of strings",
        400,
        True,
    ),
    (
        "counters",
        {"services": ["ZZ"]},
        "services",
        "quầy 9: không có lĩnh vực “ZZ”",
        "counter 9: there is no service 'ZZ'",
        400,
        True,
    ),
    (
        "counters",
        {"services": None},
        "services",
        "[counters] thiếu khóa “services”",
        "[counters] lacks the key 'services'",
        400,
        True,
    ),
    ("counters", {"active": 0}, "active", *named("active", BOOL), 400, True),
    ("staff", {"full_name": ""}, "full_name", *named("full_name", STR), 400, True),
    (
        "staff",
        {"full_name": None},
        "full_name",
        "[staff] thiếu khóa “full_name”",
        "[staff] lacks the key 'full_name'",
        400,
        True,
    ),
    (
        "staff",
        {"password": "ngan"},
        "password",
        "“password” phải có ít nhất 8 ký tự",
        "'password' must be at least 8 characters",
        400,
        True,
    ),
    (
        "staff",
        {"role": "boss"},
        "role",
        f"“role” phải là một trong: {ROLES}",
        f"'role' must be one of: {ROLES}",
        400,
        True,
    ),
    (
        "staff",
        {"role": None},
        "role",
        "[staff] thiếu khóa “role”",
        "[staff] lacks the key 'role'",
        400,
        True,
    ),
    (
        "staff",
        {"counters": [99]},
        "counters",
        "không có quầy số 99",
        "there is no counter 99",
        400,
        True,
    ),
    (
        "staff",
        {"counters": ["1"]},
        "counters",
        "“counters” phải là một danh sách số nguyên",
        "'counters' must be a list of whole numbers",
        400,
        True,
    ),
    (
        "staff",
        {"home": "T9"},
        "full_name",
        "cán bộ mượn từ trung tâm “T9”: “full_name” do trung tâm đó quản lý",
        "staff lent by centre 'T9': 'full_name' is that centre's to set",
        400,
        True,
    ),
    (
        "staff",
        {"home": "T9", "full_name": None},
        "home",
        "trung tâm “T9” không có cán bộ “moi1” để cho mượn",
        "centre 'T9' has no staff member 'moi1' to lend",
        409,
        False,
    ),
    (
        "staff",
        {"photo": "a.jpg"},
        "photo",
        "ảnh của cán bộ chưa đặt được qua API này: hãy dùng tệp cấu hình",
        "a staff photo cannot be set through this API yet: use the provisioning file",
        400,
        False,
    ),
    (
        "devices",
        {"kind": "toaster"},
        "kind",
        f"“kind” phải là một trong: {', '.join(DEVICE_KINDS)}",
        f"'kind' must be one of: {', '.join(DEVICE_KINDS)}",
        400,
        True,
    ),
    (
        "devices",
        {"token": "ngan-qua"},
        "token",
        "“token” phải có ít nhất 16 ký tự",
        "'token' must be at least 16 characters",
        400,
        True,
    ),
    (
        "devices",
        {"token": KIOSK_T2},
        "token",
        "mã thiết bị này đã được dùng cho một thiết bị khác",
        "this token is already another device's",
        409,
        False,
    ),
    (
        "devices",
        {"counters": [99]},
        "counters",
        "không có quầy số 99",
        "there is no counter 99",
        400,
        True,
    ),
    (
        "devices",
        {"counter": 99},
        "counter",
        "không có quầy số 99",
        "there is no counter 99",
        400,
        True,
    ),
    ("devices", {"counter": "1"}, "counter", *named("counter", INT), 400, True),
    (
        "devices",
        {"kind": "rating", "counters": None},
        "counter",
        "máy đánh giá cần “counter” là một quầy có thật",
        "a rating tablet needs 'counter', a counter of the centre",
        400,
        True,
    ),
    (
        "devices",
        {"kiosks": ["Kiosk xã"]},
        "kiosks",
        'chỉ máy trạm phần cứng (kind = "agent") in cho kiosk',
        'only a hardware agent (kind = "agent") prints for kiosks',
        400,
        True,
    ),
    (
        "devices",
        {"kind": "agent", "kiosks": ["Không có"]},
        "kiosks",
        "không có kiosk “Không có”",
        "there is no kiosk 'Không có'",
        400,
        True,
    ),
]


def entry_of(table, changes):
    key, base = BASE[table]
    entry = {**base, **changes}
    return key, {k: v for k, v in entry.items() if v is not None}


def test_bad_input_on_every_field_is_refused_by_name_and_writes_nothing(office):
    admin = office.login("quantri2")
    before = tables(office.database_url)
    for table, changes, field, vi, en, status, _file in CASES:
        key, body = entry_of(table, changes)
        for lang, words in (("vi", vi), ("en", en)):
            answer = call(office, "PUT", f"/{table}/{key}", admin, body, lang)
            assert answer.status_code == status, (table, changes, answer.text)
            error = answer.json()["error"]
            assert answer.json()["ok"] is False
            assert (error["field"], error["message"]) == (field, words), (table, changes)
            assert error["code"] == ("conflict" if status == 409 else "bad_request")
    # Refusals from the address and the body's form.
    counter, account = {"services": ["HT"]}, {"full_name": "X", "role": "clerk"}
    for path, body, field, words in (
        ("/counters/0", counter, "number", "“number” phải từ 1 đến 9999"),
        ("/counters/abc", counter, "number", "“number” phải là một số nguyên"),
        ("/staff/" + "u" * 65, account, "username", "“username” dài quá 64 ký tự"),
        ("/agencies/" + "C" * 33, {"name": "Sở"}, "code", "“code” dài quá 32 ký tự"),
    ):
        answer = call(office, "PUT", path, admin, body)
        assert answer.status_code == 400, (path, answer.text)
        assert (answer.json()["error"]["field"], answer.json()["error"]["message"]) == (
            field,
            words,
        )
    not_json = requests.put(
        office.url + API + "/services/CC",
        data="name=x",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"]["message"] == "Dữ liệu gửi lên phải là một đối tượng JSON."
    assert tables(office.database_url) == before


T2_NAME = "Bộ phận Một cửa xã thử nghiệm"
CENTRE_REFUSED = [
    ({"name": ""}, "name", *named("name", STR)),
    ({"notice": 3}, "notice", *named("notice", STR)),
    (
        {"code": "T9"},
        "code",
        "“code” là mã của trung tâm (T2), không đổi được",
        "'code' is the centre's (T2) and cannot change",
    ),
    (
        {"timezone": "Mars/Olympus"},
        "timezone",
        "“timezone” phải là một múi giờ có thật, ví dụ Asia/Ho_Chi_Minh",
        "'timezone' must be a time zone that exists, e.g. Asia/Ho_Chi_Minh",
    ),
    (
        {"target_wait_s": 30},
        "target_wait_s",
        "“target_wait_s” phải từ 60 đến 14400 giây",
        "'target_wait_s' must be from 60 to 14400 seconds",
    ),
    (
        {"hours": {"mon": ["11:30-07:30"]}},
        "hours",
        "khoảng giờ “11:30-07:30” (mon) kết thúc trước khi bắt đầu",
        "the range '11:30-07:30' (mon) ends before it starts",
    ),
    (
        {"closed_days": ["2/9"]},
        "closed_days",
        "ngày nghỉ “2/9” phải có dạng 2026-09-02",
        "the closed day '2/9' must look like 2026-09-02",
    ),
    (
        {"rating_reasons": ["Chậm", " Chậm "]},
        "rating_reasons",
        "“rating_reasons” có lý do bị trùng",
        "'rating_reasons' repeats a reason",
    ),
    (
        {"appointment_share": 1},
        "appointment_share",
        "“appointment_share” phải từ 0 đến 0.8 (phần còn lại cho người đến trực tiếp)",
        "'appointment_share' must be from 0 to 0.8 (the rest for walk-ins)",
    ),
]


def test_the_centres_settings_changed_refused_and_audited(office, devices):
    admin = office.login("quantri2")
    kiosk = devices.kiosk(office, KIOSK_T2)
    before = tables(office.database_url)
    for changes, field, vi, en in CENTRE_REFUSED:
        for lang, words in (("vi", vi), ("en", en)):
            answer = call(office, "PUT", "/centre", admin, {"name": T2_NAME, **changes}, lang)
            assert answer.status_code == 400, (changes, answer.text)
            error = answer.json()["error"]
            assert (error["field"], error["message"]) == (field, words), changes
    assert tables(office.database_url) == before
    body = {"name": "Bộ phận Một cửa xã Phú Hòa", "hours": {"mon": ["07:30-11:30"]}}
    changed = call(office, "PUT", "/centre", admin, body)
    assert changed.status_code == 200, changed.text
    assert changed.json()["changes"] == ["~ centre T2 (name, opening_hours)"]
    assert changed.json()["entry"]["hours"] == {"mon": ["07:30-11:30"]}
    kiosk.wait_change("configured")
    assert kiosk.fresh_snapshot("services")["centre"]["name"] == "Bộ phận Một cửa xã Phú Hòa"
    (record,) = [r for r in audit(office.database_url) if r[3].get("entity") == "centre"]
    assert record[3]["before"]["name"] == T2_NAME
    assert record[3]["after"]["name"] == "Bộ phận Một cửa xã Phú Hòa"
    assert 'name = "Bộ phận Một cửa xã Phú Hòa"' in call(office, "GET", "/export", admin).text


def test_a_provisioning_file_refuses_the_same_input_with_the_same_words(tmp_path):
    base = p.load(COMMUNE)
    for table, changes, field, vi, _en, _status, in_file in CASES:
        if not in_file:
            continue
        key, entry = entry_of(table, changes)
        key_field = {
            "agencies": "code",
            "services": "code",
            "counters": "number",
            "staff": "username",
        }
        entry = {key_field.get(table, "name"): key, **entry}
        data = {
            "centre": base["centre"],
            **{t: [_clean(e) for e in base.get(t, [])] for t in p.EXPORTED},
        }
        data[table] = [*data[table], entry]
        path = tmp_path / "t2.toml"
        path.write_text(p.to_toml(data), encoding="utf-8")
        with pytest.raises(p.ProvisioningError) as refused:
            p.load(path)
        assert refused.value.what == vi, (table, changes)
        # At the field's line, or the entry's when it lacks the field.
        lines = path.read_text(encoding="utf-8").splitlines()
        header = max(i for i, text in enumerate(lines) if text == f"[[{table}]]")
        at = lines[refused.value.line - 1]
        assert refused.value.line > header, (table, changes, at)
        if field not in entry:
            assert at == f"[[{table}]]", at
        else:  # a table's field is a subtable: [services.hours]
            assert at.startswith(f"{field} =") or at == f"[{table}.{field}]", at


# The centre's settings, from the same definition (a file only: not in the API yet).
CENTRE_CASES = [
    ('timezone = "Mars/Olympus"', "“timezone” phải là một múi giờ có thật, ví dụ Asia/Ho_Chi_Minh"),
    ("rating_timeout_s = 5", "“rating_timeout_s” phải từ 10 đến 300 giây"),
    ('board_layout = "grid"', "“board_layout” phải là một trong: auto, hall, office"),
    ('announce_form = "words"', "“announce_form” phải là một trong: digits, number"),
    ("announce_repeats = 4", "“announce_repeats” phải từ 0 đến 3"),
    ("slot_minutes = 25", "“slot_minutes” phải là một trong: 10, 15, 20, 30, 60"),
    ("booking_days = 0", "“booking_days” phải từ 1 đến 90 ngày"),
    (
        "appointment_share = 0.9",
        "“appointment_share” phải từ 0 đến 0.8 (phần còn lại cho người đến trực tiếp)",
    ),
    ("notify_ahead = 30", "“notify_ahead” phải từ 1 đến 20 người"),
    ("target_wait_s = 30", "“target_wait_s” phải từ 60 đến 14400 giây"),
    ("name_en = 7", "“name_en” phải là một chuỗi ký tự không rỗng"),
]


def test_the_centres_settings_are_checked_from_the_same_definition(tmp_path):
    text = COMMUNE.read_text(encoding="utf-8")
    name = 'name = "Bộ phận Một cửa xã thử nghiệm"\n'
    line = text[: text.index(name)].count("\n") + 2
    for setting, words in CENTRE_CASES:
        path = tmp_path / "t2.toml"
        path.write_text(text.replace(name, f"{name}{setting}\n", 1), encoding="utf-8")
        with pytest.raises(p.ProvisioningError) as refused:
            p.load(path)
        assert (refused.value.line, refused.value.what) == (line, words), setting


def _clean(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if not k.startswith("_")}


# -- what the API changes -------------------------------------------------------------------
def test_agencies_created_renamed_everywhere_retired_and_audited(office, devices):
    """An agency is an entry: services name it by code; a new name reaches an open kiosk
    at once as each of its services' ``service_changed``; it is retired only when no
    active service is its (refused naming the field and the services), and comes back."""
    admin = office.login("quantri2")
    kiosk = devices.kiosk(office, KIOSK_T2)
    since = max([0] + [r[0] for r in audit(office.database_url)])
    made = call(office, "PUT", "/agencies/TP", admin, {"name": "Sở Tư pháp"})
    assert made.status_code == 201, made.text
    assert made.json()["entry"] == {"code": "TP", "name": "Sở Tư pháp"}
    service = {"name": "Công chứng", "agency": "TP", "prefix": "C"}
    assert call(office, "PUT", "/services/CC", admin, service).status_code == 201
    assert kiosk.wait_change("service_changed")["service"]["agency"] == "Sở Tư pháp"
    # The old way, by name, finds the same agency.
    by_name = call(office, "PUT", "/services/CT", admin, {**service, "agency": "Sở Tư pháp"})
    assert by_name.json()["entry"]["agency"] == "TP"
    kiosk.wait_change("service_changed")
    renamed = {"name": "Sở Tư pháp tỉnh", "name_en": "Provincial Department of Justice"}
    answer = call(office, "PUT", "/agencies/TP", admin, renamed)
    assert answer.json()["changes"] == ["~ agency TP (name, name_en)"], answer.text
    heard = {}
    while len(heard) < 2:
        event = kiosk.wait_change("service_changed")["service"]
        heard[event["code"]] = (event["agency"], event["agency_en"])
    assert heard == {c: tuple(renamed.values()) for c in ("CC", "CT")}
    snapshot = kiosk.fresh_snapshot("services")["services"]
    assert {s["agency"] for s in snapshot if s["code"] in ("CC", "CT")} == {"Sở Tư pháp tỉnh"}
    # Not retired while its services are active, by DELETE or by PUT; nothing written.
    before = tables(office.database_url)
    for method, body in (("DELETE", None), ("PUT", {**renamed, "active": False})):
        for lang in ("vi", "en"):
            refused = call(office, method, "/agencies/TP", admin, body, lang)
            assert refused.status_code == 409, refused.text
            error = refused.json()["error"]
            assert error["field"] == "active"
            assert ("CC, CT" in error["message"]) and error["code"] == "conflict"
    assert refused.json()["error"]["message"] == (
        "agency 'TP' still has active services: CC, CT. Move them to another agency or"
        " retire them first"
    )
    assert tables(office.database_url) == before
    # A service moved to another agency, the other retired: then the agency retires.
    moved = call(office, "PUT", "/services/CT", admin, {**service, "agency": "UBND"})
    assert moved.json()["changes"] == ["~ service CT (agency_id)"], moved.text
    call(office, "DELETE", "/services/CC", admin)
    assert call(office, "DELETE", "/agencies/TP", admin).json()["changes"] == ["- agency TP"]
    text = call(office, "GET", "/export", admin).text
    assert '[[agencies]]\ncode = "TP"\nname = "Sở Tư pháp tỉnh"' in text
    # A retired agency takes no active service until it is brought back.
    refused = call(office, "PUT", "/services/CC", admin, service)
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "agency"
    back = call(office, "PUT", "/agencies/TP", admin, renamed)
    assert back.json()["changes"] == ["~ agency TP (active)"]
    assert call(office, "PUT", "/services/CC", admin, service).status_code == 200
    records = [r[3] for r in audit(office.database_url, since) if r[3]["entity"] == "agencies"]
    assert [(r["op"], r.get("service")) for r in records] == [
        ("put", None),
        ("put", None),
        ("renamed", "CC"),
        ("renamed", "CT"),
        ("delete", None),
        ("put", None),
    ]
    assert records[0]["by"] == "quantri2" and records[0]["before"] is None
    assert records[1]["before"]["name"] == "Sở Tư pháp"
    assert records[1]["after"] == {"code": "TP", **renamed}
    assert records[2]["before"] == {"name": "Sở Tư pháp", "name_en": None}


def test_services_and_counters_created_changed_retired_and_audited(office, devices):
    admin = office.login("quantri2")
    kiosk = devices.kiosk(office, KIOSK_T2)
    since = max([0] + [r[0] for r in audit(office.database_url)])
    created = call(office, "PUT", "/services/CC", admin, BASE["services"][1])
    assert created.status_code == 201, created.text
    # Named the old way (an agency's name): a new agency of that name, with a code.
    assert created.json()["entry"] == {
        "code": "CC",
        "name": "Công chứng",
        "agency": "STP",
        "prefix": "C",
        "start": 1,
        "service_minutes": 5,
    }
    # The kiosk hears of it (a targeted change, docs/protocol.md 6.6), and offers it.
    assert kiosk.wait_change("service_changed")["service"]["code"] == "CC"
    assert any(s["code"] == "CC" for s in kiosk.fresh_snapshot("services")["services"])
    same = call(office, "PUT", "/services/CC", admin, BASE["services"][1])
    assert (same.status_code, same.json()["changes"]) == (200, [])
    changed = call(office, "PUT", "/services/CC", admin, {**BASE["services"][1], "start": 500})
    assert changed.json()["changes"] == ["~ service CC (start)"]
    counter = call(office, "PUT", "/counters/7", admin, {"services": ["HT", "CC"]})
    assert counter.status_code == 201
    assert counter.json()["entry"] == {"number": 7, "name": "Quầy 7", "services": ["HT", "CC"]}
    retired = call(office, "DELETE", "/services/CC", admin)
    assert retired.json() == {"ok": True, "changes": ["- service CC"]}
    again = call(office, "DELETE", "/services/CC", admin)
    assert again.json() == {"ok": True, "changes": []}
    # Retired, not gone: the export still lists it (active = false) and counter 7 with it.
    text = call(office, "GET", "/export", admin).text
    assert 'code = "CC"' in text and "active = false" in text
    assert call(office, "DELETE", "/counters/7", admin).json()["changes"] == ["- counter 7"]
    unknown = call(office, "DELETE", "/services/KHONG", admin, lang="en")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "There is no service 'KHONG' at this centre."
    # A counter with a clerk at it is not retired (connecting opens it).
    devices(office, "/counter", {"token": office.login("clerk1"), "counter": 2, "centre": "T2"})
    busy = call(office, "DELETE", "/counters/2", admin)
    assert busy.status_code == 409, busy.text
    assert busy.json()["error"]["message"] == (
        "Quầy 2 đang mở: cán bộ cần đóng quầy trước khi ngừng sử dụng quầy."
    )
    records = audit(office.database_url, since)
    assert [r[3]["op"] for r in records] == ["put", "put", "put", "delete", "delete"]
    first = records[0][3]
    assert records[0][2].startswith("staff:") and first["by"] == "quantri2"
    assert (first["entity"], first["key"], first["before"]) == ("services", "CC", None)
    assert first["after"]["prefix"] == "C"
    assert records[1][3]["before"]["start"] == 1 and records[1][3]["after"]["start"] == 500


def test_a_services_hours_and_groups_apply_at_once(office, devices):
    """Set through the API, a service's own hours and priority groups rule the next
    ticket (the engine, on both stores) and reach the kiosk's snapshot."""
    admin = office.login("quantri2")
    kiosk = devices.kiosk(office, KIOSK_T2)
    ht = {"name": "Hộ tịch", "agency": "UBND xã", "prefix": "A"}
    tomorrow = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date() + timedelta(days=1)
    day = WEEKDAYS[tomorrow.weekday()]
    answer = call(office, "PUT", "/services/HT", admin, {**ht, "hours": {day: ["07:30-11:30"]}})
    assert answer.status_code == 200, answer.text
    refused = kiosk.call("issue", {"service": "HT", "lang": "en"})
    assert refused["ok"] is False and refused["error"]["code"] == "conflict"
    weekday = tomorrow.strftime("%A")
    when = f"07:30 {weekday} {tomorrow.strftime('%d/%m/%Y')}"
    assert refused["error"]["message"] == (
        "Service 'Hộ tịch' takes tickets only within its own opening hours, and it is "
        f"closed now. Please come back at {when}."
    )
    opening = kiosk.fresh_snapshot("services")["services"][0]["opening"]
    assert opening[0] == [f"{tomorrow}T07:30:00+07:00", f"{tomorrow}T11:30:00+07:00"]
    every_day = {d: ["00:00-24:00"] for d in WEEKDAYS}
    answer = call(
        office, "PUT", "/services/HT", admin, {**ht, "hours": every_day, "priorities": ["merit"]}
    )
    assert answer.status_code == 200, answer.text
    no = kiosk.call("issue", {"service": "HT", "priority": "elderly"})
    assert no["error"]["code"] == "bad_request"
    assert no["error"]["message"] == (
        "Lĩnh vực “Hộ tịch” không nhận đối tượng ưu tiên “Người cao tuổi”. Lĩnh vực này nhận: "
        "Người có công với cách mạng. Ông/Bà vẫn lấy được số thường."
    )
    assert kiosk.call("issue", {"service": "HT", "priority": "merit"})["ok"] is True
    assert kiosk.call("issue", {"service": "HT"})["ok"] is True
    assert kiosk.fresh_snapshot("services")["services"][0]["priorities"] == ["merit"]


def test_staff_password_generated_once_changed_and_deactivated(office):
    admin = office.login("quantri2")
    created = call(office, "PUT", "/staff/moi1", admin, BASE["staff"][1])
    assert created.status_code == 201, created.text
    password = created.json()["password"]
    assert created.headers["Cache-Control"] == "no-store"
    session = login(office.url, "moi1", password)
    # Without a password the account keeps its own; the answer shows none.
    kept = call(office, "PUT", "/staff/moi1", admin, {**BASE["staff"][1], "role": "manager"})
    assert "password" not in kept.json() and kept.json()["entry"]["role"] == "manager"
    login(office.url, "moi1", password)
    changed = call(
        office, "PUT", "/staff/moi1", admin, {**BASE["staff"][1], "password": "mat-khau-moi-1"}
    )
    assert changed.status_code == 200
    with pytest.raises(RuntimeError):
        login(office.url, "moi1", password)
    login(office.url, "moi1", "mat-khau-moi-1")
    # The old session ended with the old password.
    assert call(office, "GET", "/export", session).status_code == 401
    # An account lent by T1 gets a role and counters here, nothing else.
    lent = call(
        office, "PUT", "/staff/clerk3", admin, {"home": "T1", "role": "clerk", "counters": [1]}
    )
    assert lent.status_code == 201 and lent.json()["entry"] == {
        "username": "clerk3",
        "home": "T1",
        "role": "clerk",
        "counters": [1],
    }
    taken = call(office, "PUT", "/staff/clerk3", admin, {"full_name": "X", "role": "clerk"})
    assert taken.status_code == 409 and taken.json()["error"]["field"] == "username"
    assert call(office, "DELETE", "/staff/clerk3", admin).status_code == 200
    login(office.url, "clerk3", PASSWORDS["clerk3"])  # T1 keeps its account
    # A centre's admin grants no province-wide role, nor touches the province's admin.
    for body, who in (
        ({**BASE["staff"][1], "role": "installation_admin"}, "moi1"),
        ({"full_name": "Tỉnh", "role": "admin"}, "tinh"),
    ):
        refused = call(office, "PUT", f"/staff/{who}", admin, body)
        assert refused.status_code == 403, refused.text
    mine = call(office, "DELETE", "/staff/quantri2", admin)
    assert mine.status_code == 409
    gone = call(office, "DELETE", "/staff/moi1", admin)
    assert gone.json()["changes"][-1] == "- staff moi1"
    with pytest.raises(RuntimeError):
        login(office.url, "moi1", "mat-khau-moi-1")
    # No secret reaches the audit log.
    logged = json.dumps([r[3] for r in audit(office.database_url)], ensure_ascii=False)
    assert password not in logged and "mat-khau-moi-1" not in logged
    assert "scrypt" not in logged


def test_a_device_token_issued_once_connects_and_stops_when_revoked(office):
    admin = office.login("quantri2")
    created = call(office, "PUT", "/devices/Kiosk 2", admin, {"kind": "kiosk"})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert created.json()["entry"] == {"name": "Kiosk 2", "kind": "kiosk"}
    assert connects(office, "/kiosk", token)
    again = call(office, "PUT", "/devices/Kiosk 2", admin, {"kind": "kiosk"})
    assert "token" not in again.json() and again.json()["changes"] == []
    assert connects(office, "/kiosk", token)
    # An agent printing for it.
    agent = call(
        office,
        "PUT",
        "/devices/Máy trạm 2",
        admin,
        {"kind": "agent", "counters": [1, 2], "kiosks": ["Kiosk 2"]},
    )
    assert agent.status_code == 201, agent.text
    assert agent.json()["entry"]["kiosks"] == ["Kiosk 2"]
    assert call(office, "DELETE", "/devices/Kiosk 2", admin).json()["changes"][-1] == (
        "- device Kiosk 2"
    )
    assert not connects(office, "/kiosk", token)
    assert call(office, "GET", "/export", admin).text.count("kiosks") == 0
    # Back again without a token: a new one, never the revoked one.
    back = call(office, "PUT", "/devices/Kiosk 2", admin, {"kind": "kiosk"})
    assert back.json()["token"] != token
    assert connects(office, "/kiosk", back.json()["token"]) and not connects(
        office, "/kiosk", token
    )
    chosen = call(
        office, "PUT", "/devices/Kiosk 2", admin, {"kind": "kiosk", "token": "mot-ma-do-admin-chon"}
    )
    assert chosen.status_code == 200 and "token" not in chosen.json()
    assert connects(office, "/kiosk", "mot-ma-do-admin-chon")


def test_the_export_reproduces_both_centres_on_a_fresh_database(office, tmp_path, devices):
    province = office.login("tinh")
    admin = office.login("quantri2")
    # Something the API made, so the export covers it too (T2's file has agencies, one
    # retired; T1's names them the old way, by name).
    assert call(office, "PUT", "/agencies/TP", admin, BASE["agencies"][1]).status_code == 201
    own = {"appointments": 2, "hours": {"tue": ["07:30-11:30"], "thu": ["07:30-11:30"]}}
    own["priorities"] = ["elderly", "disabled"]
    made = call(office, "PUT", "/services/CC", admin, {**BASE["services"][1], **own})
    assert made.json()["entry"]["agency"] == "TP"
    assert made.status_code == 201 and {**made.json()["entry"], **own} == made.json()["entry"]
    call(office, "PUT", "/counters/7", admin, {"services": ["CC"], "name": "Quầy công chứng"})
    call(office, "PUT", "/counters/7", admin, {"services": ["CC"], "active": False})
    call(
        office,
        "PUT",
        "/devices/Máy trạm 2",
        admin,
        {"kind": "agent", "counters": [1], "kiosks": ["Kiosk xã"]},
    )
    call(office, "PUT", "/devices/Đánh giá 1", admin, {"kind": "rating", "counter": 1})
    files = {}
    for code in ("T1", "T2"):
        answer = requests.get(
            office.url + API + f"/export?centre={code}",
            headers={"Authorization": f"Bearer {province}"},
            timeout=30,
        )
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "application/toml; charset=utf-8"
        for secret in (*PASSWORDS.values(), *COMMUNE_PASSWORDS.values(), "-token-", "scrypt"):
            assert secret not in answer.text
        files[code] = tmp_path / f"{code}.toml"
        files[code].write_bytes(answer.content)
    fresh = Store(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    served = Store(office.database_url)
    try:
        fresh.migrate()
        for code in ("T1", "T2"):
            p.provision(fresh, files[code])
        for code in ("T1", "T2"):
            mine, theirs = (_exported(s, code) for s in (served, fresh))
            assert mine["centre"] == theirs["centre"]
            for table in p.EXPORTED:
                assert len(mine[table]) == len(theirs[table]), (code, table)
                for a, b in zip(mine[table], theirs[table], strict=True):
                    assert a == b, (code, table)
        # New accounts wait for a password, new devices for a token.
        hashes = fresh.read(lambda c: set(c.execute(sa.select(m.staff.c.password_hash)).scalars()))
        assert hashes == {p.LOCKED}
        # Applied back to this server: nothing changes, passwords and tokens kept.
        before = tables(office.database_url)
        for code in ("T1", "T2"):
            assert p.provision(served, files[code]) == ["Không có thay đổi (no changes)."]
        after = tables(office.database_url)
        assert {k: v for k, v in after.items() if k not in ("centres", "audit_log")} == {
            k: v for k, v in before.items() if k not in ("centres", "audit_log")
        }
    finally:
        fresh.dispose()
        served.dispose()
    login(office.url, "quantri2", COMMUNE_PASSWORDS["quantri2"])
    assert connects(office, "/kiosk", KIOSK_T2)


def _exported(store, code):
    def read(conn):
        centre_id = conn.execute(sa.select(m.centres.c.id).where(m.centres.c.code == code)).scalar()
        return p.export(conn, centre_id)

    return store.read(read)


def test_a_files_agencies_by_code_or_the_old_way_by_name(tmp_path):
    """A file's ``[[agencies]]`` and services naming them by code; a file written before
    (``agency = "Sở Tư pháp"``, ``agency_en``) still applies, its agencies found or made
    by name; an agency the file no longer lists, nor any of its services names, retires.
    The refusals are the API's words, at the entry's line."""
    store = Store(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    store.migrate()

    def agencies():
        a = m.agencies
        query = sa.select(a.c.code, a.c.name, a.c.name_en, a.c.active).order_by(a.c.id)
        return store.read(lambda conn: [tuple(r) for r in conn.execute(query)])

    def file(text):
        path = tmp_path / "t.toml"
        path.write_text('[centre]\ncode = "X"\nname = "Xã"\n' + text, encoding="utf-8")
        return path

    service = '\n[[services]]\ncode = "HT"\nname = "Hộ tịch"\nprefix = "A"\n'
    try:
        old = file(service + 'agency = "Sở Tư pháp"\nagency_en = "Department of Justice"\n')
        assert p.provision(store, old) == ["+ centre X", "+ agency STP", "+ service HT"]
        assert agencies() == [("STP", "Sở Tư pháp", "Department of Justice", True)]
        new = '\n[[agencies]]\ncode = "UB"\nname = "UBND xã"\n' + service + 'agency = "UB"\n'
        assert p.provision(store, file(new)) == [
            "+ agency UB",
            "~ service HT (agency_id)",
            "- agency STP",
        ]
        assert agencies()[1] == ("UB", "UBND xã", None, True)
        for text, line, words in (
            (
                new + 'agency_en = "Committee"\n',
                10,
                "“agency_en” chỉ đi cùng tên cơ quan; “UB” là mã một cơ quan: tên tiếng Anh"
                " của nó ghi ở mục [[agencies]] của cơ quan đó",
            ),
            (
                new.replace('name = "UBND xã"\n', 'name = "UBND xã"\nactive = false\n'),
                11,
                "cơ quan “UB” (UBND xã) đã ngừng: hãy dùng lại cơ quan đó trước, hoặc chọn"
                " cơ quan khác",
            ),
            ('\n[[agencies]]\ncode = "UB"\nname = "A"\n' + new, 10, "mã cơ quan “UB” bị trùng"),
        ):
            with pytest.raises(p.ProvisioningError) as refused:
                p.provision(store, file(text))
            assert (refused.value.line, refused.value.what) == (line, words)
        assert agencies()[1] == ("UB", "UBND xã", None, True)
    finally:
        store.dispose()
