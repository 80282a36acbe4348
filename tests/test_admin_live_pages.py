"""Issue 18's "at once" in headless Chromium against a real server: an admin creates a
service and a kiosk page that is already open offers it without a reload; revokes a
tablet and the open tablet page is cut off and says so. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from harness.browser import KIOSK_SCREEN, TABLET_PORTRAIT, PageErrors, screenshot
from harness.centre import COMMUNE, KIOSK, RATING_1

pytestmark = pytest.mark.timeout(120)


def admin_call(server, method, path, body=None):
    token = server.login("tinh")  # the province's admin, acting in T1
    return requests.request(
        method,
        f"{server.url}/api/v1/admin{path}?centre=T1",
        headers={"Authorization": f"Bearer {token}"},
        json=body,
        timeout=30,
    )


def test_a_new_service_appears_on_an_open_kiosk_without_a_reload(browser, sqlite_server):
    sqlite_server.provision_also(COMMUNE)
    context = browser.new_context(viewport=KIOSK_SCREEN, locale="vi-VN", has_touch=True)
    page = context.new_page()
    errors = PageErrors(page)
    page.goto(f"{sqlite_server.url}/kiosk/?token={KIOSK}")
    expect(page.locator("[data-service=TP]")).to_be_visible()
    page.evaluate("window.__sameDocument = true")  # gone if the page reloaded
    created = admin_call(
        sqlite_server,
        "PUT",
        "/services/CC",
        {"name": "Công chứng", "agency": "Phòng Công chứng", "prefix": "D"},
    )
    assert created.status_code == 201, created.text
    expect(page.locator("[data-service=CC]")).to_contain_text("Công chứng", timeout=2000)
    expect(page.locator(".k-agency h2")).to_contain_text(["Phòng Công chứng"])
    screenshot(page, "kiosk-service-added-by-admin")
    assert admin_call(sqlite_server, "DELETE", "/services/CC").ok
    expect(page.locator("[data-service=CC]")).to_have_count(0, timeout=2000)
    assert page.evaluate("window.__sameDocument") is True
    assert errors.errors == []
    context.close()


def test_a_revoked_tablet_is_cut_off_and_says_so(browser, sqlite_server):
    sqlite_server.provision_also(COMMUNE)
    context = browser.new_context(viewport=TABLET_PORTRAIT, locale="vi-VN", has_touch=True)
    page = context.new_page()
    errors = PageErrors(page)
    page.goto(f"{sqlite_server.url}/rating/?token={RATING_1}")
    expect(page.get_by_test_id("counter")).to_have_text("Quầy 1")
    revoked = admin_call(sqlite_server, "DELETE", "/devices/Đánh giá quầy 1")
    assert revoked.json()["changes"] == ["- device Đánh giá quầy 1"]
    message = page.get_by_test_id("message")
    expect(message).to_have_text(
        "Thiết bị này đã bị thu hồi. Vui lòng báo quản trị viên của trung tâm.", timeout=4000
    )
    expect(page.get_by_test_id("hint")).to_contain_text("cấp mã mới")
    screenshot(page, "rating-revoked")
    # Reloaded, it is still refused, saying so (the token it kept is the revoked one).
    page.reload()
    expect(message).to_have_text(
        "Thiết bị này đã bị thu hồi. Vui lòng báo quản trị viên của trung tâm.", timeout=4000
    )
    assert errors.errors == []
    context.close()
