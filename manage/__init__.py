"""The people who run a centre: the manager's live monitor (``/manage/``,
manage/monitor.py) and the centre's reports (``/manage/reports`` and
``/api/v1/reports/…``, manage/reports.py). Both modules add their routes to ``bp``;
the monitor brings the manager's Socket.IO door."""

from __future__ import annotations

from flask import Blueprint

from gateway.bundle import RoleBundle

bp = Blueprint(
    "manage",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/manage/static",
)

from manage import monitor, province, reports  # noqa: E402, F401 - each adds its routes to bp

bundle = RoleBundle(bp, doors=monitor.DOORS + reports.DOORS)
