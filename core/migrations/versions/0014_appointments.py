"""appointments: opening hours and closed days, appointment slots, bookings, the tickets
they check in as, and each counter's run of appointments called

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("centres") as batch:
        batch.add_column(sa.Column("opening_hours", sa.JSON))
        batch.add_column(sa.Column("closed_days", sa.JSON))
        batch.add_column(sa.Column("slot_minutes", sa.Integer, nullable=False, server_default="30"))
        batch.add_column(sa.Column("booking_days", sa.Integer, nullable=False, server_default="14"))
        batch.add_column(
            sa.Column("appointment_share", sa.Float, nullable=False, server_default="0.5")
        )
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("slot_capacity", sa.Integer))
    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("centre_id", sa.Integer, sa.ForeignKey("centres.id"), nullable=False),
        sa.Column("service_id", sa.Integer, sa.ForeignKey("services.id"), nullable=False),
        sa.Column("code", sa.String(8), nullable=False, unique=True),
        sa.Column("slot_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slot_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(16)),
        sa.Column("lang", sa.String(2), nullable=False, server_default="vi"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id")),
    )
    op.create_index("ix_appointments_slot", "appointments", ["service_id", "slot_start"])
    op.create_index("ix_appointments_phone", "appointments", ["centre_id", "phone"])
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("booked_for", sa.DateTime(timezone=True)))
    with op.batch_alter_table("counters") as batch:
        batch.add_column(
            sa.Column("appointment_streak", sa.Integer, nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("counters") as batch:
        batch.drop_column("appointment_streak")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("booked_for")
    op.drop_index("ix_appointments_phone", "appointments")
    op.drop_index("ix_appointments_slot", "appointments")
    op.drop_table("appointments")
    with op.batch_alter_table("services") as batch:
        batch.drop_column("slot_capacity")
    with op.batch_alter_table("centres") as batch:
        for column in (
            "appointment_share",
            "booking_days",
            "slot_minutes",
            "closed_days",
            "opening_hours",
        ):
            batch.drop_column(column)
