"""indexes for the head of each queue

``call_next`` looks up the oldest waiting ticket of each of the counter's services,
priority and normal apart, and of those sent to the counter itself. Partial indexes
over exactly those rows make each lookup one index probe however many tickets wait
(before, a call scanned and sorted every waiting ticket of its services).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WAITING = "status IN ('waiting', 'transferred')"


def upgrade() -> None:
    for kind, cond in (("priority", "priority IS NOT NULL"), ("normal", "priority IS NULL")):
        op.create_index(
            f"ix_tickets_head_{kind}",
            "tickets",
            ["service_id", "business_date", "issued_at", "id"],
            sqlite_where=sa.text(f"{WAITING} AND target_counter_id IS NULL AND {cond}"),
            postgresql_where=sa.text(f"{WAITING} AND target_counter_id IS NULL AND {cond}"),
        )
    op.create_index(
        "ix_tickets_head_targeted",
        "tickets",
        ["target_counter_id", "business_date", "issued_at", "id"],
        sqlite_where=sa.text(WAITING),
        postgresql_where=sa.text(WAITING),
    )


def downgrade() -> None:
    for name in ("ix_tickets_head_priority", "ix_tickets_head_normal", "ix_tickets_head_targeted"):
        op.drop_index(name, "tickets")
