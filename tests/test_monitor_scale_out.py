"""The monitor with several server processes sharing PostgreSQL and Redis: a device
connected to one process is online on a monitor connected to another; when its process
dies, the others notice and its alert is recorded once, however many of them sweep; a
manager's actions on one process reach a clerk on another."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from core.store import normalise_url
from harness.centre import DISPLAY, CentreServer, open_all_day

pytestmark = pytest.mark.timeout(180)
FAST = {"MOTCUA_PRESENCE_S": "1"}  # offline after 3 s without renewal


def _online(manager, name: str) -> bool:
    answer = manager.call("devices")
    assert answer["ok"], answer
    return next(d for d in answer["devices"] if d["device"]["name"] == name)["online"]


def _until(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "still not so"
        time.sleep(0.2)


def test_presence_is_shared_by_the_processes_and_an_alert_recorded_once(
    tmp_path, pg_url, redis_url, devices
):
    # Open all day: the alert is for opening hours, whatever the time the test runs at.
    servers = [
        CentreServer(
            tmp_path, pg_url, redis_url, env=FAST, provision=open_all_day(tmp_path)
        ).start()
    ]
    servers += [
        CentreServer(tmp_path, pg_url, redis_url, env=FAST, provision=None).start()
        for _ in range(2)
    ]
    a, b, c = servers
    try:
        managers = [devices(s, "/manage", {"token": s.login("quanly1")}) for s in (b, c)]
        for m in managers:
            m.wait_event("monitor_state")
        board = devices.display(a)  # the board is on process a only
        board.wait_event("snapshot")
        for m in managers:
            _until(lambda m=m: _online(m, "Bảng sảnh"))
        # Still online some intervals later: a renews it, b and c never flip it.
        time.sleep(4)
        assert all(_online(m, "Bảng sảnh") for m in managers)

        a.kill()  # the process and its renewals are gone
        for m in managers:
            alert = m.wait_change("device_alert", timeout=15, alert="offline")
            assert alert["device"]["name"] == "Bảng sảnh"
            assert not _online(m, "Bảng sảnh")
        time.sleep(3)  # b and c keep sweeping
        engine = sa.create_engine(normalise_url(pg_url))
        with engine.connect() as conn:
            raised = conn.execute(
                sa.text(
                    "SELECT count(*) FROM audit_log WHERE action = 'device_alert' "
                    "AND actor = 'system:0'"
                )
            ).scalar()
        engine.dispose()
        assert raised == 1

        # The board comes back on process b: c's manager hears the alert cleared.
        devices(b, "/display", {"token": DISPLAY}).wait_event("snapshot")
        cleared = managers[1].wait_change("device_alert", timeout=15, alert=None)
        assert cleared["device"]["name"] == "Bảng sảnh"
        assert _online(managers[1], "Bảng sảnh")
    finally:
        for s in servers:
            s.stop()


def test_a_managers_actions_on_one_process_reach_a_clerk_on_another(
    tmp_path, pg_url, redis_url, devices
):
    a = CentreServer(tmp_path, pg_url, redis_url).start()
    b = CentreServer(tmp_path, pg_url, redis_url, provision=None).start()
    try:
        kiosk = devices.kiosk(a)
        numbers = [kiosk.call("issue", {"service": "TP"})["ticket"] for _ in range(3)]
        clerk = devices.counter(a, "clerk1", 1)
        clerk.wait_event("counter_state")
        manager = devices(b, "/manage", {"token": b.login("quanly1")})
        snapshot = manager.wait_event("monitor_state")
        assert [t["number"] for t in snapshot["queue"]] == ["A001", "A002", "A003"]
        assert manager.call("cancel", {"ticket_id": numbers[1]["id"]})["ok"]
        assert clerk.wait_change("cancelled")["ticket"]["number"] == "A002"
        moved = manager.call("move", {"ticket_id": numbers[2]["id"], "service": "HT"})
        assert moved["ok"] and moved["ticket"]["issued_at"] == numbers[2]["issued_at"]
        assert clerk.wait_change("transferred")["ticket"]["service"]["code"] == "HT"
        assert clerk.call("call_next")["ticket"]["number"] == "A001"
        assert manager.wait_change("called")["ticket"]["number"] == "A001"
        closed = manager.call("close_counter", {"counter": 1})
        assert closed["ok"] and closed["counter"]["status"] == "closed"
        assert clerk.wait_change("counter_closed")["counter"]["number"] == 1
        back = manager.wait_change("transferred", ticket__number="A001")["ticket"]
        assert back["status"] == "transferred" and back["target_counter"] is None
        assert manager.call("figures")["services"]["TP"]["served"] == 0
    finally:
        a.stop()
        b.stop()
