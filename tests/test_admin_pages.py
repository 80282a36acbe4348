"""The admin pages (/admin/, /admin/audit; docs/admin.md) in headless Chromium against a
real server, and the endpoints they read: an admin creates a service and a kiosk page
already open shows it without a reload; a clerk's password reset shows the new one once,
it works and the old one stops; a bad field is refused beside the field with nothing
written; every page and the audit API with every role and none; the audit's filters,
pages and escaping; a staff photo upload; a cross-site form refused. The centre changed
is the commune office (tests/commune.toml). Screenshots go to test-artifacts/."""

from __future__ import annotations

import io

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import expect

from core import models as m
from core.store import normalise_url
from harness.browser import CLERK_SCREEN, KIOSK_SCREEN, PageErrors, screenshot
from harness.centre import COMMUNE, COMMUNE_PASSWORDS, PASSWORDS
from harness.process import login

pytestmark = pytest.mark.timeout(180)
KIOSK_T2 = "t2-kiosk-token-00001"
ALL_PASSWORDS = {**PASSWORDS, **COMMUNE_PASSWORDS}


@pytest.fixture
def office(sqlite_server):
    sqlite_server.provision_also(COMMUNE)
    return sqlite_server


@pytest.fixture
def admin_page(browser, office):
    context = browser.new_context(viewport=CLERK_SCREEN, locale="vi-VN")
    page = context.new_page()
    page.errors = PageErrors(page)
    yield page
    context.close()


def log_in(page, server, username="quantri2", path="/admin/"):
    page.goto(server.url + path)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", ALL_PASSWORDS[username])
    page.get_by_role("button", name="Đăng nhập").click()


def open_t1_staff(page, server) -> None:
    """The province's admin on the staff tab of the test centre T1 (chosen on the page)."""
    log_in(page, server, "tinh")
    expect(page.get_by_test_id("panel-services")).to_be_visible()
    page.get_by_test_id("centre").select_option("T1")
    expect(page.locator("[data-entry=TP]")).to_be_visible()
    page.click("[data-tab=staff]")


def rows(server, table) -> list:
    engine = sa.create_engine(normalise_url(server.database_url))
    try:
        with engine.connect() as conn:
            query = sa.select(table).order_by(*table.primary_key.columns)
            return [tuple(r) for r in conn.execute(query)]
    finally:
        engine.dispose()


def configured(server) -> int:
    action = [c.name for c in m.audit_log.c].index("action")
    return len([r for r in rows(server, m.audit_log) if r[action] == "configured"])


