"""The rating tablet's page (/rating/) in headless Chromium, as a citizen at the counter
touches it, against a real server process. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import re
import time

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from harness.browser import (
    TABLET_LANDSCAPE,
    TABLET_PORTRAIT,
    PageErrors,
    screenshot,
    wait_until,
)
from harness.centre import CENTRE, RATING_1, CentreServer

pytestmark = pytest.mark.timeout(120)
PHOTO = CENTRE.parent / "photos" / "clerk1.png"  # an illustration, not a person


def open_tablet(browser, server, viewport=TABLET_PORTRAIT, token=RATING_1):
    context = browser.new_context(viewport=viewport, locale="vi-VN", has_touch=True)
    page = context.new_page()
    page.errors = PageErrors(page)
    page.goto(f"{server.url}/rating/?token={token}")
    expect(page.get_by_test_id("counter")).to_have_text("Quầy 1")
    return page


def centre_file(tmp_path, timeout_s: int | None = None, photo: bool = False):
    """The test centre, with the tablet's timeout or clerk1's photo set."""
    text = CENTRE.read_text(encoding="utf-8")
    centre = 'timezone = "Asia/Ho_Chi_Minh"'
    if timeout_s:
        text = text.replace(centre, f"{centre}\nrating_timeout_s = {timeout_s}", 1)
    if photo:
        clerk = 'full_name = "Nguyễn Văn A"'
        text = text.replace(clerk, f'{clerk}\nphoto = "{PHOTO}"', 1)
    path = tmp_path / "centre.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def photo_server(tmp_path):
    path = centre_file(tmp_path, photo=True)
    srv = CentreServer(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", provision=path).start()
    yield srv
    srv.stop()


@pytest.fixture
def tablet(browser, sqlite_server):
    page = open_tablet(browser, sqlite_server)
    yield page
    page.context.close()


def ratings(server) -> list[dict]:
    """The ratings as stored (read straight from the server's database)."""
    engine = sa.create_engine(server.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT t.number, r.score, r.reasons, r.comment, r.device_id "
                    "FROM ratings r JOIN tickets t ON t.id = r.ticket_id ORDER BY r.id"
                )
            ).all()
    finally:
        engine.dispose()
    return [
        {
            "number": n,
            "score": s,
            "reasons": json.loads(r) if isinstance(r, str) else r,
            "comment": c,
            "device": d,
        }
        for n, s, r, c, d in rows
    ]


def serve_one(kiosk, clerk, service="TP") -> dict:
    """A citizen takes a number and is served to the end at the clerk's counter."""
    ticket = kiosk.call("issue", {"service": service})["ticket"]
    assert clerk.call("call", {"ticket_id": ticket["id"]})["ok"]
    assert clerk.call("start", {"ticket_id": ticket["id"]})["ok"]
    return ticket


def finish(clerk, ticket):
    assert clerk.call("finish", {"ticket_id": ticket["id"]})["ok"]


def test_idle_follows_the_counter_and_each_choice_stores_its_level(browser, photo_server, devices):
    server = photo_server
    page = open_tablet(browser, server)
    # Opened once with its token: kept, and gone from the address bar.
    assert page.url == f"{server.url}/rating/"
    assert page.evaluate("localStorage.getItem('motcua.rating.token')") == RATING_1
    expect(page.get_by_test_id("status")).to_have_text("Quầy đóng")

    kiosk = devices.kiosk(server)
    clerk = devices.counter(server, "clerk1", 1)
    expect(page.get_by_test_id("clerk")).to_have_text("Nguyễn Văn A")
    expect(page.get_by_test_id("serving")).to_have_text("Chưa có số nào đang được phục vụ")
    # The clerk's photo from the provisioning file, fetched with the tablet's token.
    photo = page.get_by_test_id("photo")
    expect(photo).to_have_attribute("src", re.compile(r"^data:image/jpeg;base64,"))

    for score in (3, 2):
        ticket = serve_one(kiosk, clerk)
        expect(page.get_by_test_id("serving")).to_have_text(ticket["number"])
        if score == 3:
            screenshot(page, "rating-idle-portrait")
        finish(clerk, ticket)
        expect(page.get_by_test_id("question")).to_have_text(
            "Ông/Bà đánh giá thế nào về việc giải quyết thủ tục hôm nay?"
        )
        if score == 3:
            screenshot(page, "rating-question-portrait")
        page.locator(f"[data-score='{score}']").tap()
        expect(page.get_by_test_id("thanks")).to_have_text("Xin cảm ơn Ông/Bà đã đánh giá!")
        deadline = time.monotonic() + 10
        while len(ratings(server)) < (1 if score == 3 else 2):
            assert time.monotonic() < deadline, "the rating was not stored"
            time.sleep(0.1)
        stored = ratings(server)[-1]
        assert (stored["number"], stored["score"], stored["reasons"], stored["comment"]) == (
            ticket["number"],
            score,
            [],
            None,
        )
        expect(page.get_by_test_id("idle")).to_be_visible(timeout=10000)
    assert page.errors.errors == []
    page.context.close()


