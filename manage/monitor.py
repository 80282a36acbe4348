"""The manager's live monitor (issue 17): its door (/manage) and its page (/manage/).

Managers and admins of a centre (permission ``monitor.view``) follow every queue, counter
and device alert of the centre live, from the ``monitor_state`` snapshot and the change
batches (core/roles.py, role ``manager``: every change of its centre); today's figures and
the devices' presence (core/presence.py) are read again (events ``figures``, ``devices``).
Their actions (permission ``monitor.act``) are engine operations, audited with the manager
as actor: cancel a waiting ticket, move it to another service or counter keeping its
place, close a counter left open (core/lifecycle.py MANAGER_ACTIONS), acknowledge a
device's alert. docs/protocol.md section 8.7 is the reference.
"""

from __future__ import annotations

from flask import render_template

from core import auth as core_auth
from core import views
from core.auth import token_hash
from core.roles import Audience
from core.validation import REQUEST_ID, Field
from gateway.api import access
from gateway.doors import Client, EngineOp, StaffDoor
from gateway.web import N_, STAFF_LOGIN_STRINGS

from . import bp

TICKET = Field(int, required=True, min=1)
_R = {"request_id": REQUEST_ID}
_ACT = "monitor.act"


class ManageDoor(StaffDoor):
    """``/manage``: ``auth`` carries the session ``token`` and, for an account working
    for several centres, the ``centre`` code to watch (default: its own)."""

    role_name = "manager"
    permission = "monitor.view"
    events = {
        # Today's figures again (visits served, mean waits): the page asks after changes.
        "figures": ({}, "figures"),
        # The devices again: online or not (presence is read, not sent in batches).
        "devices": ({}, "devices"),
        "cancel": ({"ticket_id": TICKET, **_R}, EngineOp("cancel_ticket"), _ACT),
        "move": (
            {
                "ticket_id": TICKET,
                "service": Field(str, max_len=32),
                "counter": Field(int, min=1),
                **_R,
            },
            EngineOp("move_ticket"),
            _ACT,
        ),
        "close_counter": (
            {"counter": Field(int, required=True, min=1), **_R},
            EngineOp("close_left_counter"),
            _ACT,
        ),
        # A device's alert seen to (audited; it stays shown until it clears).
        "acknowledge": (
            {"device": Field(int, required=True, min=1), **_R},
            EngineOp("acknowledge_alert"),
            _ACT,
        ),
    }

    def authenticate(self, auth: dict, lang: str) -> Client:
        token, centre = self.staff(auth)

        def find(conn):
            principal = core_auth.principal_for_token(conn, token)
            centre_id, role = core_auth.staff_centre_id(conn, principal, centre, self.permission)
            return principal, centre_id, role

        principal, centre_id, role = self.ctx.store.read(find)
        # The session is watched: ended, the socket is closed (gateway/sessions.py).
        return Client(
            self.staff_actor(principal, role, centre_id),
            principal=principal,
            session=token_hash(token),
        )

    def audience(self, client: Client) -> Audience:
        return Audience("manager", client.actor.centre_id)

    def snapshot(self, conn, client: Client) -> dict:
        return views.monitor_snapshot(conn, client.actor.centre_id, self.ctx.presence_s)

    def figures(self, client: Client) -> dict:
        return self.read(views.monitor_figures, client.actor.centre_id)

    def devices(self, client: Client) -> dict:
        centre_id = client.actor.centre_id

        def read(conn):
            tz = views.centre(conn, centre_id).timezone
            return views.monitor_devices(conn, centre_id, tz, self.ctx.presence_s)

        return {"devices": self.ctx.store.read(read)}


DOORS: tuple[type, ...] = (ManageDoor,)


