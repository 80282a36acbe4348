"""agencies are entries of their own (issue 18): the ``agencies`` table (a centre's, by
code, with its names; a retired one keeps its history), each service pointing at one
(``services.agency_id``) instead of carrying its agency's name as text
(``services.agency``, ``services.agency_en``, dropped).

Data: one agency per distinct ``agency`` text of each centre, with a code made from the
name's initials (core/provisioning.py ``agency_code``, copied here as it was: a
migration must not change when the code does) and the English name of its first
service that had one. Down: the names back onto the services.

Revision ID: 0022
Revises: 0021
"""

import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def _code(name: str, taken: set) -> str:
    plain = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    words = re.findall(r"[A-Za-z0-9]+", plain)
    base = "".join(w if w.isupper() else w[0] for w in words).upper()[:28] or "CQ"
    code, n = base, 1
    while code in taken:
        n += 1
        code = f"{base}{n}"
    taken.add(code)
    return code


def upgrade() -> None:
    op.create_table(
        "agencies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("centre_id", sa.Integer, nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("name_en", sa.String(255)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.ForeignKeyConstraint(
            ["centre_id"], ["centres.id"], name=op.f("fk_agencies_centre_id_centres")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agencies")),
        sa.UniqueConstraint("centre_id", "code", name=op.f("uq_agencies_centre_id_code")),
    )
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("agency_id", sa.Integer))
    conn = op.get_bind()
    agencies = sa.table(
        "agencies",
        sa.column("id", sa.Integer),
        sa.column("centre_id", sa.Integer),
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("name_en", sa.String),
    )
    services = sa.table(
        "services",
        sa.column("id", sa.Integer),
        sa.column("centre_id", sa.Integer),
        sa.column("agency", sa.String),
        sa.column("agency_en", sa.String),
        sa.column("agency_id", sa.Integer),
    )
    rows = conn.execute(
        sa.select(services.c.id, services.c.centre_id, services.c.agency, services.c.agency_en)
        .order_by(services.c.id)
    ).all()
    made: dict[tuple[int, str], int] = {}
    taken: dict[int, set] = {}
    for row in rows:
        key = (row.centre_id, row.agency)
        if key not in made:
            english = next(
                (r.agency_en for r in rows if (r.centre_id, r.agency) == key and r.agency_en),
                None,
            )
            made[key] = conn.execute(
                agencies.insert()
                .values(
                    centre_id=row.centre_id,
                    code=_code(row.agency, taken.setdefault(row.centre_id, set())),
                    name=row.agency,
                    name_en=english,
                )
                .returning(agencies.c.id)
            ).scalar_one()
        conn.execute(
            services.update().where(services.c.id == row.id).values(agency_id=made[key])
        )
    with op.batch_alter_table("services") as batch:
        batch.alter_column("agency_id", existing_type=sa.Integer, nullable=False)
        batch.create_foreign_key(
            op.f("fk_services_agency_id_agencies"), "agencies", ["agency_id"], ["id"]
        )
        batch.drop_column("agency")
        batch.drop_column("agency_en")


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("agency", sa.String(255)))
        batch.add_column(sa.Column("agency_en", sa.String(255)))
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE services SET agency = (SELECT name FROM agencies a WHERE a.id = agency_id),"
            " agency_en = (SELECT name_en FROM agencies a WHERE a.id = agency_id)"
        )
    )
    with op.batch_alter_table("services") as batch:
        batch.alter_column("agency", existing_type=sa.String(255), nullable=False)
        batch.drop_constraint(op.f("fk_services_agency_id_agencies"), type_="foreignkey")
        batch.drop_column("agency_id")
    op.drop_table("agencies")