def test_not_satisfied_asks_reasons_and_a_comment_typed_with_accents(
    tablet, sqlite_server, devices
):
    page = tablet
    kiosk = devices.kiosk(sqlite_server)
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    ticket = serve_one(kiosk, clerk)
    finish(clerk, ticket)
    levels = page.locator(".r-level")
    expect(levels).to_have_count(3)
    for box in (levels.nth(i).bounding_box() for i in range(3)):
        assert box["height"] >= 64 and box["width"] >= 64
    expect(levels).to_have_text(["Rất hài lòng", "Hài lòng", "Không hài lòng"])
    page.locator("[data-score='1']").tap()
    expect(page.get_by_test_id("reasons-title")).to_have_text("Ông/Bà chưa hài lòng về điều gì?")
    page.locator("[data-reason='Thời gian chờ quá lâu']").tap()
    page.locator("[data-reason='Hướng dẫn không rõ ràng']").tap()
    page.locator("[data-reason='Hướng dẫn không rõ ràng']").tap()  # changed their mind
    page.locator("[data-reason='Thái độ phục vụ chưa tốt']").tap()
    expect(page.locator("[data-reason='Thời gian chờ quá lâu']")).to_have_attribute(
        "aria-pressed", "true"
    )
    screenshot(page, "rating-reasons-portrait")
    page.get_by_test_id("next").tap()

    def keys(*names):
        for name in names:
            page.locator(f".kb-key[data-key='{name}']").tap()

    # "Chờ lâu quá": letters, then the accent keys on the word just typed.
    keys("c", "h", "o", "horn", "huyen", "space", "l", "a", "u", "hat", "space")
    keys("q", "u", "a", "sac")
    expect(page.get_by_test_id("comment")).to_have_text("chờ lâu quá")
    keys("space", "x", "y", "delete", "delete")
    expect(page.get_by_test_id("comment")).to_have_text("chờ lâu quá ")
    screenshot(page, "rating-comment-portrait")
    page.get_by_test_id("send").tap()
    expect(page.get_by_test_id("thanks")).to_be_visible()
    deadline = time.monotonic() + 10
    while not ratings(sqlite_server):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert ratings(sqlite_server) == [
        {
            "number": ticket["number"],
            "score": 1,
            "reasons": ["Thái độ phục vụ chưa tốt", "Thời gian chờ quá lâu"],
            "comment": "chờ lâu quá",
            "device": ratings(sqlite_server)[0]["device"],
        }
    ]
    assert ratings(sqlite_server)[0]["device"] is not None
    assert page.errors.errors == []


def test_landscape_and_a_new_finish_replaces_the_request(browser, sqlite_server, devices):
    page = open_tablet(browser, sqlite_server, TABLET_LANDSCAPE)
    kiosk = devices.kiosk(sqlite_server)
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    first = serve_one(kiosk, clerk)
    expect(page.get_by_test_id("serving")).to_have_text(first["number"])
    screenshot(page, "rating-idle-landscape")
    finish(clerk, first)
    expect(page.get_by_test_id("question")).to_be_visible()
    expect(page.locator(".r-ticket")).to_have_text(f"Số {first['number']}")
    screenshot(page, "rating-question-landscape")
    page.locator("[data-score='1']").tap()
    expect(page.get_by_test_id("reasons-title")).to_be_visible()
    screenshot(page, "rating-reasons-landscape")
    page.get_by_test_id("next").tap()
    expect(page.get_by_test_id("keyboard")).to_be_visible()
    screenshot(page, "rating-comment-landscape")
    # The next visit finishes before this citizen answers: the tablet asks about it.
    second = serve_one(kiosk, clerk)
    finish(clerk, second)
    expect(page.locator(".r-ticket")).to_have_text(f"Số {second['number']}")
    page.locator("[data-score='3']").tap()
    expect(page.get_by_test_id("thanks")).to_be_visible()
    screenshot(page, "rating-thanks-landscape")
    deadline = time.monotonic() + 10
    while not ratings(sqlite_server):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert [(r["number"], r["score"]) for r in ratings(sqlite_server)] == [(second["number"], 3)]
    assert page.errors.errors == []
    page.context.close()


