"""HTTP API shared by all roles: health and staff login."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from core import auth
from core.errors import QueueError, refusal_of
from core.validation import Field, parse

bp = Blueprint("api", __name__)
LOGIN = {
    "username": Field(str, required=True, max_len=64),
    "password": Field(str, required=True, max_len=256, strip=False),
}


def _ctx():
    return current_app.extensions["motcua"]


def request_lang() -> str:
    return "en" if request.args.get("lang") == "en" else "vi"


def error_response(e: QueueError, lang: str):
    status = {
        "bad_request": 400,
        "unauthorized": 401,
        "forbidden": 403,
        "not_found": 404,
        "conflict": 409,
        "queue_empty": 409,
        "already_rated": 409,
        "rate_limited": 429,
        "unavailable": 503,
    }.get(e.code, 500)
    return jsonify({"ok": False, "error": e.as_dict(lang)}), status


# Pages are served from this server only and never framed; scripts from static files
# (inline styles are allowed: the status page has its stylesheet inline).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@bp.after_app_request
def security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@bp.get("/healthz")
def healthz():
    ctx = _ctx()
    database = "ok" if ctx.store.ping() else "unreachable"
    redis = ctx.hub.transport_state()
    status = "ok" if database == "ok" and redis != "unreachable" else "degraded"
    body = {"status": status, "database": database, "redis": redis}
    return jsonify(body), 200 if database == "ok" else 503


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def answer_json(fn, lang: str):
    """Run ``fn``; a refusal (a lost database included) is its JSON error answer."""
    try:
        return jsonify(fn())
    except Exception as e:  # noqa: BLE001 - a lost database is "unavailable" (503 JSON)
        error = refusal_of(e)
        if error.code == "internal":
            raise
        return error_response(error, lang)


@bp.get("/api/v1/centre")
def staff_centre():
    """For a clerk's page: the centre, its services and counters (Bearer session token)."""
    token = bearer_token()
    if not token:
        return error_response(QueueError("unauthorized", "auth_missing"), request_lang())
    return answer_json(lambda: _ctx().engine.staff_centre(token), request_lang())


@bp.post("/api/v1/auth/logout")
def logout():
    """End the session of the Bearer token."""
    token = bearer_token()
    if token:
        return answer_json(lambda: auth.logout(_ctx().store, token) or {"ok": True}, request_lang())
    return jsonify({"ok": True})


@bp.post("/api/v1/auth/login")
def login():
    ctx = _ctx()
    lang = request_lang()
    try:
        body = parse(request.get_json(silent=True), LOGIN)
    except QueueError as e:
        return error_response(e, lang)
    guard = current_app.extensions["motcua.login"]  # gateway/guard.py
    try:
        result = auth.login(
            ctx.store,
            guard.throttle,
            body["username"],
            body["password"],
            request.remote_addr or "?",
            check=guard.check,
        )
    except Exception as e:  # noqa: BLE001 - a lost database is "unavailable" (503 JSON)
        error = refusal_of(e)
        if error.code == "internal":
            raise
        response, status = error_response(error, lang)
        if status == 429:
            response.headers["Retry-After"] = str(error.params.get("seconds", 1))
        return response, status
    return jsonify(result)
