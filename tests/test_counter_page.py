"""The clerk's page (/counter/) in headless Chromium against a real server: logging in,
serving a queue with the keyboard, dossier codes scanned at finish, transfers, pauses,
refusals, a server restart mid-visit. Screenshots go to test-artifacts/."""

from __future__ import annotations

import sqlite3

import pytest
from playwright.sync_api import expect

from harness.browser import CLERK_SCREEN, PageErrors, screenshot
from harness.centre import KIOSK_B, PASSWORDS
from harness.printer import FakeNetworkPrinter

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def clerk_page(browser, sqlite_server):
    context = browser.new_context(viewport=CLERK_SCREEN, locale="vi-VN")
    page = context.new_page()
    page.errors = PageErrors(page)
    yield page
    context.close()


def log_in(page, server, username="clerk1", password=None):
    page.goto(server.url + "/counter/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or PASSWORDS[username])
    page.get_by_role("button", name="Đăng nhập").click()


def take_counter(page, server, number=1, username="clerk1"):
    log_in(page, server, username)
    page.locator(f"[data-counter='{number}']").click()
    expect(page.get_by_test_id("counter-status")).to_have_text("Đang mở")


def button(page, action):
    return page.locator(f"[data-action={action}]")


KEYS = {
    "g": "call_next",
    "l": "recall",
    "b": "start",
    "h": "finish",
    "v": "no_show",
    "c": "transfer",
    "t": "pause",
}


def press(page, key):
    """A shortcut key, pressed once its button may be pressed (a key pressed while an
    operation is in flight is ignored, as the button is disabled)."""
    expect(button(page, KEYS[key])).to_be_enabled()
    page.keyboard.press(key)


def dossiers_of(server, number: str) -> list[tuple[str, str]]:
    path = server.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT d.code, t.outcome FROM ticket_dossiers d JOIN tickets t ON t.id = d.ticket_id "
            "WHERE t.number = ? ORDER BY d.code",
            (number,),
        ).fetchall()


def test_login_refusals_then_only_my_counters(clerk_page, sqlite_server):
    page = clerk_page
    log_in(page, sqlite_server, password="not-the-password")
    expect(page.get_by_test_id("login-error")).to_have_text(
        "Tên đăng nhập hoặc mật khẩu không đúng."
    )
    screenshot(page, "counter-login-refused")
    page.fill("input[name=password]", PASSWORDS["clerk1"])
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page.locator("[data-counter]")).to_have_count(1)  # clerk1 may take counter 1 only
    expect(page.locator("[data-counter='1']")).to_contain_text("Quầy 1")
    screenshot(page, "counter-choose")
    # The refused login (its 401, which Chromium also logs) is the only failure.
    assert [e for e in page.errors.errors if "401" not in e] == []
    assert len(page.errors.errors) == 2


