"""Errors a device or clerk can receive, with their message in Vietnamese and English."""

from __future__ import annotations

import sqlalchemy as sa

from .raw import DRIVER_ERRORS

CODES = (
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "queue_empty",
    "already_rated",
    "rate_limited",
    "unavailable",
    "internal",
)

# key -> (vi, en). Parameters are filled with str.format.
MESSAGES: dict[str, tuple[str, str]] = {
    "bad_payload": (
        "Dữ liệu gửi lên phải là một đối tượng JSON.",
        "The payload must be a JSON object.",
    ),
    "missing_field": ("Thiếu trường bắt buộc “{field}”.", "Required field '{field}' is missing."),
    "unknown_field": ("Trường “{field}” không được hỗ trợ.", "Field '{field}' is not supported."),
    "wrong_type": (
        "Trường “{field}” phải là {expected}.",
        "Field '{field}' must be {expected}.",
    ),
    "bad_value": ("Giá trị của “{field}” không hợp lệ: {why}", "Invalid '{field}': {why}"),
    # A configuration value refused (core/fields.py): the whole sentence, naming the field.
    "config_refused": ("{why}", "{why}"),
    "unknown_entry": (
        "Không có {what} “{name}” tại trung tâm này.",
        "There is no {what} '{name}' at this centre.",
    ),
    "retire_self": (
        "Không thể tự khóa tài khoản đang dùng: hãy nhờ một quản trị khác.",
        "You cannot deactivate the account you are using: ask another admin.",
    ),
    "retire_open_counter": (
        "Quầy {number} đang mở: cán bộ cần đóng quầy trước khi ngừng sử dụng quầy.",
        "Counter {number} is open: its clerk must close it before it is retired.",
    ),
    "unknown_service": (
        "Không có lĩnh vực “{service}” tại trung tâm này.",
        "There is no service '{service}' at this centre.",
    ),
    "service_inactive": (
        "Lĩnh vực “{service}” đang tạm dừng nhận hồ sơ.",
        "Service '{service}' is not taking tickets now.",
    ),
    "service_closed_now": (
        "Lĩnh vực “{service}” chỉ nhận hồ sơ trong giờ làm việc riêng của lĩnh vực: hiện "
        "đang ngoài giờ. Mời Ông/Bà quay lại lúc {when}.",
        "Service '{service}' takes tickets only within its own opening hours, and it is "
        "closed now. Please come back at {when}.",
    ),
    "service_closed": (
        "Lĩnh vực “{service}” hiện đang ngoài giờ làm việc và chưa có lịch mở lại.",
        "Service '{service}' is closed now and has no opening time ahead.",
    ),
    "priority_not_accepted": (
        "Lĩnh vực “{service}” không nhận đối tượng ưu tiên “{group}”. Lĩnh vực này nhận: "
        "{allowed}. Ông/Bà vẫn lấy được số thường.",
        "Service '{service}' does not accept the priority group '{group}'. It accepts: "
        "{allowed}. A normal ticket can still be taken.",
    ),
    "unknown_priority": (
        "Đối tượng ưu tiên “{value}” không hợp lệ. Chọn: {allowed}.",
        "Unknown priority '{value}'. Choose one of: {allowed}.",
    ),
    "unknown_ticket": ("Không tìm thấy phiếu số này.", "No such ticket."),
    "unknown_dossier": (
        "Không có hồ sơ “{dossier}” tại trung tâm này.",
        "There is no dossier '{dossier}' at this centre.",
    ),
    "booking_day_out_of_range": (
        "Chỉ đặt lịch được từ ngày {first} đến ngày {last}.",
        "Appointments can be booked from {first} to {last} only.",
    ),
    "no_such_slot": (
        "Không có khung giờ “{slot}” (có thể đã qua, hoặc trung tâm nghỉ): hãy chọn lại.",
        "There is no slot '{slot}' (it may have passed, or the centre is closed): choose again.",
    ),
    "slot_full": (
        "Khung giờ {slot} vừa hết chỗ: hãy chọn khung giờ khác.",
        "The {slot} slot has just filled up: please choose another.",
    ),
    "too_many_bookings": (
        "Số điện thoại này đã có {limit} lịch hẹn chưa đến: hãy hủy bớt một lịch trước khi "
        "đặt thêm.",
        "This phone number already holds {limit} upcoming appointments: cancel one first.",
    ),
    "bad_booking_code": (
        "Mã lịch hẹn gồm 8 chữ số: hãy kiểm tra lại từng số.",
        "An appointment code is 8 digits: please check each digit.",
    ),
    "unknown_booking": (
        "Không tìm thấy lịch hẹn mã {booking}.",
        "There is no appointment with code {booking}.",
    ),
    "booking_cancelled": (
        "Lịch hẹn {booking} đã được hủy trước đó.",
        "Appointment {booking} was already cancelled.",
    ),
    "booking_checked_in": (
        "Lịch hẹn {booking} đã được lấy số rồi.",
        "Appointment {booking} has already been checked in.",
    ),
    "booking_missed": (
        "Lịch hẹn {booking} đã qua giờ hẹn.",
        "The time of appointment {booking} has passed.",
    ),
    "phone_too_late": (
        "Chỉ để lại được số điện thoại ngay sau khi lấy số {number}, tại máy đã cấp số.",
        "A phone number can be left only just after taking ticket {number}, at the same kiosk.",
    ),
    "check_in_too_early": (
        "Lịch hẹn của Ông/Bà lúc {slot}. Mời Ông/Bà quay lại lấy số từ {time}.",
        "Your appointment is at {slot}. Please come back for your number from {time}.",
    ),
    "unknown_print_job": (
        "Không có lệnh in số {job} dành cho máy này.",
        "There is no print job {job} for this device.",
    ),
    "print_job_reported": (
        "Lệnh in số {job} đã được báo kết quả ({state}).",
        "Print job {job} has already been reported ({state}).",
    ),
    "unknown_counter": (
        "Không có quầy số {number} tại trung tâm này.",
        "There is no counter {number} at this centre.",
    ),
    "queue_empty": (
        "Không còn công dân nào đang chờ ở quầy này.",
        "Nobody is waiting for this counter.",
    ),
    "counter_busy_called": (
        "Số {number} đang được gọi: hãy bắt đầu phục vụ, gọi lại hoặc đánh dấu vắng mặt trước.",
        "Ticket {number} is being called: start, recall or mark it no-show first.",
    ),
    "no_show_too_soon": (
        "Mới gọi số {number} được {elapsed} giây: hãy chờ công dân đi tới quầy, sau {seconds} "
        "giây mới đánh dấu vắng mặt được.",
        "Ticket {number} was called only {elapsed} s ago: give the citizen time to walk to the "
        "counter; a no-show can be marked after {seconds} s.",
    ),
    "unknown_device": (
        "Không có thiết bị này tại trung tâm.",
        "There is no such device at this centre.",
    ),
    "no_device_alert": (
        "Thiết bị “{name}” không có cảnh báo nào cần xác nhận.",
        "Device “{name}” has no alert to acknowledge.",
    ),
    "transfer_counter_closed": (
        "Quầy {number} đang đóng: hãy chuyển sang một quầy đang mở hoặc sang lĩnh vực.",
        "Counter {number} is closed: transfer to an open counter or to a service.",
    ),
    "counter_paused": (
        "Quầy đang tạm dừng. Hãy tiếp tục làm việc trước khi gọi số.",
        "The counter is paused. Resume before calling.",
    ),
    "ticket_expired": (
        "Số {number} là phiếu của ngày trước, không còn hiệu lực.",
        "Ticket {number} was issued on an earlier day and is no longer valid.",
    ),
    "counter_closed": (
        "Quầy đang đóng.",
        "The counter is closed.",
    ),
    "device_counter_forbidden": (
        "Thiết bị này không được gắn với quầy {number}.",
        "This device is not bound to counter {number}.",
    ),
    "counter_closed_for_device": (
        "Quầy {number} đang đóng: cán bộ cần đăng nhập trên trang quầy trước.",
        "Counter {number} is closed: a clerk must log in on the counter page first.",
    ),
    "counter_no_clerk": (
        "Quầy {number} chưa có cán bộ làm việc.",
        "Counter {number} has no clerk on duty.",
    ),
    "counter_no_current": (
        "Quầy {number} chưa có số nào đang được gọi hoặc phục vụ.",
        "Counter {number} has no ticket called or being served.",
    ),
    "counter_has_current": (
        "Quầy đang phục vụ số {number}: hãy kết thúc hoặc chuyển số này trước.",
        "The counter still has ticket {number}: finish or transfer it first.",
    ),
    "already_paused": ("Quầy đã tạm dừng rồi.", "The counter is already paused."),
    "not_paused": ("Quầy không ở trạng thái tạm dừng.", "The counter is not paused."),
    "ticket_not_waiting": (
        "Số {number} không còn trong hàng chờ (trạng thái: {status}).",
        "Ticket {number} is not waiting (status: {status}).",
    ),
    "ticket_not_here": (
        "Số {number} không ở quầy này.",
        "Ticket {number} is not at this counter.",
    ),
    "ticket_wrong_status": (
        "Không thể thực hiện với số {number} ở trạng thái “{status}”.",
        "Ticket {number} cannot do that in status '{status}'.",
    ),
    "service_not_at_counter": (
        "Quầy này không phục vụ lĩnh vực của số {number}.",
        "This counter does not serve the service of ticket {number}.",
    ),
    "transfer_same": (
        "Số {number} đã ở đúng nơi đó.",
        "Ticket {number} is already there.",
    ),
    "transfer_target": (
        "Chuyển phiếu cần đúng một trong hai: “service” hoặc “counter”.",
        "A transfer needs exactly one of 'service' or 'counter'.",
    ),
    "already_rated": (
        "Lượt phục vụ này đã được đánh giá. Xin cảm ơn!",
        "This visit has already been rated. Thank you!",
    ),
    "rating_wrong_counter": (
        "Chỉ đánh giá được tại quầy đã phục vụ số {number}.",
        "Ticket {number} can only be rated at the counter that served it.",
    ),
    "rating_not_done": (
        "Số {number} chưa được phục vụ xong nên chưa thể đánh giá.",
        "Ticket {number} is not finished yet, so it cannot be rated.",
    ),
    "rating_other_ticket": (
        "Trang này chỉ đánh giá được lượt phục vụ của chính phiếu này.",
        "This page can only rate its own ticket's visit.",
    ),
    "rating_expired": (
        "Đã quá thời gian đánh giá cho số {number}.",
        "The time to rate ticket {number} has passed.",
    ),
    "auth_missing": (
        "Thiếu thông tin xác thực: hãy gửi “token”.",
        "Missing credentials: send 'token'.",
    ),
    "auth_invalid": (
        "Mã xác thực không đúng hoặc đã bị thu hồi.",
        "The token is wrong or has been revoked.",
    ),
    "device_revoked": (
        "Thiết bị này đã bị thu hồi: mã của nó không còn dùng được. "
        "Hãy báo quản trị viên của trung tâm để cấp mã mới.",
        "This device has been revoked: its token no longer works. "
        "Ask the centre's admin for a new one.",
    ),
    "auth_expired": (
        "Phiên đăng nhập đã hết hạn. Hãy đăng nhập lại.",
        "The session has expired. Log in again.",
    ),
    "auth_counter_missing": (
        "Hãy cho biết số quầy (“counter”).",
        "Say which counter to operate ('counter').",
    ),
    "auth_counter_forbidden": (
        "Tài khoản {username} không được phân công làm việc tại quầy {number}.",
        "User {username} may not operate counter {number}.",
    ),
    "permission_denied": (
        "Tài khoản này không có quyền {what}.",
        "This account may not {what}.",
    ),
    "unknown_centre": (
        "Không có trung tâm mã “{centre}”.",
        "There is no centre with code '{centre}'.",
    ),
    "login_failed": (
        "Tên đăng nhập hoặc mật khẩu không đúng.",
        "Wrong username or password.",
    ),
    "login_throttled": (
        "Đăng nhập sai quá nhiều lần. Hãy thử lại sau {seconds} giây.",
        "Too many failed logins. Try again in {seconds} seconds.",
    ),
    "rate_limited": (
        "Thao tác quá nhanh. Hãy thử lại sau giây lát.",
        "Too many requests. Try again in a moment.",
    ),
    # GET /metrics (gateway/metrics.py, docs/metrics.md): for Prometheus, not the public.
    "metrics_address": (
        "Địa chỉ {address} không được đọc /metrics: chỉ máy này (127.0.0.1, ::1) và các "
        "địa chỉ trong MOTCUA_METRICS_ALLOW được đọc.",
        "Address {address} may not read /metrics: only this machine (127.0.0.1, ::1) and "
        "the addresses in MOTCUA_METRICS_ALLOW may.",
    ),
    "metrics_proxied": (
        "Không đọc /metrics qua proxy: Prometheus đọc trực tiếp cổng của từng tiến trình.",
        "/metrics is not served through a proxy: Prometheus reads each process's own port.",
    ),
    "read_only_role": (
        "Thiết bị này chỉ nhận thông tin, không gửi được lệnh “{event}”.",
        "This device only listens; it cannot send '{event}'.",
    ),
    "unknown_event": ("Sự kiện “{event}” không được hỗ trợ.", "Unknown event '{event}'."),
    "unavailable": (
        "Hệ thống tạm thời không lưu được dữ liệu. Hãy thử lại.",
        "The system could not save the change. Please try again.",
    ),
    "internal": (
        "Đã có lỗi trong hệ thống. Hãy thử lại hoặc báo cán bộ kỹ thuật.",
        "Something went wrong. Try again or call technical staff.",
    ),
}


