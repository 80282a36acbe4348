"""staff roles per centre: an account may hold a role in several centres

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_roles",
        sa.Column("staff_id", sa.Integer, nullable=False),
        sa.Column("centre_id", sa.Integer, nullable=False),
        sa.Column("role", sa.String(24), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_staff_roles_staff_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["centre_id"], ["centres.id"], name=op.f("fk_staff_roles_centre_id_centres")
        ),
        sa.PrimaryKeyConstraint("staff_id", "centre_id", name=op.f("pk_staff_roles")),
    )
    # Today's accounts keep their one role, in the centre that owns them.
    op.execute("INSERT INTO staff_roles (staff_id, centre_id, role) SELECT id, centre_id, role FROM staff")
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("role")


def downgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="clerk"))
    op.execute(
        "UPDATE staff SET role = (SELECT r.role FROM staff_roles r "
        "WHERE r.staff_id = staff.id AND r.centre_id = staff.centre_id)"
        " WHERE EXISTS (SELECT 1 FROM staff_roles r "
        "WHERE r.staff_id = staff.id AND r.centre_id = staff.centre_id)"
    )
    op.drop_table("staff_roles")
