"""optional English names of the centre, its services and their agencies (pages in
English, a ticket taken in English)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("centres") as batch:
        batch.add_column(sa.Column("name_en", sa.String(255)))
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("name_en", sa.String(255)))
        batch.add_column(sa.Column("agency_en", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("agency_en")
        batch.drop_column("name_en")
    with op.batch_alter_table("centres") as batch:
        batch.drop_column("name_en")
