"""Migrations keep today's data and end where core/models.py says."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core import models as m
from core.migrations import upgrade


def test_staff_roles_migration_keeps_each_accounts_role(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0010")
    with engine.begin() as conn:
        for code in ("A", "B"):
            conn.execute(
                sa.text(
                    "INSERT INTO centres (code, name, timezone) VALUES (:c, :c, 'Asia/Ho_Chi_Minh')"
                ),
                {"c": code},
            )
        for username, centre, role in (
            ("an", 1, "clerk"),
            ("binh", 1, "manager"),
            ("chi", 2, "admin"),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO staff (centre_id, username, password_hash, full_name, role,"
                    " active) VALUES (:centre, :u, 'x', :u, :role, 1)"
                ),
                {"centre": centre, "u": username, "role": role},
            )
    upgrade(engine)
    with engine.connect() as conn:
        roles = conn.execute(
            sa.select(m.staff.c.username, m.staff_roles.c.centre_id, m.staff_roles.c.role)
            .join(m.staff_roles, m.staff_roles.c.staff_id == m.staff.c.id)
            .order_by(m.staff.c.username)
        ).all()
        assert [tuple(r) for r in roles] == [
            ("an", 1, "clerk"),
            ("binh", 1, "manager"),
            ("chi", 2, "admin"),
        ]
        assert "role" not in {c["name"] for c in sa.inspect(conn).get_columns("staff")}
        # The migrated schema is the models' (tables, columns, keys).
        diff = compare_metadata(MigrationContext.configure(conn), m.metadata)
        assert diff == [], diff
    engine.dispose()
