"""Checking in a booked appointment at the kiosk page (headless Chromium, touch): by the
on-screen keypad and by a barcode scanner typing the code; the appointment is called
ahead of walk-ins, and the board hears that it is one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from harness.booking import book
from harness.browser import KIOSK_SCREEN, PageErrors, screenshot
from harness.centre import KIOSK

pytestmark = pytest.mark.timeout(120)
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def booked(server, phone: str, begun_min: float = 5) -> str:
    """A TP booking made through the API, its slot then moved to have begun
    ``begun_min`` minutes ago (as if booked for now)."""
    r = book(server, "Phạm Văn Bảo", phone)
    assert r.status_code == 200, r.text
    code = r.json()["code"]
    start = datetime.now(UTC) - timedelta(minutes=begun_min)
    engine = sa.create_engine(server.database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE appointments SET slot_start = :s, slot_end = :e WHERE code = :c"),
            {
                "s": start.replace(tzinfo=None),
                "e": (start + timedelta(minutes=30)).replace(tzinfo=None),
                "c": code,
            },
        )
    engine.dispose()
    return code


def test_a_booked_citizen_checks_in_at_the_kiosk_and_is_called_first(
    browser, sqlite_server, devices
):
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    display = devices.display(sqlite_server)
    display.wait_event("snapshot")
    kiosk = devices.kiosk(sqlite_server)
    walk_ins = [kiosk.call("issue", {"service": "TP"})["ticket"]["number"] for _ in range(2)]
    by_keypad, by_scanner = booked(sqlite_server, "0912345678"), booked(sqlite_server, "0987654321")

    context = browser.new_context(viewport=KIOSK_SCREEN, locale="vi-VN", has_touch=True)
    page = context.new_page()
    errors = PageErrors(page)
    page.goto(f"{sqlite_server.url}/kiosk/?token={KIOSK}")
    page.get_by_test_id("booked-open").tap()
    for digit in by_keypad[:-1] + "9" + by_keypad[-1]:  # a slip, then deleted
        page.locator(f"[data-key='{digit}']").tap()
    expect(page.get_by_test_id("code")).to_have_text(f"{by_keypad[:4]} {by_keypad[4:7]}9")
    page.locator("[data-key='delete']").tap()
    expect(page.get_by_test_id("take")).to_be_disabled()  # 7 digits
    page.locator(f"[data-key='{by_keypad[-1]}']").tap()
    expect(page.get_by_test_id("code")).to_have_text(f"{by_keypad[:4]} {by_keypad[4:]}")
    screenshot(page, "kiosk-check-in")
    page.get_by_test_id("take").tap()
    expect(page.get_by_test_id("booked")).to_contain_text("Lịch hẹn")
    first = page.get_by_test_id("number").inner_text()
    screenshot(page, "kiosk-checked-in")
    page.get_by_role("button", name="Xong").tap()

    # A scanner types the code and presses Enter, from the start screen.
    page.keyboard.type(by_scanner)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("booked")).to_contain_text("Lịch hẹn")
    second = page.get_by_test_id("number").inner_text()
    page.get_by_role("button", name="Xong").tap()

    # The same code again: refused, in the server's words.
    page.keyboard.type(by_scanner)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("message")).to_have_text(
        f"Lịch hẹn {by_scanner} đã được lấy số rồi."
    )
    assert errors.errors == []
    context.close()

    called = []
    for _ in range(3):
        ticket = clerk.call("call_next", {})["ticket"]
        called.append(ticket["number"])
        assert clerk.call("no_show", {"ticket_id": ticket["id"]})["ok"]
    assert called == [first, second, walk_ins[0]]
    heard = [display.wait_change("called")["ticket"] for _ in range(3)]
    assert [t["number"] for t in heard] == called
    assert heard[0]["appointment"] and heard[1]["appointment"] and heard[2]["appointment"] is None


def test_a_walk_in_leaves_a_phone_number_on_the_kiosk_keypad(browser, sqlite_server, devices):
    devices.counter(sqlite_server, "clerk1", 1)  # TP open
    context = browser.new_context(viewport=KIOSK_SCREEN, locale="vi-VN", has_touch=True)
    page = context.new_page()
    errors = PageErrors(page)
    page.goto(f"{sqlite_server.url}/kiosk/?token={KIOSK}")
    page.locator("[data-service=TP]").tap()
    expect(page.get_by_test_id("number")).to_have_text("A001")
    page.get_by_test_id("phone-open").tap()
    for digit in "0987654321":
        page.locator(f"[data-key='{digit}']").tap()
    expect(page.get_by_test_id("code")).to_have_text("0987 654 321")
    screenshot(page, "kiosk-phone")
    page.get_by_test_id("take").tap()
    expect(page.get_by_test_id("phone-left")).to_have_text(
        "Trung tâm sẽ nhắn tin tới số …321 khi sắp đến lượt Ông/Bà."
    )
    expect(page.get_by_test_id("number")).to_have_text("A001")
    expect(page.get_by_test_id("phone-open")).to_have_count(0)
    assert errors.errors == []
    context.close()
