"""the reports' indexes cover what a year's report reads (issue 17: a year within 1 s)

A report reads a range of one centre's tickets, ratings and dossiers. With 0016's
indexes it found the range in the index and then fetched every row from the table
(a year: ~380,000 tickets, each fetched once per pass). Now the indexes hold the
columns the reports count, so the passes read the index alone:

- ``ix_tickets_queue`` (centre, business day, status, service, issue time: the queue's
  own look-ups, unchanged as its leading columns) gains the wait and service seconds,
  the counter, the clerk and the booked slot;
- ``ix_tickets_booked_day``: the tickets an appointment checked in as, by centre and day
  (their waits from the slot's start are read from the table, a few a day);
- ``ix_ratings_centre_rated`` (centre, time) gains the level, service, counter and
  clerk; ``ix_ratings_reasons``: the ratings that give reasons (a low rating's), by
  centre and time (JSON cannot be a key of a PostgreSQL index); ``ix_ratings_comment``:
  those that have a comment;
- the dossiers' received and returned indexes gain what those counts read (channel,
  field; due date, field).

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

QUEUE = ["centre_id", "business_date", "status", "service_id", "issued_at"]
REPORTED = ["wait_s", "service_s", "counter_id", "staff_id", "booked_for"]
BOOKED = "booked_for IS NOT NULL"
COMMENTED = "comment IS NOT NULL"
GIVEN = "CAST(reasons AS TEXT) != '[]'"
RATED = ["centre_id", "rated_at"]


def _indexes(received: list[str], returned: list[str], queue: list[str], rated) -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_queue")
        batch.create_index("ix_tickets_queue", queue)
    op.drop_index("ix_dossiers_centre_received", "dossiers")
    op.create_index("ix_dossiers_centre_received", "dossiers", received)
    op.drop_index("ix_dossiers_centre_returned", "dossiers")
    op.create_index("ix_dossiers_centre_returned", "dossiers", returned)
    op.drop_index("ix_ratings_centre_rated", "ratings")
    op.create_index("ix_ratings_centre_rated", "ratings", rated)


def upgrade() -> None:
    _indexes(
        ["centre_id", "received_at", "submitted_via", "field"],
        ["centre_id", "returned_at", "due_at", "field"],
        QUEUE + REPORTED,
        RATED + ["score", "service_id", "counter_id", "staff_id"],
    )
    op.create_index(
        "ix_tickets_booked_day",
        "tickets",
        ["centre_id", "business_date"],
        sqlite_where=sa.text(BOOKED),
        postgresql_where=sa.text(BOOKED),
    )
    op.create_index(
        "ix_ratings_comment",
        "ratings",
        ["centre_id", "rated_at"],
        sqlite_where=sa.text(COMMENTED),
        postgresql_where=sa.text(COMMENTED),
    )


    op.create_index(
        "ix_ratings_reasons",
        "ratings",
        RATED,
        sqlite_where=sa.text(GIVEN),
        postgresql_where=sa.text(GIVEN),
    )


def downgrade() -> None:
    op.drop_index("ix_ratings_reasons", "ratings")
    op.drop_index("ix_ratings_comment", "ratings")
    op.drop_index("ix_tickets_booked_day", "tickets")
    _indexes(["centre_id", "received_at"], ["centre_id", "returned_at"], QUEUE, RATED)
