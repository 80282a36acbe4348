"""The kiosk page (/kiosk/) in headless Chromium, as a citizen at the touch screen uses it,
against a real server process. Screenshots go to test-artifacts/."""

from __future__ import annotations

import io
import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import segno
from playwright.sync_api import expect

from core.hours import WEEKDAYS
from harness.browser import KIOSK_SCREEN, PageErrors, screenshot, wait_until
from harness.centre import COMMUNE, KIOSK, KIOSK_B, CentreServer
from harness.printer import FakeNetworkPrinter, decode_tickets
from harness.process import ServerProcess

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def kiosk_page(browser, sqlite_server):
    context = browser.new_context(viewport=KIOSK_SCREEN, locale="vi-VN", has_touch=True)
    page = context.new_page()
    page.errors = PageErrors(page)
    yield page
    context.close()


def open_kiosk(page, server, token=KIOSK):
    page.goto(f"{server.url}/kiosk/?token={token}")
    expect(page.get_by_test_id("centre")).to_have_text(
        "Trung tâm Phục vụ hành chính công thử nghiệm"
    )


def service(page, code):
    return page.locator(f"[data-service={code}]")


def test_a_citizen_takes_a_number(kiosk_page, sqlite_server, devices):
    page = kiosk_page
    clerk = devices.counter(sqlite_server, "clerk1", 1)  # counter 1 serves TP and HT
    open_kiosk(page, sqlite_server)
    # The token is kept by the page, not left in the address bar.
    assert page.url == f"{sqlite_server.url}/kiosk/"
    assert page.evaluate("localStorage.getItem('motcua.kiosk.token')") == KIOSK

    # Grouped by agency; a service without an open counter says so and cannot be chosen.
    sections = page.locator(".k-agency h2")
    expect(sections).to_have_text(["Sở Tư pháp", "Sở Nông nghiệp và Môi trường"])
    expect(service(page, "TP")).to_be_enabled()
    expect(service(page, "DD")).to_be_disabled()
    expect(service(page, "DD")).to_contain_text("Chưa có quầy mở")
    screenshot(page, "kiosk-services")

    service(page, "TP").tap()
    ticket = page.get_by_test_id("ticket")
    expect(ticket).to_be_visible()
    expect(page.get_by_test_id("number")).to_have_text("A001")
    expect(ticket).to_contain_text("Lý lịch tư pháp")
    expect(page.get_by_test_id("ahead")).to_have_text("0")
    # The QR code of the status page is drawn by the server and loads.
    qr = page.get_by_test_id("qr")
    expect(qr).to_have_attribute("src", re.compile(r"^/t/[\w-]+/qr\.svg$"))
    wait_until(page, "document.querySelector('[data-testid=qr]').naturalWidth > 0")
    screenshot(page, "kiosk-ticket")

    page.get_by_role("button", name="Xong").tap()
    expect(service(page, "TP")).to_contain_text("1 người đang chờ")
    # The counts follow the queue live: the clerk calls, the kiosk's count drops.
    called = clerk.call("call_next", {})
    expect(service(page, "TP")).to_contain_text("Không có người chờ")
    # A counter that closes takes its services off the kiosk, live.
    assert clerk.call("no_show", {"ticket_id": called["ticket"]["id"]})["ok"]
    assert clerk.call("close", {})["ok"]
    expect(service(page, "TP")).to_be_disabled()
    assert page.errors.errors == []


def test_priority_path_and_english_then_back_to_vietnamese(kiosk_page, sqlite_server, devices):
    page = kiosk_page
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    open_kiosk(page, sqlite_server)
    page.get_by_role("button", name="English").tap()
    expect(page.locator(".k-title")).to_have_text("Touch the service you need")
    page.get_by_test_id("priority-open").tap()
    expect(page.locator(".k-title")).to_have_text("Which priority group are you in?")
    screenshot(page, "kiosk-priority-en")
    page.locator("[data-priority=elderly]").tap()
    expect(page.get_by_test_id("priority-chosen")).to_contain_text("Priority: Elderly")
    service(page, "HT").tap()
    expect(page.get_by_test_id("number")).to_have_text("B100")
    expect(page.get_by_test_id("ticket")).to_contain_text("Priority: Elderly")
    # Recorded with the ticket: the clerk's queue shows the priority group.
    queue = clerk.fresh_snapshot("counter_state")["queue"]
    assert [(t["number"], t["priority"]) for t in queue] == [("B100", "elderly")]
    # The next citizen starts in Vietnamese, without a priority.
    page.get_by_role("button", name="Done").tap()
    expect(page.locator(".k-title")).to_have_text("Chạm vào lĩnh vực Ông/Bà cần giải quyết")
    expect(page.get_by_test_id("priority-open")).to_be_visible()
    assert page.errors.errors == []