# The monitor's words (its script renders every screen).
MONITOR_STRINGS = {
    "title": N_("Giám sát trực tiếp"),
    "centre": N_("Trung tâm"),
    "province": N_("Toàn tỉnh"),
    "login_title": N_("Đăng nhập lãnh đạo, quản lý"),
    **STAFF_LOGIN_STRINGS,
    "no_answer": N_("Máy chủ chưa trả lời; thao tác có thể chưa được ghi nhận. Hãy thử lại."),
    "loading": N_("Đang tải…"),
    "services": N_("Lĩnh vực và hàng chờ"),
    "service": N_("Lĩnh vực"),
    "waiting": N_("Đang chờ"),
    "longest": N_("Chờ lâu nhất"),
    "estimate": N_("Dự kiến chờ"),
    "counters_open": N_("Quầy mở"),
    "served_today": N_("Đã phục vụ hôm nay"),
    "mean_wait": N_("Chờ trung bình hôm nay"),
    "over_target": N_("Quá {m} phút"),
    "target_note": N_("Mục tiêu: không ai chờ quá {m} phút."),
    "counters": N_("Các quầy"),
    "counter": N_("Quầy"),
    "status": N_("Trạng thái"),
    "clerk": N_("Cán bộ"),
    "current": N_("Đang phục vụ"),
    "status_open": N_("Đang mở"),
    "status_paused": N_("Tạm dừng"),
    "status_closed": N_("Đóng"),
    "status_paused_because": N_("Tạm dừng: {reason}"),
    "ticket_called": N_("{number} đang mời, {for}"),
    "ticket_serving": N_("{number} đang phục vụ, {for}"),
    "on_break_n": N_("{n} tạm dừng"),
    "minutes_n": N_("{m} phút"),
    "under_a_minute": N_("dưới 1 phút"),
    "none": N_("—"),
    "queue_title": N_("Số đang chờ ({n})"),
    "queue_empty": N_("Không có ai đang chờ."),
    "sent_to": N_("→ quầy {n}"),
    "action_cancel": N_("Hủy số"),
    "action_move": N_("Chuyển"),
    "action_close": N_("Đóng quầy"),
    "cancel_confirm": N_("Hủy số {number}? Số này sẽ ra khỏi hàng chờ."),
    "close_confirm": N_(
        "Đóng {name}? Công dân đang ở quầy và các số chuyển đến quầy này sẽ trở lại hàng "
        "chờ, giữ nguyên thứ tự."
    ),
    "move_title": N_("Chuyển số {number}, giữ nguyên thứ tự"),
    "to_service": N_("Sang lĩnh vực"),
    "to_counter": N_("Sang quầy"),
    "back": N_("Quay lại"),
    "yes": N_("Đồng ý"),
    "done_cancelled": N_("Đã hủy số {number}."),
    "done_moved": N_("Đã chuyển số {number}."),
    "done_closed": N_("Đã đóng {name}."),
    "alerts": N_("Thiết bị cần xử lý"),
    "alert_out_of_paper": N_("máy in hết giấy"),
    "alert_paper_near_end": N_("máy in sắp hết giấy"),
    "alert_printer_offline": N_("máy in đang tắt hoặc mở nắp"),
    "alert_printer_unreachable": N_("không kết nối được máy in"),
    "alert_print_late": N_("phiếu không được in kịp"),
    "alert_print_failed": N_("in phiếu bị lỗi"),
    "alert_offline": N_("mất kết nối"),
    "devices": N_("Thiết bị"),
    "device": N_("Tên thiết bị"),
    "connection": N_("Kết nối"),
    "alert": N_("Cảnh báo"),
    "online": N_("Trực tuyến"),
    "offline": N_("Mất kết nối"),
    "last_seen": N_("lần cuối {ago} trước"),
    "never_seen": N_("Chưa kết nối lần nào"),
    "paper_ok": N_("Giấy in: đủ"),
    "paper_near_end": N_("Giấy in: sắp hết"),
    "paper_out": N_("Giấy in: hết"),
    "paper_unknown": N_("Giấy in: chưa rõ"),
    "kind_kiosk": N_("Kiosk lấy số"),
    "kind_display": N_("Bảng hiển thị"),
    "kind_rating": N_("Máy tính bảng đánh giá"),
    "kind_agent": N_("Máy trạm điều khiển thiết bị"),
    "action_acknowledge": N_("Đã biết"),
    "acknowledged_by": N_("{name} đã xác nhận"),
    "done_acknowledged": N_("Đã xác nhận cảnh báo của {name}."),
}


@bp.get("/manage/")
@access("public")
def monitor_page():
    """The manager's live monitor: log in, then every queue and counter of the centre,
    live (a 1366×768 monitor and up)."""
    return render_template("monitor.html", strings=MONITOR_STRINGS, page_data={"title": "motcua"})
