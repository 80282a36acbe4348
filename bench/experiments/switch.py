"""Experiment: server.py with sys.setswitchinterval(0.0005) (see _patched.py)."""

import _patched

_patched.run(_patched.short_switch_interval)
