"""device alerts: what staff must see to at a device (a kiosk's printer out of paper...)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("alert", sa.String(32)))
        batch.add_column(sa.Column("alert_since", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("alert_since")
        batch.drop_column("alert")
