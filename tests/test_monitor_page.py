"""The manager's live monitor (/manage/) in headless Chromium against a real server: it
follows a clerk's call and pause live, acts (cancel, move, close a counter left open) as
ordinary changes every device hears, refuses a clerk, and rides out a server restart.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import sqlite3

import pytest
from playwright.sync_api import expect

from harness.browser import CLERK_SCREEN, PageErrors, screenshot
from harness.centre import PASSWORDS, CentreServer, open_all_day

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def monitor_page(browser, sqlite_server):
    context = browser.new_context(viewport=CLERK_SCREEN, locale="vi-VN")
    page = context.new_page()
    page.errors = PageErrors(page)
    yield page
    context.close()


def log_in(page, server, username="quanly1"):
    page.goto(server.url + "/manage/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORDS[username])
    page.get_by_role("button", name="Đăng nhập").click()


def service_cell(page, code, col):
    return page.locator(f"[data-service='{code}'] [data-col='{col}']")


def counter_cell(page, number, col):
    return page.locator(f"[data-counter='{number}'] [data-col='{col}']")


def age(server, number: str, minutes: int) -> None:
    """Make a ticket look taken ``minutes`` earlier."""
    path = server.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE tickets SET issued_at = datetime(issued_at, ?) WHERE number = ?",
            (f"-{minutes} minutes", number),
        )


def test_the_monitor_follows_a_call_and_a_pause_live(monitor_page, sqlite_server, devices):
    page = monitor_page
    kiosk = devices.kiosk(sqlite_server)
    for service in ("TP", "TP", "HT"):
        kiosk.call("issue", {"service": service})
    age(sqlite_server, "A001", 25)
    log_in(page, sqlite_server)
    expect(page.get_by_test_id("services")).to_be_visible()
    expect(service_cell(page, "TP", "waiting")).to_have_text("2")
    # A001 has waited 25 minutes: past the centre's target of 20, the queue is marked.
    expect(service_cell(page, "TP", "longest")).to_have_text("25 phútQuá 20 phút")
    expect(page.locator("tr.over")).to_have_count(1)
    expect(service_cell(page, "HT", "longest")).to_have_text("dưới 1 phút")
    screenshot(page, "monitor-over-target")
    expect(counter_cell(page, 1, "status")).to_have_text("Đóng")
    expect(page.get_by_test_id("queue").locator("li")).to_have_count(3)

    clerk = devices.counter(sqlite_server, "clerk1", 1)
    clerk.wait_event("counter_state")
    expect(counter_cell(page, 1, "status")).to_have_text("Đang mở")
    expect(counter_cell(page, 1, "clerk")).to_have_text("Nguyễn Văn A")
    expect(service_cell(page, "TP", "open")).to_have_text("1")

    called = clerk.call("call_next")
    assert called["ok"], called
    expect(counter_cell(page, 1, "current")).to_have_text("A001 đang mời, dưới 1 phút")
    expect(service_cell(page, "TP", "waiting")).to_have_text("1")
    expect(page.locator("tr.over")).to_have_count(0)  # A002 is the longest wait now
    expect(page.get_by_test_id("queue").locator("li")).to_have_count(2)
    assert clerk.call("start", {"ticket_id": called["ticket"]["id"]})["ok"]
    expect(counter_cell(page, 1, "current")).to_contain_text("A001 đang phục vụ")
    assert clerk.call("finish", {"ticket_id": called["ticket"]["id"]})["ok"]
    expect(counter_cell(page, 1, "current")).to_have_text("—")
    # Today's figures are read again after the finish: A001 waited 25 minutes.
    expect(service_cell(page, "TP", "served")).to_have_text("1", timeout=10000)
    expect(service_cell(page, "TP", "mean")).to_have_text("25 phút")
    expect(counter_cell(page, 1, "served")).to_have_text("1")
    assert clerk.call("pause", {"reason": "Họp giao ban"})["ok"]
    expect(counter_cell(page, 1, "status")).to_have_text("Tạm dừng: Họp giao ban")
    expect(service_cell(page, "TP", "open")).to_contain_text("1 tạm dừng")
    screenshot(page, "monitor")
    assert page.errors.errors == []


def test_a_manager_cancels_moves_and_closes_a_counter_left_open(
    monitor_page, sqlite_server, devices
):
    page = monitor_page
    kiosk = devices.kiosk(sqlite_server)
    for service in ("TP", "TP", "TP"):
        kiosk.call("issue", {"service": service})
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    clerk.wait_event("counter_state")
    log_in(page, sqlite_server)
    queue = page.get_by_test_id("queue")
    expect(queue.locator("li")).to_have_count(3)

    # Cancel A002: out of every queue, the clerk's included.
    queue.locator("[data-ticket='A002'] [data-action=cancel]").click()
    screenshot(page, "monitor-cancel")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("message")).to_have_text("Đã hủy số A002.")
    expect(queue.locator("li")).to_have_count(2)
    assert clerk.wait_change("cancelled")["ticket"]["number"] == "A002"
    expect(service_cell(page, "TP", "waiting")).to_have_text("2")

    # Move A003 to Hộ tịch, keeping its place.
    queue.locator("[data-ticket='A003'] [data-action=move]").click()
    screenshot(page, "monitor-move")
    page.locator("[data-to-service=HT]").click()
    expect(page.get_by_test_id("message")).to_have_text("Đã chuyển số A003.")
    moved = clerk.wait_change("transferred")["ticket"]
    assert moved["service"]["code"] == "HT" and moved["status"] == "transferred"
    expect(service_cell(page, "HT", "waiting")).to_have_text("1")
    expect(queue.locator("[data-ticket='A003']")).to_contain_text("Hộ tịch")

    # The clerk calls A001 and walks away: the manager closes the counter; A001 goes back.
    assert clerk.call("call_next")["ticket"]["number"] == "A001"
    expect(counter_cell(page, 1, "current")).to_contain_text("A001")
    page.locator("[data-counter='1'] [data-action=close]").click()
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("message")).to_have_text("Đã đóng Quầy 1.")
    expect(counter_cell(page, 1, "status")).to_have_text("Đóng")
    expect(counter_cell(page, 1, "current")).to_have_text("—")
    expect(queue.locator("[data-ticket='A001']")).to_be_visible()
    assert clerk.wait_change("counter_closed")["counter"]["number"] == 1
    screenshot(page, "monitor-closed")
    assert page.errors.errors == []


def test_a_clerk_is_refused_the_monitor(monitor_page, sqlite_server):
    page = monitor_page
    log_in(page, sqlite_server, "clerk1")
    expect(page.get_by_test_id("refused")).to_contain_text(
        "không có quyền xem màn hình giám sát trực tiếp"
    )
    expect(page.locator("#offline")).to_be_hidden()
    screenshot(page, "monitor-refused")


def test_the_monitor_rides_out_a_server_restart(monitor_page, sqlite_server, devices):
    page = monitor_page
    log_in(page, sqlite_server)
    expect(counter_cell(page, 1, "status")).to_have_text("Đóng")
    sqlite_server.stop()
    expect(page.locator("#offline")).to_be_visible()
    expect(page.locator("#offline")).to_have_text("Đang kết nối lại…")
    expect(page.get_by_test_id("counters")).to_be_visible()  # the last state stays
    screenshot(page, "monitor-offline")
    sqlite_server.restart()
    expect(page.locator("#offline")).to_be_hidden(timeout=15000)
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    clerk.wait_event("counter_state")
    expect(counter_cell(page, 1, "status")).to_have_text("Đang mở")


def test_the_provinces_admin_picks_the_centre_to_watch(monitor_page, sqlite_server):
    from harness.centre import COMMUNE, COMMUNE_PASSWORDS

    sqlite_server.provision_also(COMMUNE)
    page = monitor_page
    page.goto(sqlite_server.url + "/manage/")
    page.fill("input[name=username]", "tinh")
    page.fill("input[name=password]", COMMUNE_PASSWORDS["tinh"])
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page.locator(".m-centre")).to_have_text("Bộ phận Một cửa xã thử nghiệm")
    page.get_by_test_id("centres").select_option("T1")
    expect(page.locator(".m-centre")).to_have_text("Trung tâm Phục vụ hành chính công thử nghiệm")
    expect(page.locator("[data-service='DD']")).to_be_visible()
    page.reload()  # the choice is kept for the session
    expect(page.locator("[data-service='DD']")).to_be_visible()


def test_an_offline_board_raises_an_alert_that_a_manager_acknowledges(browser, tmp_path, devices):
    # Open all day (alerts are for opening hours); offline after 3 s without renewal.
    server = CentreServer(
        tmp_path,
        f"sqlite:///{tmp_path / 'motcua.sqlite3'}",
        env={"MOTCUA_PRESENCE_S": "1"},
        provision=open_all_day(tmp_path),
    ).start()
    context = browser.new_context(viewport={"width": 1366, "height": 1000}, locale="vi-VN")
    page = context.new_page()
    page.errors = PageErrors(page)
    try:
        log_in(page, server)
        board = page.locator("[data-device='Bảng sảnh']")
        expect(board.locator("[data-col=presence]")).to_have_text("Chưa kết nối lần nào")
        display = devices.display(server)
        display.wait_event("snapshot")
        expect(board.locator("[data-col=presence]")).to_have_text("Trực tuyến", timeout=10000)
        clerk = devices.counter(server, "clerk1", 1)
        clerk.wait_event("counter_state")
        display.close()  # the board's TV is switched off
        expect(board.locator("[data-col=presence]")).to_contain_text("Mất kết nối", timeout=15000)
        expect(board.locator("[data-col=alert]")).to_have_text("mất kết nối")
        assert clerk.wait_change("device_alert", alert="offline")["device"]["name"] == "Bảng sảnh"
        screenshot(page, "monitor-device-offline")
        board.locator("[data-action=acknowledge]").click()
        expect(page.get_by_test_id("message")).to_have_text("Đã xác nhận cảnh báo của Bảng sảnh.")
        expect(board.locator("[data-col=alert] small")).to_have_text("Đỗ Thị Hạnh đã xác nhận")
        expect(board.locator("[data-action=acknowledge]")).to_have_count(0)
        assert page.errors.errors == []
    finally:
        context.close()
        server.stop()


def test_the_monitor_in_english(monitor_page, sqlite_server):
    page = monitor_page
    page.goto(sqlite_server.url + "/manage/?lang=en")
    expect(page.get_by_test_id("login").locator("h1")).to_have_text("Managers' login")
    page.fill("input[name=username]", "quanly1")
    page.fill("input[name=password]", PASSWORDS["quanly1"])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("services").locator("th").first).to_have_text("Service")
    expect(page.locator(".m-centre")).to_have_text("Test Public Administrative Service Centre")
    expect(page.locator("[data-service=TP] th")).to_contain_text("Criminal record certificates")
    expect(page.locator("[data-counter='1'] [data-col=status]")).to_have_text("Closed")
    expect(page.locator(".m-title")).to_have_text("Live monitor")
    screenshot(page, "monitor-en")
    assert page.errors.errors == []
