"""The admin pages (issue 18, second slice; docs/admin.md): ``/admin/`` to change the
centre's settings, services, counters, staff and devices, ``/admin/audit`` to read who
changed what. Both are a staff login and a script: the pages hold nothing themselves,
every entry comes from and goes to the admin API (admin/api.py) with the session's
Bearer token, so no cookie can carry a request from another site (docs/admin.md, CSRF).
"""

from __future__ import annotations

from flask import render_template

from core.fields import ANNOUNCE_FORMS, BOARD_LAYOUTS, SLOT_MINUTES
from core.permissions import STAFF_ROLES
from core.priorities import PRIORITIES
from core.roles import DEVICE_KINDS
from gateway.api import access
from gateway.web import N_, STAFF_LOGIN_STRINGS

from . import bp

# Words both pages use.
COMMON = {
    "title": N_("Quản trị trung tâm"),
    "login_title": N_("Đăng nhập quản trị"),
    **STAFF_LOGIN_STRINGS,
    "loading": N_("Đang tải…"),
    "centre": N_("Trung tâm"),
    "refused": N_(
        "Tài khoản này không có quyền quản trị trung tâm. Hãy đăng nhập bằng tài khoản "
        "quản trị, hoặc nhờ quản trị viên cấp quyền."
    ),
    "tab_settings": N_("Cài đặt chung"),
    "tab_agencies": N_("Cơ quan"),
    "tab_services": N_("Lĩnh vực"),
    "tab_counters": N_("Quầy"),
    "tab_staff": N_("Cán bộ"),
    "tab_devices": N_("Thiết bị"),
    "tab_sessions": N_("Phiên đăng nhập"),
    "tab_audit": N_("Nhật ký thay đổi"),
}

