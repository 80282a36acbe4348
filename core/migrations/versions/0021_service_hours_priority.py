"""a service may have opening hours of its own and accept only some priority groups
(issue 18): ``services.opening_hours`` (NULL: the centre's) and ``services.priorities``
(NULL: every group)

Revision ID: 0021
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("opening_hours", sa.JSON))
        batch.add_column(sa.Column("priorities", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("priorities")
        batch.drop_column("opening_hours")
