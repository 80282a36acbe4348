"""display boards: the centre's notice line, board layout and announcement settings

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("centres") as batch:
        batch.add_column(sa.Column("notice", sa.Text))
        batch.add_column(
            sa.Column("board_layout", sa.String(16), nullable=False, server_default="auto")
        )
        batch.add_column(
            sa.Column("announce_form", sa.String(16), nullable=False, server_default="digits")
        )
        batch.add_column(
            sa.Column("announce_repeats", sa.Integer, nullable=False, server_default="1")
        )


def downgrade() -> None:
    with op.batch_alter_table("centres") as batch:
        batch.drop_column("announce_repeats")
        batch.drop_column("announce_form")
        batch.drop_column("board_layout")
        batch.drop_column("notice")
