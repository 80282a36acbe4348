"""The limits' Redis backend (the interface and the memory backend: core/limits.py), and
the budget of work each device may cause.

Beside the change transport (gateway/transport.py), on the same Redis: keys are named after
the installation, so two installations (or test runs) on one Redis never share a count.
When Redis fails, each call falls back to this process's memory, with a (bounded) log line
saying so: limits keep holding per process, never open up or lock everyone out.
"""

from __future__ import annotations

import logging
import time

from core.errors import QueueError
from core.limits import Counts, MemoryCounts

log = logging.getLogger("motcua.limits")

KEY_PREFIX = "motcua:limits:"  # + the installation id + ":" + the limit's key

# A token bucket in one step: tokens refilled since the last take, one taken if there is.
_BUCKET = """
local v = redis.call('HMGET', KEYS[1], 's', 't')
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(v[1])
if tokens == nil then tokens = burst
else tokens = math.min(burst, tokens + math.max(0, now - tonumber(v[2])) * rate) end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 's', tostring(tokens), 't', ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate + 1) * 1000))
return tostring(wait)
"""
# A counter: add, touch, forget at zero, expire.
_ADD = """
local n = redis.call('HINCRBY', KEYS[1], 'n', ARGV[1])
if n <= 0 then redis.call('DEL', KEYS[1]) return n end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 't', ARGV[2])
elseif redis.call('HEXISTS', KEYS[1], 't') == 0 then redis.call('HSET', KEYS[1], 't', ARGV[4]) end
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 1000))
return n
"""


class RedisCounts:
    """:class:`core.limits.Counts` in Redis, shared by every process of the installation.
    ``prefix`` is called once, when first needed (the installation id is known once the
    store is migrated)."""

    def __init__(self, url: str, prefix, fallback: MemoryCounts | None = None):
        import redis

        from gateway.guard import BoundedLog

        self.url = url
        self._prefix = prefix
        self._name = None
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._bucket = self._redis.register_script(_BUCKET)
        self._add = self._redis.register_script(_ADD)
        self.fallback = fallback or MemoryCounts()
        self._log = BoundedLog(log, burst=3, per_s=1 / 60)

    def __len__(self) -> int:
        return len(self.fallback)

    def _key(self, key: str) -> str:
        if self._name is None:
            self._name = KEY_PREFIX + self._prefix() + ":"
        return self._name + key

    def _failed(self, e: Exception) -> None:
        self._log.warning(
            "limits: Redis at %s failed (%s); counting in this process's memory until it "
            "answers again",
            self.url,
            e,
        )

    def bucket(self, key: str, rate: float, burst: float, now: float) -> float:
        try:
            return float(self._bucket(keys=[self._key(key)], args=[rate, burst, repr(now)]))
        except Exception as e:  # noqa: BLE001 - any Redis failure: count locally
            self._failed(e)
            return self.fallback.bucket(key, rate, burst, now)

    def get(self, key: str) -> tuple[int, float] | None:
        try:
            n, t = self._redis.hmget(self._key(key), "n", "t")
        except Exception as e:  # noqa: BLE001
            self._failed(e)
            return self.fallback.get(key)
        if n is None or t is None:
            return None
        return int(n), float(t)

    def add(self, key: str, delta: int, now: float | None, ttl: float) -> None:
        try:
            args = [int(delta), "" if now is None else repr(now), ttl, repr(time.time())]
            self._add(keys=[self._key(key)], args=args)
        except Exception as e:  # noqa: BLE001
            self._failed(e)
            self.fallback.add(key, delta, now, ttl)

    def drop(self, key: str) -> None:
        try:
            self._redis.delete(self._key(key))
        except Exception as e:  # noqa: BLE001
            self._failed(e)
            self.fallback.drop(key)


class Budget:
    """What each device (or clerk, or ticket holder) may make the server do: every event
    its connections send (all of them together, whatever their number), the
    announcements a display asks for, the dossiers an integration key sends. A token
    bucket per actor, ``burst`` at once, refilled at ``rate`` a second; beyond it,
    ``rate_limited``."""

    def __init__(self, counts: Counts, rate: float, burst: float):
        self.counts = counts
        self.rate = rate
        self.burst = burst

    def allows(self, actor_key: str) -> bool:
        if self.rate <= 0:
            return True
        return self.counts.bucket("budget:" + actor_key, self.rate, self.burst, time.time()) == 0

    def spend(self, actor_key: str) -> None:
        """Take one unit of work, or raise ``rate_limited``."""
        if not self.allows(actor_key):
            raise QueueError("rate_limited", "rate_limited")


def counts_for(config: dict, installation_id, max_entries: int) -> Counts:
    """Redis when the server has a Redis URL, else this process's memory."""
    memory = MemoryCounts(max_entries)
    url = config.get("REDIS_URL")
    return RedisCounts(url, installation_id, memory) if url else memory
