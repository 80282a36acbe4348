"""a counter can be retired by an admin (issue 18): ``counters.active``; a retired counter
keeps its tickets and reports, and is no longer shown or opened

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("counters") as batch:
        batch.add_column(sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("counters") as batch:
        batch.drop_column("active")
