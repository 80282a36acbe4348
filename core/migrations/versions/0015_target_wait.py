"""the centre's target wait: the live monitor marks a queue whose longest wait passes it,
the reports count the share served within it (null: 20 minutes)

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


def downgrade() -> None:
    with op.batch_alter_table("centres") as batch:
        batch.drop_column("target_wait_s")