def test_no_answer_goes_back_to_idle_and_records_nothing(browser, devices, tmp_path):
    centre = centre_file(tmp_path, timeout_s=10)
    server = CentreServer(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", provision=centre)
    server.start()
    try:
        page = open_tablet(browser, server)
        kiosk = devices.kiosk(server)
        clerk = devices.counter(server, "clerk1", 1)
        ticket = serve_one(kiosk, clerk)
        finish(clerk, ticket)
        expect(page.get_by_test_id("question")).to_be_visible()
        expect(page.locator("#back-in")).to_contain_text("10 giây")
        started = time.monotonic()
        expect(page.get_by_test_id("idle")).to_be_visible(timeout=15000)
        assert 9 <= time.monotonic() - started <= 12.5
        assert ratings(server) == []
        # Not asked again about the same visit after a reload (the window is still open).
        page.reload()
        expect(page.get_by_test_id("idle")).to_be_visible()
        page.wait_for_timeout(1000)
        expect(page.get_by_test_id("question")).to_have_count(0)
        # The visit is still rateable elsewhere (the status page) under the same rules.
        assert page.errors.errors == []
        page.context.close()
    finally:
        server.stop()


def test_a_tap_while_offline_is_kept_and_delivered_once(browser, sqlite_server, devices):
    page = open_tablet(browser, sqlite_server)
    kiosk = devices.kiosk(sqlite_server)
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    ticket = serve_one(kiosk, clerk)
    finish(clerk, ticket)
    expect(page.get_by_test_id("question")).to_be_visible()

    sqlite_server.stop()
    expect(page.locator("#offline")).to_be_visible()
    page.locator("[data-score='2']").tap()
    expect(page.get_by_test_id("saved")).to_have_text(
        "Đánh giá của Ông/Bà đã được lưu trên máy và sẽ được gửi khi có kết nối lại."
    )
    screenshot(page, "rating-saved-offline-portrait")
    assert len(page.evaluate("JSON.parse(localStorage.getItem('motcua.rating.outbox'))")) == 1

    sqlite_server.restart()
    expect(page.locator("#offline")).to_be_hidden(timeout=15000)
    wait_until(
        page, "JSON.parse(localStorage.getItem('motcua.rating.outbox') || '[]').length === 0", 15
    )
    assert [(r["number"], r["score"]) for r in ratings(sqlite_server)] == [(ticket["number"], 2)]
    # Reconnecting again sends nothing more: once per visit.
    page.reload()
    expect(page.get_by_test_id("idle")).to_be_visible()
    page.wait_for_timeout(1000)
    assert len(ratings(sqlite_server)) == 1
    engine = sa.create_engine(sqlite_server.database_url)
    with engine.connect() as conn:
        rated = conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'rated'"))
        assert rated.scalar() == 1
    engine.dispose()
    page.context.close()


def test_a_tablet_without_a_valid_token_asks_for_setup(browser, sqlite_server):
    context = browser.new_context(viewport=TABLET_PORTRAIT, locale="vi-VN", has_touch=True)
    page = context.new_page()
    page.goto(f"{sqlite_server.url}/rating/?token=not-a-real-rating-token")
    expect(page.get_by_test_id("message")).to_have_text(
        "Mã thiết bị không đúng. Vui lòng báo cán bộ kỹ thuật."
    )
    page.goto(f"{sqlite_server.url}/rating/")  # nothing kept: never set up
    expect(page.get_by_test_id("message")).to_have_text(
        "Máy đánh giá chưa được cài đặt. Vui lòng báo cán bộ kỹ thuật."
    )
    context.close()


def test_the_demo_start_page_leads_to_a_working_tablet(browser, devices, tmp_path):
    """After `make run`: the start page opens counter 1's tablet, which shows the demo's
    clerk with her photo and asks after a finished visit. (README's pictures.)"""
    from harness.process import ServerProcess, login

    demo = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'demo.sqlite3'}", args=("--demo",))
    demo.start()
    try:
        context = browser.new_context(viewport=TABLET_PORTRAIT, locale="vi-VN", has_touch=True)
        page = context.new_page()
        errors = PageErrors(page)
        page.goto(demo.url + "/")
        page.locator("li", has_text="Máy đánh giá quầy 1").get_by_role("link").click()
        expect(page.get_by_test_id("counter")).to_have_text("Quầy 1 — Tư pháp")
        expect(page.get_by_test_id("clerk")).to_have_text("Nguyễn Thị Lan")
        expect(page.get_by_test_id("photo")).to_be_visible()
        kiosk = devices(demo, "/kiosk", {"token": "demo-kiosk-sanh-a-0001"})
        token = login(demo.url, "canbo1", "motcua-demo-1")
        clerk = devices(demo, "/counter", {"token": token, "counter": 1})
        ticket = serve_one(kiosk, clerk)
        expect(page.get_by_test_id("serving")).to_have_text(ticket["number"])
        before = clerk.call("my_ratings")["levels"]  # the demo's past month
        screenshot(page, "rating-demo-idle")
        finish(clerk, ticket)
        expect(page.get_by_test_id("question")).to_be_visible()
        screenshot(page, "rating-demo-question")
        page.locator("[data-score='1']").tap()
        page.locator("[data-reason='Thời gian chờ quá lâu']").tap()
        screenshot(page, "rating-demo-reasons")
        page.get_by_test_id("next").tap()
        for key in ("c", "h", "o", "horn", "huyen", "space", "l", "a", "u", "hat"):
            page.locator(f".kb-key[data-key='{key}']").tap()
        expect(page.get_by_test_id("comment")).to_have_text("chờ lâu")
        screenshot(page, "rating-demo-comment")
        page.get_by_test_id("send").tap()
        expect(page.get_by_test_id("thanks")).to_be_visible()
        # Recorded, and not in the clerk's own counts (this month up to yesterday: nobody
        # can tell how today's visit was rated).
        assert clerk.call("my_ratings")["levels"] == before
        assert errors.errors == []
        context.close()
    finally:
        demo.stop()