def test_a_double_touch_takes_one_number(kiosk_page, sqlite_server, devices):
    page = kiosk_page
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    open_kiosk(page, sqlite_server)
    service(page, "TP").dblclick()
    expect(page.get_by_test_id("number")).to_have_text("A001")
    page.wait_for_timeout(500)
    assert [t["number"] for t in clerk.fresh_snapshot("counter_state")["queue"]] == ["A001"]


def test_the_page_rides_out_a_server_restart(kiosk_page, sqlite_server, devices):
    page = kiosk_page
    devices.counter(sqlite_server, "clerk1", 1).close()
    open_kiosk(page, sqlite_server)
    expect(service(page, "TP")).to_be_enabled()
    offline = page.locator("#offline")
    expect(offline).to_be_hidden()

    sqlite_server.stop()
    expect(offline).to_be_visible()
    expect(offline).to_have_text("Đang kết nối lại…")
    # Nothing can be taken while the server is away, and the page says why.
    expect(service(page, "TP")).to_be_disabled()
    expect(page.locator(".k-note.warn")).to_contain_text("Mất kết nối với máy chủ")
    screenshot(page, "kiosk-offline")

    sqlite_server.restart()
    expect(offline).to_be_hidden(timeout=15000)
    expect(service(page, "TP")).to_be_enabled()
    service(page, "TP").tap()
    expect(page.get_by_test_id("number")).to_have_text("A001")


def test_a_kiosk_without_a_valid_token_asks_for_setup(kiosk_page, sqlite_server):
    page = kiosk_page
    page.goto(f"{sqlite_server.url}/kiosk/")
    expect(page.get_by_test_id("message")).to_have_text(
        "Máy lấy số chưa được cài đặt. Vui lòng báo cán bộ kỹ thuật."
    )
    page.goto(f"{sqlite_server.url}/kiosk/?token=not-a-real-kiosk-token")
    expect(page.get_by_test_id("message")).to_have_text(
        "Mã thiết bị không đúng. Vui lòng báo cán bộ kỹ thuật."
    )
    assert page.evaluate("localStorage.getItem('motcua.kiosk.token')") is None
    screenshot(page, "kiosk-setup")


def test_a_mistyped_token_does_not_replace_the_saved_one(kiosk_page, sqlite_server):
    """The technician opens the kiosk with a typo: the page says the token is wrong, the
    good token saved before stays, and the page opened again without one works."""
    page = kiosk_page
    open_kiosk(page, sqlite_server)
    page.goto(f"{sqlite_server.url}/kiosk/?token={KIOSK}x")
    expect(page.get_by_test_id("message")).to_have_text(
        "Mã thiết bị không đúng. Vui lòng báo cán bộ kỹ thuật."
    )
    expect(page.get_by_test_id("hint")).to_contain_text("mã đã lưu trước đó vẫn được giữ")
    assert page.evaluate("localStorage.getItem('motcua.kiosk.token')") == KIOSK
    assert page.url == f"{sqlite_server.url}/kiosk/"  # the typo is not left in the address
    screenshot(page, "kiosk-token-wrong")
    page.reload()
    expect(service(page, "TP")).to_be_visible()
    # Another good token replaces it once the server has accepted it.
    page.goto(f"{sqlite_server.url}/kiosk/?token={KIOSK_B}")
    expect(service(page, "TP")).to_be_visible()
    assert page.evaluate("localStorage.getItem('motcua.kiosk.token')") == KIOSK_B


