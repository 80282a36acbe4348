"""The centre's administration (issue 18): the admin JSON API over the provisioning
file's entries (``/api/v1/admin/…``, admin/api.py; docs/admin.md) and its pages
(``/admin/``, ``/admin/audit``, admin/pages.py)."""

from __future__ import annotations

from flask import Blueprint

from gateway.bundle import RoleBundle

bp = Blueprint(
    "admin",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/admin/static",
)

from admin import api, pages  # noqa: E402,F401 - each adds its routes to bp

bundle = RoleBundle(bp, doors=())
