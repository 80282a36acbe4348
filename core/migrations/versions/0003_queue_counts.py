"""maintained waiting counts

The number of tickets waiting per service and business day, kept by the engine in the
transaction of every change that moves a ticket into or out of a queue, so issuing a
ticket no longer counts the queue (the issue rate fell as tickets piled up).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_counts",
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("waiting", sa.Integer(), server_default="0", nullable=False),
        sa.Column("waiting_priority", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_queue_counts_service_id_services")
        ),
        sa.PrimaryKeyConstraint("service_id", "business_date", name=op.f("pk_queue_counts")),
    )
    op.execute(
        """
        INSERT INTO queue_counts (service_id, business_date, waiting, waiting_priority)
        SELECT service_id, business_date, COUNT(*), COUNT(priority)
        FROM tickets WHERE status IN ('waiting', 'transferred')
        GROUP BY service_id, business_date
        """
    )


def downgrade() -> None:
    op.drop_table("queue_counts")
