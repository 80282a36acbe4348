"""Every page, opened in headless Chromium as a citizen's phone would open it."""

from __future__ import annotations

from harness.browser import ARTIFACTS


def test_status_page_from_the_ticket_qr_code(sqlite_server, devices, browser):
    kiosk = devices.kiosk(sqlite_server)
    kiosk.call("issue", {"service": "TP"})
    mine = kiosk.call("issue", {"service": "TP", "priority": "elderly"})
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="vi-VN")
    page.goto(mine["status_url"])
    assert page.get_by_test_id("number").inner_text() == "A002"
    assert page.get_by_test_id("status").inner_text() == "Đang chờ"
    # Priority goes first: nobody is ahead of the elderly citizen, as the kiosk said.
    assert mine["ahead"] == 0
    assert page.get_by_test_id("ahead").inner_text() == "0"
    assert "Người cao tuổi" in page.content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "status-waiting.png", full_page=True)

    counter = devices.counter(sqlite_server, "clerk1", 1)
    counter.call("call", {"ticket_id": mine["ticket"]["id"]})
    page.reload()
    assert page.get_by_test_id("status").inner_text() == "Mời bạn đến quầy số 1"
    page.screenshot(path=ARTIFACTS / "status-called.png", full_page=True)

    page.goto(sqlite_server.url + "/t/khong-co-phieu-nay")
    assert "Không tìm thấy phiếu này" in page.content()
    page.close()