def test_an_admin_creates_an_agency_and_a_service_and_an_open_kiosk_shows_them(
    browser, admin_page, office
):
    """An agency made on the page, a service under it: the kiosk page already open lists
    the service under the agency's name, and the agency's new name, without a reload."""
    kiosk_context = browser.new_context(viewport=KIOSK_SCREEN, locale="vi-VN", has_touch=True)
    kiosk = kiosk_context.new_page()
    kiosk.errors = PageErrors(kiosk)
    try:
        kiosk.goto(f"{office.url}/kiosk/?token={KIOSK_T2}")
        expect(kiosk.locator("[data-service=HT]")).to_be_visible()
        expect(kiosk.locator("[data-service=CT]")).to_have_count(0)
        kiosk.evaluate("window.__notReloaded = true")

        page = admin_page
        log_in(page, office)
        expect(page.get_by_test_id("panel-services")).to_be_visible()
        expect(page.locator("[data-entry=HT]")).to_contain_text("Hộ tịch")
        expect(page.locator("[data-entry=HT]")).to_contain_text("UBND xã")
        screenshot(page, "admin-services")
        # The agency first, on its own tab.
        page.click("[data-tab=agencies]")
        expect(page.locator("[data-entry=UBND]")).to_contain_text("UBND xã")
        expect(page.locator("[data-entry=CU]")).to_contain_text("Đã ngừng")
        page.get_by_test_id("add").click()
        page.fill("#f-code", "CA")
        page.fill("#f-name", "Công an xã")
        page.get_by_role("button", name="Lưu").click()
        expect(page.get_by_test_id("message")).to_have_text("Đã lưu.")
        expect(page.locator("[data-entry=CA]")).to_contain_text("Công an xã")
        screenshot(page, "admin-agencies")
        page.click("[data-tab=services]")
        page.get_by_test_id("add").click()
        page.fill("#f-code", "CT")
        page.fill("#f-prefix", "C")
        page.fill("#f-name", "Chứng thực")
        # Only the active agencies are offered.
        expect(page.locator("#f-agency option")).to_have_text(["UBND · UBND xã", "CA · Công an xã"])
        page.select_option("#f-agency", "CA")
        page.fill("#f-start", "500")
        screenshot(page, "admin-service-form")
        page.get_by_role("button", name="Lưu").click()
        expect(page.get_by_test_id("message")).to_have_text("Đã lưu.")
        expect(page.locator("[data-entry=CT]")).to_contain_text("Chứng thực")

        expect(page.locator("[data-entry=CT]")).to_contain_text("Công an xã")

        # The kiosk already open shows it under its agency, without a reload.
        expect(kiosk.locator("[data-service=CT]")).to_be_visible(timeout=5000)
        expect(kiosk.locator(".k-agency h2")).to_have_text(["UBND xã", "Công an xã"])
        assert kiosk.evaluate("window.__notReloaded === true")
        screenshot(kiosk, "admin-kiosk-sees-new-service")

        # The agency renamed: the kiosk's heading follows, still without a reload.
        page.click("[data-tab=agencies]")
        page.locator("[data-entry=CA] [data-action=edit]").click()
        expect(page.locator("#f-code")).to_have_attribute("readonly", "")
        page.fill("#f-name", "Công an xã Phú Hòa")
        page.get_by_role("button", name="Lưu").click()
        expect(page.locator("[data-entry=CA]")).to_contain_text("Công an xã Phú Hòa")
        expect(kiosk.locator(".k-agency h2")).to_have_text(
            ["UBND xã", "Công an xã Phú Hòa"], timeout=5000
        )
        assert kiosk.evaluate("window.__notReloaded === true")
        # Not retired while its service is active: said, nothing changed.
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator("[data-entry=CA] [data-action=retire]").click()
        expect(page.get_by_test_id("error")).to_contain_text(
            "cơ quan “CA” còn lĩnh vực đang dùng: CT"
        )
        expect(page.locator("[data-entry=CA]")).to_contain_text("Đang dùng")
        page.click("[data-tab=services]")

        # A counter serves it: the counters' tab lists it to tick.
        page.click("[data-tab=counters]")
        page.locator("[data-entry='2'] [data-action=edit]").click()
        page.check("input[name=services][value=CT]")
        page.get_by_role("button", name="Lưu").click()
        expect(page.locator("[data-entry='2']")).to_contain_text("HT, CT")
        assert all(" 409 " in f" {r}" for r in page.errors.errors)  # the refused retiring
        assert kiosk.errors.errors == []
    finally:
        kiosk_context.close()