def test_a_printing_kiosk_says_to_take_the_ticket(
    kiosk_page, sqlite_server, devices, agent_factory
):
    page = kiosk_page
    devices.counter(sqlite_server, "clerk1", 1)
    with FakeNetworkPrinter("ok") as printer:
        agent_factory(sqlite_server, printer.url).start()
        open_kiosk(page, sqlite_server, KIOSK_B)  # the agent prints Kiosk B's tickets
        service(page, "TP").tap()
        expect(page.get_by_test_id("print-state")).to_have_text(
            "Mời Ông/Bà nhận phiếu ở khe máy in.", timeout=15000
        )
        assert len(decode_tickets(printer.received)) == 1
        screenshot(page, "kiosk-ticket-printed")


def test_out_of_paper_shows_the_ticket_to_keep(kiosk_page, sqlite_server, devices, agent_factory):
    page = kiosk_page
    devices.counter(sqlite_server, "clerk1", 1)
    with FakeNetworkPrinter("out") as printer:
        agent_factory(sqlite_server, printer.url).start()
        open_kiosk(page, sqlite_server, KIOSK_B)
        service(page, "TP").tap()
        state = page.get_by_test_id("print-state")
        expect(state).to_contain_text("Không in được phiếu", timeout=15000)
        expect(state).to_contain_text("số của Ông/Bà vẫn có hiệu lực")
        # Longer on screen, to photograph or write down the number.
        expect(page.locator("#back-in")).to_contain_text(re.compile(r"sau (59|60) giây"))
        expect(page.get_by_test_id("number")).to_have_text("A001")
        screenshot(page, "kiosk-ticket-not-printed")


def test_no_answer_from_the_printer_by_the_deadline_is_said(browser, devices, tmp_path):
    server = CentreServer(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", env={"MOTCUA_PRINT_DEADLINE_S": "1"}
    ).start()
    try:
        devices.counter(server, "clerk1", 1)
        context = browser.new_context(viewport=KIOSK_SCREEN, locale="vi-VN", has_touch=True)
        page = context.new_page()
        open_kiosk(page, server, KIOSK_B)  # its agent is not running
        service(page, "TP").tap()
        state = page.get_by_test_id("print-state")
        expect(state).to_have_text("Đang in phiếu…")
        expect(state).to_contain_text("Không in được phiếu", timeout=10000)
        context.close()
    finally:
        server.stop()


def demo_agent_pid(server) -> int:
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_the_demo_start_page_leads_to_a_working_kiosk(browser, tmp_path):
    """What a newcomer does after `make run`: open the address, then the kiosk."""
    demo = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'demo.sqlite3'}", args=("--demo",))
    demo.start()
    try:
        context = browser.new_context(viewport=KIOSK_SCREEN, locale="vi-VN", has_touch=True)
        page = context.new_page()
        errors = PageErrors(page)
        page.goto(demo.url + "/")
        expect(page.get_by_test_id("centre")).to_have_text(
            "Trung tâm Phục vụ hành chính công tỉnh An Giang"
        )
        expect(page.get_by_test_id("staff-login")).to_have_attribute("href", "/counter/")
        expect(page.locator("code").first).to_have_text("canbo1")  # the demo's public logins
        expect(page.get_by_test_id("admin-login")).to_have_attribute("href", "/admin/")
        expect(page.locator("li", has_text="quantri")).to_contain_text("(quản trị)")
        page.get_by_role("link", name="Máy lấy số").click()
        # The demo opens clerks at counters 1 and 3: some services open, others closed.
        expect(service(page, "TP")).to_be_enabled()
        expect(service(page, "KD")).to_be_disabled()
        service(page, "TP").tap()
        expect(page.get_by_test_id("number")).to_have_text("A001")
        # The demo's agent prints to PNG files where the banner says.
        expect(page.get_by_test_id("print-state")).to_have_text(
            "Mời Ông/Bà nhận phiếu ở khe máy in.", timeout=15000
        )
        printed = list((tmp_path / "instance" / "printed").glob("*.png"))
        assert len(printed) == 1
        assert "Printed tickets" in demo.log()
        assert errors.errors == []
        context.close()
        agent = demo_agent_pid(demo)
    finally:
        demo.kill()
    # Even a server killed outright takes its demo agent with it.
    deadline = time.monotonic() + 10
    while Path(f"/proc/{agent}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{agent}").exists() or ") Z " in Path(f"/proc/{agent}/stat").read_text()


