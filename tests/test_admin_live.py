"""Issue 18's third slice on real server processes and real Socket.IO clients: an admin's
change reaches only the devices it concerns, as a targeted change (no snapshot for the
others); a revoked device and an ended session lose their sockets at once, in every
process (two processes sharing PostgreSQL and Redis); the sessions an admin sees and
ends; an expired session's socket closed; a counter's new services served from its next
call.

The centre changed is T1 (tests/centre.toml, open all day), by the province's admin
``tinh`` (tests/commune.toml) acting there with ``?centre=T1``."""

from __future__ import annotations

import time

import pytest
import requests
import sqlalchemy as sa

from core import models as m
from core.store import normalise_url
from harness.centre import (
    COMMUNE,
    DISPLAY,
    DISPLAY_C3,
    KIOSK,
    PASSWORDS,
    RATING_2,
    CentreServer,
    open_all_day,
)
from harness.devices import connect_refused
from harness.process import login
from harness.replica import REPLICAS

API = "/api/v1/admin"
SERVICE_CC = {"name": "Công chứng", "agency": "Sở Tư pháp", "prefix": "D"}


def call(server, method, path, token, body=None, centre="T1"):
    return requests.request(
        method,
        f"{server.url}{API}{path}?centre={centre}",
        headers={"Authorization": f"Bearer {token}"},
        json=body,
        timeout=30,
    )


def watch_disconnect(device):
    """Record the server closing the device's socket as a "disconnected" event."""
    device.sio.on(
        "disconnect", lambda *a: device._record("disconnected"), namespace=device.namespace
    )
    return device


def snapshots(device, name: str) -> int:
    with device.cond:
        return sum(1 for n, _ in device.history if n == name)


def kinds(device) -> list[str]:
    return [e["kind"] for b in device.batches() for e in b["events"]]


@pytest.fixture
def t1(tmp_path):
    srv = CentreServer(
        tmp_path, f"sqlite:///{tmp_path / 'motcua.sqlite3'}", provision=open_all_day(tmp_path)
    ).start()
    srv.provision_also(COMMUNE)
    yield srv
    srv.stop()


# -- only where it matters ------------------------------------------------------------------
def test_a_services_own_hours_and_groups_reach_an_open_kiosk(t1, devices):
    """Hours and priority groups set through the API reach the kiosk in the targeted
    change, as the snapshot would list them (the kiosk shows the service closed and
    offers only those groups without a snapshot)."""
    admin = t1.login("tinh")
    kiosk = devices.kiosk(t1, KIOSK)
    kiosk.wait_event("services")
    body = {**SERVICE_CC, "hours": {"mon": ["07:30-08:00"]}, "priorities": ["elderly"]}
    assert call(t1, "PUT", "/services/CC", admin, body).status_code == 201
    heard = kiosk.wait_change("service_changed", timeout=1)["service"]
    assert heard["priorities"] == ["elderly"]
    assert heard["opening"] and all("T07:30:00" in a for a, _ in heard["opening"])
    assert heard == {**kiosk.fresh_snapshot("services")["services"][-1], "active": True}


