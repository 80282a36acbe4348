"""printing: print jobs, the agent that prints a kiosk's tickets, the ticket footer

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("centres") as batch:
        batch.add_column(sa.Column("ticket_footer", sa.Text))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("printed_by", sa.Integer))
        batch.create_foreign_key("fk_devices_printed_by", "devices", ["printed_by"], ["id"])
    op.create_table(
        "print_jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False, unique=True),
        sa.Column("kiosk_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("agent_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.String(32)),
        sa.Column("printer", sa.JSON),
        sa.Column("reported_at", sa.DateTime(timezone=True)),
        sa.Column("ticket_face", sa.JSON, nullable=False),
    )
    op.create_index("ix_print_jobs_pending", "print_jobs", ["agent_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_print_jobs_pending", "print_jobs")
    op.drop_table("print_jobs")
    with op.batch_alter_table("devices") as batch:
        batch.drop_constraint("fk_devices_printed_by", type_="foreignkey")
        batch.drop_column("printed_by")
    with op.batch_alter_table("centres") as batch:
        batch.drop_column("ticket_footer")
