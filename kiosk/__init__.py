"""The kiosk's door: issuing tickets (/kiosk namespace) and the public ticket status page."""

from __future__ import annotations

import io
import time

from flask import Blueprint, Response, abort, current_app, render_template, request

from core import dossiers, views
from core.dossiers import DOSSIER_CODE
from core.engine import PRIORITIES, Actor
from core.errors import QueueError
from core.rating import DEFAULT_REASONS, RATING_FIELDS
from core.roles import Audience
from core.validation import REQUEST_ID, Field
from gateway.api import access
from gateway.bundle import RoleBundle
from gateway.doors import Client, Door
from gateway.web import DEVICE_PAGE_STRINGS, N_

bp = Blueprint(
    "kiosk",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/kiosk/static",
)


class KioskDoor(Door):
    role_name = "kiosk"
    events = {
        "issue": (
            {
                "service": Field(str, required=True, max_len=32),
                "priority": Field(str, max_len=32, nullable=True),
                "lang": Field(str, max_len=8, nullable=True),
                "request_id": REQUEST_ID,
            },
            "issue",
        ),
        # A booked citizen's code (typed on the keypad or read by the scanner):
        # docs/appointments.md.
        "check_in": (
            {
                "code": Field(str, required=True, max_len=16),
                "lang": Field(str, max_len=8, nullable=True),
                "request_id": REQUEST_ID,
            },
            "check_in",
        ),
        # The holder of a ticket just taken leaves a mobile number, to be told when their
        # turn is near (docs/appointments.md).
        "notify_me": (
            {
                "ticket_id": Field(int, required=True, min=1),
                "phone": Field(str, required=True, max_len=20),
                "lang": Field(str, max_len=8, nullable=True),
                "request_id": REQUEST_ID,
            },
            "notify_me",
        ),
    }

    def authenticate(self, auth: dict, lang: str) -> Client:
        return Client(self.device_actor(self.device(auth, "kiosk")))

    def audience(self, client: Client) -> Audience:
        return Audience("kiosk", client.actor.centre_id)

    def snapshot(self, conn, client: Client) -> dict:
        return views.kiosk_snapshot(conn, client.actor.centre_id)

    def issue(
        self,
        client: Client,
        service: str,
        priority: str | None,
        request_id: str | None,
        lang: str | None = None,
    ):
        if lang not in (None, "vi", "en"):
            raise QueueError(
                "bad_request", "bad_value", field="lang", why=("vi hoặc en", "vi or en")
            )
        base = public_base(self.ctx, client.base_url)
        result = self.ctx.engine.issue_ticket(
            client.actor, service, priority, request_id, base, lang or "vi"
        )
        return _with_status_url(result, base)

    def check_in(self, client: Client, code: str, lang: str | None, request_id: str | None):
        if lang not in (None, "vi", "en"):
            raise QueueError(
                "bad_request", "bad_value", field="lang", why=("vi hoặc en", "vi or en")
            )
        base = public_base(self.ctx, client.base_url)
        code = "".join(code.split())  # "9997 7290" as printed on the booking's page
        result = self.ctx.engine.check_in(client.actor, code, request_id, base, lang or "vi")
        return _with_status_url(result, base)

    def notify_me(self, client: Client, ticket_id: int, phone: str, lang, request_id):
        return self.ctx.engine.leave_phone(client.actor, ticket_id, phone, request_id)


def _with_status_url(result: dict, base: str) -> dict:
    out = {k: v for k, v in result.items() if k != "status_path"}
    out["status_url"] = base + result["status_path"]
    return out


def public_base(ctx, seen_at: str) -> str:
    """Where phones reach this server (status pages in QR codes): MOTCUA_PUBLIC_URL, or
    the address the device itself used."""
    return (ctx.public_url or seen_at).rstrip("/")


