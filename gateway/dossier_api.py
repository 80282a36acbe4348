"""The integration API for the province's one-stop electronic system (docs/dossiers.md):
create or update dossiers in bulk, and read one with the visits that touched it.

Its key is the token of an ``integration`` device in the centre's provisioning file:
scoped to that centre, stored as a digest, revoked by removing the entry.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request

from core.engine import DOSSIER_CODE, Actor
from core.errors import QueueError
from gateway.api import answer_json, bearer_token, request_lang

bp = Blueprint("dossier_api", __name__)
MAX_BODY = 512 * 1024  # 500 dossiers of a few hundred bytes each


def _integration() -> Actor:
    token = bearer_token()
    if not token:
        raise QueueError("unauthorized", "auth_missing")
    device = current_app.extensions["motcua"].lookup_device(token)
    if device is None or device.kind != "integration":
        raise QueueError("unauthorized", "auth_invalid")
    return Actor("device", device.id, device.centre_id, device.kind, name=device.name)


@bp.post("/api/v1/dossiers")
def upsert():
    """``{"dossiers": [{code, status, ...}, ...]}``: created or updated by code."""
    engine = current_app.extensions["motcua"].engine

    def run():
        actor = _integration()
        if (request.content_length or 0) > MAX_BODY:
            raise QueueError("bad_request", "bad_value", field="body", why=("quá lớn", "too large"))
        return {"ok": True, **engine.upsert_dossiers(actor, request.get_json(silent=True))}

    return answer_json(run, request_lang())


@bp.get("/api/v1/dossiers/<code>")
def read(code: str):
    engine = current_app.extensions["motcua"].engine

    def run():
        actor = _integration()
        found = engine.dossier(actor.centre_id, code) if DOSSIER_CODE.match(code) else None
        if found is None:
            raise QueueError("not_found", "unknown_dossier", dossier=code[:64])
        return {"ok": True, "dossier": found}

    return answer_json(run, request_lang())
