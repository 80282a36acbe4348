"""Experiment: server.py whose writer runs counter operations before queued kiosk issues,
in batches of at most 32 (see _patched.py)."""

import _patched

_patched.run(_patched.calls_first)
