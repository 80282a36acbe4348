"""a staff session says where it logged in from and when it was last seen (issue 18, the
admin's list of sessions): ``staff_sessions.address`` and ``staff_sessions.seen_at``
(NULL for the sessions open before: not known)

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_sessions") as batch:
        batch.add_column(sa.Column("address", sa.String(64)))
        batch.add_column(sa.Column("seen_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("staff_sessions") as batch:
        batch.drop_column("seen_at")
        batch.drop_column("address")
