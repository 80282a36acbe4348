"""The ticket's status page (/t/<key>, the QR code's address) in headless Chromium, as a
citizen's phone opens it: live, without reloading."""

from __future__ import annotations

from playwright.sync_api import expect

from harness.browser import PHONE_SCREEN, PageErrors, screenshot


def test_the_status_page_follows_the_ticket_to_its_call(sqlite_server, devices, browser):
    kiosk = devices.kiosk(sqlite_server)
    first = kiosk.call("issue", {"service": "TP"})
    second = kiosk.call("issue", {"service": "TP"})
    mine = kiosk.call("issue", {"service": "TP"})
    page = browser.new_page(viewport=PHONE_SCREEN, locale="vi-VN")
    errors = PageErrors(page)
    page.goto(mine["status_url"])
    expect(page.get_by_test_id("number")).to_have_text("A003")
    expect(page.get_by_test_id("status")).to_have_text("Đang chờ")
    expect(page.get_by_test_id("ahead")).to_have_text("2")
    screenshot(page, "status-waiting")

    # The queue moves: the page follows without a reload.
    clerk = devices.counter(sqlite_server, "clerk1", 1)

    def serve(ticket):
        for event in ("call", "start", "finish"):
            assert clerk.call(event, {"ticket_id": ticket["ticket"]["id"]})["ok"], event

    serve(first)
    expect(page.get_by_test_id("ahead")).to_have_text("1", timeout=10000)
    serve(second)
    expect(page.get_by_test_id("ahead")).to_have_text("0", timeout=10000)
    assert clerk.call("call", {"ticket_id": mine["ticket"]["id"]})["ok"]
    expect(page.get_by_test_id("status")).to_have_text("Mời Ông/Bà đến quầy số 1", timeout=10000)
    expect(page.locator("#position")).to_be_hidden()
    screenshot(page, "status-called")
    assert errors.errors == []
    page.close()


def test_priority_and_english(sqlite_server, devices, browser):
    kiosk = devices.kiosk(sqlite_server)
    kiosk.call("issue", {"service": "TP"})
    mine = kiosk.call("issue", {"service": "TP", "priority": "elderly"})
    page = browser.new_page(viewport=PHONE_SCREEN, locale="vi-VN")
    page.goto(mine["status_url"])
    # Priority goes first: nobody is ahead of the elderly citizen, as the kiosk said.
    assert mine["ahead"] == 0
    expect(page.get_by_test_id("ahead")).to_have_text("0")
    expect(page.locator(".priority")).to_have_text("Ưu tiên: Người cao tuổi")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_test_id("status")).to_have_text("Waiting")
    expect(page.locator(".priority")).to_have_text("Priority: Elderly")
    page.close()


def test_an_unknown_ticket_says_so(sqlite_server, browser):
    page = browser.new_page(viewport=PHONE_SCREEN, locale="vi-VN")
    response = page.goto(sqlite_server.url + "/t/khong-co-phieu-nay")
    assert response.status == 404
    assert "Không tìm thấy phiếu này" in page.content()
    page.close()


def test_a_made_up_key_cannot_follow_anything(sqlite_server):
    from harness.devices import connect_refused

    refused = connect_refused(sqlite_server, "/ticket", {"key": "khong-co-phieu-nay"})
    assert refused["data"]["code"] == "unauthorized"
    assert connect_refused(sqlite_server, "/ticket", {})["data"]["code"] == "unauthorized"


def test_the_status_page_offers_the_rating_the_tablet_did_not_get(sqlite_server, devices, browser):
    kiosk = devices.kiosk(sqlite_server)
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    mine = kiosk.call("issue", {"service": "TP"})
    page = browser.new_page(viewport=PHONE_SCREEN, locale="vi-VN", has_touch=True)
    errors = PageErrors(page)
    page.goto(mine["status_url"])
    expect(page.get_by_test_id("status")).to_have_text("Đang chờ")
    expect(page.get_by_test_id("rating")).to_be_hidden()
    for event in ("call", "start", "finish"):
        assert clerk.call(event, {"ticket_id": mine["ticket"]["id"]})["ok"]
    expect(page.get_by_test_id("status")).to_have_text("Đã phục vụ xong", timeout=10000)
    rating = page.get_by_test_id("rating")
    expect(rating).to_contain_text("Ông/Bà đánh giá thế nào về việc giải quyết thủ tục hôm nay?")
    screenshot(page, "status-rating")
    rating.locator("[data-score='1']").tap()
    rating.get_by_label("Thời gian chờ quá lâu").check()
    # The phone's own keyboard writes Vietnamese; markup is refused, and said so.
    page.get_by_test_id("comment").fill("<b>chậm</b>")
    rating.get_by_role("button", name="Gửi đánh giá").tap()
    expect(page.locator("#rate-error")).to_contain_text("không được chứa mã HTML")
    page.get_by_test_id("comment").fill("Chờ gần một tiếng")
    screenshot(page, "status-rating-reasons")
    rating.get_by_role("button", name="Gửi đánh giá").tap()
    expect(page.get_by_test_id("rated")).to_have_text("Xin cảm ơn Ông/Bà đã đánh giá!")
    # The counter's tablet can no longer rate it: once per visit.
    tablet = devices.rating(sqlite_server)
    again = tablet.call("rate", {"ticket_id": mine["ticket"]["id"], "score": 3})
    assert again["error"]["code"] == "already_rated"
    page.reload()
    expect(page.get_by_test_id("rated")).to_be_visible()
    assert errors.errors == []
    page.close()