def test_a_service_reaches_kiosks_as_a_targeted_change_and_nobody_else_resyncs(t1, devices):
    admin = t1.login("tinh")
    kiosk = devices.kiosk(t1)
    board = devices.display(t1)  # every counter
    board_c3 = devices.display(t1, DISPLAY_C3)
    tablet = devices.rating(t1)  # counter 1
    clerk = devices.counter(t1, "clerk2", 2)  # serves TP only
    first = {}
    for d, snap in (
        (kiosk, "services"),
        (board, "snapshot"),
        (board_c3, "snapshot"),
        (tablet, "rating_state"),
        (clerk, "counter_state"),
    ):
        first[snap] = d.wait_event(snap)
    started = time.monotonic()
    created = call(t1, "PUT", "/services/CC", admin, SERVICE_CC)
    assert created.status_code == 201, created.text
    heard = kiosk.wait_change("service_changed", timeout=1)
    assert time.monotonic() - started < 1.5
    assert heard["service"] == {
        "code": "CC",
        "name": "Công chứng",
        "name_en": None,
        "agency": "Sở Tư pháp",  # T1's agency of that name, with its English name
        "agency_en": "Department of Justice",
        "opening": None,  # the centre's hours
        "priorities": None,  # every group
        "waiting": 0,
        "estimated_wait_s": heard["service"]["estimated_wait_s"],
        "open": False,
        "on_break": False,
        "active": True,
    }
    # A counter's entry: its devices hear it (the board of every counter, the tablet at
    # it); the board of counter 3 and the clerk at counter 2 do not.
    assert call(t1, "PUT", "/counters/1", admin, {"name": "Quầy 1", "services": ["TP", "CC"]}).ok
    assert board.wait_change("counter_changed", timeout=1)["counter"]["number"] == 1
    assert tablet.wait_change("counter_changed", timeout=1)["counter"]["number"] == 1
    # The kiosk hears the new service's counts (the counter serves it now).
    assert kiosk.wait_service("CC", timeout=1)["code"] == "CC"
    retired = call(t1, "DELETE", "/services/CC", admin)
    assert retired.json()["changes"] == ["- service CC"]
    assert kiosk.wait_change("service_changed", timeout=1)["service"]["active"] is False
    # Let any stray delivery arrive, then: nobody was told to reload.
    time.sleep(0.5)
    assert "configured" not in kinds(kiosk) + kinds(board) + kinds(tablet) + kinds(clerk)
    assert kinds(board_c3) == [] and "service_changed" not in kinds(board) + kinds(tablet)
    assert "service_changed" not in kinds(clerk) and "counter_changed" not in kinds(clerk)
    for d, snap in ((kiosk, "services"), (board_c3, "snapshot"), (clerk, "counter_state")):
        assert snapshots(d, snap) == 1, snap
    # The kiosk's snapshot and its batches, applied as docs/protocol.md says (the
    # reference replica: a service added, then retired), make a fresh snapshot.
    replica = REPLICAS["kiosk"](first["services"])
    offered = []
    for batch in kiosk.batches():
        replica.apply(batch)
        offered.append([s["code"] for s in replica.state["services"]])
    assert ["TP", "HT", "DD", "CC"] in offered and offered[-1] == ["TP", "HT", "DD"]
    fresh = kiosk.fresh_snapshot("services")
    assert replica.comparable() == {**fresh, "seq": replica.seq}
    # The centre's settings are still a whole reload, for every device.
    settings = call(t1, "GET", "/export", admin)
    assert settings.ok
    assert call(
        t1, "PUT", "/centre", admin, {"name": "Trung tâm mới", "timezone": "Asia/Ho_Chi_Minh"}
    ).ok
    board_c3.wait_change("configured", timeout=1)


def test_a_counters_new_service_is_served_from_its_next_call(t1, devices):
    admin = t1.login("tinh")
    clerk = devices.counter(t1, "clerk3", 3)  # counter 3 serves DD
    clerk.wait_event("counter_state")
    kiosk = devices.kiosk(t1)
    assert kiosk.call("issue", {"service": "TP"})["ok"]
    refused = clerk.call("call_next", {})
    assert refused["ok"] is False and refused["error"]["code"] == "queue_empty"
    assert call(t1, "PUT", "/counters/3", admin, {"name": "Quầy 3", "services": ["DD", "TP"]}).ok
    clerk.wait_change("counter_changed", timeout=1)
    called = clerk.call("call_next", {})  # the same socket, no reconnection
    assert called["ok"], called
    assert called["ticket"]["service"]["code"] == "TP"