def test_the_start_page_shows_nothing_secret_outside_the_demo(sqlite_server):
    import requests

    r = requests.get(sqlite_server.url + "/", timeout=10)
    assert r.status_code == 200
    assert "Trung tâm Phục vụ hành chính công thử nghiệm" in r.text
    assert "token" not in r.text


def test_a_paused_counter_still_takes_tickets_and_the_kiosk_says_so(
    kiosk_page, sqlite_server, devices
):
    """Counter 3 alone serves Đất đai: on its break the service stays open at the kiosk,
    with the break said; closed, it takes no tickets and says that instead."""
    page = kiosk_page
    clerk = devices.counter(sqlite_server, "clerk3", 3)
    kiosk = devices.kiosk(sqlite_server)
    assert kiosk.call("issue", {"service": "DD"})["ok"]
    open_kiosk(page, sqlite_server)
    expect(service(page, "DD")).to_be_enabled()
    expect(page.get_by_test_id("on-break")).to_have_count(0)
    assert clerk.call("pause", {"reason": "Nghỉ giữa giờ"})["ok"]
    expect(service(page, "DD").get_by_test_id("on-break")).to_have_text(
        "Quầy tạm dừng, vẫn nhận số"
    )
    expect(service(page, "DD")).to_be_enabled()
    expect(service(page, "DD")).not_to_contain_text("Chưa có quầy mở")
    expect(service(page, "DD")).to_contain_text("Chờ khoảng 5 phút")  # 1 ahead, one counter
    screenshot(page, "kiosk-counter-on-break")
    service(page, "DD").tap()
    expect(page.get_by_test_id("number")).to_have_text("C002")
    expect(page.get_by_test_id("ahead")).to_have_text("1")
    expect(page.get_by_test_id("on-break")).to_contain_text("Ông/Bà vẫn giữ lượt")
    screenshot(page, "kiosk-ticket-on-break")
    page.get_by_role("button", name="Xong").tap()
    assert clerk.call("resume", {})["ok"]
    expect(service(page, "DD").get_by_test_id("on-break")).to_have_count(0)
    # Nobody left at the counter: closed, no tickets, the reason said.
    for _ in range(2):
        called = clerk.call("call_next", {})["ticket"]
        assert clerk.call("no_show", {"ticket_id": called["id"]})["ok"]
    assert clerk.call("close", {})["ok"]
    expect(service(page, "DD")).to_be_disabled()
    expect(service(page, "DD")).to_contain_text("Chưa có quầy mở, tạm chưa nhận số")
    assert page.errors.errors == []


# WCAG's contrast ratio of an element's text colour on the nearest opaque background
# behind it, with the element's and its ancestors' opacity applied.
CONTRAST = """(node) => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let opacity = 1, back = null;
  for (let n = node; n; n = n.parentElement) {
    const cs = getComputedStyle(n);
    opacity *= Number(cs.opacity);
    const bg = rgb(cs.backgroundColor);
    if (back === null && (bg.length < 4 || bg[3] === 1)) back = bg.slice(0, 3);
  }
  const fg = rgb(getComputedStyle(node).color).slice(0, 3)
    .map((v, i) => v * opacity + back[i] * (1 - opacity));
  const [a, b] = [lum(fg), lum(back)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


def test_closed_services_are_readable(kiosk_page, sqlite_server):
    """A closed service's card, and why it cannot be tapped, at 4.5:1 or more (WCAG AA)."""
    page = kiosk_page
    open_kiosk(page, sqlite_server)  # no counter open: every card closed
    expect(service(page, "TP")).to_be_disabled()
    texts = page.locator("[data-service] .k-service-name, [data-service] .k-service-meta span")
    expect(texts).to_have_count(6)
    for i in range(6):
        ratio = texts.nth(i).evaluate(CONTRAST)
        assert ratio >= 4.5, (texts.nth(i).inner_text(), ratio)
    screenshot(page, "kiosk-closed-services")