def test_a_ticket_taken_in_english_opens_its_page_in_english(sqlite_server, devices, browser):
    kiosk = devices.kiosk(sqlite_server)
    mine = kiosk.call("issue", {"service": "TP", "lang": "en"})
    assert mine["status_url"].endswith("?lang=en")
    page = browser.new_page(viewport=PHONE_SCREEN, locale="vi-VN")
    errors = PageErrors(page)
    page.goto(mine["status_url"])
    expect(page.get_by_test_id("centre")).to_have_text("Test Public Administrative Service Centre")
    expect(page.get_by_test_id("service")).to_have_text("Criminal record certificates")
    expect(page.get_by_test_id("status")).to_have_text("Waiting")
    # Nobody ahead: "your turn is near", never "0 min".
    expect(page.get_by_test_id("wait")).to_have_text("your turn is near")
    screenshot(page, "status-english")
    # Live updates keep the English name (the page takes new snapshots).
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    assert clerk.call("call", {"ticket_id": mine["ticket"]["id"]})["ok"]
    expect(page.get_by_test_id("status")).to_have_text("Please go to counter 1", timeout=10000)
    expect(page.get_by_test_id("service")).to_have_text("Criminal record certificates")
    page.get_by_role("link", name="Tiếng Việt").click()
    expect(page.get_by_test_id("service")).to_have_text("Lý lịch tư pháp")
    assert errors.errors == []
    page.close()


def test_a_counter_on_a_break_is_said_on_the_phone(sqlite_server, devices, browser):
    clerk = devices.counter(sqlite_server, "clerk3", 3)  # the only counter for Đất đai
    kiosk = devices.kiosk(sqlite_server)
    kiosk.call("issue", {"service": "DD"})
    mine = kiosk.call("issue", {"service": "DD"})
    page = browser.new_page(viewport=PHONE_SCREEN, locale="vi-VN")
    errors = PageErrors(page)
    page.goto(mine["status_url"])
    expect(page.get_by_test_id("ahead")).to_have_text("1")
    expect(page.get_by_test_id("wait")).to_have_text("khoảng 5 phút")
    expect(page.get_by_test_id("on-break")).to_be_hidden()
    assert clerk.call("pause", {"reason": "Nghỉ giữa giờ"})["ok"]
    expect(page.get_by_test_id("on-break")).to_have_text(
        "Quầy đang tạm dừng. Ông/Bà vẫn giữ lượt và được phục vụ khi quầy làm việc lại.",
        timeout=10000,
    )
    screenshot(page, "status-on-break")
    page.reload()  # the same from the server-rendered page
    expect(page.get_by_test_id("on-break")).to_be_visible()
    assert clerk.call("resume", {})["ok"]
    expect(page.get_by_test_id("on-break")).to_be_hidden(timeout=10000)
    assert errors.errors == []
    page.close()


def test_the_page_vibrates_and_notifies_when_the_turn_is_near_and_at_the_call(
    sqlite_server, devices, browser
):
    kiosk = devices.kiosk(sqlite_server)
    for _ in range(4):
        kiosk.call("issue", {"service": "TP"})
    mine = kiosk.call("issue", {"service": "TP"})
    context = browser.new_context(viewport=PHONE_SCREEN, locale="vi-VN")
    # What the page asks of the phone, recorded: its notifications and vibrations.
    context.add_init_script(
        """
        window.__notes = []; window.__vibes = 0;
        window.Notification = class { constructor(title) { window.__notes.push(title); }
          static permission = "default";
          static async requestPermission() {
            Notification.permission = "granted"; return "granted"; } };
        navigator.vibrate = () => { window.__vibes += 1; return true; };
        """
    )
    page = context.new_page()
    page.goto(mine["status_url"])
    expect(page.get_by_test_id("ahead")).to_have_text("4")
    page.get_by_test_id("notify-ask").click()  # asked only when the holder taps
    expect(page.get_by_test_id("notify-ask")).to_be_hidden()
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    first = clerk.call("call_next", {})["ticket"]
    expect(page.get_by_test_id("alerted")).to_have_text(
        "Sắp đến lượt Ông/Bà: còn 3 người phía trước."
    )
    assert page.evaluate("window.__notes") == [
        f"{mine['ticket']['number']}: Sắp đến lượt Ông/Bà: còn 3 người phía trước."
    ]
    screenshot(page, "status-near")
    assert clerk.call("no_show", {"ticket_id": first["id"]})["ok"]
    for _ in range(3):
        t = clerk.call("call_next", {})["ticket"]
        assert clerk.call("no_show", {"ticket_id": t["id"]})["ok"]
    clerk.call("call_next", {})
    expect(page.get_by_test_id("alerted")).to_have_text("Mời Ông/Bà đến quầy số 1")
    assert len(page.evaluate("window.__notes")) == 2 and page.evaluate("window.__vibes") == 2
    context.close()