# A ticket's status as its holder reads it (the status page).
STATUS_TEXT = {
    "waiting": N_("Đang chờ"),
    "transferred": N_("Đã chuyển, đang chờ"),
    "called": N_("Đang được mời"),
    "serving": N_("Đang được phục vụ"),
    "done": N_("Đã phục vụ xong"),
    "no_show": N_("Đã gọi nhưng vắng mặt"),
    # A manager took it out of the queue (the monitor's "cancel").
    "cancelled": N_("Số đã được hủy. Nếu còn cần làm thủ tục, Ông/Bà vui lòng lấy số mới."),
}
STATUS_STRINGS = {
    **{f"status_{k}": v for k, v in STATUS_TEXT.items()},
    "called_to": N_("Mời Ông/Bà đến quầy số {n}"),
    "minutes": N_("khoảng {m} phút"),
    "soon": N_("sắp đến lượt"),
    "on_break": N_(
        "Quầy đang tạm dừng. Ông/Bà vẫn giữ lượt và được phục vụ khi quầy làm việc lại."
    ),
    "updated": N_("Cập nhật lúc {time}."),
    "near": N_("Sắp đến lượt Ông/Bà: còn {n} người phía trước."),
    # Rating the visit here, when the counter's tablet did not get it.
    "rate_question": N_("Ông/Bà đánh giá thế nào về việc giải quyết thủ tục hôm nay?"),
    "level_3": N_("Rất hài lòng"),
    "level_2": N_("Hài lòng"),
    "level_1": N_("Không hài lòng"),
    "reasons_title": N_("Ông/Bà chưa hài lòng về điều gì?"),
    "comment_title": N_("Ý kiến thêm (không bắt buộc)"),
    "send": N_("Gửi đánh giá"),
    "thanks": N_("Xin cảm ơn Ông/Bà đã đánh giá!"),
    "rate_failed": N_("Chưa gửi được đánh giá. Vui lòng thử lại."),
    **{f"reason:{r}": r for r in DEFAULT_REASONS},
}


class TicketDoor(Door):
    """The public status page of one ticket, live (/ticket): its key is the credential,
    it hears that ticket's changes and the counts of its service, and sends only sync
    and, once its visit is done, its rating (`rate`)."""

    role_name = "ticket"
    events = {"rate": (RATING_FIELDS, "rate")}

    def authenticate(self, auth: dict, lang: str) -> Client:
        key = auth.get("key")
        if not isinstance(key, str) or not key:
            raise QueueError("unauthorized", "auth_missing")
        found = self.read(views.ticket_follower, key[:64])
        if found is None:
            raise QueueError("unauthorized", "auth_invalid")
        actor = Actor("ticket", found.id, found.centre_id, "ticket", name=key[:64])
        return Client(actor, service_codes=frozenset({found.service_code}))

    def refresh(self, client: Client) -> None:
        """A transfer moves the ticket to another service: follow that one's counts."""
        found = self.read(views.ticket_follower, client.actor.name)
        if found is not None:
            client.service_codes = frozenset({found.service_code})

    def audience(self, client: Client) -> Audience:
        return Audience(
            "ticket", client.actor.centre_id, None, client.service_codes, device=client.actor.id
        )

    def snapshot(self, conn, client: Client) -> dict:
        return views.ticket_status(conn, client.actor.name, self.ctx.engine.rating_window)

    def rate(self, client: Client, **rating):
        """The holder rates the visit here when the tablet did not: the same operation
        and rules as the tablet's, for this ticket only."""
        return self.ctx.engine.rate(client.actor, client.actor.id, **rating)