# -- sessions an admin sees and ends --------------------------------------------------------
def test_an_admin_lists_and_ends_sessions_and_the_socket_closes(t1, devices):
    admin = t1.login("tinh")
    clerk_token = t1.login("clerk1")
    clerk = watch_disconnect(devices.counter(t1, "clerk1", 1, token=clerk_token))
    clerk.wait_event("counter_state")
    for user in ("quanly1", "clerk2"):
        token = t1.login(user)
        for method, path in (("GET", "/sessions"), ("DELETE", "/sessions/1")):
            refused = call(t1, method, path, token)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        refused = call(t1, "POST", "/staff/clerk1/end-sessions", token)
        assert refused.status_code == 403
    assert requests.get(t1.url + API + "/sessions", timeout=10).status_code == 401
    listed = call(t1, "GET", "/sessions", admin).json()["sessions"]
    mine = [s for s in listed if s["username"] == "clerk1"]
    assert len(mine) == 1 and mine[0]["full_name"] and mine[0]["expires"] > mine[0]["since"]
    # Its role here, where it logged in from, and when it was last seen (at first: login).
    assert (mine[0]["role"], mine[0]["address"]) == ("clerk", "127.0.0.1")
    assert mine[0]["since"] <= mine[0]["seen"] < mine[0]["expires"]
    assert not any(s["current"] for s in listed)  # the province's admin is no T1 staff
    # T2's own admin sees T2's staff (and its own session), not T1's.
    other = call(t1, "GET", "/sessions", t1.login("quantri2"), centre="T2").json()["sessions"]
    assert {s["username"]: s["current"] for s in other} == {
        "clerk1": False,
        "quantri2": True,
        "tinh": False,
    }
    started = time.monotonic()
    ended = call(t1, "DELETE", f"/sessions/{mine[0]['id']}", admin)
    assert ended.json() == {"ok": True, "ended": 1}
    clerk.wait_event("disconnected", timeout=1)
    assert time.monotonic() - started < 1.5
    assert call(t1, "DELETE", f"/sessions/{mine[0]['id']}", admin).status_code == 404
    assert call(t1, "DELETE", "/sessions/abc", admin).status_code == 404
    refusal = connect_refused(t1, "/counter", {"token": clerk_token, "counter": 1})
    assert refusal["data"]["code"] == "unauthorized"
    # Every session of an account at once (with the one it opened above, three).
    tokens = [t1.login("clerk2"), t1.login("clerk2")]
    at_2 = watch_disconnect(devices.counter(t1, "clerk2", 2, token=tokens[0]))
    at_2.wait_event("counter_state")
    all_ended = call(t1, "POST", "/staff/clerk2/end-sessions", admin)
    assert all_ended.json() == {"ok": True, "ended": 3}
    at_2.wait_event("disconnected", timeout=1)
    assert call(t1, "POST", "/staff/nobody/end-sessions", admin).status_code == 404
    login(t1.url, "clerk2", PASSWORDS["clerk2"])  # the account itself is untouched
    # Audited: who ended whose sessions.
    engine = sa.create_engine(normalise_url(t1.database_url))
    a = m.audit_log
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(a.c.centre_id, a.c.details)
            .where(a.c.action == "sessions_ended")
            .order_by(a.c.id)
        ).all()
    engine.dispose()
    assert [
        (r.centre_id, r.details["by"], r.details["username"], len(r.details["sessions"]))
        for r in rows
    ] == [
        (2, "tinh", "clerk1", 1),  # told to T2 too, where clerk1 is lent (from T1)
        (1, "tinh", "clerk1", 1),
        (1, "tinh", "clerk2", 3),
    ]
    assert rows[0].details["centre"] == "T1"


def test_a_clerk_who_loses_the_role_or_the_counter_is_cut_off_there_only(t1, devices):
    token = t1.login("clerk1")  # T1's clerk at counter 1, lent to T2 for its counter 2
    here = watch_disconnect(devices.counter(t1, "clerk1", 1, token=token))
    lent = watch_disconnect(devices(t1, "/counter", {"token": token, "counter": 2, "centre": "T2"}))
    clerk2 = watch_disconnect(devices.counter(t1, "clerk2", 2))  # any counter, for now
    for d in (here, lent, clerk2):
        d.wait_event("counter_state")
    started = time.monotonic()
    assert call(t1, "DELETE", "/staff/clerk1", t1.login("quantri2"), centre="T2").ok
    lent.wait_event("disconnected", timeout=1)
    assert time.monotonic() - started < 1.5
    refused = connect_refused(t1, "/counter", {"token": token, "counter": 2, "centre": "T2"})
    assert refused["data"]["code"] == "forbidden"
    # Assigned to counter 1 only, clerk2 leaves counter 2.
    body = {"full_name": "Trần Thị Bình", "role": "clerk", "counters": [1]}
    assert call(t1, "PUT", "/staff/clerk2", t1.login("tinh"), body).ok
    clerk2.wait_event("disconnected", timeout=1)
    # T1's own connection of clerk1 holds: its session and its role there stand.
    time.sleep(0.3)
    assert here.sio.connected and here.call("sync")["ok"]