def test_a_visit_served_with_the_keyboard(clerk_page, sqlite_server, devices):
    page = clerk_page
    kiosk = devices.kiosk(sqlite_server)
    for service in ("TP", "HT", "TP"):
        kiosk.call("issue", {"service": service})
    board = devices.display(sqlite_server)
    take_counter(page, sqlite_server)
    expect(page.get_by_test_id("queue").locator("li")).to_have_count(3)
    expect(page.locator("kbd").first).to_have_text("G")  # shortcuts are shown on buttons

    press(page, "g")  # Gọi tiếp
    expect(page.get_by_test_id("current-number")).to_have_text("A001")
    assert board.wait_change("called", recall=False)["ticket"]["number"] == "A001"
    expect(page.get_by_test_id("queue").locator("li")).to_have_count(2)
    press(page, "l")  # Gọi lại
    assert board.wait_change("called", recall=True)["ticket"]["number"] == "A001"
    press(page, "b")  # Bắt đầu
    expect(page.get_by_test_id("current-status")).to_have_text("Đang phục vụ")
    screenshot(page, "counter-serving")

    press(page, "h")  # Hoàn thành: codes scanned (typed, then Enter), an outcome
    scanner = page.get_by_test_id("dossier-input")
    scanner.type("H15.50.05.13-261008-0975")
    scanner.press("Enter")
    scanner.type("H15.50.05.13-261008-0976")
    scanner.press("Enter")
    expect(page.get_by_test_id("dossiers").locator("li")).to_have_count(2)
    page.get_by_label("Trả kết quả").check()
    screenshot(page, "counter-finish")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("current")).to_contain_text("Chưa có công dân")
    expect(page.get_by_test_id("served")).to_have_text("1")
    assert dossiers_of(sqlite_server, "A001") == [
        ("H15.50.05.13-261008-0975", "returned"),
        ("H15.50.05.13-261008-0976", "returned"),
    ]

    # Calling a given number from the list, then nobody comes.
    page.locator("[data-ticket=A002] button").click()
    expect(page.get_by_test_id("current-number")).to_have_text("A002")
    press(page, "v")  # Vắng mặt
    expect(page.get_by_test_id("current")).to_contain_text("Chưa có công dân")
    expect(page.get_by_test_id("message")).to_have_text("Đã ghi số A002 vắng mặt.")
    assert board.wait_change("no_show")["ticket"]["number"] == "A002"

    # Transfer to counter 2, which alone may call it now; counter 3 is closed, so the
    # dialog offers it greyed out, with why.
    counter2 = devices.counter(sqlite_server, "clerk2", 2)
    press(page, "g")
    expect(page.get_by_test_id("current-number")).to_have_text("B100")
    press(page, "c")
    dialog = page.get_by_test_id("dialog-transfer")
    expect(dialog.locator("[data-counter='3']")).to_be_disabled()
    expect(dialog.locator("[data-counter='3']")).to_contain_text("(đang đóng)")
    screenshot(page, "counter-transfer")
    dialog.locator("[data-counter='2']").click()
    expect(page.get_by_test_id("current")).to_contain_text("Chưa có công dân")
    expect(page.get_by_test_id("message")).to_have_text("Đã chuyển số B100 sang quầy 2.")
    assert counter2.call("call_next", {})["ticket"]["number"] == "B100"

    # Pause with a reason, and back.
    press(page, "t")
    page.get_by_role("button", name="Họp").click()
    expect(page.get_by_test_id("counter-status")).to_have_text("Tạm dừng: Họp")
    expect(button(page, "call_next")).to_be_disabled()
    press(page, "t")
    expect(page.get_by_test_id("counter-status")).to_have_text("Đang mở")
    assert page.errors.errors == []


def test_a_refusal_shows_the_servers_words(clerk_page, sqlite_server):
    page = clerk_page
    take_counter(page, sqlite_server)
    button(page, "call_next").click()  # nobody waits
    expect(page.get_by_test_id("message")).to_contain_text("Không còn")
    screenshot(page, "counter-refusal")


def test_the_page_rides_out_a_server_restart_mid_visit(clerk_page, sqlite_server, devices):
    page = clerk_page
    devices.kiosk(sqlite_server).call("issue", {"service": "TP"})
    take_counter(page, sqlite_server)
    press(page, "g")
    expect(page.get_by_test_id("current-number")).to_have_text("A001")
    press(page, "b")
    expect(page.get_by_test_id("current-status")).to_have_text("Đang phục vụ")
    sqlite_server.stop()
    expect(page.locator("#offline")).to_be_visible()
    expect(button(page, "finish")).to_be_disabled()
    screenshot(page, "counter-offline")
    sqlite_server.restart()
    expect(page.locator("#offline")).to_be_hidden(timeout=15000)
    expect(page.get_by_test_id("current-number")).to_have_text("A001")
    press(page, "h")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("current")).to_contain_text("Chưa có công dân")


def test_a_kiosk_printer_out_of_paper_is_shown_to_clerks(
    clerk_page, sqlite_server, devices, agent_factory
):
    page = clerk_page
    take_counter(page, sqlite_server)
    with FakeNetworkPrinter("out") as printer:
        agent_factory(sqlite_server, printer.url).start()
        devices.kiosk(sqlite_server, KIOSK_B).call("issue", {"service": "TP"})
        expect(page.get_by_test_id("alerts")).to_have_text(
            "Kiosk B: máy in hết giấy", timeout=15000
        )
        screenshot(page, "counter-alert")


