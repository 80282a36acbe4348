"""The admin API (docs/admin.md): a provisioning file's entries one at a time, for staff
holding ``config.manage`` in the centre (its admins, and the installation's admins in
every centre; ``?centre=CODE`` picks one). ``PUT`` creates or replaces an entry,
``DELETE`` retires it, ``GET /api/v1/admin/export`` gives the whole centre as a file.

The rules are core/admin.py's; this module reads the request and writes the answer.
"""

from __future__ import annotations

from flask import Response, current_app, jsonify, make_response, request

from core import admin
from core.auth import hash_password, token_hash
from core.errors import QueueError
from core.fields import FieldRefused
from gateway.api import bearer_token, staff_endpoint

from . import bp

PERMISSION = "config.manage"


def _ctx():
    return current_app.extensions["motcua"]


def _write(principal, centre_id: int, fn) -> dict:
    return _ctx().store.write(
        fn, centre_id=centre_id, actor=f"staff:{principal.staff_id}", urgent=True
    )


def _put(principal, centre_id: int, table: str, key):
    body = request.get_json(silent=True)
    password = None
    if table == "staff" and isinstance(body, dict):
        # scrypt takes ~0.2 s: never inside the writer's transaction, where it would hold
        # every clerk's call behind it (and, on PostgreSQL, the whole process). Without a
        # password, one for the account if it is new.
        given = body.get("password")
        store = _ctx().store

        def hashed():
            if isinstance(given, str):
                return given, hash_password(given)
            return admin.new_password()

        password = store.offload(hashed) if store.offload is not None else hashed()
    answer = _write(
        principal,
        centre_id,
        lambda tx: admin.put(tx, principal, centre_id, table, key, body, password=password),
    )
    response = make_response(jsonify(answer), 201 if answer["created"] else 200)
    response.headers["Cache-Control"] = "no-store"  # a generated password or token
    return response


def _delete(principal, centre_id: int, table: str, key):
    return _write(
        principal, centre_id, lambda tx: admin.retire(tx, principal, centre_id, table, key)
    )


def _number(text: str) -> int:
    """A counter's number from the address."""
    if not text.isdigit() or len(text) > 4:
        raise FieldRefused(
            "number", "“number” phải là một số nguyên", "'number' must be a whole number"
        )
    return int(text)


@bp.put("/api/v1/admin/centre")
@staff_endpoint(PERMISSION)
def put_centre(principal, centre_id):
    """Replace the centre's settings (the fields of the file's ``[centre]`` table)."""
    body = request.get_json(silent=True)
    return _write(principal, centre_id, lambda tx: admin.put_centre(tx, principal, centre_id, body))


@bp.put("/api/v1/admin/agencies/<code>")
@staff_endpoint(PERMISSION)
def put_agency(principal, centre_id, code):
    """Create or replace an agency (the fields of an ``[[agencies]]`` entry); a new name
    reaches the kiosks showing its services at once."""
    return _put(principal, centre_id, "agencies", code)


@bp.delete("/api/v1/admin/agencies/<code>")
@staff_endpoint(PERMISSION)
def delete_agency(principal, centre_id, code):
    """Retire an agency no active service is of (refused, naming them, while one is);
    its services' history and reports stay."""
    return _delete(principal, centre_id, "agencies", code)


@bp.put("/api/v1/admin/services/<code>")
@staff_endpoint(PERMISSION)
def put_service(principal, centre_id, code):
    """Create or replace a service (the fields of a ``[[services]]`` entry)."""
    return _put(principal, centre_id, "services", code)


@bp.delete("/api/v1/admin/services/<code>")
@staff_endpoint(PERMISSION)
def delete_service(principal, centre_id, code):
    """Retire a service: kiosks stop offering it; its tickets and reports stay."""
    return _delete(principal, centre_id, "services", code)


@bp.put("/api/v1/admin/counters/<number>")
@staff_endpoint(PERMISSION)
def put_counter(principal, centre_id, number):
    return _put(principal, centre_id, "counters", _number(number))


@bp.delete("/api/v1/admin/counters/<number>")
@staff_endpoint(PERMISSION)
def delete_counter(principal, centre_id, number):
    """Retire a closed counter: no longer shown or opened; its history stays."""
    return _delete(principal, centre_id, "counters", _number(number))


@bp.put("/api/v1/admin/staff/<username>")
@staff_endpoint(PERMISSION)
def put_staff(principal, centre_id, username):
    """Create or replace an account's entry; a new account without a password gets one,
    shown in this answer only."""
    return _put(principal, centre_id, "staff", username)


@bp.delete("/api/v1/admin/staff/<username>")
@staff_endpoint(PERMISSION)
def delete_staff(principal, centre_id, username):
    """Deactivate an account the centre owns (its sessions end), or end the role here of
    one lent by another centre."""
    return _delete(principal, centre_id, "staff", username)