def test_an_expired_sessions_socket_is_closed(tmp_path, devices):
    srv = CentreServer(
        tmp_path,
        f"sqlite:///{tmp_path / 'motcua.sqlite3'}",
        env={"MOTCUA_SESSION_CHECK_S": "0.5"},
    ).start()
    try:
        clerk = watch_disconnect(devices.counter(srv, "clerk1", 1))
        clerk.wait_event("counter_state")
        engine = sa.create_engine(normalise_url(srv.database_url))
        with engine.begin() as conn:
            past = m.utcnow().replace(year=2020)
            conn.execute(m.staff_sessions.update().values(expires_at=past))
        engine.dispose()
        clerk.wait_event("disconnected", timeout=3)
    finally:
        srv.stop()


# -- cut off at once in every process -------------------------------------------------------
@pytest.fixture
def pair(tmp_path, pg_url, redis_url):
    a = CentreServer(tmp_path, pg_url, redis_url, provision=open_all_day(tmp_path)).start()
    a.provision_also(COMMUNE)
    b = CentreServer(tmp_path, pg_url, redis_url, provision=None).start()
    yield a, b
    a.stop()
    b.stop()


def test_revoked_devices_and_ended_sessions_are_cut_off_in_the_other_process(pair, devices):
    a, b = pair
    admin = a.login("tinh")
    tablet = watch_disconnect(devices.rating(b, RATING_2))
    board = watch_disconnect(devices.display(b, DISPLAY))
    kiosk = watch_disconnect(devices.kiosk(b, KIOSK))
    for d, snap in ((tablet, "rating_state"), (board, "snapshot"), (kiosk, "services")):
        d.wait_event(snap)
    started = time.monotonic()
    revoked = call(a, "DELETE", "/devices/Đánh giá quầy 2", admin)
    assert revoked.json()["changes"] == ["- device Đánh giá quầy 2"]
    tablet.wait_event("disconnected", timeout=1)
    assert time.monotonic() - started < 1.5
    refusal = connect_refused(b, "/rating", {"token": RATING_2})
    assert refusal["data"]["code"] == "unauthorized"
    assert refusal["data"]["reason"] == "device_revoked"
    assert "thu hồi" in refusal["message"]
    english = connect_refused(b, "/rating", {"token": RATING_2, "lang": "en"})
    assert english["message"].startswith("This device has been revoked")
    # A made-up token is still only "wrong".
    assert "reason" not in connect_refused(b, "/rating", {"token": "x" * 20})["data"]
    # A board's binding changed: it is bound again and takes a snapshot, not cut off.
    before = snapshots(board, "snapshot")
    rebound = call(a, "PUT", "/devices/Bảng sảnh", admin, {"kind": "display", "counters": [3]})
    assert rebound.ok, rebound.text
    board.wait_for(lambda n, d: n == "snapshot" and snapshots(board, "snapshot") > before, 2)
    assert [c["number"] for c in board.fresh_snapshot("snapshot")["counters"]] == [3]

    # Clerks on B: deactivated, a new password, ended by an admin (each through A).
    clerks = {
        "clerk1": watch_disconnect(devices.counter(b, "clerk1", 1)),
        "clerk2": watch_disconnect(devices.counter(b, "clerk2", 2)),
        "clerk3": watch_disconnect(devices.counter(b, "clerk3", 3)),
    }
    for c in clerks.values():
        c.wait_event("counter_state")
    steps = {
        "clerk1": ("DELETE", "/staff/clerk1", None),
        "clerk2": (
            "PUT",
            "/staff/clerk2",
            {"full_name": "Trần Thị Bình", "role": "clerk", "password": "mat-khau-moi-22"},
        ),
        "clerk3": ("POST", "/staff/clerk3/end-sessions", None),
    }
    for username, (method, path, body) in steps.items():
        started = time.monotonic()
        answer = call(a, method, path, admin, body)
        assert answer.ok, answer.text
        clerks[username].wait_event("disconnected", timeout=1)
        assert time.monotonic() - started < 1.5, username
    # Nothing else was cut off.
    assert not [n for n, _ in kiosk.history if n == "disconnected"]
    assert kiosk.sio.connected
    # A device given another token (a stolen one replaced) loses its open connection too.
    body = {"kind": "kiosk", "token": "a-new-token-for-kiosk-a"}
    assert call(a, "PUT", "/devices/Kiosk A", admin, body).ok
    kiosk.wait_event("disconnected", timeout=1)
    assert connect_refused(b, "/kiosk", {"token": KIOSK})["data"] == {
        "code": "unauthorized",
        "message": "Mã xác thực không đúng hoặc đã bị thu hồi.",
    }
    devices.kiosk(b, "a-new-token-for-kiosk-a").wait_event("services")