def test_bad_input_shows_the_fields_error_and_writes_nothing(admin_page, office):
    page = admin_page
    log_in(page, office)
    expect(page.get_by_test_id("panel-services")).to_be_visible()
    before = (rows(office, m.services), configured(office))
    page.get_by_test_id("add").click()
    page.fill("#f-code", "CT")
    page.fill("#f-prefix", "c1")
    page.fill("#f-name", "Chứng thực")
    page.get_by_role("button", name="Lưu").click()
    error = page.locator("[data-error-for=prefix]")
    expect(error).to_have_text("“prefix” phải là 1-4 chữ cái in hoa không dấu")
    expect(page.locator("[data-field-box=prefix]")).to_have_class("a-field a-text a-bad")
    screenshot(page, "admin-field-error")
    page.fill("#f-prefix", "C")
    page.fill("#f-start", "abc")
    page.get_by_role("button", name="Lưu").click()
    expect(page.locator("[data-error-for=start]")).to_have_text("“start” phải là một số nguyên")
    expect(page.locator("[data-error-for=prefix]")).to_have_text("")
    assert (rows(office, m.services), configured(office)) == before

    # A refusal naming no field of the form is said above it: a centre's admin may not
    # make anyone an installation admin.
    page.get_by_role("button", name="Hủy").click()
    page.click("[data-tab=staff]")
    staff = rows(office, m.staff_roles)
    page.locator("[data-entry=quanly2] [data-action=edit]").click()
    page.select_option("#f-role", "installation_admin")
    page.get_by_role("button", name="Lưu").click()
    expect(page.get_by_test_id("error")).to_have_text(
        "Tài khoản này không có quyền quản lý tài khoản quản trị toàn hệ thống."
    )
    assert rows(office, m.staff_roles) == staff

    # The centre's settings: a time zone that does not exist.
    page.click("[data-tab=settings]")
    centre = rows(office, m.centres)
    page.fill("#f-timezone", "Asia/Hanoi_City")
    page.get_by_role("button", name="Lưu").click()
    expect(page.locator("[data-error-for=timezone]")).to_have_text(
        "“timezone” phải là một múi giờ có thật, ví dụ Asia/Ho_Chi_Minh"
    )
    page.fill("#f-timezone", "Asia/Ho_Chi_Minh")
    page.fill("input[name=hours-mon]", "7:30 đến 11:30")
    page.get_by_role("button", name="Lưu").click()
    expect(page.locator("[data-error-for=hours]")).not_to_have_text("")
    assert (rows(office, m.centres), configured(office)) == (centre, before[1])
    # And a good change is saved.
    page.fill("input[name=hours-mon]", "07:30-11:30, 13:30-17:00")
    page.fill("#f-notice", "Sáng thứ Bảy nghỉ.")
    page.get_by_role("button", name="Lưu").click()
    expect(page.get_by_test_id("message")).to_have_text("Đã lưu.")
    screenshot(page, "admin-settings")
    assert configured(office) == before[1] + 1
    # The page ran clean but for the refusals it showed (Chromium logs them too).
    assert all(" 400 " in f" {r}" or " 403 " in f" {r}" for r in page.errors.errors)


def test_a_password_reset_is_shown_once_works_and_ends_the_old(browser, admin_page, office):
    page = admin_page
    open_t1_staff(page, office)
    page.once("dialog", lambda d: d.accept())
    page.locator("[data-entry=clerk2] [data-action=reset]").click()
    secret = page.get_by_test_id("secret-value")
    expect(secret).to_be_visible()
    password = secret.inner_text().strip()
    assert len(password) >= 8
    screenshot(page, "admin-password-once")
    assert login(office.url, "clerk2", password)
    with pytest.raises(RuntimeError, match="401"):
        login(office.url, "clerk2", PASSWORDS["clerk2"])
    page.get_by_role("button", name="Tôi đã ghi lại").click()
    expect(page.get_by_test_id("secret")).to_have_count(0)
    page.reload()
    page.click("[data-tab=staff]")
    expect(page.locator("[data-entry=clerk2]")).to_be_visible()
    expect(page.get_by_text(password)).to_have_count(0)  # shown once: not again

    # A new device's token is shown once too, with the address its page opens with.
    page.click("[data-tab=devices]")
    page.get_by_test_id("add").click()
    page.fill("#f-name", "Kiosk tầng 2")
    page.select_option("#f-kind", "kiosk")
    page.get_by_role("button", name="Lưu").click()
    token = page.get_by_test_id("secret-value").inner_text().strip()
    expect(page.get_by_test_id("secret-link")).to_contain_text(f"/kiosk/?token={token}")
    screenshot(page, "admin-device-token")
    page.get_by_role("button", name="Tôi đã ghi lại").click()

    # The kiosk opens with it; once revoked on the page, it is cut off and refused.
    kiosk_context = browser.new_context(viewport=KIOSK_SCREEN, locale="vi-VN", has_touch=True)
    try:
        kiosk = kiosk_context.new_page()
        kiosk.goto(f"{office.url}/kiosk/?token={token}")
        expect(kiosk.locator("[data-service=TP]")).to_be_visible()
        page.once("dialog", lambda d: d.accept())
        entry = page.locator("[data-entry='Kiosk tầng 2']")
        entry.locator("[data-action=retire]").click()
        expect(entry).to_contain_text("Đã ngừng")
        # Cut off at once, without a reload, saying why (issue 18's third slice).
        expect(kiosk.get_by_test_id("message")).to_contain_text(
            "Thiết bị này đã bị thu hồi. Vui lòng báo quản trị viên của trung tâm.",
            timeout=4000,
        )
        # Brought back, it gets a new token (shown once); the revoked one stays refused.
        entry.locator("[data-action=reactivate]").click()
        page.get_by_role("button", name="Lưu").click()
        again = page.get_by_test_id("secret-value").inner_text().strip()
        assert again != token
        expect(entry).not_to_contain_text("Đã ngừng")
        kiosk.reload()
        expect(kiosk.get_by_test_id("message")).to_be_visible()
        kiosk.goto(f"{office.url}/kiosk/?token={again}")
        expect(kiosk.locator("[data-service=TP]")).to_be_visible()
    finally:
        kiosk_context.close()
    assert page.errors.errors == []


