"""rating tablets: each centre's reasons for a low score and the tablet's timeout; a clerk's
photo (shown on the tablet); a rating given on the ticket's status page has no device

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("centres") as batch:
        batch.add_column(sa.Column("rating_reasons", sa.JSON))
        batch.add_column(sa.Column("rating_timeout_s", sa.Integer))
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("photo", sa.LargeBinary))
        batch.add_column(sa.Column("photo_digest", sa.String(16)))
    with op.batch_alter_table("ratings") as batch:
        batch.alter_column("device_id", existing_type=sa.Integer, nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("ratings") as batch:
        batch.alter_column("device_id", existing_type=sa.Integer, nullable=False)
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("photo_digest")
        batch.drop_column("photo")
    with op.batch_alter_table("centres") as batch:
        batch.drop_column("rating_timeout_s")
        batch.drop_column("rating_reasons")
