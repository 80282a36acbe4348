"""The phone's booking page (/hen/) in headless Chromium: a citizen books a slot, sees
the code and its QR code, and cancels it; refusals are said in Vietnamese."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from harness.browser import PHONE_SCREEN, PageErrors, screenshot


def test_a_citizen_books_a_slot_on_the_phone_and_cancels_it(sqlite_server, browser):
    page = browser.new_page(viewport=PHONE_SCREEN, locale="vi-VN")
    errors = PageErrors(page)
    page.goto(sqlite_server.url + "/hen/")
    expect(page.get_by_role("heading", name="Chọn lĩnh vực")).to_be_visible()
    screenshot(page, "booking-services")
    page.get_by_role("link", name=re.compile("Lý lịch tư pháp")).click()
    page.get_by_test_id("days").get_by_role("link").nth(1).click()  # tomorrow
    slots = page.get_by_test_id("slots")
    expect(slots.locator("label").first).to_contain_text("07:30")
    slots.locator("label").first.click()
    page.get_by_label("Họ và tên").fill("Lê Thị Hoa")
    page.get_by_label("Số điện thoại di động").fill("0912 345 678")
    screenshot(page, "booking-form")
    page.get_by_role("button", name="Đặt lịch").click()

    expect(page.get_by_test_id("status")).to_have_text("Đã đặt lịch")
    code = page.get_by_test_id("code").inner_text().replace(" ", "")
    assert re.fullmatch(r"\d{8}", code)
    assert page.url.endswith(f"/hen/{code}")
    expect(page.get_by_test_id("slot")).to_contain_text("07:30–08:00")
    expect(page.locator("img.qr")).to_be_visible()
    assert page.evaluate("document.querySelector('img.qr').naturalWidth") > 100
    screenshot(page, "booking-done")

    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.get_by_role("button", name="Hủy lịch hẹn").click()
    assert asked == ["Hủy lịch hẹn này?"]
    expect(page.get_by_test_id("status")).to_have_text("Đã đặt lịch")  # changed their mind
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Hủy lịch hẹn").click()
    expect(page.get_by_test_id("status")).to_have_text("Đã hủy")
    assert errors.errors == []


def test_refusals_are_said_and_what_was_typed_is_kept(sqlite_server, browser):
    page = browser.new_page(viewport=PHONE_SCREEN, locale="vi-VN")
    page.goto(sqlite_server.url + "/hen/?service=TP")
    page.get_by_test_id("days").get_by_role("link").nth(1).click()
    page.get_by_test_id("slots").locator("label").first.click()
    page.get_by_label("Họ và tên").fill("Lê Văn Nam")
    page.get_by_label("Số điện thoại di động").fill("12345")
    page.get_by_role("button", name="Đặt lịch").click()
    expect(page.get_by_test_id("error")).to_contain_text(
        "không phải số điện thoại di động Việt Nam"
    )
    expect(page.get_by_label("Họ và tên")).to_have_value("Lê Văn Nam")
    screenshot(page, "booking-refused")
    page.goto(sqlite_server.url + "/hen/12345678")
    expect(page.get_by_test_id("error")).to_have_text(
        "Mã lịch hẹn gồm 8 chữ số: hãy kiểm tra lại từng số."
    )


def test_the_page_in_english(sqlite_server, browser):
    page = browser.new_page(viewport=PHONE_SCREEN, locale="en-GB")
    page.goto(sqlite_server.url + "/hen/?lang=en")
    expect(page.get_by_role("heading", name="Choose a service")).to_be_visible()
    page.get_by_role("link", name=re.compile("Criminal record certificates")).click()
    expect(page.get_by_role("heading", name="Choose a day")).to_be_visible()
    page.get_by_test_id("days").get_by_role("link").nth(1).click()
    expect(page.get_by_test_id("slots").locator("label").first).to_contain_text("left")
    assert "lang=en" in page.url
