"""Statements of the hot paths, run on the driver's own cursor.

SQLAlchemy Core costs about 0.2 ms of Python per statement execution (cache-key
generation, parameter processing, result objects) against 0.03 ms for SQLite to run a
hot-path statement, so a ticket's dozen statements cost 2 ms of a single core
(docs/performance.md). The few statements run for every ticket and every change are
written once here as SQL with ``:name`` parameters and run on the DBAPI cursor of the
transaction's connection, with values converted as the schema's types store them.
Everything else goes through SQLAlchemy.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

from sqlalchemy.engine import Connection


def _driver_errors() -> tuple[type[Exception], ...]:
    import sqlite3

    errors: list[type[Exception]] = [sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    else:
        errors.append(psycopg.Error)
    return tuple(errors)


# What the drivers raise from a statement run here (SQLAlchemy wraps its own in DBAPIError).
DRIVER_ERRORS = _driver_errors()


class Raw:
    """One SQL statement with ``:name`` parameters, for SQLite and PostgreSQL."""

    def __init__(self, sql: str):
        self.sql = " ".join(sql.split())
        self._pg = re.sub(r":(\w+)", r"%(\1)s", self.sql)

    def run(self, conn: Connection, params: dict):
        """Execute in ``conn``'s transaction; returns the cursor (fetch from it)."""
        dbapi = conn.connection.driver_connection
        if conn.dialect.name == "sqlite":
            cur = dbapi.cursor()
            cur.execute(self.sql, {k: _sqlite(v) for k, v in params.items()})
        else:
            cur = dbapi.cursor()
            cur.execute(self._pg, {k: _postgres(v) for k, v in params.items()})
        return cur

    def one(self, conn: Connection, params: dict) -> tuple:
        row = self.run(conn, params).fetchone()
        if row is None:
            raise LookupError(self.sql)
        return row

    def first(self, conn: Connection, params: dict) -> tuple | None:
        return self.run(conn, params).fetchone()


class JSONValue:
    """A value for a JSON column."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _sqlite(v):
    # As SQLAlchemy's SQLite types store them: UTC datetimes naive with microseconds,
    # dates ISO, JSON as text.
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, JSONValue):
        return json.dumps(v.value)
    return v


def _postgres(v):
    if isinstance(v, JSONValue):
        from psycopg.types.json import Json

        return Json(v.value)
    return v
