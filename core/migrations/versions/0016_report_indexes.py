"""indexes for the centre's reports (core/reports.py, docs/reports.md)

Each report reads a date range of one centre: its ratings by ``rated_at``, its dossiers
by ``received_at`` and by ``returned_at``, the dossiers still open by ``due_at`` (overdue
now), and which of the range's tickets were transferred (the ``transferred`` records of
the audit log). Without these a year's report scans every rating, every dossier and the
whole audit log. Tickets need none: ``ix_tickets_queue`` starts with (centre_id,
business_date).

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

OPEN = "returned_at IS NULL"
TRANSFERRED = "action = 'transferred'"


def upgrade() -> None:
    op.create_index("ix_ratings_centre_rated", "ratings", ["centre_id", "rated_at"])
    op.create_index("ix_dossiers_centre_received", "dossiers", ["centre_id", "received_at"])
    op.create_index("ix_dossiers_centre_returned", "dossiers", ["centre_id", "returned_at"])
    op.create_index(
        "ix_dossiers_open_due",
        "dossiers",
        ["centre_id", "due_at"],
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_audit_log_transferred",
        "audit_log",
        ["ticket_id"],
        sqlite_where=sa.text(TRANSFERRED),
        postgresql_where=sa.text(TRANSFERRED),
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_transferred", "audit_log")
    op.drop_index("ix_dossiers_open_due", "dossiers")
    op.drop_index("ix_dossiers_centre_returned", "dossiers")
    op.drop_index("ix_dossiers_centre_received", "dossiers")
    op.drop_index("ix_ratings_centre_rated", "ratings")
