"""The centre's administration (issue 18): the admin JSON API over the provisioning
file's entries (``/api/v1/admin/…``, admin/api.py; docs/admin.md). Its pages come next."""

from __future__ import annotations

from flask import Blueprint

from gateway.bundle import RoleBundle

bp = Blueprint("admin", __name__)

from admin import api  # noqa: E402,F401 - adds its routes to bp

bundle = RoleBundle(bp, doors=())
