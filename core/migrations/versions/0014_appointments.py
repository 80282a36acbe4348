"""appointments: opening hours and closed days, appointment slots, bookings, the tickets
they check in as, and each counter's run of appointments called; the phone number a
ticket's holder left, and the outbox of messages to citizens (SMS, Zalo)

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
        batch.add_column(sa.Column("phone", sa.String(16)))
    with op.batch_alter_table("centres") as batch:
        batch.add_column(sa.Column("notify_ahead", sa.Integer, nullable=False, server_default="3"))
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("centre_id", sa.Integer, sa.ForeignKey("centres.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("phone", sa.String(16)),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("dedupe", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(8)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.String(200)),
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_at"])
    # What the notices' check reads every few seconds: tickets with a phone number, and
    # bookings by their slot's start.
    op.create_index(
        "ix_tickets_phone",
        "tickets",
        ["business_date"],
        sqlite_where=sa.text("phone IS NOT NULL"),
        postgresql_where=sa.text("phone IS NOT NULL"),
    )
    op.create_index("ix_appointments_start", "appointments", ["slot_start"])
    booked = "status IN ('waiting', 'transferred') AND target_counter_id IS NULL"
    booked += " AND booked_for IS NOT NULL"
    op.create_index(
        "ix_tickets_booked",
        "tickets",
        ["service_id", "business_date", "booked_for", "id"],
        sqlite_where=sa.text(booked),
        postgresql_where=sa.text(booked),
    )
    with op.batch_alter_table("counters") as batch:
        batch.add_column(
            sa.Column("appointment_streak", sa.Integer, nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("counters") as batch:
        batch.drop_column("appointment_streak")
    op.drop_index("ix_tickets_booked", "tickets")
    op.drop_index("ix_appointments_start", "appointments")
    op.drop_index("ix_tickets_phone", "tickets")
    op.drop_index("ix_notifications_due", "notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("centres") as batch:
        batch.drop_column("notify_ahead")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("phone")
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
