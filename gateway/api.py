"""HTTP API shared by all roles: health and staff login; and how every HTTP endpoint
says who may call it (:func:`access`, :func:`staff_endpoint`, :func:`device_endpoint`),
with the one reading of a bearer token."""

from __future__ import annotations

import functools

from flask import Blueprint, Response, current_app, jsonify, request

from core import auth, views
from core.engine import Actor
from core.errors import QueueError, refusal_of
from core.permissions import PERMISSIONS
from core.validation import Field, parse

bp = Blueprint("api", __name__)
LOGIN = {
    "username": Field(str, required=True, max_len=64),
    "password": Field(str, required=True, max_len=256, strip=False),
}


# Who may call an endpoint, declared on its view function (``view.access``) and read by
# the permission tests and docs: "public" (anyone), ("key", what) (the key in its address
# is the credential), "session" (any logged-in staff), ("staff", permission),
# ("device", kind), ("address", setting) (the caller's address: loopback and those the
# setting allows, gateway/metrics.py). Blueprints' static files are public.
def access(kind: str, what: str | None = None):
    def mark(fn):
        fn.access = (kind, what) if what else kind
        return fn

    return mark


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


@bp.app_errorhandler(413)
def too_large(e):
    """A body past the one limit (gateway/perimeter.py), chunked or not: a JSON refusal."""
    error = QueueError("bad_request", "bad_value", field="body", why=("quá lớn", "too large"))
    response, _ = error_response(error, request_lang())
    response.headers["Connection"] = "close"
    return response, 413


@bp.get("/healthz")
@access("public")
def healthz():
    ctx = _ctx()
    database = "ok" if ctx.store.ping() else "unreachable"
    redis = ctx.hub.transport_state()
    status = "ok" if database == "ok" and redis != "unreachable" else "degraded"
    body = {"status": status, "database": database, "redis": redis}
    return jsonify(body), 200 if database == "ok" else 503


def bearer_token() -> str:
    """The token of an ``Authorization: Bearer`` header ("" without one): a staff session's
    or a device's, the one way every endpoint reads it."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def answer_json(fn, lang: str):
    """Run ``fn``; its dict answers as JSON (a Response it makes, a download say, as it
    is); a refusal (a lost database included) is its JSON error answer."""
    try:
        answer = fn()
        return answer if isinstance(answer, Response) else jsonify(answer)
    except Exception as e:  # noqa: BLE001 - a lost database is "unavailable" (503 JSON)
        error = refusal_of(e)
        if error.code == "internal":
            raise
        return error_response(error, lang)


def _required_token() -> str:
    token = bearer_token()
    if not token:
        raise QueueError("unauthorized", "auth_missing")
    return token


def staff_endpoint(permission: str):
    """An endpoint for staff holding ``permission`` in the centre it acts in (``?centre=``
    code, default the account's own): the view gets ``(principal, centre_id)`` first and
    answers JSON; refusals are JSON errors (401, 403, 404)."""
    assert permission in PERMISSIONS, permission

    def wrap(fn):
        @functools.wraps(fn)
        def view(*args, **kwargs):
            def run():
                token = _required_token()
                code = request.args.get("centre")

                def read(conn):
                    principal = auth.principal_for_token(conn, token)
                    centre_id, _role = auth.staff_centre_id(conn, principal, code, permission)
                    return principal, centre_id

                return fn(*_ctx().store.read(read), *args, **kwargs)

            return answer_json(run, request_lang())

        return access("staff", permission)(view)

    return wrap


def device_actor(device, counter_id=None) -> Actor:
    return Actor(
        kind="device",
        id=device.id,
        centre_id=device.centre_id,
        role=device.kind,
        counter_id=counter_id,
        name=device.name,
    )


def device_endpoint(kind: str):
    """An endpoint for a device of ``kind`` (its token as bearer): the view gets the device
    row first. A token of another kind is refused as unknown (401), like a made-up one."""

    def wrap(fn):
        @functools.wraps(fn)
        def view(*args, **kwargs):
            def run():
                device = _ctx().lookup_device(_required_token())
                if device is None or device.kind != kind:
                    raise QueueError("unauthorized", "auth_invalid")
                return fn(device, *args, **kwargs)

            try:
                answer = run()
            except Exception as e:  # noqa: BLE001 - refusals answer JSON
                error = refusal_of(e)
                if error.code == "internal":
                    raise
                return error_response(error, request_lang())
            return answer if not isinstance(answer, dict) else jsonify(answer)

        return access("device", kind)(view)

    return wrap


@bp.get("/api/v1/centre")
@staff_endpoint("centre.read")
def staff_centre(principal, centre_id):
    """For a clerk's page: the centre, its services and counters (Bearer session token)."""
    return _ctx().store.read(lambda conn: views.staff_centre(conn, principal, centre_id))


@bp.post("/api/v1/auth/logout")
@access("session")
def logout():
    """End the session of the Bearer token."""
    token = bearer_token()
    if not token:
        return jsonify({"ok": True})

    def end():
        auth.logout(_ctx().store, token)
        watch = current_app.extensions.get("motcua.sessions")  # gateway/sessions.py
        if watch is not None:
            watch.ended(auth.token_hash(token))  # its open sockets close now
        return {"ok": True}

    return answer_json(end, request_lang())


@bp.post("/api/v1/auth/login")
@access("public")
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
        response.headers["Cache-Control"] = "no-store"
        return response, status
    # The session token must not stay in a browser's or a proxy's cache.
    return jsonify(result), 200, {"Cache-Control": "no-store"}
