"""The centre's reports over HTTP (issue 17; docs/reports.md): the summary and the
breakdowns of a date range as JSON, CSV (UTF-8 with a byte-order mark, for Excel) or
XLSX, for staff holding ``reports.view``; and the page ``/manage/reports``.

The figures are core/reports.py's; this module only reads the request, runs them off
the event loop where the server has a thread pool (a year's report reads hundreds of
thousands of rows), and writes the answer in the format asked for.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import sqlalchemy as sa
from flask import Response, current_app, render_template, request
from flask_babel import force_locale, gettext

from core import models as m
from core import reports
from core.clock import business_date
from core.errors import QueueError
from gateway.api import access, request_lang, staff_endpoint
from gateway.web import N_, STAFF_LOGIN_STRINGS

from . import bp

DOORS: tuple[type, ...] = ()
FORMATS = ("json", "csv", "xlsx")
SHEET = N_("Báo cáo")
COMMENTS_SHEET = N_("Góp ý của công dân")
STAFFING_SHEET = N_("Gợi ý bố trí quầy")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _ctx():
    return current_app.extensions["motcua"]


def _format() -> str:
    fmt = request.args.get("format") or "json"
    if fmt not in FORMATS:
        raise QueueError(
            "bad_request",
            "bad_value",
            field="format",
            why=("một trong: " + ", ".join(FORMATS), "one of: " + ", ".join(FORMATS)),
        )
    return fmt


def _read(fn):
    """``fn(conn)`` in one read transaction, in the server's thread pool when it has one."""
    return _ctx().store.read_offloaded(fn)


def _answer(centre_id: int, by: str | None):
    fmt = _format()
    first, last = reports.parse_range(request.args.get("from"), request.args.get("to"))
    if by is not None and by not in reports.BREAKDOWNS:
        raise QueueError(
            "bad_request",
            "bad_value",
            field="by",
            why=(
                "một trong: " + ", ".join(reports.BREAKDOWNS),
                "one of: " + ", ".join(reports.BREAKDOWNS),
            ),
        )

    def read(conn):
        now = m.utcnow()
        if by is None:
            return reports.summary(conn, centre_id, first, last, now)
        return reports.breakdown(conn, centre_id, by, first, last, now)

    report = _read(read)
    lang = request_lang()
    with force_locale(lang):
        if fmt == "json":
            for row in report.get("rows", ()):
                word = row["label"]
                if by == "weekday" or row["key"] is None:
                    row["label"] = gettext(word)  # the system's words, not names
            return report
        headings, rows, shares = reports.table(report, gettext)
        name = _filename(report, by, fmt)
        if fmt == "csv":
            return _download(_csv(headings, rows), "text/csv; charset=utf-8", name)
        sheets = [(gettext(SHEET), headings, rows, shares)]
        if by is None:  # the summary: its comments on a sheet of their own
            sheets.append((gettext(COMMENTS_SHEET), *reports.comment_table(report, gettext), set()))
        return _download(_xlsx(sheets), XLSX_TYPE, name)


def _filename(report: dict, by: str | None, fmt: str) -> str:
    """``bao-cao-T1-2026-08-01-2026-08-31[-theo-counter].csv``: ASCII, safe in a header."""
    code = "".join(ch for ch in report["centre"] if ch.isalnum() or ch in "-_") or "centre"
    tail = f"-theo-{by}" if by else ""
    return f"bao-cao-{code}-{report['from']}-{report['to']}{tail}.{fmt}"


def _download(body: bytes, mimetype: str, name: str) -> Response:
    return Response(
        body,
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, no-store",
        },
    )


# Text a spreadsheet would take for a formula. Names and fields come from provisioning
# files and the province's system, comments from citizens: shown as text, never run.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(value):
    """A CSV cell: text that starts like a formula gets a leading apostrophe (what
    spreadsheets show as the text itself)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _csv(headings: list, rows: list) -> bytes:
    """UTF-8 with a byte-order mark (Excel reads the diacritics right only with it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_text_cell(h) for h in headings])
    writer.writerows([_text_cell(v) for v in row] for row in rows)
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def _when(value: str):
    """A day (``2026-08-01``) or a local time with its offset as a spreadsheet's date or
    time (which has no zone: the centre's local time, as the offset says)."""
    if len(value) == 10:
        return date.fromisoformat(value)
    return datetime.fromisoformat(value).replace(tzinfo=None)


