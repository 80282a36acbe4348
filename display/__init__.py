"""The display board's door (/display): it listens; it changes nothing. Its page
(/display/) and the announcements it plays (/display/announce.wav)."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request

from core import views
from gateway.api import access
from gateway.bundle import RoleBundle
from gateway.doors import BoardDoor, Client
from gateway.web import DEVICE_PAGE_STRINGS, N_

bp = Blueprint(
    "display",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/display/static",
)


def announce_key(secret: str, device_id: int) -> str:
    """The key of one display's announcement audio: the board gets it in its snapshot and
    puts it in the audio URL (an <audio> element sends no headers). It names the display,
    so it dies with it: a display removed from the provisioning file (inactive) has its
    key refused."""
    mac = hmac.new(secret.encode(), f"announce:display:{device_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


class DisplayDoor(BoardDoor):
    role_name = "display"

    def snapshot(self, conn, client: Client) -> dict:
        return views.display_snapshot(conn, client.actor.centre_id, client.counter_ids)

    def snapshots(self, conn, clients: dict[str, Client]) -> dict[str, dict]:
        boards = {room: (c.actor.centre_id, c.counter_ids) for room, c in clients.items()}
        return views.display_snapshots(conn, boards)

    def own(self, client: Client, data: dict) -> dict:
        """Each board's announcement URL names it (its key dies with it): set on a copy,
        since boards alike share one snapshot."""
        device_id = client.actor.id
        key = announce_key(self.ctx.secret_key, device_id)
        board = data["board"]
        url = f"/display/announce.wav?d={device_id}&k={key}"
        return {**data, "board": {**board, "announce": {**board["announce"], "url": url}}}


# The board's words (rendered into the page in both languages).
BOARD_STRINGS = {
    **DEVICE_PAGE_STRINGS,
    "now_calling": N_("Mời công dân có số"),
    "to_counter": N_("đến quầy số {n}"),
    "recent_calls": N_("Số vừa gọi"),
    "no_calls": N_("Chưa có số nào được gọi"),
    "no_earlier_calls": N_("Chưa có số nào khác"),
    "none_calling": N_("Hiện không có số nào đang được mời"),
    "counter": N_("Quầy"),
    "waiting": N_("Số người đang chờ"),
    "waiting_none": N_("Không có lĩnh vực nào"),
    "status_open": N_("Sẵn sàng"),
    "status_paused": N_("Tạm dừng"),
    "status_closed": N_("Quầy đóng"),
    "recall": N_("Gọi lại"),
    "appointment": N_("Lịch hẹn"),  # a ticket from a booked appointment
    "connecting": N_("Đang kết nối…"),
    "audio_blocked": N_(
        "Trình duyệt đang chặn âm thanh nên lời mời không được đọc. "
        "Chạm vào màn hình hoặc bấm một phím để bật loa."
    ),
    "setup_needed": N_("Bảng hiển thị chưa được cài đặt. Vui lòng báo cán bộ kỹ thuật."),
    "setup_hint": N_("Cán bộ kỹ thuật: mở trang này một lần với mã thiết bị, /display/?token=…"),
}


@bp.get("/display/")
@access("public")
def display_page():
    """The hallway board (a TV in kiosk mode). Opened once as /display/?token=...; the
    script keeps the token."""
    return render_template("display/board.html", strings=BOARD_STRINGS)


# Announcements are assembled for numbers called this long ago at most (a board plays a
# call within seconds; a recall calls again).
RECENT_CALL_S = 15 * 60
# What the announcement route accepts: a real ticket number and counter, nothing larger.
MAX_NUMBER_LEN = 10
MAX_COUNTER = 9999


def voice_pack() -> Path:
    from display import voicepack

    return Path(current_app.config.get("VOICE_PACK") or voicepack.DEFAULT_PACK)


@bp.get("/display/announce.wav")
@access("key", "display")
def announce():
    """ "Mời công dân có số thứ tự <n> đến quầy số <counter>" after a chime, as one WAV.

    Keyed (``c``, ``k`` from the board's snapshot); assembled from the voice pack in the
    server's thread pool (never on the event loop) and cached on disk by the pack, so a
    repeated call is a file read; the browser may keep it a day."""
    from display import speech, voicepack

    args = request.args
    try:
        device_id = int(args.get("d", ""))
        counter = int(args.get("counter", ""))
    except ValueError:
        abort(400)
    key = args.get("k", "")
    ctx = current_app.extensions["motcua"]
    expected = announce_key(ctx.secret_key, device_id)
    if not hmac.compare_digest(key.encode(), expected.encode()):
        abort(403)
    number, form = args.get("number", ""), args.get("form", "digits")
    if form not in speech.FORMS or not 0 <= counter <= MAX_COUNTER:
        abort(400)
    if len(number) > MAX_NUMBER_LEN:
        abort(400)
    try:
        speech.parse_ticket(number)
    except ValueError:
        abort(400)
    # The display's budget of work (gateway/limits.py), then only a number called at that
    # counter lately, by an active display: a key cannot fill the cache with every number.
    if not ctx.budget.allows(f"device:{device_id}"):
        return jsonify({"ok": False, "error": {"code": "rate_limited"}}), 429
    since = datetime.now(UTC) - timedelta(seconds=RECENT_CALL_S)
    if not ctx.store.read(
        lambda conn: views.recently_called(conn, device_id, number, counter, since)
    ):
        abort(404)
    pack = voice_pack()
    started = time.perf_counter()
    try:
        if ctx.offload is None:
            wav = voicepack.announce(pack, number, counter, form)
        else:
            wav = ctx.offload(voicepack.announce, pack, number, counter, form)
    except voicepack.VoicePackError as e:
        current_app.logger.error("announcement %s at %s: %s", number, counter, e)
        return jsonify({"ok": False, "error": {"code": "unavailable", "message": str(e)}}), 503
    took_ms = (time.perf_counter() - started) * 1000
    return Response(
        wav,
        mimetype="audio/wav",
        headers={
            "Cache-Control": "private, max-age=86400",
            "Server-Timing": f"assemble;dur={took_ms:.1f}",
        },
    )


bundle = RoleBundle(bp, (DisplayDoor,), {"display": ("/display/", N_("Bảng hiển thị"))})
