"""The reports' endpoints on a real server process, on SQLite and PostgreSQL: the summary
as JSON, CSV and XLSX, a breakdown's downloads with their diacritics, who is refused and
how a bad range is refused.

The data are a few tickets, ratings and dossiers of the commune office (tests/commune.toml,
where the test accounts include a manager and an admin), written straight into the
server's store with August's times (the engine stamps only the present); the figures
expected are worked out by hand below."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import requests
import sqlalchemy as sa
from openpyxl import load_workbook

from core import models as m
from core.lifecycle import durations
from harness.centre import COMMUNE

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
AUGUST = "from=2026-08-01&to=2026-08-31"
SLOW = "Thời gian chờ quá lâu"
# Stored as typed (the tablet refuses markup; this one was written straight to the store):
# whatever shows it must show the brackets, not make them a tag.
SAID = "Chờ hơi lâu <b>quá</b>"


def at(day, hour, minute=0, second=0):
    return datetime(2026, 8, day, hour, minute, second, tzinfo=TZ)


def seed(url):
    """In T2 on Monday 3 August: A served (waited 600 s, served 300 s, rated very
    satisfied), B served (1,500 s, 200 s, rated dissatisfied: too long a wait), C a no-show
    (900 s), D cancelled before its call; E on 1 September (outside). Dossiers: one in
    person returned on time, one online returned late, one by post overdue now."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        centre = conn.execute(sa.select(m.centres.c.id).where(m.centres.c.code == "T2")).scalar()
        service = conn.execute(
            sa.select(m.services.c.id).where(m.services.c.centre_id == centre)
        ).scalar()
        counter = conn.execute(
            sa.select(m.counters.c.id).where(
                m.counters.c.centre_id == centre, m.counters.c.number == 2
            )
        ).scalar()
        clerk = conn.execute(sa.select(m.staff.c.id).where(m.staff.c.username == "clerk1")).scalar()

        def ticket(no, issued, status, wait=None, serve=None):
            called = issued + timedelta(seconds=wait) if wait is not None else None
            finished = called + timedelta(seconds=serve or 60) if called else None
            return conn.execute(
                m.tickets.insert().values(
                    centre_id=centre,
                    service_id=service,
                    business_date=issued.date(),
                    prefix="A",
                    seq_no=no,
                    number=f"A{no:03d}",
                    status=status,
                    public_key=secrets.token_urlsafe(16),
                    issued_at=issued,
                    called_at=called,
                    started_at=called if serve else None,
                    finished_at=finished,
                    counter_id=counter if called else None,
                    staff_id=clerk if called else None,
                    **durations(status, issued, called, called if serve else None, finished),
                )
            ).inserted_primary_key[0]

        a = ticket(1, at(3, 8), "done", 600, 300)
        b = ticket(2, at(3, 8, 5), "done", 1500, 200)
        ticket(3, at(3, 9), "no_show", 900)
        ticket(4, at(3, 10), "cancelled")
        ticket(1, datetime(2026, 9, 1, 8, tzinfo=TZ), "done", 60, 60)
        for tid, score, reasons, when, comment in (
            (a, 3, [], at(3, 8, 16), None),
            (b, 1, [SLOW], at(3, 8, 35), SAID),
        ):
            conn.execute(
                m.ratings.insert().values(
                    ticket_id=tid,
                    centre_id=centre,
                    service_id=service,
                    counter_id=counter,
                    staff_id=clerk,
                    score=score,
                    reasons=reasons,
                    comment=comment,
                    rated_at=when,
                )
            )
        for code, via, received, due, returned in (
            ("X1-260803-0001", "in_person", at(3, 9), at(10, 23, 59, 59), at(5, 10)),
            ("X1-260804-0002", "online", at(4, 9), at(6, 23, 59, 59), at(8, 10)),
            ("X1-260805-0003", "post", at(5, 9), at(7, 23, 59, 59), None),
        ):
            conn.execute(
                m.dossiers.insert().values(
                    centre_id=centre,
                    code=code,
                    field="Hộ tịch",
                    submitted_via=via,
                    received_at=received,
                    due_at=due,
                    returned_at=returned,
                    status="returned" if returned else "processing",
                    created_at=received,
                    updated_at=received,
                )
            )
    engine.dispose()