def test_an_admin_logs_a_clerk_out_everywhere_from_the_staff_tab(admin_page, office):
    """A lost phone or a shared computer: every session of the account ends, its
    password stays."""
    clerk = [login(office.url, "clerk2", PASSWORDS["clerk2"]) for _ in range(2)]

    def status(token):
        return requests.get(
            office.url + "/api/v1/centre", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).status_code

    assert [status(t) for t in clerk] == [200, 200]
    page = admin_page
    open_t1_staff(page, office)
    page.once("dialog", lambda d: d.accept())
    page.locator("[data-entry=clerk2] [data-action=end-sessions]").click()
    expect(page.get_by_text("Đã đăng xuất 2 phiên.")).to_be_visible()
    assert [status(t) for t in clerk] == [401, 401]
    assert status(login(office.url, "clerk2", PASSWORDS["clerk2"])) == 200  # same password
    assert page.errors.errors == []


def test_an_admin_ends_a_clerks_session_and_the_clerks_page_is_cut_off(browser, admin_page, office):
    """The sessions tab lists the centre's open sessions (who, role, since, last seen,
    until, from where); ending the clerk's cuts the clerk's open page off at once, back
    to its login, while the clerk's other session stays."""
    other = login(office.url, "clerk3", PASSWORDS["clerk3"])
    clerk_context = browser.new_context(viewport=CLERK_SCREEN, locale="vi-VN")
    try:
        clerk = clerk_context.new_page()
        clerk.errors = PageErrors(clerk)
        log_in(clerk, office, "clerk3", "/counter/")
        clerk.locator("[data-counter='3']").click()
        expect(clerk.get_by_test_id("counter-status")).to_have_text("Đang mở")

        page = admin_page
        open_t1_staff(page, office)
        page.click("[data-tab=sessions]")
        rows = page.locator("[data-user=clerk3]")
        expect(rows).to_have_count(2)
        expect(rows.first).to_contain_text("clerk3 · Phạm Văn Cường")
        expect(rows.first).to_contain_text("Cán bộ tiếp nhận")
        expect(rows.first).to_contain_text("127.0.0.1")
        screenshot(page, "admin-sessions")
        page.once("dialog", lambda d: d.accept())
        rows.last.locator("[data-action=end-session]").click()  # the page's, the newer
        expect(page.get_by_test_id("message")).to_have_text("Đã đăng xuất 1 phiên.")
        expect(rows).to_have_count(1)
        # The clerk's page is cut off at once, without a reload, and asks to log in.
        expect(clerk.locator("#app")).to_have_attribute("data-view", "login", timeout=4000)
        assert requests.get(
            office.url + "/api/v1/centre", headers={"Authorization": f"Bearer {other}"}, timeout=10
        ).ok
        assert page.errors.errors == []
    finally:
        clerk_context.close()