ADMIN_STRINGS = {
    **COMMON,
    "add": N_("Thêm mới"),
    "edit": N_("Sửa"),
    "save": N_("Lưu"),
    "cancel": N_("Hủy"),
    "saved": N_("Đã lưu."),
    "required": N_("“{field}” cần được điền."),
    "nothing_changed": N_("Không có gì thay đổi."),
    "retire_agency": N_("Ngừng cơ quan"),
    "retire_service": N_("Ngừng lĩnh vực"),
    "retire_counter": N_("Ngừng quầy"),
    "deactivate": N_("Khóa tài khoản"),
    "revoke": N_("Thu hồi thiết bị"),
    "reactivate": N_("Dùng lại"),
    "retired": N_("Đã ngừng."),
    "confirm_retire": N_("Ngừng “{name}”? Lịch sử và báo cáo vẫn được giữ."),
    "confirm_deactivate": N_("Khóa tài khoản “{name}”? Cán bộ này sẽ không đăng nhập được nữa."),
    "confirm_revoke": N_("Thu hồi thiết bị “{name}”? Mã của thiết bị sẽ không dùng được nữa."),
    "reset_password": N_("Đặt lại mật khẩu"),
    "confirm_reset": N_("Đặt mật khẩu mới cho “{name}”? Mật khẩu cũ sẽ không dùng được nữa."),
    "end_sessions": N_("Đăng xuất mọi nơi"),
    "confirm_end_sessions": N_(
        "Đăng xuất “{name}” khỏi mọi máy đang dùng? Mật khẩu không đổi: cán bộ đăng nhập lại được."
    ),
    "sessions_ended": N_("Đã đăng xuất {n} phiên."),
    "sessions_note": N_(
        "Các phiên đăng nhập đang mở của cán bộ trung tâm. Kết thúc một phiên: trang của "
        "phiên đó bị ngắt ngay và phải đăng nhập lại; mật khẩu không đổi."
    ),
    "no_sessions": N_("Không có phiên đăng nhập nào đang mở."),
    "col_since": N_("Đăng nhập lúc"),
    "col_seen": N_("Thấy lần cuối"),
    "col_expires": N_("Hết hạn lúc"),
    "col_address": N_("Đăng nhập từ"),
    "this_session": N_("Phiên này của bạn"),
    "end_session": N_("Kết thúc phiên"),
    "confirm_end_session": N_(
        "Kết thúc phiên đăng nhập này của “{name}”? Trang của phiên đó bị ngắt ngay."
    ),
    "new_token": N_("Cấp mã mới"),
    "confirm_token": N_("Cấp mã mới cho “{name}”? Mã cũ sẽ không dùng được nữa."),
    "secret_password": N_("Mật khẩu mới của “{name}”"),
    "secret_token": N_("Mã của thiết bị “{name}”"),
    "secret_once": N_(
        "Hãy ghi lại ngay: mật khẩu hoặc mã này chỉ hiện một lần, máy chủ không lưu bản rõ."
    ),
    "device_link": N_("Địa chỉ mở trang của thiết bị"),
    "secret_done": N_("Tôi đã ghi lại"),
    "active": N_("Đang dùng"),
    "inactive": N_("Đã ngừng"),
    "none": N_("(không có)"),
    "lent_from": N_("Mượn từ trung tâm {home}"),
    "photo": N_("Ảnh"),
    "photo_choose": N_("Chọn ảnh"),
    "photo_remove": N_("Xóa ảnh"),
    "photo_saved": N_("Đã lưu ảnh."),
    "photo_none": N_("Chưa có ảnh"),
    "photo_note": N_("Ảnh hiện trên máy đánh giá của quầy (JPEG, PNG hoặc WebP)."),
    "col_actions": N_("Thao tác"),
    "export": N_("Tải tệp cấu hình"),
    "hours_note": N_(
        "Mỗi ngày một hoặc nhiều khoảng giờ, cách nhau bởi dấu phẩy, ví dụ "
        "07:30-11:30, 13:30-17:00. Để trống một ngày: nghỉ ngày đó; để trống cả tuần: "
        "giờ hành chính thông thường."
    ),
    "lines_note": N_("Mỗi dòng một mục."),
    "day_mon": N_("Thứ Hai"),
    "day_tue": N_("Thứ Ba"),
    "day_wed": N_("Thứ Tư"),
    "day_thu": N_("Thứ Năm"),
    "day_fri": N_("Thứ Sáu"),
    "day_sat": N_("Thứ Bảy"),
    "day_sun": N_("Chủ Nhật"),
    # The fields: the label a form shows; the API's refusals name the field by its key.
    "f_code": N_("Mã"),
    "f_name": N_("Tên"),
    "f_name_en": N_("Tên tiếng Anh"),
    "f_agency": N_("Cơ quan giải quyết"),
    "f_agency_note": N_("Thêm hoặc đổi tên cơ quan ở thẻ “Cơ quan”."),
    "col_services": N_("Số lĩnh vực đang dùng"),
    "f_prefix": N_("Chữ đầu số phiếu"),
    "f_start": N_("Số bắt đầu"),
    "f_service_minutes": N_("Thời gian phục vụ dự kiến (phút)"),
    "f_appointments": N_("Lượt đặt hẹn mỗi khung giờ"),
    "f_active": N_("Đang dùng"),
    "f_number": N_("Số quầy"),
    "f_services": N_("Lĩnh vực phục vụ"),
    "f_username": N_("Tên đăng nhập"),
    "f_full_name": N_("Họ và tên"),
    "f_role": N_("Vai trò"),
    "f_counters": N_("Quầy được làm việc"),
    "f_counters_any": N_("Không chọn quầy nào: làm được ở mọi quầy."),
    "f_kind": N_("Loại thiết bị"),
    "f_counter": N_("Quầy của máy đánh giá"),
    "f_device_counters": N_("Quầy gắn với thiết bị (màn hình hiển thị, máy trạm)"),
    "col_binding": N_("Gắn với"),
    "f_kiosks": N_("In phiếu cho kiosk"),
    "f_timezone": N_("Múi giờ"),
    "f_ticket_footer": N_("Dòng cuối phiếu"),
    "f_notice": N_("Thông báo trên màn hình"),
    "f_board_layout": N_("Bố cục màn hình hiển thị"),
    "f_announce_form": N_("Cách đọc số"),
    "f_announce_repeats": N_("Số lần đọc"),
    "f_rating_reasons": N_("Lý do không hài lòng"),
    "f_rating_timeout_s": N_("Máy đánh giá chờ (giây)"),
    "f_target_wait_s": N_("Thời gian chờ mục tiêu (giây)"),
    "f_notify_ahead": N_("Nhắn tin khi còn số người phía trước"),
    "f_slot_minutes": N_("Độ dài khung giờ hẹn (phút)"),
    "f_booking_days": N_("Đặt hẹn trước tối đa (ngày)"),
    "f_appointment_share": N_("Tỉ lệ thời gian dành cho lịch hẹn (0 đến 0,8)"),
    "f_hours": N_("Giờ làm việc"),
    "f_service_hours": N_("Giờ nhận hồ sơ riêng của lĩnh vực"),
    "service_hours_note": N_(
        "Mỗi ngày một hoặc nhiều khoảng giờ, cách nhau bởi dấu phẩy, ví dụ 07:30-11:30. Để "
        "trống một ngày: không nhận hồ sơ ngày đó; để trống cả tuần: theo giờ làm việc của "
        "trung tâm. Ngày nghỉ của trung tâm cũng là ngày nghỉ của lĩnh vực."
    ),
    "f_priorities": N_("Đối tượng ưu tiên được nhận"),
    "f_priorities_all": N_("Không chọn nhóm nào: nhận mọi đối tượng ưu tiên."),
    "f_closed_days": N_("Ngày nghỉ (YYYY-MM-DD)"),
    "kind_kiosk": N_("Kiosk lấy số"),
    "kind_display": N_("Màn hình hiển thị"),
    "kind_rating": N_("Máy đánh giá"),
    "kind_agent": N_("Máy trạm phần cứng (máy in, bàn phím, bảng LED)"),
    "kind_integration": N_("Kết nối hệ thống một cửa điện tử"),
    "layout_auto": N_("Tự chọn"),
    "layout_hall": N_("Sảnh lớn (lưới)"),
    "layout_office": N_("Văn phòng (ô lớn)"),
    "form_digits": N_("Đọc từng chữ số"),
    "form_number": N_("Đọc thành số"),
    "default": N_("Mặc định"),
}