def get(server, path, token):
    return requests.get(server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_reports_over_http_as_json_csv_and_xlsx(any_server):
    any_server.provision_also(COMMUNE)
    seed(any_server.database_url)
    manager, admin = any_server.login("quanly2"), any_server.login("quantri2")

    answer = get(any_server, f"/api/v1/reports/summary?{AUGUST}", manager)
    assert answer.status_code == 200, answer.text
    said = answer.json().pop("comments")
    assert said["total"] == 1
    assert said["shown"] == [
        {
            "at": "2026-08-03T08:35:00+07:00",
            "score": 1,
            "service": "Hộ tịch",
            "counter": said["shown"][0]["counter"],
            "text": SAID,
        }
    ]
    booked = answer.json()["appointments"]  # none in this month: zeros
    assert booked["booked"] == 0 and booked["wait_s"]["walk_ins"]["n"] > 0
    skip = ("comments", "appointments")
    assert {k: v for k, v in answer.json().items() if k not in skip} == {
        "ok": True,
        "centre": "T2",
        "from": "2026-08-01",
        "to": "2026-08-31",
        "tickets": {"issued": 4, "served": 2, "no_show": 1, "cancelled": 1, "transferred": 0},
        "wait_s": {
            "mean": 1000.0,
            "median": 900.0,
            "p90": 1500.0,
            "within_target_share": 2 / 3,
            "target": 1200,
        },
        "service_s": {"mean": 250.0, "median": 250.0, "p90": 300.0},
        "ratings": {
            "very_satisfied": 1,
            "satisfied": 0,
            "dissatisfied": 1,
            "total": 2,
            "satisfied_share": 0.5,
            "very_satisfied_share": 0.5,
            "reasons": {SLOW: 1},
        },
        "dossiers": {
            "received": 3,
            "in_person": 1,
            "online": 1,
            "post": 1,
            "returned": 2,
            "returned_on_time": 1,
            "returned_late": 1,
            "overdue_now": 1,
            "on_time_share": 0.5,
        },
    }

    # CSV: UTF-8 with its byte-order mark, Vietnamese headings, the centre's dates.
    answer = get(any_server, f"/api/v1/reports/summary?{AUGUST}&format=csv&centre=T2", admin)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/csv")
    assert (
        'filename="bao-cao-T2-2026-08-01-2026-08-31.csv"' in answer.headers["Content-Disposition"]
    )
    assert answer.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert lines[0][:4] == ["Từ ngày", "Đến ngày", "Trung tâm", "Số phiếu đã cấp"]
    assert f"Lý do không hài lòng: {SLOW}" in lines[0]
    row = dict(zip(lines[0], lines[1], strict=True))
    assert (row["Từ ngày"], row["Đến ngày"], row["Trung tâm"]) == ("2026-08-01", "2026-08-31", "T2")
    assert (row["Số phiếu đã cấp"], row["Tỉ lệ đúng hạn"], row["Tiếp nhận qua bưu chính"]) == (
        "4",
        "0.5",
        "1",
    )

    # XLSX of the summary: the figures, and the comments on a sheet of their own.
    answer = get(any_server, f"/api/v1/reports/summary?{AUGUST}&format=xlsx", manager)
    book = load_workbook(io.BytesIO(answer.content))
    assert book.sheetnames == ["Báo cáo", "Góp ý của công dân"]
    figures = [[c.value for c in r] for r in book["Báo cáo"].iter_rows()]
    assert dict(zip(*figures, strict=True))["Tiếp nhận trực tuyến"] == 1
    said = [[c.value for c in r] for r in book["Góp ý của công dân"].iter_rows()]
    assert said[0] == ["Thời điểm", "Mức đánh giá", "Lĩnh vực", "Quầy", "Góp ý"]
    assert said[1][0] == datetime(2026, 8, 3, 8, 35)  # the centre's local time
    assert said[1][1:3] == ["Không hài lòng", "Hộ tịch"] and said[1][4] == SAID

    # XLSX: a breakdown by clerk and by weekday, opened as a spreadsheet program would.
    for by, label in (
        ("clerk", "Nguyễn Văn A"),
        ("weekday", "Thứ Hai"),
        ("hour", "08:00–09:00"),
        ("field", "Hộ tịch"),
    ):
        answer = get(any_server, f"/api/v1/reports/breakdown?by={by}&{AUGUST}&format=xlsx", admin)
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"].startswith("application/vnd.openxmlformats")
        sheet = load_workbook(io.BytesIO(answer.content)).active
        assert sheet.title == "Báo cáo"
        rows = [[c.value for c in r] for r in sheet.iter_rows()]
        headings = rows[0]
        assert headings[:2] == ["Từ ngày", "Đến ngày"]
        found = {r[2]: dict(zip(headings, r, strict=True)) for r in rows[1:]}
        assert label in found, (by, found)
        mine = found[label]
        assert mine["Từ ngày"].date().isoformat() == "2026-08-01"
        if by == "field":
            assert (mine["Hồ sơ tiếp nhận"], mine["Trả trễ hạn"]) == (3, 1)
            assert "Số phiếu đã cấp" not in headings
        else:
            issued = {"clerk": 3, "weekday": 4, "hour": 2}[by]  # C and D at 9 and 10
            assert (mine["Số phiếu đã cấp"], mine["Rất hài lòng"]) == (issued, 1)
            assert mine["Tỉ lệ hài lòng"] == 0.5
    # Staffing advice for Mondays, read from the one Monday up to 3 August: the arrivals of
    # each hour (A and B at 8, C at 9, D at 10), A's and B's service (250 s on average),
    # one counter enough for each hour (Erlang C: 2 an hour at 250 s each wait past 20
    # minutes with a chance of 0.2 %), no counter opened (none was, in these data).
    answer = get(any_server, "/api/v1/reports/staffing?weekday=0&until=2026-08-03&weeks=1", manager)
    assert answer.status_code == 200, answer.text
    advice = answer.json()
    assert (advice["weekday"], advice["until"], advice["weeks"]) == (0, "2026-08-03", 1)
    assert (advice["target_wait_s"], advice["level"]) == (1200, 0.9)
    assert [
        (r["service_name"], r["hour"], r["arrivals"], r["mean_service_s"], r["needed"], r["open"])
        for r in advice["rows"]
    ] == [
        ("Hộ tịch", 8, 2.0, 250.0, 1, 0.0),
        ("Hộ tịch", 9, 1.0, 250.0, 1, 0.0),
        ("Hộ tịch", 10, 1.0, 250.0, 1, 0.0),
    ]
    answer = get(
        any_server, "/api/v1/reports/staffing?weekday=0&until=2026-08-03&weeks=1&format=xlsx", admin
    )
    sheet = load_workbook(io.BytesIO(answer.content)).active
    assert sheet.title == "Gợi ý bố trí quầy"
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert rows[0][0] == "Lĩnh vực" and rows[0][4] == "Số quầy cần"
    assert rows[1] == ["Hộ tịch", "08:00–09:00", 2, 250, 1, 0]

    # In English, on request.
    answer = get(any_server, f"/api/v1/reports/breakdown?by=weekday&{AUGUST}&lang=en", manager)
    assert [r["label"] for r in answer.json()["rows"]][:1] == ["Monday"]


def test_reports_refuse_clerks_and_bad_ranges(any_server):
    any_server.provision_also(COMMUNE)
    manager, clerk = any_server.login("quanly2"), any_server.login("clerk1")
    for path in ("summary?", "breakdown?by=service&"):
        refused = get(any_server, f"/api/v1/reports/{path}{AUGUST}&centre=T2", clerk)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        assert "xem và xuất báo cáo" in refused.json()["error"]["message"]
    assert get(any_server, f"/api/v1/reports/summary?{AUGUST}", "").status_code == 401
    for query, message in (
        (
            "from=2026-08-31&to=2026-08-01",
            "Giá trị của “from” không hợp lệ: không được sau ngày “to”",
        ),
        ("from=2026-08-01", "Thiếu trường bắt buộc “to”."),
        (
            "from=2026-08-01&to=31/08/2026",
            "Giá trị của “to” không hợp lệ: phải là một ngày dạng YYYY-MM-DD",
        ),
        (
            "from=2025-01-01&to=2026-08-31",
            "Giá trị của “to” không hợp lệ: mỗi báo cáo tối đa 366 ngày",
        ),
        (f"{AUGUST}&format=pdf", "Giá trị của “format” không hợp lệ: một trong: json, csv, xlsx"),
    ):
        refused = get(any_server, f"/api/v1/reports/summary?{query}", manager)
        assert refused.status_code == 400, query
        assert refused.json() == {"ok": False, "error": {"code": "bad_request", "message": message}}
    refused = get(any_server, "/api/v1/reports/staffing?weekday=7", manager)
    assert refused.json()["error"]["message"] == (
        "Giá trị của “weekday” không hợp lệ: từ 0 (thứ Hai) đến 6 (Chủ nhật)"
    )
    refused = get(any_server, "/api/v1/reports/staffing?weekday=1", clerk + "x")
    assert refused.status_code == 401
    refused = get(any_server, "/api/v1/reports/staffing?weekday=1&centre=T2", clerk)
    assert refused.status_code == 403
    refused = get(any_server, f"/api/v1/reports/breakdown?by=planet&{AUGUST}&lang=en", manager)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("Invalid 'by': one of: agency, service")


# -- the page ----------------------------------------------------------------------------
def test_the_reports_page_shows_a_month_and_downloads_it(browser, sqlite_server, tmp_path):
    from playwright.sync_api import expect

    from harness.browser import ARTIFACTS, CLERK_SCREEN, PageErrors, screenshot

    sqlite_server.provision_also(COMMUNE)
    seed(sqlite_server.database_url)
    context = browser.new_context(viewport=CLERK_SCREEN, locale="vi-VN", accept_downloads=True)
    page = context.new_page()
    errors = PageErrors(page)
    asked = []  # every address the page fetched: the charts' library too, from the server
    page.on("request", lambda request: asked.append(request.url))

    def log_in(username, password):
        page.goto(sqlite_server.url + "/manage/reports")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.get_by_role("button", name="Đăng nhập").click()

    # A clerk logs in but is refused the figures, in words.
    log_in("clerk1", "clerk1-secret")
    page.fill("input[name=from]", "2026-08-01")
    page.fill("input[name=to]", "2026-08-31")
    page.get_by_role("button", name="Xem báo cáo").click()
    expect(page.get_by_test_id("report-error")).to_have_text(
        "Tài khoản này không có quyền xem và xuất báo cáo."
    )
    page.get_by_role("button", name="Đăng xuất").click()
    expect(page.get_by_test_id("login")).to_be_visible()

    log_in("quanly2", "quanly2-secret")
    expect(page.locator(".r-centre")).to_contain_text("Bộ phận Một cửa xã thử nghiệm")
    page.fill("input[name=from]", "2026-08-01")
    page.fill("input[name=to]", "2026-08-31")
    page.get_by_role("button", name="Xem báo cáo").click()
    expect(page.locator("[data-figure='tickets.issued']")).to_have_text("4")
    expect(page.locator("[data-figure='dossiers.post']")).to_have_text("1")
    expect(page.locator("[data-figure='dossiers.on_time_share']")).to_have_text("50%")
    expect(page.locator(".r-reasons")).to_contain_text(f"{SLOW}: 1")
    expect(page.get_by_test_id("index")).to_contain_text("trả đúng hạn = 1 / 2")
    comments = page.get_by_test_id("comments")
    expect(comments.locator("q")).to_have_text(SAID)  # the brackets shown, no tag made
    assert comments.locator("b").count() == 0
    expect(page.get_by_test_id("breakdown")).to_contain_text("Hộ tịch")
    # Staffing advice for Mondays, from the 8 up to the range's end (3 August had 2
    # arrivals at 8: 0.25 an hour over 8 Mondays), the model stated.
    staffing = page.get_by_test_id("staffing")
    expect(staffing.locator("tbody tr").first).to_contain_text("Hộ tịch08:000,25")
    expect(page.get_by_test_id("staffing-model")).to_contain_text("Erlang C")
    expect(page.get_by_test_id("staffing-model")).to_contain_text("8 thứ hai gần nhất")
    # Charts beside the tables, drawn from the same figures, painted on their canvases.
    expect(page.locator("canvas[data-chart]")).to_have_count(4)  # one service staffed

    def chart_data(name):
        return page.locator(f"canvas[data-chart='{name}']").evaluate(
            """canvas => {
                const chart = Chart.getChart(canvas);
                const pixels = canvas.getContext("2d")
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                let painted = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) painted++;
                return {labels: chart.data.labels,
                        data: chart.data.datasets.map(d => d.data),
                        painted, label: canvas.getAttribute("aria-label")};
            }"""
        )

    ratings = chart_data("ratings")
    levels = [
        int(page.locator(f"[data-figure='ratings.{k}']").inner_text())
        for k in ("very_satisfied", "satisfied", "dissatisfied")
    ]
    assert ratings["data"] == [levels] and sum(levels) > 0, ratings
    assert ratings["painted"] > 1000 and "mức độ hài lòng" in ratings["label"]
    dossiers = chart_data("dossiers")
    assert dossiers["data"][0][:3] == [
        int(page.locator(f"[data-figure='dossiers.{k}']").inner_text())
        for k in ("in_person", "online", "post")
    ]
    by_service = chart_data("breakdown-service")
    assert "Hộ tịch" in by_service["labels"] and by_service["painted"] > 1000
    staffed = page.locator("canvas[data-chart^='staffing-']")
    assert (
        chart_data(staffed.first.get_attribute("data-chart"))["data"][0][0] == 1
    )  # needed at 08:00
    page.locator("[data-by=clerk]").click()
    expect(page.get_by_test_id("breakdown")).to_contain_text("Nguyễn Văn A")
    assert "Nguyễn Văn A" in chart_data("breakdown-clerk")["labels"]
    expect(page.locator("canvas[data-chart='breakdown-service']")).to_have_count(0)
    assert page.evaluate("Object.keys(Chart.instances).length") == 4, "old charts destroyed"
    outside = [
        u for u in asked if not u.startswith(sqlite_server.url) and not u.startswith("blob:")
    ]
    assert outside == [], "no CDN: every file from the server"
    screenshot(page, "reports-month")
    page.screenshot(path=ARTIFACTS / "reports-month-full.png", full_page=True)

    with page.expect_download() as info:
        page.locator(".r-breakdown [data-download=xlsx]").click()
    download = info.value
    assert download.suggested_filename == "bao-cao-T2-2026-08-01-2026-08-31-theo-clerk.xlsx"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    rows = [[c.value for c in r] for r in load_workbook(saved).active.iter_rows()]
    assert "Nguyễn Văn A" in [r[2] for r in rows[1:]]
    with page.expect_download() as info:
        page.locator(".r-summary [data-download=csv]").click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert saved.read_bytes().startswith(b"\xef\xbb\xbfT\xe1\xbb\xab ng\xc3\xa0y")  # "Từ ngày"
    # A bad range is refused in words, the last figures kept out of sight.
    page.fill("input[name=from]", "2026-09-30")
    page.get_by_role("button", name="Xem báo cáo").click()
    expect(page.get_by_test_id("report-error")).to_contain_text("không được sau ngày “to”")
    # Nothing else went wrong than the refusals asked for (the browser logs each).
    unexpected = [
        e for e in errors.errors if "/api/v1/reports/" not in e and "Failed to load" not in e
    ]
    assert unexpected == [], errors.errors
    assert page.locator("[data-figure]").count() == 0
    context.close()