def test_a_deactivated_account_comes_back_with_a_new_password(admin_page, office):
    page = admin_page
    log_in(page, office)
    page.click("[data-tab=staff]")
    entry = page.locator("[data-entry=quanly2]")
    page.once("dialog", lambda d: d.accept())
    entry.locator("[data-action=retire]").click()
    expect(entry).to_contain_text("Đã ngừng")
    with pytest.raises(RuntimeError, match="401"):
        login(office.url, "quanly2", "quanly2-secret")
    entry.locator("[data-action=reactivate]").click()
    page.select_option("#f-role", "manager")
    page.get_by_role("button", name="Lưu").click()
    password = page.get_by_test_id("secret-value").inner_text().strip()
    expect(entry).to_contain_text("Lãnh đạo, quản lý trung tâm")
    assert login(office.url, "quanly2", password)
    with pytest.raises(RuntimeError, match="401"):
        login(office.url, "quanly2", "quanly2-secret")  # not the old one
    assert page.errors.errors == []


ROLES = {  # who -> (the admin pages open, the audit API's status in T2)
    "tinh": (True, 200),
    "quantri2": (True, 200),
    "quanly2": (False, 403),
    "clerk1": (False, 403),
}


@pytest.mark.parametrize("path", ["/admin/", "/admin/audit"])
def test_every_role_on_the_admin_pages(admin_page, office, path):
    page = admin_page
    # Nobody logged in: the login form, nothing of the centre.
    page.goto(office.url + path)
    expect(page.locator("#app")).to_have_attribute("data-view", "login")
    expect(page.get_by_test_id("login")).to_be_visible()
    for username, (allowed, _status) in ROLES.items():
        log_in(page, office, username, path)
        app = page.locator("#app")
        if allowed:
            expect(app).to_have_attribute("data-view", "admin" if path == "/admin/" else "audit")
        else:
            expect(app).to_have_attribute("data-view", "refused")
            expect(page.get_by_test_id("refused")).to_contain_text(
                "không có quyền quản trị trung tâm"
            )
            if username == "quanly2":
                screenshot(page, "admin-refused")
        page.get_by_role("button", name="Đăng xuất").click()
        expect(app).to_have_attribute("data-view", "login")


