"""The centre's reports (issue 17): to come."""

from __future__ import annotations

DOORS: tuple[type, ...] = ()