def test_logging_out_ends_the_session(clerk_page, sqlite_server):
    page = clerk_page
    take_counter(page, sqlite_server)
    token = page.evaluate("sessionStorage.getItem('motcua.counter.session')")
    page.get_by_role("button", name="Đăng xuất").click()
    expect(page.get_by_test_id("login")).to_be_visible()
    import requests

    r = requests.get(
        sqlite_server.url + "/api/v1/centre", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 401


def test_a_double_press_calls_once(clerk_page, sqlite_server, devices):
    page = clerk_page
    kiosk = devices.kiosk(sqlite_server)
    for _ in range(3):
        kiosk.call("issue", {"service": "TP"})
    take_counter(page, sqlite_server)
    page.keyboard.press("g")
    page.keyboard.press("g")  # while the first is in flight: ignored, the button is disabled
    expect(page.get_by_test_id("current-number")).to_have_text("A001")
    page.wait_for_timeout(500)
    expect(page.get_by_test_id("queue").locator("li")).to_have_count(2)


def test_a_clerk_lent_to_another_centre_chooses_it_and_serves_there(clerk_page, sqlite_server):
    from harness.centre import COMMUNE

    sqlite_server.provision_also(COMMUNE)
    page = clerk_page
    log_in(page, sqlite_server)
    centres = page.get_by_test_id("centres")
    expect(centres.get_by_role("button")).to_have_count(2)
    # Its own centre first: counter 1 there; then the commune office, where T2's file
    # gives it counter 2 only.
    expect(page.locator("[data-counter]")).to_have_count(1)
    centres.get_by_role("button", name="Bộ phận Một cửa xã thử nghiệm").click()
    expect(page.locator(".c-centre")).to_have_text("Bộ phận Một cửa xã thử nghiệm")
    expect(page.locator("[data-counter]")).to_have_count(1)
    page.locator("[data-counter='2']").click()
    expect(page.get_by_test_id("counter-status")).to_have_text("Đang mở")
    expect(page.get_by_test_id("counter-name")).to_have_text("Quầy 2")
    expect(button(page, "call_next")).to_be_enabled()
    expect(button(page, "recall")).to_be_disabled()
    screenshot(page, "counter-lent-clerk")
    assert page.errors.errors == []


@pytest.fixture
def walking_server(tmp_path):
    """A server where a no-show may be marked 3 s after the call (60 s in production)."""
    from harness.centre import CentreServer

    srv = CentreServer(
        tmp_path, f"sqlite:///{tmp_path / 'motcua.sqlite3'}", env={"MOTCUA_NO_SHOW_AFTER_S": "3"}
    ).start()
    yield srv
    srv.stop()


def test_the_clerk_is_asked_before_what_the_figures_need(browser, walking_server, devices):
    server = walking_server
    context = browser.new_context(viewport=CLERK_SCREEN, locale="vi-VN")
    page = context.new_page()
    page.errors = PageErrors(page)
    kiosk = devices.kiosk(server)
    for _ in range(3):
        kiosk.call("issue", {"service": "TP"})
    board = devices.display(server)
    take_counter(page, server)

    # A no-show only once the citizen had time to walk over.
    press(page, "g")
    expect(page.get_by_test_id("current-number")).to_have_text("A001")
    assert board.wait_change("called")["ticket"]["number"] == "A001"
    expect(button(page, "no_show")).to_be_disabled()
    expect(button(page, "no_show")).to_be_enabled(timeout=8000)
    press(page, "b")
    expect(page.get_by_test_id("current-status")).to_have_text("Đang phục vụ")

    # "Gọi tiếp" while serving asks for the visit's outcome first, then calls.
    press(page, "g")
    dialog = page.get_by_test_id("dialog-finish")
    expect(dialog).to_contain_text("Hoàn thành số A001 rồi gọi số tiếp theo")
    page.get_by_label("Tiếp nhận hồ sơ mới").check()
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("current-number")).to_have_text("A002")
    finished = board.wait_change("finished")
    assert finished["ticket"]["number"] == "A001"
    assert board.wait_change("called")["ticket"]["number"] == "A002"
    with sqlite3.connect(server.database_url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT outcome FROM tickets WHERE number = 'A001'").fetchone() == (
            "received",
        )

    # Leaving with a citizen called is refused; once served, logging out closes the
    # counter, so kiosks stop counting on it and its tablet stops showing the clerk.
    page.get_by_role("button", name="Đăng xuất").click()
    expect(page.get_by_test_id("message")).to_have_text(
        "Số A002 vẫn đang ở quầy: hãy hoàn thành hoặc chuyển số này trước khi rời quầy."
    )
    expect(page.get_by_test_id("counter-status")).to_have_text("Đang mở")
    press(page, "b")
    expect(page.get_by_test_id("current-status")).to_have_text("Đang phục vụ")
    press(page, "h")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("current")).to_contain_text("Chưa có công dân")
    page.get_by_role("button", name="Đăng xuất").click()
    expect(page.locator("input[name=username]")).to_be_visible()
    assert board.wait_change("counter_closed")["counter"]["number"] == 1
    assert page.errors.errors == []
    context.close()
