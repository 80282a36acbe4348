"""Experiment: server.py refusing permessage-deflate (see _patched.py)."""

import _patched

_patched.run(_patched.no_deflate)
