"""the manager's monitor: the centre's target wait (the monitor marks a queue whose longest
wait passes it, the reports count the share served within it; null: 20 minutes); each
device's presence (when a server process last had it connected, and whether it was last
recorded online) and who acknowledged its alert

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("centres") as batch:
        batch.add_column(sa.Column("target_wait_s", sa.Integer))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("last_seen", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("online", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(
            sa.Column(
                "alert_acked_by",
                sa.Integer,
                sa.ForeignKey("staff.id", name="fk_devices_alert_acked_by_staff"),
            )
        )
        batch.add_column(sa.Column("alert_acked_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("alert_acked_at")
        batch.drop_column("alert_acked_by")
        batch.drop_column("online")
        batch.drop_column("last_seen")
    with op.batch_alter_table("centres") as batch:
        batch.drop_column("target_wait_s")