def test_a_lent_clerk_is_cut_off_at_once_in_a_process_following_only_the_other_centre(
    tmp_path, pg_url, redis_url, devices
):
    """clerk1 (T1's) works at T2's counter 2 through process B, which follows only T2 and
    checks its sockets by itself only every 600 s: T1's admin ending its sessions, giving
    it a new password or deactivating it (through A) cuts it off within a second, as the
    change is told to every centre the account works for."""
    a = CentreServer(tmp_path, pg_url, redis_url, provision=open_all_day(tmp_path)).start()
    b = None
    try:
        a.provision_also(COMMUNE)
        b = CentreServer(
            tmp_path, pg_url, redis_url, env={"MOTCUA_SESSION_CHECK_S": "600"}, provision=None
        ).start()
        admin = a.login("tinh")
        body = {"full_name": "Nguyễn Văn A", "role": "clerk", "counters": [1]}
        steps = (
            ("POST", "/staff/clerk1/end-sessions", None),
            ("PUT", "/staff/clerk1", {**body, "password": "mat-khau-moi-11"}),
            ("DELETE", "/staff/clerk1", None),
        )
        password = PASSWORDS["clerk1"]
        for method, path, sent in steps:
            token = login(b.url, "clerk1", password)
            lent = watch_disconnect(
                devices(b, "/counter", {"token": token, "counter": 2, "centre": "T2"})
            )
            lent.wait_event("counter_state")
            started = time.monotonic()
            answer = call(a, method, path, admin, sent, centre="T1")
            assert answer.ok, answer.text
            lent.wait_event("disconnected", timeout=1.5)
            assert time.monotonic() - started < 2, path
            password = (sent or {}).get("password", password)
        # Each told in T2 too: audited there as what it was, by whom, from which centre.
        engine = sa.create_engine(normalise_url(pg_url))
        a_ = m.audit_log
        with engine.connect() as conn:
            told = conn.execute(
                sa.select(a_.c.action, a_.c.details)
                .join(m.centres, m.centres.c.id == a_.c.centre_id)
                .where(
                    m.centres.c.code == "T2", a_.c.action.in_(["staff_changed", "sessions_ended"])
                )
                .order_by(a_.c.id)
            ).all()
        engine.dispose()
        assert [(r.action, r.details["username"], r.details["centre"]) for r in told] == [
            ("sessions_ended", "clerk1", "T1"),
            ("staff_changed", "clerk1", "T1"),
            ("staff_changed", "clerk1", "T1"),
        ]
    finally:
        a.stop()
        if b is not None:
            b.stop()