# The kiosk page's words (its script switches language on a tap, without a reload).
KIOSK_STRINGS = {
    **DEVICE_PAGE_STRINGS,
    "title": N_("Lấy số thứ tự"),
    "choose": N_("Chạm vào lĩnh vực Ông/Bà cần giải quyết"),
    "waiting": N_("{n} người đang chờ"),
    "nobody_waiting": N_("Không có người chờ"),
    "wait_about": N_("Chờ khoảng {m} phút"),
    "closed": N_("Chưa có quầy mở, tạm chưa nhận số"),
    "on_break": N_("Quầy tạm dừng, vẫn nhận số"),
    "on_break_ticket": N_(
        "Quầy đang tạm dừng. Ông/Bà vẫn giữ lượt và được phục vụ khi quầy làm việc lại."
    ),
    "priority_open": N_("Ưu tiên: người cao tuổi, người khuyết tật, phụ nữ mang thai…"),
    "priority_title": N_("Ông/Bà thuộc diện ưu tiên nào?"),
    "priority_hint": N_("Cán bộ có thể đề nghị Ông/Bà xuất trình giấy tờ."),
    "priority_none": N_("Không thuộc diện ưu tiên"),
    "priority_chosen": N_("Ưu tiên: {group}"),
    "priority_cancel": N_("Bỏ ưu tiên"),
    "back": N_("Quay lại"),
    "issuing": N_("Đang lấy số, vui lòng chờ…"),
    "your_number": N_("Số thứ tự của Ông/Bà"),
    "ahead": N_("Số người trước Ông/Bà"),
    "estimated_wait": N_("Thời gian chờ dự kiến"),
    "about_minutes": N_("khoảng {m} phút"),
    "soon": N_("sắp đến lượt"),
    "scan": N_("Quét mã để theo dõi lượt của Ông/Bà trên điện thoại"),
    "printing": N_("Đang in phiếu…"),
    "take_ticket": N_("Mời Ông/Bà nhận phiếu ở khe máy in."),
    "print_failed": N_(
        "Không in được phiếu, nhưng số của Ông/Bà vẫn có hiệu lực. "
        "Hãy chụp ảnh màn hình này hoặc ghi lại số."
    ),
    "watch_board": N_("Mời Ông/Bà theo dõi số trên màn hình và nghe loa gọi."),
    "done": N_("Xong"),
    "back_in": N_("Tự quay lại sau {s} giây"),
    "offline": N_("Mất kết nối với máy chủ. Máy đang tự kết nối lại, vui lòng chờ giây lát."),
    "error_closed": N_(
        "Lĩnh vực này hiện chưa có quầy mở. Vui lòng chọn lĩnh vực khác hoặc hỏi cán bộ hướng dẫn."
    ),
    "error_busy": N_("Máy đang bận, vui lòng chạm lại sau giây lát."),
    "error_generic": N_("Chưa lấy được số. Vui lòng thử lại hoặc hỏi cán bộ hướng dẫn."),
    "error_no_answer": N_(
        "Máy chủ chưa trả lời nên chưa lấy được số. Vui lòng thử lại hoặc hỏi cán bộ hướng dẫn."
    ),
    "setup_needed": N_("Máy lấy số chưa được cài đặt. Vui lòng báo cán bộ kỹ thuật."),
    "setup_hint": N_("Cán bộ kỹ thuật: mở trang này một lần với mã thiết bị, /kiosk/?token=…"),
    "no_services": N_("Hiện chưa có lĩnh vực nào nhận hồ sơ."),
    # A service with opening hours of its own, outside them; one that does not accept the
    # priority group chosen (docs/admin.md).
    "hours_closed": N_("Ngoài giờ nhận hồ sơ của lĩnh vực này"),
    "opens_at": N_("Mở lúc {time} {day}"),
    "opens_none": N_("Chưa có lịch nhận hồ sơ"),
    "day_today": N_("hôm nay"),
    "day_tomorrow": N_("ngày mai"),
    "day_on": N_("{weekday}, {date}"),
    "weekday_0": N_("Chủ nhật"),
    "weekday_1": N_("thứ Hai"),
    "weekday_2": N_("thứ Ba"),
    "weekday_3": N_("thứ Tư"),
    "weekday_4": N_("thứ Năm"),
    "weekday_5": N_("thứ Sáu"),
    "weekday_6": N_("thứ Bảy"),
    "priority_not_here": N_("Lĩnh vực này không nhận diện ưu tiên đã chọn"),
    "priority_only": N_("Ưu tiên: {groups}"),
    # Checking in a booking (docs/appointments.md).
    "phone_open": N_("Nhắn tin cho tôi khi sắp đến lượt"),
    "phone_title": N_("Số điện thoại di động của Ông/Bà"),
    "phone_hint": N_(
        "Trung tâm nhắn tin khi còn ít người trước Ông/Bà và khi gọi số. Số điện thoại được "
        "xóa khi hết ngày."
    ),
    "phone_send": N_("Gửi"),
    "phone_done": N_("Trung tâm sẽ nhắn tin tới số …{tail} khi sắp đến lượt Ông/Bà."),
    "booked_open": N_("Tôi đã đặt lịch hẹn"),
    "booked_title": N_("Quét mã QR của lịch hẹn, hoặc nhập 8 chữ số của mã"),
    "booked_hint": N_("Mã có trên trang đặt lịch và trong tin nhắn xác nhận."),
    "booked_take": N_("Lấy số"),
    "booked_delete": N_("Xóa"),
    "booked_ticket": N_("Lịch hẹn {time}: Ông/Bà được mời trước người đến không hẹn."),
    "booked_late": N_(
        "Đã qua giờ hẹn, nhưng Ông/Bà vẫn được phục vụ hôm nay theo thứ tự như người đến trực "
        "tiếp. Xin cảm ơn Ông/Bà đã đến."
    ),
}


@bp.get("/kiosk/")
@access("public")
def kiosk_page():
    """The kiosk's touch screen. Opened once as /kiosk/?token=...; the script keeps it."""
    priorities = [{"code": code, "vi": vi, "en": en} for code, (vi, en) in PRIORITIES.items()]
    return render_template("kiosk/kiosk.html", strings=KIOSK_STRINGS, priorities=priorities)