def test_the_audit_api_with_every_role_and_none(office):
    for username, (_page, status) in ROLES.items():
        token = login(office.url, username, ALL_PASSWORDS[username])
        answer = requests.get(
            office.url + "/api/v1/admin/audit?centre=T2",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert answer.status_code == status, (username, answer.text)
        if status == 403:
            assert answer.json()["error"]["code"] == "forbidden"
    assert requests.get(office.url + "/api/v1/admin/audit", timeout=30).status_code == 401
    kiosk = {"Authorization": f"Bearer {KIOSK_T2}"}
    assert (
        requests.get(office.url + "/api/v1/admin/audit", headers=kiosk, timeout=30).status_code
        == 401
    )


def put(server, token, path, body):
    return requests.put(
        f"{server.url}/api/v1/admin{path}",
        headers={"Authorization": f"Bearer {token}"},
        json=body,
        timeout=30,
    )


def test_the_audit_filters_pages_and_escapes(admin_page, office):
    token = login(office.url, "quantri2", "quantri2-secret")
    tinh = login(office.url, "tinh", "tinh-secret-01")
    service = {"name": "<b>Chứng thực</b>", "agency": "UBND xã", "prefix": "C"}
    assert put(office, token, "/services/CT", service).status_code == 201
    assert put(office, tinh, "/services/CT?centre=T2", {**service, "start": 7}).status_code == 200
    assert put(office, token, "/counters/3", {"services": ["CT"]}).status_code == 201

    def audit(query="", who=token):
        answer = requests.get(
            f"{office.url}/api/v1/admin/audit?{query}",
            headers={"Authorization": f"Bearer {who}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    mine = audit("actor=quantri2&kind=configured")
    assert [(r["details"]["entity"], r["details"]["key"]) for r in mine["rows"]] == [
        ("counters", 3),
        ("services", "CT"),
    ]
    assert mine["rows"][0]["who"] == "quantri2 (Hoàng Văn Quản Trị)"
    assert mine["rows"][0]["at"].endswith("+07:00")  # the centre's time zone
    assert audit("actor=tinh&kind=configured")["rows"][0]["details"]["after"]["start"] == 7
    assert audit("actor=nobody")["rows"] == []
    first = audit("kind=configured&limit=1")
    assert len(first["rows"]) == 1 and first["next"] == first["rows"][0]["seq"]
    second = audit(f"kind=configured&limit=1&before={first['next']}")
    assert second["rows"][0]["seq"] < first["rows"][0]["seq"]
    assert audit("from=2000-01-01&to=2000-01-31")["rows"] == []
    for query, field in (("from=01/12/2026", "from"), ("limit=0", "limit"), ("kind=a b", "kind")):
        bad = requests.get(
            f"{office.url}/api/v1/admin/audit?{query}&lang=en",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert bad.status_code == 400 and bad.json()["error"]["field"] == field, bad.text

    page = admin_page
    log_in(page, office, "quantri2", "/admin/audit")
    table = page.get_by_test_id("audit")
    expect(table.locator("tbody tr")).to_have_count(4)  # three changes and provisioning
    expect(table).to_contain_text('name: "<b>Chứng thực</b>"')  # as text, not markup
    expect(table.locator("b")).to_have_count(0)
    # What a change changed is marked: the province's admin changed the start number.
    changed = table.locator("tbody tr").filter(has_text="tinh").locator(".a-changed")
    expect(changed).to_have_text(["start: 1", "start: 7"])
    page.fill("input[name=actor]", "tinh")
    page.get_by_role("button", name="Xem").click()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr")).to_contain_text("tinh (Quản trị tỉnh)")
    page.fill("input[name=actor]", "")
    page.get_by_role("button", name="Xem").click()
    expect(table.locator("tbody tr")).to_have_count(4)
    screenshot(page, "admin-audit")
    assert page.errors.errors == []


def test_a_staff_photo_is_uploaded_checked_and_removed(admin_page, office):
    from PIL import Image

    token = login(office.url, "quantri2", "quantri2-secret")
    picture = io.BytesIO()
    Image.new("RGB", (1200, 900), (40, 90, 160)).save(picture, "PNG")

    def send(body, kind):
        return requests.put(
            f"{office.url}/api/v1/admin/staff/quanly2/photo",
            headers={"Authorization": f"Bearer {token}", "Content-Type": kind},
            data=body,
            timeout=30,
        )

    staff_before = rows(office, m.staff)
    for body, kind in ((b"not a picture", "image/png"), (picture.getvalue(), "text/plain")):
        refused = send(body, kind)
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "photo"
    assert rows(office, m.staff) == staff_before
    assert send(picture.getvalue(), "image/png").status_code == 200
    with Image.open(io.BytesIO(rows_photo(office, "quanly2"))) as kept:
        assert kept.format == "JPEG" and max(kept.size) == 360
    lent = requests.put(  # clerk1 is T1's, lent to T2: its photo is T1's to set
        f"{office.url}/api/v1/admin/staff/clerk1/photo",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"},
        data=picture.getvalue(),
        timeout=30,
    )
    assert lent.status_code == 404, lent.text

    # On the page: the account's form says it has a photo, and removes it.
    page = admin_page
    log_in(page, office)
    page.click("[data-tab=staff]")
    page.locator("[data-entry=quanly2] [data-action=edit]").click()
    expect(page.get_by_test_id("photo-state")).to_have_text("✓")
    screenshot(page, "admin-staff-form")
    page.get_by_role("button", name="Xóa ảnh").click()
    expect(page.get_by_test_id("photo-state")).to_have_text("Chưa có ảnh")
    assert rows_photo(office, "quanly2") is None
    # Chosen on the page: shrunk by the browser, sent, kept as the tablet's JPEG.
    page.get_by_test_id("photo-file").set_input_files(
        files=[{"name": "anh.png", "mimeType": "image/png", "buffer": picture.getvalue()}]
    )
    expect(page.get_by_test_id("message")).to_have_text("Đã lưu ảnh.")
    expect(page.get_by_test_id("photo-state")).to_have_text("✓")
    with Image.open(io.BytesIO(rows_photo(office, "quanly2"))) as kept:
        assert kept.format == "JPEG" and max(kept.size) == 360


def rows_photo(server, username):
    st = m.staff
    engine = sa.create_engine(normalise_url(server.database_url))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(st.c.photo).where(st.c.username == username)).scalar()
    finally:
        engine.dispose()


def test_a_cross_site_form_cannot_change_anything(browser, office):
    """Staff requests carry the session as a Bearer header from the page's script, never a
    cookie: a form another site posts (it can send no such header) is refused, 401."""
    before = rows(office, m.services), configured(office)
    for method in ("POST", "PUT", "DELETE"):
        answer = requests.request(
            method,
            office.url + "/api/v1/admin/services/HT",
            headers={"Origin": "http://evil.example", "Referer": "http://evil.example/"},
            data={"name": "x", "agency": "y", "prefix": "Z"},
            timeout=30,
        )
        assert answer.status_code in (401, 405), (method, answer.status_code)
    # Another site's script may not send the header: its preflight is not granted.
    preflight = requests.options(
        office.url + "/api/v1/admin/services/HT",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=30,
    )
    assert not any(h.lower().startswith("access-control-allow") for h in preflight.headers)
    # A real browser: logged in on the admin page, then a page elsewhere posts a form.
    context = browser.new_context(viewport=CLERK_SCREEN)
    page = context.new_page()
    try:
        log_in(page, office)
        expect(page.locator("#app")).to_have_attribute("data-view", "admin")
        assert context.cookies() == []  # the session is in sessionStorage, not a cookie
        form = (
            f'<form method="post" action="{office.url}/api/v1/admin/services/HT">'
            '<input name="name" value="x"></form>'
        )
        page.set_content(form)
        with page.expect_navigation() as sent:
            page.evaluate("document.forms[0].submit()")
        assert sent.value.status == 405  # a form can only POST: no such route
        page.set_content(form.replace("services/HT", "centre"))  # PUT only, too
        with page.expect_navigation() as sent:
            page.evaluate("document.forms[0].submit()")
        assert sent.value.status == 405
    finally:
        context.close()
    assert (rows(office, m.services), configured(office)) == before


def test_the_page_in_english_says_the_refusal_in_english(admin_page, office):
    page = admin_page
    page.goto(office.url + "/admin/?lang=en")
    page.fill("input[name=username]", "quantri2")
    page.fill("input[name=password]", "quantri2-secret")
    page.locator("button[type=submit]").click()
    expect(page.get_by_role("tab", name="Service")).to_be_visible()
    page.get_by_test_id("add").click()
    page.fill("#f-code", "CT")
    page.fill("#f-prefix", "Ch")
    page.fill("#f-name", "Certification")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-error-for=prefix]")).to_have_text(
        "'prefix' must be 1-4 capital letters without diacritics"
    )


def test_in_the_demo_the_admin_changes_a_service_and_the_kiosk_shows_it(browser, tmp_path):
    """The issue's "done when": in the `make run` demo the admin printed on the start page
    changes a service from the page and the kiosk shows it at once."""
    from harness.process import ServerProcess

    demo = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'demo.sqlite3'}", args=("--demo",))
    demo.start()
    context = browser.new_context(viewport=CLERK_SCREEN, locale="vi-VN")
    kiosk_context = browser.new_context(viewport=KIOSK_SCREEN, locale="vi-VN", has_touch=True)
    try:
        kiosk = kiosk_context.new_page()
        kiosk.goto(demo.url + "/")
        kiosk.get_by_role("link", name="Máy lấy số").click()
        expect(kiosk.locator("[data-service=TP]")).to_contain_text("Lý lịch tư pháp")

        page = context.new_page()
        page.errors = PageErrors(page)
        page.goto(demo.url + "/")
        page.get_by_test_id("admin-login").click()
        page.fill("input[name=username]", "quantri")
        page.fill("input[name=password]", "motcua-demo-quantri")
        page.get_by_role("button", name="Đăng nhập").click()
        expect(page.locator("[data-entry=TP]")).to_be_visible()
        screenshot(page, "admin-demo-services")
        page.locator("[data-entry=TP] [data-action=edit]").click()
        page.fill("#f-name", "Lý lịch tư pháp (cấp trong ngày)")
        page.get_by_role("button", name="Lưu").click()
        expect(page.locator("[data-entry=TP]")).to_contain_text("cấp trong ngày")
        expect(kiosk.locator("[data-service=TP]")).to_contain_text("cấp trong ngày")
        for tab in ("counters", "staff", "devices"):
            page.click(f"[data-tab={tab}]")
            expect(page.get_by_test_id(f"panel-{tab}")).to_be_visible()
            screenshot(page, f"admin-demo-{tab}")
        assert page.errors.errors == []
    finally:
        context.close()
        kiosk_context.close()
        demo.stop()


