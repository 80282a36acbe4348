"""provisioned digest: a file the same as the last one applied is not applied again

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("centres") as batch:
        batch.add_column(sa.Column("provisioned_digest", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("centres") as batch:
        batch.drop_column("provisioned_digest")