AUDIT_STRINGS = {
    **COMMON,
    "audit_title": N_("Nhật ký thay đổi"),
    "who": N_("Người thực hiện (tên đăng nhập)"),
    "what": N_("Loại thay đổi"),
    "from": N_("Từ ngày"),
    "to": N_("Đến ngày"),
    "show": N_("Xem"),
    "more": N_("Xem cũ hơn"),
    "kind_any": N_("Mọi thay đổi"),
    "kind_configured": N_("Cấu hình"),
    "kind_issued": N_("Phát số"),
    "kind_called": N_("Gọi số"),
    "kind_recalled": N_("Gọi lại"),
    "kind_finished": N_("Xong"),
    "kind_no_show": N_("Vắng mặt"),
    "kind_transferred": N_("Chuyển"),
    "kind_cancelled": N_("Hủy số"),
    "kind_counter_opened": N_("Mở quầy"),
    "kind_counter_closed": N_("Đóng quầy"),
    "col_when": N_("Thời điểm"),
    "col_who": N_("Người thực hiện"),
    "col_what": N_("Thay đổi"),
    "col_entry": N_("Mục"),
    "col_before": N_("Trước"),
    "col_after": N_("Sau"),
    "no_rows": N_("Không có thay đổi nào khớp."),
    "times_in": N_("Giờ theo múi giờ của trung tâm: {zone}"),
    "back": N_("Về trang quản trị"),
    "entity_centre": N_("Cài đặt chung"),
    "entity_agencies": N_("Cơ quan"),
    "entity_services": N_("Lĩnh vực"),
    "entity_counters": N_("Quầy"),
    "entity_staff": N_("Cán bộ"),
    "entity_devices": N_("Thiết bị"),
    "op_put": N_("tạo hoặc sửa"),
    "op_delete": N_("ngừng"),
    "op_photo": N_("ảnh"),
    "op_renamed": N_("tên mới đến lĩnh vực"),
}
AUDIT_KINDS = (
    "configured",
    "issued",
    "called",
    "recalled",
    "finished",
    "no_show",
    "transferred",
    "cancelled",
    "counter_opened",
    "counter_closed",
)


def _page_data() -> dict:
    return {
        "roles": {name: {"vi": r.vi, "en": r.en} for name, r in STAFF_ROLES.items()},
        "kinds": list(DEVICE_KINDS),
        "layouts": list(BOARD_LAYOUTS),
        "announce_forms": list(ANNOUNCE_FORMS),
        "slot_minutes": list(SLOT_MINUTES),
        "priorities": [{"code": c, "vi": vi, "en": en} for c, (vi, en) in PRIORITIES.items()],
        "audit_kinds": list(AUDIT_KINDS),
    }


@bp.get("/admin/")
@access("public")
def admin_page():
    """The admin page: a staff login, then the centre's entries to change."""
    return render_template("admin/admin.html", strings=ADMIN_STRINGS, page_data=_page_data())


@bp.get("/admin/audit")
@access("public")
def audit_page():
    """The audit page: a staff login, then the centre's changes, filtered."""
    return render_template("admin/audit.html", strings=AUDIT_STRINGS, page_data=_page_data())
