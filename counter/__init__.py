"""The counter's door (/counter): clerks call, serve, transfer and pause; and the clerk's
page (/counter/)."""

from __future__ import annotations

from flask import Blueprint, render_template

from core import views
from core.auth import token_hash
from core.engine import OUTCOMES, PRIORITIES, Actor
from core.errors import QueueError
from core.roles import Audience
from core.validation import INT_LIMIT, REQUEST_ID, TYPE_NAMES, Field
from gateway.api import access
from gateway.bundle import RoleBundle
from gateway.doors import Client, EngineOp, StaffDoor
from gateway.web import N_, STAFF_LOGIN_STRINGS

bp = Blueprint(
    "counter",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/counter/static",
)

TICKET = Field(int, required=True, min=1)
_R = {"request_id": REQUEST_ID}


class CounterDoor(StaffDoor):
    role_name = "counter"
    permission = "counter.operate"
    events = {
        "call_next": ({**_R}, EngineOp("call_next")),
        "call": ({"ticket_id": TICKET, **_R}, EngineOp("call_ticket")),
        "recall": ({"ticket_id": TICKET, **_R}, EngineOp("recall")),
        "start": ({"ticket_id": TICKET, **_R}, EngineOp("start")),
        "no_show": ({"ticket_id": TICKET, **_R}, EngineOp("no_show")),
        "finish": (
            {
                "ticket_id": TICKET,
                "dossiers": Field(list, items=str, max_items=20, max_len=64),
                "outcome": Field(str, max_len=32, nullable=True),
                **_R,
            },
            EngineOp("finish"),
        ),
        "transfer": (
            {
                "ticket_id": TICKET,
                "service": Field(str, max_len=32),
                "counter": Field(int, min=1),
                **_R,
            },
            EngineOp("transfer"),
        ),
        "pause": ({"reason": Field(str, required=True, max_len=200), **_R}, EngineOp("pause")),
        "resume": ({**_R}, EngineOp("resume")),
        "close": ({**_R}, EngineOp("close_counter")),
        # Reads: the clerk's own figures, and ratings by level (never which visit got which).
        "my_day": ({}, "my_day", "own.figures"),
        "my_ratings": ({}, "my_ratings", "own.figures"),
    }

    def authenticate(self, auth: dict, lang: str) -> Client:
        token, centre = self.staff(auth)
        if "counter" not in auth:
            raise QueueError("bad_request", "auth_counter_missing")
        number = auth["counter"]
        if not isinstance(number, int) or isinstance(number, bool):
            raise QueueError("bad_request", "wrong_type", field="counter", expected=TYPE_NAMES[int])
        if not 1 <= number < INT_LIMIT:
            raise QueueError("not_found", "unknown_counter", number=number)
        principal, role, counter, codes = self.ctx.lookup_staff_counter(token, number, centre)
        # The session is watched: ended, the socket is closed (gateway/sessions.py).
        client = Client(
            Actor.staff(principal, role, counter),
            principal=principal,
            service_codes=codes,
            session=token_hash(token),
        )
        # A clerk reconnecting to the counter they hold (their server process restarted)
        # has nothing to open: no write for each of a hall's clerks.
        client.holds_counter = counter.status != "closed" and counter.staff_id == principal.staff_id
        return client

    def refresh(self, client: Client) -> None:
        client.service_codes = self.ctx.counter_service_codes(client.actor.counter_id)

    def audience(self, client: Client) -> Audience:
        return Audience(
            "counter",
            client.actor.centre_id,
            frozenset([client.actor.counter_id]),
            client.service_codes,
        )

    def snapshots(self, conn, clients: dict[str, Client]) -> dict[str, dict]:
        return self.by_counter(
            views.counter_snapshots, conn, clients, self.ctx.engine.no_show_after_s
        )

    def my_day(self, client: Client) -> dict:
        return self.read(views.clerk_day, client.actor.id, client.actor.centre_id)

    def my_ratings(self, client: Client) -> dict:
        return self.read(views.staff_ratings, client.actor.id)

    def admit(self, client: Client) -> None:
        if not client.holds_counter:
            self.ctx.engine.open_counter(client.actor)


