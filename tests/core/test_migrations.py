"""Migrations keep today's data and end where core/models.py says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core import models as m
from core.lifecycle import durations
from core.migrations import config, upgrade


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


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.sqlite3'}"
    return request.getfixturevalue("pg_url")


def test_the_durations_migration_gives_every_ticket_its_seconds(store_url):
    """Migration 0017: the tickets already there get the wait and service seconds the
    engine now keeps (core/lifecycle.py durations), rounded alike on both stores."""
    engine = sa.create_engine(store_url)
    upgrade(engine, "0016")
    t0 = datetime(2026, 8, 3, 1, 0, tzinfo=UTC)
    at = [t0 + timedelta(seconds=s) for s in (0, 600.4, 612.6, 912.7)]
    tickets = [  # status, issued, called, started, finished
        ("done", at[0], at[1], at[2], at[3]),
        ("done", at[0], at[1], None, at[3]),  # never started: served from the call
        ("no_show", at[0], at[2], None, at[3]),
        ("transferred", at[0], at[1], None, None),
        ("waiting", at[0], None, None, None),
        ("cancelled", at[0], None, None, at[1]),
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(m.centres).values(code="A", name="A", timezone="Asia/Ho_Chi_Minh"))
        conn.execute(
            sa.text(
                "INSERT INTO services (centre_id, code, name, agency, prefix)"
                " VALUES (1, 'S', 'S', 'S', 'A')"
            )
        )
        for no, (status, issued, called, started, finished) in enumerate(tickets, 1):
            conn.execute(
                sa.text(
                    "INSERT INTO tickets (centre_id, service_id, business_date, prefix, seq_no,"
                    " number, status, public_key, issued_at, called_at, started_at,"
                    " finished_at, call_count) VALUES (1, 1, :day, 'A', :no, :number, :status,"
                    " :key, :issued, :called, :started, :finished, 0)"
                ).bindparams(
                    *(
                        sa.bindparam(name, type_=m.UTCDateTime)
                        for name in ("issued", "called", "started", "finished")
                    )
                ),
                {
                    "day": issued.date(),
                    "no": no,
                    "number": f"A{no:03d}",
                    "status": status,
                    "key": f"k{no}",
                    "issued": issued,
                    "called": called,
                    "started": started,
                    "finished": finished,
                },
            )
    upgrade(engine)
    with engine.connect() as conn:
        kept = conn.execute(
            sa.select(m.tickets.c.wait_s, m.tickets.c.service_s).order_by(m.tickets.c.seq_no)
        ).all()
    engine.dispose()
    expected = [durations(*ticket) for ticket in tickets]
    assert [{"wait_s": w, "service_s": s} for w, s in kept] == expected
    assert expected[0] == {"wait_s": 600, "service_s": 300}  # 600.4 and 300.1 s
    assert expected[1] == {"wait_s": 600, "service_s": 312}  # 312.3 s from the call
    assert expected[2] == {"wait_s": 613, "service_s": None}  # 612.6 s; not served


def test_the_service_hours_migration_keeps_services_as_they_were(store_url):
    """Migration 0021: a service already there has no hours of its own (the centre's) and
    accepts every priority group; the schema is the models'; it goes back down."""
    engine = sa.create_engine(store_url)
    upgrade(engine, "0019")
    with engine.begin() as conn:
        conn.execute(sa.insert(m.centres).values(code="A", name="A", timezone="Asia/Ho_Chi_Minh"))
        conn.execute(
            sa.text(
                "INSERT INTO services (centre_id, code, name, agency, prefix)"
                " VALUES (1, 'S', 'S', 'S', 'A')"
            )
        )
    upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.select(m.services.c.opening_hours, m.services.c.priorities)).one()
        assert tuple(row) == (None, None)
        assert compare_metadata(MigrationContext.configure(conn), m.metadata) == []
    with engine.connect() as conn:
        command.downgrade(config(conn), "0019")
        conn.commit()
        columns = {c["name"] for c in sa.inspect(conn).get_columns("services")}
    assert "opening_hours" not in columns and "priorities" not in columns
    engine.dispose()


def test_the_agencies_migration_makes_one_agency_per_name_of_each_centre(store_url):
    """Migration 0022: each centre's distinct ``agency`` texts become its agencies (a code
    from the initials, numbered when two agree; the English name of a service that had
    one), each service points at its own; the schema is the models'; down, the names are
    the services' text again."""
    engine = sa.create_engine(store_url)
    upgrade(engine, "0021")
    services = [  # centre, code, agency, agency_en
        (1, "HT", "Sở Tư pháp", None),
        (1, "CC", "Sở Tư pháp", "Department of Justice"),
        (1, "TC", "Sở Tài chính", None),
        (1, "TP", "Sở Thông tin và Phát thanh", None),
        (1, "TV", "Sở Tài phán", None),  # STP again: STP2
        (2, "HT", "Sở Tư pháp", None),
        (2, "DD", "UBND xã Đông Hòa", None),
    ]
    with engine.begin() as conn:
        for code in ("A", "B"):
            conn.execute(
                sa.insert(m.centres).values(code=code, name=code, timezone="Asia/Ho_Chi_Minh")
            )
        for centre, code, agency, english in services:
            conn.execute(
                sa.text(
                    "INSERT INTO services (centre_id, code, name, agency, agency_en, prefix)"
                    " VALUES (:centre, :code, :code, :agency, :english, 'A')"
                ),
                {"centre": centre, "code": code, "agency": agency, "english": english},
            )
    upgrade(engine)
    a, s = m.agencies, m.services
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(a.c.centre_id, a.c.code, a.c.name, a.c.name_en, a.c.active).order_by(a.c.id)
        ).all()
        assert [tuple(r) for r in rows] == [
            (1, "STP", "Sở Tư pháp", "Department of Justice", True),
            (1, "STC", "Sở Tài chính", None, True),
            (1, "STTVPT", "Sở Thông tin và Phát thanh", None, True),
            (1, "STP2", "Sở Tài phán", None, True),
            (2, "STP", "Sở Tư pháp", None, True),
            (2, "UBNDXDH", "UBND xã Đông Hòa", None, True),
        ]
        pointed = conn.execute(
            sa.select(s.c.centre_id, s.c.code, a.c.name)
            .join(a, a.c.id == s.c.agency_id)
            .where(a.c.centre_id == s.c.centre_id)
            .order_by(s.c.id)
        ).all()
        assert [tuple(r) for r in pointed] == [(c, code, ag) for c, code, ag, _e in services]
        assert compare_metadata(MigrationContext.configure(conn), m.metadata) == []
    with engine.connect() as conn:
        command.downgrade(config(conn), "0021")
        conn.commit()
        back = conn.execute(
            sa.text("SELECT centre_id, code, agency, agency_en FROM services ORDER BY id")
        ).all()
        assert [tuple(r) for r in back] == [
            (c, code, ag, "Department of Justice" if ag == "Sở Tư pháp" and c == 1 else None)
            for c, code, ag, _e in services
        ]
        assert "agencies" not in sa.inspect(conn).get_table_names()
    engine.dispose()