def test_an_idle_kiosk_goes_back_to_vietnamese_and_the_start(kiosk_page, sqlite_server, devices):
    """English and a chosen priority are not left for the next citizen: after 45 s
    without a touch the kiosk is back in Vietnamese, without a priority."""
    page = kiosk_page
    devices.counter(sqlite_server, "clerk1", 1)
    page.clock.install()
    open_kiosk(page, sqlite_server)
    page.get_by_role("button", name="English").tap()
    page.get_by_test_id("priority-open").tap()
    page.locator("[data-priority=elderly]").tap()
    expect(page.get_by_test_id("priority-chosen")).to_contain_text("Priority: Elderly")
    page.clock.run_for(30_000)
    expect(page.locator(".k-title")).to_have_text("Touch the service you need")
    page.locator(".k-title").tap()  # a touch anywhere starts the wait again
    page.clock.run_for(30_000)
    expect(page.get_by_test_id("priority-chosen")).to_be_visible()
    page.clock.run_for(16_000)
    expect(page.locator(".k-title")).to_have_text("Chạm vào lĩnh vực Ông/Bà cần giải quyết")
    expect(page.get_by_test_id("priority-chosen")).to_have_count(0)
    assert page.evaluate("document.documentElement.lang") == "vi"
    # Left on the priority question, likewise.
    page.get_by_test_id("priority-open").tap()
    page.clock.run_for(46_000)
    expect(page.locator(".k-title")).to_have_text("Chạm vào lĩnh vực Ông/Bà cần giải quyết")


def test_english_names_and_a_ticket_taken_in_english(kiosk_page, sqlite_server, devices):
    """The configuration's English names (Vietnamese where none is given), and the QR code
    of a ticket taken in English opens its status page in English."""
    page = kiosk_page
    devices.counter(sqlite_server, "clerk1", 1)
    open_kiosk(page, sqlite_server)
    page.get_by_role("button", name="English").tap()
    expect(page.get_by_test_id("centre")).to_have_text("Test Public Administrative Service Centre")
    expect(page.locator(".k-agency h2").first).to_have_text("Department of Justice")
    expect(service(page, "TP").locator(".k-service-name")).to_have_text(
        "Criminal record certificates"
    )
    expect(service(page, "HT").locator(".k-service-name")).to_have_text("Hộ tịch")  # none given
    screenshot(page, "kiosk-services-en")
    service(page, "TP").tap()
    expect(page.get_by_test_id("ticket")).to_contain_text("Criminal record certificates")
    src = page.get_by_test_id("qr").get_attribute("src")
    assert src.endswith("/qr.svg?lang=en"), src
    key = src.split("/t/")[1].split("/")[0]
    svg = requests.get(sqlite_server.url + src, timeout=10).content
    out = io.BytesIO()
    segno.make(f"{sqlite_server.url}/t/{key}?lang=en", error="m").save(
        out, kind="svg", scale=8, border=2
    )
    assert svg == out.getvalue()
    screenshot(page, "kiosk-ticket-en")
    page.get_by_role("button", name="Done").tap()
    expect(page.get_by_test_id("centre")).to_have_text(
        "Trung tâm Phục vụ hành chính công thử nghiệm"
    )
    assert page.errors.errors == []


def test_the_start_page_names_the_centre_in_english(sqlite_server):
    vi = requests.get(sqlite_server.url + "/", timeout=10).text
    en = requests.get(sqlite_server.url + "/?lang=en", timeout=10).text
    assert "Trung tâm Phục vụ hành chính công thử nghiệm" in vi
    assert "Test Public Administrative Service Centre" in en
    assert "Trung tâm Phục vụ hành chính công thử nghiệm" not in en