@bp.put("/api/v1/admin/devices/<name>")
@staff_endpoint(PERMISSION)
def put_device(principal, centre_id, name):
    """Create or replace a device; a new one without a token gets one, shown in this
    answer only."""
    return _put(principal, centre_id, "devices", name)


@bp.delete("/api/v1/admin/devices/<name>")
@staff_endpoint(PERMISSION)
def delete_device(principal, centre_id, name):
    """Revoke a device: its token stops working."""
    return _delete(principal, centre_id, "devices", name)


@bp.get("/api/v1/admin/sessions")
@staff_endpoint(PERMISSION)
def list_sessions(principal, centre_id):
    """The open sessions of the centre's staff: who, since when, until when."""
    mine = token_hash(bearer_token())
    return _ctx().store.read(lambda conn: admin.sessions(conn, centre_id, mine))


@bp.delete("/api/v1/admin/sessions/<session_id>")
@staff_endpoint(PERMISSION)
def end_session(principal, centre_id, session_id):
    """End one session: its token stops working, its sockets close in every process."""
    if not session_id.isdigit() or len(session_id) > 18:
        raise QueueError("not_found", "unknown_entry", what=admin.SESSION, name=session_id[:64])
    return _write(
        principal,
        centre_id,
        lambda tx: admin.end_sessions(tx, principal, centre_id, session_id=int(session_id)),
    )


@bp.post("/api/v1/admin/staff/<username>/end-sessions")
@staff_endpoint(PERMISSION)
def end_staff_sessions(principal, centre_id, username):
    """End every open session of an account (its password and role unchanged)."""
    return _write(
        principal,
        centre_id,
        lambda tx: admin.end_sessions(tx, principal, centre_id, username=username),
    )


@bp.get("/api/v1/admin/export")
@staff_endpoint(PERMISSION)
def export(principal, centre_id):
    """The centre's configuration as a provisioning file (no passwords, tokens, photos)."""
    code, text = _ctx().store.read(lambda conn: admin.export(conn, centre_id))
    return Response(
        text,
        content_type="application/toml; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="motcua-{code}.toml"',
            "Cache-Control": "private, no-store",
        },
    )


# -- for the admin pages (issue 18, second slice) ------------------------------------------
@bp.get("/api/v1/admin/config")
@staff_endpoint(PERMISSION)
def config(principal, centre_id):
    """The centre's configuration as the export's entries (no secrets), as JSON."""
    return _ctx().store.read(lambda conn: admin.config(conn, centre_id))


@bp.get("/api/v1/admin/audit")
@staff_endpoint(PERMISSION)
def audit(principal, centre_id):
    """The centre's audit log, newest first, filtered by who, what and when."""
    args = request.args
    answer = _ctx().store.read(
        lambda conn: admin.audit(
            conn,
            centre_id,
            actor=args.get("actor"),
            kind=args.get("kind"),
            first=args.get("from"),
            last=args.get("to"),
            before=args.get("before"),
            limit=args.get("limit"),
        )
    )
    response = make_response(jsonify(answer))
    response.headers["Cache-Control"] = "private, no-store"
    return response


PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")


@bp.put("/api/v1/admin/staff/<username>/photo")
@staff_endpoint(PERMISSION)
def put_photo(principal, centre_id, username):
    """Set an account's photo: the picture itself as the body (JPEG, PNG or WebP, within
    the server's body limit), kept as the tablet's JPEG."""
    kind = (request.content_type or "").split(";")[0].strip().lower()
    if kind not in PHOTO_TYPES:
        raise FieldRefused(
            "photo",
            "ảnh phải là tệp JPEG, PNG hoặc WebP",
            "the photo must be a JPEG, PNG or WebP file",
        )
    from io import BytesIO

    from core.provisioning import photo_jpeg

    body = request.get_data(cache=False)
    store = _ctx().store
    try:  # Pillow's decoding off the event loop, where the server has a thread pool
        jpeg = (
            store.offload(photo_jpeg, BytesIO(body)) if store.offload else photo_jpeg(BytesIO(body))
        )
    except ValueError:
        raise FieldRefused(
            "photo",
            "không đọc được ảnh: hãy chọn một tệp ảnh JPEG, PNG hoặc WebP",
            "the picture cannot be read: choose a JPEG, PNG or WebP file",
        ) from None
    return _write(
        principal, centre_id, lambda tx: admin.put_photo(tx, principal, centre_id, username, jpeg)
    )


@bp.delete("/api/v1/admin/staff/<username>/photo")
@staff_endpoint(PERMISSION)
def delete_photo(principal, centre_id, username):
    """Remove an account's photo."""
    return _write(
        principal, centre_id, lambda tx: admin.put_photo(tx, principal, centre_id, username, None)
    )
