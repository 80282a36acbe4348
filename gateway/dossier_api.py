"""The integration API for the province's one-stop electronic system (docs/dossiers.md):
create or update dossiers in bulk, and read one with the visits that touched it.

Its key is the token of an ``integration`` device in the centre's provisioning file:
scoped to that centre, stored as a digest, revoked by removing the entry.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request

from core import dossiers
from core.dossiers import DOSSIER_CODE
from core.errors import QueueError
from gateway.api import device_actor, device_endpoint

bp = Blueprint("dossier_api", __name__)


@bp.post("/api/v1/dossiers")
@device_endpoint("integration")
def upsert(device):
    """``{"dossiers": [{code, status, ...}, ...]}``: created or updated by code."""
    ctx = current_app.extensions["motcua"]
    actor = device_actor(device)
    ctx.budget.spend(actor.key)  # each key's budget of work (gateway/limits.py)
    # The body's size is bounded for every route (gateway/perimeter.py MAX_BODY_BYTES).
    return {
        "ok": True,
        **dossiers.upsert_dossiers(ctx.store, actor, request.get_json(silent=True)),
    }


@bp.get("/api/v1/dossiers/<code>")
@device_endpoint("integration")
def read(device, code: str):
    store = current_app.extensions["motcua"].store
    found = dossiers.dossier(store, device.centre_id, code) if DOSSIER_CODE.match(code) else None
    if found is None:
        raise QueueError("not_found", "unknown_dossier", dossier=code[:64])
    return {"ok": True, "dossier": found}
