"""The rating tablet's door (/rating): shows the clerk, then asks for a rating; its page
(/rating/) and the photo of the clerk on duty."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template

from core import auth, views
from core.rating import DEFAULT_REASONS, RATING_FIELDS
from core.roles import Audience
from core.validation import Field
from gateway.api import access, device_endpoint
from gateway.bundle import RoleBundle
from gateway.doors import Client, Door, EngineOp
from gateway.web import DEVICE_PAGE_STRINGS, N_

bp = Blueprint(
    "rating",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/rating/static",
)


class RatingDoor(Door):
    role_name = "rating"
    events = {
        "rate": (
            {"ticket_id": Field(int, required=True, min=1), **RATING_FIELDS},
            EngineOp("rate"),
        )
    }

    def authenticate(self, auth: dict, lang: str) -> Client:
        device = self.device(auth, "rating")
        return Client(self.device_actor(device, counter_id=device.counter_id))

    def refresh(self, client: Client) -> None:
        """Its counter read again (an admin moved the tablet: ``device_changed``)."""
        device = self.read(auth.device_by_id, client.actor.id)
        if device is not None:
            client.actor = self.device_actor(device, counter_id=device.counter_id)

    def audience(self, client: Client) -> Audience:
        return Audience(
            "rating", client.actor.centre_id, frozenset([client.actor.counter_id]), frozenset()
        )

    def snapshots(self, conn, clients: dict[str, Client]) -> dict[str, dict]:
        return self.by_counter(views.rating_snapshots, conn, clients, self.ctx.engine.rating_window)


# The tablet's words. The levels' words are also what the status page shows.
LEVEL_STRINGS = {
    "question": N_("Ông/Bà đánh giá thế nào về việc giải quyết thủ tục hôm nay?"),
    "level_3": N_("Rất hài lòng"),
    "level_2": N_("Hài lòng"),
    "level_1": N_("Không hài lòng"),
    "reasons_title": N_("Ông/Bà chưa hài lòng về điều gì?"),
    "reasons_hint": N_("Chạm để chọn một hoặc nhiều lý do."),
    "thanks": N_("Xin cảm ơn Ông/Bà đã đánh giá!"),
    "send": N_("Gửi đánh giá"),
    "saved_offline": N_(
        "Đánh giá của Ông/Bà đã được lưu trên máy và sẽ được gửi khi có kết nối lại."
    ),
    "error_late": N_("Đã quá thời gian đánh giá lượt phục vụ này."),
}
# Words a reason may have in English (the defaults); a centre's own reasons stay as given.
for _reason in DEFAULT_REASONS:
    LEVEL_STRINGS[f"reason:{_reason}"] = _reason
RATING_STRINGS = {
    **DEVICE_PAGE_STRINGS,
    **LEVEL_STRINGS,
    "title": N_("Đánh giá mức độ hài lòng"),
    "counter_closed": N_("Quầy đóng"),
    "counter_paused": N_("Quầy tạm dừng: {reason}"),
    "clerk": N_("Cán bộ tiếp nhận"),
    "serving": N_("Đang phục vụ số"),
    "nobody_serving": N_("Chưa có số nào đang được phục vụ"),
    "ticket": N_("Số {number}"),
    "comment_title": N_("Ý kiến thêm (không bắt buộc)"),
    "comment_placeholder": N_("Chạm vào các phím bên dưới để viết"),
    "comment_left": N_("Còn {n} ký tự"),
    "skip_comment": N_("Bỏ qua, gửi luôn"),
    "next": N_("Tiếp tục"),
    "back": N_("Quay lại"),
    "kb_space": N_("dấu cách"),
    "kb_delete": N_("Xóa"),
    "kb_tone": N_("Dấu"),
    "kb_tone_hint": N_("Gõ chữ, rồi chạm dấu để thêm dấu cho chữ vừa gõ."),
    "back_in": N_("Tự quay lại sau {s} giây"),
    "setup_needed": N_("Máy đánh giá chưa được cài đặt. Vui lòng báo cán bộ kỹ thuật."),
    "setup_hint": N_("Cán bộ kỹ thuật: mở trang này một lần với mã thiết bị, /rating/?token=…"),
}


@bp.get("/rating/")
@access("public")
def rating_page():
    """The tablet at a counter. Opened once as /rating/?token=...; the script keeps it."""
    return render_template("rating/rating.html", strings=RATING_STRINGS)


@bp.get("/rating/photo")
@device_endpoint("rating")
def clerk_photo(device):
    """The photo of the clerk on duty at a counter, for the tablet at that counter only (its
    token as bearer). 204 when the counter has no clerk or no photo."""
    photo = current_app.extensions["motcua"].read(views.clerk_photo, device.counter_id)
    if photo is None:
        return Response(status=204, headers={"Cache-Control": "no-store"})
    return Response(photo, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})


bundle = RoleBundle(bp, (RatingDoor,), {"rating": ("/rating/", N_("Máy đánh giá"))})