def put_service(server, token, code, **changes):
    """Change a service of T1 through the admin API, as its form does (the province's
    installation admin)."""
    api = f"{server.url}/api/v1/admin"
    headers = {"Authorization": f"Bearer {token}"}
    config = requests.get(f"{api}/config?centre=T1", headers=headers, timeout=30).json()
    entry = next(s for s in config["services"] if s["code"] == code)
    answer = requests.put(
        f"{api}/services/{code}?centre=T1",
        headers=headers,
        json={**entry, **changes},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def test_a_service_outside_its_hours_and_its_priority_groups(kiosk_page, sqlite_server, devices):
    """A service with hours of its own is shown closed outside them, with when it opens;
    the priority screen offers the groups the services in their hours accept, and a
    service that does not accept the group chosen cannot be chosen with it."""
    page = kiosk_page
    devices.counter(sqlite_server, "clerk1", 1)  # TP and HT open
    sqlite_server.provision_also(COMMUNE)
    admin = sqlite_server.login("tinh")
    tomorrow = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date() + timedelta(days=1)
    put_service(sqlite_server, admin, "TP", hours={WEEKDAYS[tomorrow.weekday()]: ["07:30-11:30"]})
    put_service(sqlite_server, admin, "HT", priorities=["elderly", "disabled"])
    put_service(sqlite_server, admin, "DD", priorities=["elderly"])
    open_kiosk(page, sqlite_server)
    tp = service(page, "TP")
    expect(tp).to_be_disabled()
    expect(tp).to_contain_text("Ngoài giờ nhận hồ sơ của lĩnh vực này")
    expect(tp.get_by_test_id("opens")).to_have_text("Mở lúc 07:30 ngày mai")
    expect(service(page, "HT")).to_contain_text("Ưu tiên: Người cao tuổi, Người khuyết tật")
    # As large as the service's name: read from a distance.
    size = "e => parseFloat(getComputedStyle(e).fontSize)"
    opens = tp.get_by_test_id("opens").evaluate(size)
    assert opens >= tp.locator(".k-service-name").evaluate(size), opens
    screenshot(page, "kiosk-service-off-hours")
    tp.tap(force=True)
    expect(page.locator("#screen")).to_have_attribute("data-view", "services")
    page.get_by_role("button", name="English").tap()
    expect(tp.get_by_test_id("opens")).to_have_text("Opens at 07:30 tomorrow")
    page.get_by_role("button", name="Tiếng Việt").tap()

    page.get_by_test_id("priority-open").tap()
    expect(page.locator("[data-priority]")).to_have_count(2)
    expect(page.locator("[data-priority]")).to_have_text(["Người cao tuổi", "Người khuyết tật"])
    screenshot(page, "kiosk-priority-groups-accepted")
    page.locator("[data-priority=disabled]").tap()
    expect(service(page, "DD")).to_be_disabled()
    expect(service(page, "DD")).to_contain_text("Lĩnh vực này không nhận diện ưu tiên đã chọn")
    service(page, "HT").tap()
    expect(page.get_by_test_id("number")).to_have_text("B100")
    expect(page.get_by_test_id("ticket")).to_contain_text("Ưu tiên: Người khuyết tật")
    assert page.errors.errors == []


def test_a_kiosk_whose_clock_is_wrong_says_the_servers_refusal(kiosk_page, sqlite_server, devices):
    """The server decides: a kiosk whose clock says the service is open (here, tomorrow
    morning) has its ticket refused with the server's words, saying when it opens."""
    page = kiosk_page
    devices.counter(sqlite_server, "clerk1", 1)
    sqlite_server.provision_also(COMMUNE)
    admin = sqlite_server.login("tinh")
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    tomorrow = datetime.now(zone).date() + timedelta(days=1)
    put_service(sqlite_server, admin, "TP", hours={WEEKDAYS[tomorrow.weekday()]: ["07:30-11:30"]})
    page.clock.set_fixed_time(datetime(tomorrow.year, tomorrow.month, tomorrow.day, 8, tzinfo=zone))
    open_kiosk(page, sqlite_server)
    expect(service(page, "TP")).to_be_enabled()
    service(page, "TP").tap()
    expect(page.get_by_test_id("message")).to_contain_text(
        f"Mời Ông/Bà quay lại lúc 07:30 {'thứ ' if tomorrow.weekday() < 6 else ''}"
    )
    expect(page.get_by_test_id("message")).to_contain_text(tomorrow.strftime("%d/%m/%Y"))
    assert page.errors.errors == []