def _xlsx(sheets: list, dated: int | None = None) -> bytes:
    """A workbook of ``(title, headings, rows, share columns)`` sheets: headings in bold,
    the range's two dates as dates, shares as percentages."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    for n, (title, headings, rows, shares) in enumerate(sheets):
        ws = wb.active if n == 0 else wb.create_sheet()
        ws.title = title[:31]
        ws.append(headings)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        # The figures' range (two dates), or a comment's time (local, as the centre reads it).
        dates = (2 if n == 0 else 1) if dated is None else dated
        for row in rows:
            ws.append([_when(v) if i < dates else v for i, v in enumerate(row)])
        for line in ws.iter_rows():
            for i, cell in enumerate(line):
                if isinstance(cell.value, str) and cell.data_type == "f":
                    cell.data_type = "s"  # text that starts with "=" stays text
                if cell.row == 1:
                    continue
                if i < dates:
                    cell.number_format = "yyyy-mm-dd" if n == 0 else "yyyy-mm-dd hh:mm"
                elif i in shares:
                    cell.number_format = "0.0%"
        ws.freeze_panes = "D2" if n == 0 and dates else "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@bp.get("/api/v1/reports/summary")
@staff_endpoint("reports.view")
def summary(principal, centre_id):
    """The centre's figures over ``from``..``to`` (docs/reports.md)."""
    return _answer(centre_id, None)


@bp.get("/api/v1/reports/breakdown")
@staff_endpoint("reports.view")
def breakdown(principal, centre_id):
    """The same figures per agency, service, counter, clerk, hour, weekday or field."""
    by = request.args.get("by")
    if not by:
        raise QueueError("bad_request", "missing_field", field="by")
    return _answer(centre_id, by)


@bp.get("/api/v1/reports/staffing")
@staff_endpoint("reports.view")
def staffing(principal, centre_id):
    """How many counters each service needs, hour by hour of a weekday, for the target
    wait, against how many were open (core/staffing.py; docs/reports.md)."""
    fmt = _format()
    asked = [request.args.get(k) for k in ("weekday", "until", "weeks")]

    def read(conn):  # in the thread pool: no request here
        tz = conn.execute(
            sa.select(m.centres.c.timezone).where(m.centres.c.id == centre_id)
        ).scalar_one()
        weekday, until, weeks = reports.parse_staffing(*asked, business_date(m.utcnow(), tz))
        return reports.staffing(conn, centre_id, weekday, until, weeks)

    report = _read(read)
    if fmt == "json":
        return report
    with force_locale(request_lang()):
        headings, rows = reports.staffing_table(report, gettext)
        name = f"goi-y-bo-tri-quay-{report['centre']}-thu-{report['weekday']}-{report['until']}"
        if fmt == "csv":
            return _download(_csv(headings, rows), "text/csv; charset=utf-8", f"{name}.csv")
        sheet = (gettext(STAFFING_SHEET), headings, rows, set())
        return _download(_xlsx([sheet], dated=0), XLSX_TYPE, f"{name}.xlsx")


