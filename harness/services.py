"""PostgreSQL and Redis for a run: where they are, a scratch database, and what a test
does when one cannot be reached.

Tests find them at MOTCUA_TEST_POSTGRES_URL and MOTCUA_TEST_REDIS_URL (the local
defaults otherwise). A test that needs an unreachable service skips with the reason,
unless MOTCUA_REQUIRE_SERVICES=1 (set by .ci/run): then it fails.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from typing import NoReturn

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_URL = os.environ.get("MOTCUA_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
REDIS_URL = os.environ.get("MOTCUA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("MOTCUA_REQUIRE_SERVICES") == "1"


def service_missing(what: str, why: str) -> NoReturn:
    """Skip the running test, or fail it under MOTCUA_REQUIRE_SERVICES=1."""
    import pytest

    message = f"{what} is not reachable here ({why})"
    if REQUIRE_SERVICES:
        pytest.fail(message + "; MOTCUA_REQUIRE_SERVICES=1 makes this a failure")
    pytest.skip(message + "; set MOTCUA_TEST_* URLs or start it to run this test")


@contextlib.contextmanager
def scratch_database(
    admin_url: str,
    prefix: str,
    *,
    connect_timeout: float = 5,
    unreachable: Callable[[str, str], NoReturn] | None = None,
) -> Iterator[str]:
    """A fresh PostgreSQL database, made through ``admin_url`` and dropped on exit (even
    with sessions still open); yields its URL. If the server cannot be reached,
    ``unreachable("PostgreSQL", reason)`` is called when given (``service_missing`` in
    tests); otherwise the connection error propagates."""
    import psycopg

    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=connect_timeout)
    except psycopg.OperationalError as e:
        if unreachable is None:
            raise
        unreachable("PostgreSQL", str(e).strip().splitlines()[0])
    with admin:
        name = f"{prefix}_{secrets.token_hex(4)}"
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def require_redis(url: str) -> str:
    """``url`` if Redis answers a ping there; otherwise ``service_missing``."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        service_missing("Redis", str(e))
    return url
