"""dossiers: the records of what a centre received and returned, linked to visits by code

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dossiers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("centre_id", sa.Integer, sa.ForeignKey("centres.id"), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("procedure", sa.String(255)),
        sa.Column("field", sa.String(255)),
        sa.Column("applicant_name", sa.String(255)),
        sa.Column("submitted_via", sa.String(16)),
        sa.Column("received_at", WHEN),
        sa.Column("due_at", WHEN),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("returned_at", WHEN),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.UniqueConstraint("centre_id", "code"),
    )
    op.create_index("ix_ticket_dossiers_code", "ticket_dossiers", ["code"])


def downgrade() -> None:
    op.drop_index("ix_ticket_dossiers_code", "ticket_dossiers")
    op.drop_table("dossiers")
