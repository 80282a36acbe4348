"""each ticket's wait and service time in whole seconds, kept as its times are stamped
(core/lifecycle.py durations), so that a year's report adds up two integer columns
instead of computing both from four timestamps of every ticket (issue 17: a year within
1 s); the tickets already there get theirs from their times

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# The same rounding as durations(): half a second up (the times are never in reverse).
SECONDS = {
    "sqlite": "CAST(((julianday({later}) - julianday({earlier})) * 86400 + 0.5) AS INTEGER)",
    "postgresql": "CAST(floor(extract(epoch FROM {later} - {earlier}) + 0.5) AS INTEGER)",
}


def upgrade() -> None:
    op.add_column("tickets", sa.Column("wait_s", sa.Integer))
    op.add_column("tickets", sa.Column("service_s", sa.Integer))
    seconds = SECONDS[op.get_bind().dialect.name]
    wait = seconds.format(later="called_at", earlier="issued_at")
    served = seconds.format(later="finished_at", earlier="COALESCE(started_at, called_at)")
    op.execute(f"UPDATE tickets SET wait_s = {wait} WHERE called_at IS NOT NULL")
    op.execute(
        f"UPDATE tickets SET service_s = {served} WHERE status = 'done' "
        "AND finished_at IS NOT NULL AND COALESCE(started_at, called_at) IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("service_s")
        batch.drop_column("wait_s")