def test_a_services_own_hours_and_priority_groups_from_its_form(admin_page, office):
    """The service form's hours (entered as the settings' are) and priority groups: a bad
    range refused beside the field with nothing written, then saved, shown again, and
    cleared back to the centre's hours and every group."""
    page = admin_page
    log_in(page, office)
    page.locator("[data-entry=HT] [data-action=edit]").click()
    before = (rows(office, m.services), configured(office))
    page.fill("input[name=hours-tue]", "7:30-11:30")
    page.check("input[name=priorities][value=elderly]")
    page.get_by_role("button", name="Lưu").click()
    expect(page.locator("[data-error-for=hours]")).to_have_text(
        "khoảng giờ “7:30-11:30” (tue) phải có dạng 07:30-11:30"
    )
    assert (rows(office, m.services), configured(office)) == before
    page.fill("input[name=hours-tue]", "07:30-11:30")
    page.fill("input[name=hours-thu]", "07:30-11:30, 13:30-16:00")
    page.check("input[name=priorities][value=disabled]")
    screenshot(page, "admin-service-hours")
    page.get_by_role("button", name="Lưu").click()
    expect(page.get_by_test_id("message")).to_have_text("Đã lưu.")
    token = office.login("quantri2")
    config = requests.get(
        office.url + "/api/v1/admin/config",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    ht = next(s for s in config["services"] if s["code"] == "HT")
    assert ht["hours"] == {"tue": ["07:30-11:30"], "thu": ["07:30-11:30", "13:30-16:00"]}
    assert ht["priorities"] == ["elderly", "disabled"]
    # Shown again in the form; cleared, the centre's hours and every group again.
    page.locator("[data-entry=HT] [data-action=edit]").click()
    expect(page.locator("input[name=hours-thu]")).to_have_value("07:30-11:30, 13:30-16:00")
    expect(page.locator("input[name=priorities][value=disabled]")).to_be_checked()
    expect(page.locator("input[name=priorities][value=merit]")).not_to_be_checked()
    for day in ("tue", "thu"):
        page.fill(f"input[name=hours-{day}]", "")
    for group in ("elderly", "disabled"):
        page.uncheck(f"input[name=priorities][value={group}]")
    page.get_by_role("button", name="Lưu").click()
    expect(page.get_by_test_id("message")).to_have_text("Đã lưu.")
    s = m.services
    kept = [r for r in rows(office, s) if r[[c.name for c in s.c].index("code")] == "HT"]
    hours_at, groups_at = (
        [c.name for c in s.c].index("opening_hours"),
        [c.name for c in s.c].index("priorities"),
    )
    assert all(r[hours_at] is None and r[groups_at] is None for r in kept)
    assert all(" 400 " in f" {r}" for r in page.errors.errors)
