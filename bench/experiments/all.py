"""Experiment: server.py refusing permessage-deflate and with a short GIL switch interval
(see _patched.py)."""

import _patched

_patched.run(_patched.no_deflate, _patched.short_switch_interval)
