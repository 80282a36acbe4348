"""The kiosk's door: issuing tickets (/kiosk namespace) and the public ticket status page."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template

from core.engine import PRIORITIES
from core.roles import Audience
from core.validation import REQUEST_ID, Field
from gateway.doors import Client, Door

bp = Blueprint("kiosk", __name__, template_folder="templates")


class KioskDoor(Door):
    role_name = "kiosk"
    events = {
        "issue": (
            {
                "service": Field(str, required=True, max_len=32),
                "priority": Field(str, max_len=32, nullable=True),
                "request_id": REQUEST_ID,
            },
            "issue",
        )
    }

    def authenticate(self, auth: dict, lang: str) -> Client:
        return Client(self.device_actor(self.device(auth, "kiosk")))

    def audience(self, client: Client) -> Audience:
        return Audience("kiosk", client.actor.centre_id)

    def snapshot(self, client: Client) -> dict:
        return self.ctx.engine.kiosk_snapshot(client.actor.centre_id)

    def issue(self, client: Client, service: str, priority: str | None, request_id: str | None):
        result = self.ctx.engine.issue_ticket(client.actor, service, priority, request_id)
        base = (self.ctx.public_url or client.base_url).rstrip("/")
        out = {k: v for k, v in result.items() if k != "status_path"}
        out["status_url"] = base + result["status_path"]
        return out


STATUS_TEXT = {
    "waiting": "Đang chờ",
    "transferred": "Đã chuyển, đang chờ",
    "called": "Đang được mời",
    "serving": "Đang được phục vụ",
    "done": "Đã phục vụ xong",
    "no_show": "Đã gọi nhưng vắng mặt",
}


@bp.get("/t/<key>")
def ticket_status(key: str):
    """Public page (from the ticket's QR code): position and estimated wait, refreshed."""
    if len(key) > 64:
        abort(404)
    status = current_app.extensions["motcua"].engine.ticket_status(key)
    if status is None:
        return render_template("kiosk/status_missing.html"), 404
    return render_template(
        "kiosk/status.html", s=status, status_text=STATUS_TEXT, priorities=PRIORITIES
    )
