"""The province's overview (issue 22): every centre's figures of today on one page
(``/manage/province``) and its endpoint (``GET /api/v1/province/overview``).

For an account that watches many centres: the province's admin (``installation_admin``,
every centre), or a manager of several. Each centre the account may watch
(``monitor.view``) is one row, linking to that centre's monitor; a clerk is refused, a
manager of one centre sees that centre only. The figures are core/views.py's
``province_overview``: a few statements for all the centres, read again every
``PROVINCE_EVERY_S`` seconds by the page (no socket: 200 centres' changes are not what
one page should follow).
"""

from __future__ import annotations

from flask import current_app, render_template

from core import views
from gateway.api import access, staff_endpoint
from gateway.web import N_, STAFF_LOGIN_STRINGS

from . import bp

PROVINCE_EVERY_S = 15

PROVINCE_STRINGS = {
    "title": N_("Toàn tỉnh: các trung tâm hôm nay"),
    "login_title": N_("Đăng nhập lãnh đạo, quản trị"),
    **STAFF_LOGIN_STRINGS,
    "loading": N_("Đang tải…"),
    "centre": N_("Trung tâm"),
    "issued": N_("Số đã phát"),
    "waiting": N_("Đang chờ"),
    "at_counter": N_("Đang phục vụ"),
    "served": N_("Đã phục vụ"),
    "counters_open": N_("Quầy mở"),
    "longest": N_("Chờ lâu nhất"),
    "alerts": N_("Thiết bị cần xử lý"),
    "open_of": N_("{open}/{all}"),
    "paused_n": N_("{n} tạm dừng"),
    "over_target": N_("Quá {m} phút"),
    "minutes_n": N_("{m} phút"),
    "under_a_minute": N_("dưới 1 phút"),
    "none": N_("—"),
    "total": N_("Cả tỉnh ({n} trung tâm)"),
    "filter": N_("Tìm trung tâm"),
    "filter_hint": N_("Tên hoặc mã, ví dụ: Long Xuyên"),
    "only_over": N_("Chỉ những nơi có người chờ quá mục tiêu"),
    "updated": N_("Cập nhật lúc {time}, tự cập nhật mỗi {s} giây."),
    "monitor_link": N_("Mở màn hình giám sát của {name}"),
    "refused": N_("Tài khoản này không xem được trung tâm nào."),
    "no_match": N_("Không có trung tâm nào khớp."),
}


@bp.get("/api/v1/province/overview")
@staff_endpoint("monitor.view")
def province_overview(principal, centre_id):
    """Today's figures of every centre the account may watch, one row each (the province
    admin: all of them)."""
    ids = principal.centre_ids()
    if ids is not None:
        ids = [i for i in ids if principal.may("monitor.view", i)]
    ctx = current_app.extensions["motcua"]
    answer = ctx.store.read_offloaded(lambda conn: views.province_overview(conn, ids))
    return {"ok": True, "every_s": PROVINCE_EVERY_S, **answer}


@bp.get("/manage/province")
@access("public")
def province_page():
    """The province's overview: log in, then one row a centre, read again every few
    seconds."""
    return render_template(
        "province.html",
        strings=PROVINCE_STRINGS,
        page_data={"title": "motcua", "every_s": PROVINCE_EVERY_S},
    )