# -- the page -----------------------------------------------------------------------------
# Its words (its script renders every screen); the figures' headings are the downloads'.
REPORT_STRINGS = {
    "title": N_("Báo cáo của trung tâm"),
    "login_title": N_("Đăng nhập lãnh đạo, quản lý"),
    **STAFF_LOGIN_STRINGS,
    "loading": N_("Đang tải…"),
    "from": N_("Từ ngày"),
    "to": N_("Đến ngày"),
    "show": N_("Xem báo cáo"),
    "this_month": N_("Tháng này"),
    "last_month": N_("Tháng trước"),
    "centre": N_("Trung tâm"),
    "download_csv": N_("Tải CSV"),
    "download_xlsx": N_("Tải Excel (XLSX)"),
    "tickets": N_("Phiếu và lượt phục vụ"),
    "waits": N_("Thời gian chờ và phục vụ"),
    "ratings": N_("Mức độ hài lòng"),
    "dossiers": N_("Hồ sơ"),
    "reasons": N_("Lý do không hài lòng"),
    "no_reasons": N_("Không có lý do nào được chọn."),
    "mean": N_("Trung bình"),
    "median": N_("Trung vị"),
    "p90": N_("90% không quá"),
    "wait": N_("Chờ"),
    "service": N_("Phục vụ"),
    "minutes_seconds": N_("{m} phút {s} giây"),
    "within_target": N_("Chờ không quá {m} phút"),
    "breakdown": N_("Chi tiết theo"),
    "by_agency": N_("Cơ quan"),
    "by_service": N_("Lĩnh vực"),
    "by_counter": N_("Quầy"),
    "by_clerk": N_("Cán bộ"),
    "by_hour": N_("Giờ trong ngày"),
    "by_weekday": N_("Ngày trong tuần"),
    "by_field": N_("Lĩnh vực hồ sơ"),
    "no_rows": N_("Không có số liệu trong khoảng thời gian này."),
    "index_title": N_("Chỉ số phục vụ (Quyết định 766/QĐ-TTg), phần tính được từ số liệu này"),
    "index_on_time": N_(
        "Tiến độ, kết quả giải quyết: tỉ lệ hồ sơ trả đúng hạn = {on_time} / {returned}"
    ),
    "index_satisfied": N_(
        "Mức độ hài lòng: tỉ lệ đánh giá hài lòng và rất hài lòng = {satisfied} / {total}"
    ),
    "share_note": N_("Tỉ lệ có mẫu số bằng 0 được tính là 100%."),
    "comments_title": N_("Góp ý của công dân"),
    "comments_count": N_("{shown} góp ý mới nhất trong {total}"),
    "no_comments": N_("Không có góp ý nào."),
    "staffing_title": N_("Gợi ý bố trí quầy"),
    "staffing_weekday": N_("Thứ"),
    "staffing_weeks": N_("Số tuần gần nhất"),
    "staffing_show": N_("Tính"),
    "staffing_service": N_("Lĩnh vực"),
    "staffing_hour": N_("Giờ"),
    "staffing_arrivals": N_("Lượt đến mỗi giờ"),
    "staffing_mean": N_("Phục vụ trung bình"),
    "staffing_needed": N_("Số quầy cần"),
    "staffing_open": N_("Số quầy đã mở"),
    "staffing_short": N_("thiếu quầy"),
    "staffing_model": N_(
        "Mô hình Erlang C (hàng đợi M/M/c), từng lĩnh vực và từng giờ: công dân đến ngẫu "
        "nhiên với tốc độ trung bình của giờ đó trong {weeks} {weekday} gần nhất đến hết "
        "ngày {until}; thời gian phục vụ theo phân phối mũ với trung bình đo được; các quầy "
        "của một lĩnh vực chỉ phục vụ lĩnh vực đó; mỗi giờ tính riêng, không mang hàng chờ "
        "sang giờ sau (giờ cao điểm có thể bị đánh giá thấp). Số quầy cần: ít nhất để "
        "{level} công dân được gọi trong vòng {minutes} phút."
    ),
    "staffing_none": N_("Không có lượt đến nào trong những ngày này."),
    "chart_mean_wait": N_("Chờ trung bình (phút)"),
    "chart_in_person": N_("Trực tiếp"),
    "chart_online": N_("Trực tuyến"),
    "chart_post": N_("Bưu chính"),
    "chart_returned": N_("Đã trả"),
    "chart_tickets_axis": N_("Số phiếu"),
    "chart_minutes_axis": N_("Phút"),
    "chart_dossiers_axis": N_("Số hồ sơ"),
    "chart_counters_axis": N_("Số quầy"),
    "chart_breakdown": N_("Biểu đồ phiếu đã phát, đã phục vụ và thời gian chờ theo {by}"),
    "chart_ratings": N_("Biểu đồ số đánh giá theo mức độ hài lòng"),
    "chart_dossiers": N_("Biểu đồ hồ sơ tiếp nhận theo kênh và hồ sơ đã trả đúng hạn, trễ hạn"),
    "chart_staffing": N_("Biểu đồ số quầy cần và số quầy đã mở theo giờ, lĩnh vực {service}"),
}


def _column_strings() -> dict:
    """The downloads' headings (core/reports.py), under keys the page's script reads."""
    out = {f"col_{family}_{key}": heading for family, key, heading in reports.COLUMNS}
    out.update({f"weekday_{i}": day for i, day in enumerate(reports.WEEKDAYS)})
    out["unknown"] = reports.UNKNOWN
    return out


@bp.get("/manage/reports")
@access("public")
def page():
    """The reports page: a staff login, then a range's summary and breakdowns as tables,
    and their downloads. The page itself holds nothing: every figure comes from the
    endpoints above, with the session's token."""
    page_data = {
        "columns": [[family, key] for family, key, _h in reports.COLUMNS],
        "breakdowns": list(reports.BREAKDOWNS),
    }
    strings = {**REPORT_STRINGS, **_column_strings()}
    return render_template("reports.html", strings=strings, page_data=page_data)
