"""dossier second factor: what the citizen's look-up asks before it shows personal data

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dossiers") as batch:
        batch.add_column(sa.Column("phone_tail", sa.String(4)))
        batch.add_column(sa.Column("receipt_pin", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("dossiers") as batch:
        batch.drop_column("receipt_pin")
        batch.drop_column("phone_tail")
