"""Limits shared by a server's processes: counters that expire, and token buckets.

The login throttle (core/auth.py), the citizen's dossier look-ups (kiosk/) and every
device's budget of work (gateway/doors.py) keep their state here, behind one small
interface with two backends, as the change transport is (gateway/transport.py): memory, for
one process, and Redis (gateway/limits.py), used when the server has a Redis URL, so that
two processes behind one address count one attacker once.

Times are wall-clock seconds (``time.time``): processes compare them through Redis.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Protocol


class Counts(Protocol):
    """What a limit keeps per key."""

    def bucket(self, key: str, rate: float, burst: float, now: float) -> float:
        """Take one token from the bucket ``key`` (``burst`` tokens, refilled at ``rate``
        a second): 0 if taken, else the seconds until one is there (nothing taken)."""

    def get(self, key: str) -> tuple[int, float] | None:
        """The counter ``key``: (count, time of its last touch), or None."""

    def add(self, key: str, delta: int, now: float | None, ttl: float) -> None:
        """Add ``delta`` to the counter (created at 0; gone at 0 or below); with ``now``,
        its last touch is ``now``. It is forgotten ``ttl`` seconds after this."""

    def drop(self, key: str) -> None:
        """Forget the counter ``key``."""


class MemoryCounts:
    """Counts of one process, at most ``max_entries`` keys (the least recently written are
    forgotten first, so spraying keys cannot grow memory)."""

    def __init__(self, max_entries: int = 10_000):
        self.max_entries = max(1, max_entries)
        self._entries: OrderedDict[str, list] = OrderedDict()  # key -> [value, time, expires]
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _put(self, key: str, entry: list) -> None:
        self._entries.pop(key, None)
        self._entries[key] = entry  # the most recently written last
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def _live(self, key: str, now: float) -> list | None:
        entry = self._entries.get(key)
        if entry is not None and entry[2] <= now:
            del self._entries[key]
            return None
        return entry

    def bucket(self, key: str, rate: float, burst: float, now: float) -> float:
        with self._lock:
            entry = self._live(key, now)
            tokens = burst if entry is None else min(burst, entry[0] + (now - entry[1]) * rate)
            if tokens >= 1:
                self._put(key, [tokens - 1, now, now + burst / rate + 1])
                return 0.0
            if entry is not None:
                entry[0], entry[1] = tokens, now
            return (1 - tokens) / rate

    def get(self, key: str) -> tuple[int, float] | None:
        import time

        with self._lock:
            entry = self._live(key, time.time())
            return None if entry is None else (int(entry[0]), entry[1])

    def add(self, key: str, delta: int, now: float | None, ttl: float) -> None:
        import time

        clock = time.time()
        with self._lock:
            entry = self._live(key, clock) or [0, now or clock, 0]
            entry[0] += delta
            if entry[0] <= 0:
                self._entries.pop(key, None)
                return
            if now is not None:
                entry[1] = now
            entry[2] = clock + ttl
            self._put(key, entry)

    def drop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


def ceil_s(seconds: float) -> int:
    """Seconds to wait as said to a client (Retry-After): whole, at least 1."""
    return max(1, math.ceil(seconds))
