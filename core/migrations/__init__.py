"""Alembic migrations, run programmatically: ``upgrade(engine)`` brings a store to head."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

HERE = Path(__file__).parent


def config(connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Several server processes may start together: one migrates, the others wait.
            conn.execute(sa.text("SELECT pg_advisory_lock(7315001)"))
            conn.commit()
        try:
            command.upgrade(config(conn), revision)
            conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_unlock(7315001)"))
                conn.commit()