# The clerk's page's words (its script renders every screen).
COUNTER_STRINGS = {
    "login_title": N_("Đăng nhập cán bộ"),
    **STAFF_LOGIN_STRINGS,
    "change_counter": N_("Đổi quầy"),
    "no_answer": N_("Máy chủ chưa trả lời; thao tác có thể chưa được ghi nhận. Hãy thử lại."),
    "loading": N_("Đang tải…"),
    "choose_counter": N_("Chọn quầy làm việc"),
    "held_by": N_("Đang do {name} phụ trách"),
    "no_counter": N_("Tài khoản này chưa được phân công quầy nào."),
    "status_open": N_("Đang mở"),
    "status_paused": N_("Tạm dừng"),
    "status_closed": N_("Đóng"),
    "status_paused_because": N_("Tạm dừng: {reason}"),
    "action_call_next": N_("Gọi tiếp"),
    "action_recall": N_("Gọi lại"),
    "action_start": N_("Bắt đầu"),
    "action_finish": N_("Hoàn thành"),
    "action_no_show": N_("Vắng mặt"),
    "action_transfer": N_("Chuyển"),
    "action_pause": N_("Tạm dừng"),
    "action_close": N_("Đóng quầy"),
    "resume": N_("Tiếp tục phục vụ"),
    "no_current": N_("Chưa có công dân. Bấm “Gọi tiếp” để mời số tiếp theo."),
    "ticket_called": N_("Đang mời, chờ công dân đến quầy"),
    "ticket_serving": N_("Đang phục vụ"),
    "waited": N_("Đã chờ"),
    "called_for": N_("Đã mời được"),
    "served_for": N_("Đã phục vụ được"),
    "minutes_n": N_("{m} phút"),
    "queue_title": N_("Đang chờ ({n})"),
    "queue_empty": N_("Không có ai đang chờ."),
    "call_this": N_("Gọi số này"),
    "sent_here": N_("(chuyển đến quầy này)"),
    "today": N_("Hôm nay của bạn"),
    "served": N_("Đã phục vụ"),
    "average": N_("Thời gian phục vụ trung bình"),
    "ratings_title": N_("Đánh giá của công dân, tháng này đến hết hôm qua"),
    "ratings_hidden": N_(
        "Hiện khi có từ {n} đánh giá. Đánh giá trong ngày không hiện ngay, để không ai biết "
        "một lượt phục vụ được đánh giá thế nào."
    ),
    "rating_3": N_("Rất hài lòng"),
    "rating_2": N_("Hài lòng"),
    "rating_1": N_("Không hài lòng"),
    "finish_title": N_("Hoàn thành số {number}"),
    "dossiers": N_("Mã hồ sơ (quét hoặc gõ, Enter để thêm)"),
    "dossier_hint": N_("VD: H15.50.05.13-261008-0975"),
    "remove": N_("Bỏ"),
    "outcome": N_("Kết quả"),
    "outcome_received": N_("Tiếp nhận hồ sơ mới"),
    "outcome_returned": N_("Trả kết quả"),
    "outcome_supplemented": N_("Bổ sung hồ sơ"),
    "outcome_guided": N_("Chỉ hướng dẫn"),
    "outcome_other": N_("Khác"),
    "cancel": N_("Hủy"),
    "transfer_title": N_("Chuyển số {number}"),
    "to_service": N_("Sang lĩnh vực"),
    "to_counter": N_("Sang quầy"),
    "pause_title": N_("Tạm dừng quầy vì"),
    "reason_break": N_("Nghỉ giữa giờ"),
    "reason_meeting": N_("Họp"),
    "reason_helping": N_("Hỗ trợ quầy khác"),
    "reason_system": N_("Sự cố phần mềm, thiết bị"),
    "other_reason": N_("Lý do khác…"),
    "close_confirm": N_("Đóng quầy? Công dân sẽ không được gọi đến quầy này nữa."),
    "done_called": N_("Đã mời số {number}."),
    "done_finished": N_("Đã hoàn thành số {number}."),
    "done_no_show": N_("Đã ghi số {number} vắng mặt."),
    "done_sent_counter": N_("Đã chuyển số {number} sang quầy {counter}."),
    "done_sent_service": N_("Đã chuyển số {number} sang lĩnh vực {service}."),
    "done_paused": N_("Quầy đã tạm dừng."),
    "done_resumed": N_("Quầy đã tiếp tục phục vụ."),
    "done_closed": N_("Quầy đã đóng."),
    "finish_then_call_title": N_("Hoàn thành số {number} rồi gọi số tiếp theo"),
    "transfer_unserved": N_(
        "Chưa có quầy nào mở phục vụ lĩnh vực {service}: công dân sẽ phải chờ đến khi có "
        "quầy mở. Vẫn chuyển?"
    ),
    "no_counter_open": N_("(chưa có quầy mở)"),
    "counter_closed_now": N_("(đang đóng)"),
    "still_serving": N_(
        "Số {number} vẫn đang ở quầy: hãy hoàn thành hoặc chuyển số này trước khi rời quầy."
    ),
    "alert_out_of_paper": N_("máy in hết giấy"),
    "alert_paper_near_end": N_("máy in sắp hết giấy"),
    "alert_printer_offline": N_("máy in đang tắt hoặc mở nắp"),
    "alert_printer_unreachable": N_("không kết nối được máy in"),
    "alert_print_late": N_("phiếu không được in kịp"),
    "alert_print_failed": N_("in phiếu bị lỗi"),
    "alert_offline": N_("mất kết nối"),
}
PAUSE_REASONS = ["reason_break", "reason_meeting", "reason_helping", "reason_system"]


@bp.get("/counter/")
@access("public")
def counter_page():
    """The clerk's page: log in, take a counter, serve the queue (1366×768 and up)."""
    page_data = {
        "title": "motcua",
        "priorities": PRIORITIES,
        "outcomes": list(OUTCOMES),
        "pause_reasons": PAUSE_REASONS,
    }
    return render_template("counter/counter.html", strings=COUNTER_STRINGS, page_data=page_data)


bundle = RoleBundle(bp, (CounterDoor,))