def message(key: str, lang: str = "vi", **params) -> str:
    """The message in ``lang``; a parameter given as a (vi, en) pair is translated too."""
    i = 1 if lang == "en" else 0
    vi_en = MESSAGES[key]
    return vi_en[i].format(**{k: v[i] if isinstance(v, tuple) else v for k, v in params.items()})


class Refused(Exception):  # noqa: N818 - a refusal, not a fault
    """A refusal in words of its own (a provisioning file's error, with file and line),
    raised inside a write: the store undoes the operation and hands it back unchanged."""


class QueueError(Exception):
    """A refusal the caller is told about: a protocol error code and a message key."""

    def __init__(self, code: str, key: str, **params):
        assert code in CODES, code
        super().__init__(f"{code}: {key} {params}")
        self.code = code
        self.key = key
        self.params = params

    # Refusals whose reason a page tells apart (a revoked tablet says so): their answer
    # carries ``reason``, the message's key.
    REASONS = frozenset(("device_revoked",))

    def as_dict(self, lang: str = "vi") -> dict:
        answer = {"code": self.code, "message": message(self.key, lang, **self.params)}
        if self.key in self.REASONS:
            answer["reason"] = self.key
        return answer


def is_database_failure(e: BaseException) -> bool:
    """Whether ``e`` says the database could not be reached or used (clients should retry:
    ``unavailable``), as opposed to a bug (``internal``)."""
    return isinstance(e, (sa.exc.DBAPIError, sa.exc.TimeoutError, *DRIVER_ERRORS))


def refusal_of(e: BaseException) -> QueueError:
    """What a caller is told about an exception that is not a QueueError already."""
    if isinstance(e, QueueError):
        return e
    kind = "unavailable" if is_database_failure(e) else "internal"
    return QueueError(kind, kind)
