"""The manager's live monitor (issue 17): to come."""

from __future__ import annotations

DOORS: tuple[type, ...] = ()