def test_a_file_giving_a_lent_clerk_a_new_password_cuts_it_off_where_it_is_lent(tmp_path, devices):
    """T1's file applied by `server.py provision` (another program) while clerk1 works at
    T2's counter 2 on a server that follows only T2 and checks by itself every 600 s: the
    file's change of the account is told to T2 too, and the clerk is cut off at once."""
    home = open_all_day(tmp_path)
    srv = CentreServer(
        tmp_path,
        f"sqlite:///{tmp_path / 'motcua.sqlite3'}",
        env={"MOTCUA_SESSION_CHECK_S": "600"},
        provision=home,
    ).start()
    try:
        srv.provision_also(COMMUNE)
        token = login(srv.url, "clerk1", PASSWORDS["clerk1"])
        lent = watch_disconnect(
            devices(srv, "/counter", {"token": token, "counter": 2, "centre": "T2"})
        )
        lent.wait_event("counter_state")
        text = home.read_text(encoding="utf-8")
        changed = tmp_path / "t1-new-password.toml"
        changed.write_text(
            text.replace(f'password = "{PASSWORDS["clerk1"]}"', 'password = "mat-khau-moi-11"'),
            encoding="utf-8",
        )
        applied = provision(srv, str(changed), path=None)
        assert applied.returncode == 0, applied.stderr
        assert "~ staff clerk1 (password_hash)" in applied.stdout
        lent.wait_event("disconnected", timeout=3)  # the server's sweep: every second
    finally:
        srv.stop()


# -- a file applied after the API -------------------------------------------------------------
def provision(server, *args, path=COMMUNE):
    import subprocess
    import sys

    from harness.process import ROOT

    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "server.py"),
            "provision",
            *([str(path)] if path else []),
            *args,
        ]
        + ["--database-url", server.database_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def service_name(server, code: str) -> str:
    engine = sa.create_engine(normalise_url(server.database_url))
    s = m.services
    with engine.connect() as conn:
        name = conn.execute(
            sa.select(s.c.name).join(m.centres).where(m.centres.c.code == "T2", s.c.code == code)
        ).scalar()
    engine.dispose()
    return name


def test_a_file_applied_after_api_changes_says_what_it_would_overwrite(t1):
    admin = t1.login("quantri2")
    renamed = {"name": "Hộ tịch (đổi tên)", "agency": "UBND xã", "prefix": "A"}
    assert call(t1, "PUT", "/services/HT", admin, renamed, centre="T2").ok
    # A counter the file does not list stays (a file retires counters only by saying so);
    # a device it does not list is retired.
    assert call(t1, "PUT", "/counters/3", admin, {"services": ["HT"]}, centre="T2").ok
    assert call(t1, "PUT", "/devices/Bảng 3", admin, {"kind": "display"}, centre="T2").ok
    refused = provision(t1)
    assert refused.returncode == 3, refused.stderr
    lines = refused.stderr.splitlines()
    assert "would overwrite changes made through the admin pages or API" in lines[0]
    assert any(x.startswith("~ service HT (name)  ← API: quantri2, 20") for x in lines), lines
    assert any(x.startswith("- device Bảng 3  ← API: quantri2, ") for x in lines), lines
    assert not any("counter 3" in x for x in lines)
    assert "--force" in lines[-1]
    assert service_name(t1, "HT") == "Hộ tịch (đổi tên)"  # nothing applied
    dry = provision(t1, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "~ service HT (name)" in dry.stdout and "- device Bảng 3" in dry.stdout
    assert "would overwrite" in dry.stdout
    assert service_name(t1, "HT") == "Hộ tịch (đổi tên)"  # nothing written
    forced = provision(t1, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "~ service HT (name)" in forced.stdout
    assert service_name(t1, "HT") == "Hộ tịch"
    # The file is the last word again: applying it says nothing more.
    again = provision(t1)
    assert again.returncode == 0 and "Không có thay đổi" in again.stdout
    # A file the API did not touch since applies without a word.
    assert provision(t1, "--dry-run").stdout.splitlines()[1:] == ["Không có thay đổi (no changes)."]