@bp.get("/t/<key>/qr.svg")
@access("key", "ticket")
def ticket_qr(key: str):
    """The QR code of a ticket's status page, drawn on the server (no script library)."""
    import segno

    ctx = current_app.extensions["motcua"]
    if len(key) > 64 or ctx.read(views.ticket_follower, key) is None:
        abort(404)
    base = public_base(ctx, request.host_url)
    # A ticket taken in English: its phone page opens in English too.
    lang = "?lang=en" if request.args.get("lang") == "en" else ""
    out = io.BytesIO()
    segno.make(f"{base}/t/{key}{lang}", error="m").save(out, kind="svg", scale=8, border=2)
    return Response(
        out.getvalue(), mimetype="image/svg+xml", headers={"Cache-Control": "max-age=86400"}
    )


@bp.get("/t/<key>")
@access("key", "ticket")
def ticket_status(key: str):
    """Public page (from the ticket's QR code): position, wait, the call; live."""
    if len(key) > 64:
        abort(404)
    ctx = current_app.extensions["motcua"]
    status = ctx.read(views.ticket_status, key, ctx.engine.rating_window)
    if status is None:
        return render_template("kiosk/status_missing.html"), 404
    return render_template(
        "kiosk/status.html",
        s=status,
        status_text=STATUS_TEXT,
        priorities=PRIORITIES,
        strings=STATUS_STRINGS,
    )


# The citizen's dossier look-up (the QR on a receipt, or the code typed in a form).
DOSSIER_STATUS_TEXT = {
    "received": N_("Đã tiếp nhận"),
    "processing": N_("Đang giải quyết"),
    "supplement_requested": N_("Cần bổ sung hồ sơ"),
    "result_ready": N_("Đã có kết quả, mời đến nhận"),
    "returned": N_("Đã trả kết quả"),
    "cancelled": N_("Đã hủy"),
}
# Look-ups per client address: LOOKUP_BURST at once, then LOOKUP_PER_HOUR an hour (a
# citizen looks a few times a day; walking a day's codes is out of reach). Wrong second
# factors per dossier, from anywhere: FACTOR_TRIES, then none for an hour after the last
# (10,000 phone endings: years of guessing).
LOOKUP_BURST = 10
LOOKUP_PER_HOUR = 10
FACTOR_TRIES = 5


def _spend(ctx, key: str, per_hour: float, burst: float) -> bool:
    return ctx.limits.bucket(key, per_hour / 3600, burst, time.time()) == 0


@bp.get("/hs/")
@bp.get("/hs/<code>")
@bp.get("/hs/<centre>/<code>")
@access("public")
def dossier_status(code: str | None = None, centre: str | None = None):
    """One centre's dossier from its code, for whoever holds the code: its status; with
    the second factor (``pin``: the phone's last four digits or the code on the receipt)
    also the applicant's initials and the dates (docs/dossiers.md says why). Look-ups
    are limited per address, wrong factors per dossier (core/limits.py, shared by the
    server's processes through Redis)."""
    ctx = current_app.extensions["motcua"]
    args = request.args
    code = (code or args.get("code") or "").strip()
    factor = (args.get("pin") or "").strip()[:16] or None
    centres = ctx.store.read(views.centres)
    codes = [c["code"] for c in centres]
    centre = centre or args.get("c") or (codes[0] if len(codes) == 1 else None)
    found, refused, wrong = None, False, False
    if code and centre in codes:
        if not _spend(ctx, f"lookup:{request.remote_addr or '?'}", LOOKUP_PER_HOUR, LOOKUP_BURST):
            refused = True
        elif DOSSIER_CODE.match(code):
            tries = f"lookup:factor:{centre}:{code}"
            if factor and (ctx.limits.get(tries) or (0, 0))[0] >= FACTOR_TRIES:
                factor = None  # wrong too often this hour: the status alone
            found = dossiers.dossier_status(ctx.store, centre, code, factor)
            if found is not None and found["checked"] is False:
                wrong = True
                ctx.limits.add(tries, 1, time.time(), 3600)
    response = render_template(
        "kiosk/dossier.html",
        code=code[:64],
        centre=centre if centre in codes else None,
        centres=centres,
        found=found,
        refused=refused,
        wrong=wrong,
        status_text=DOSSIER_STATUS_TEXT,
    )
    status = 429 if refused else 404 if code and centre in codes and not found else 200
    return response, status, {"Cache-Control": "no-store"}


bundle = RoleBundle(bp, (KioskDoor, TicketDoor), {"kiosk": ("/kiosk/", N_("Máy lấy số"))})
