"""The schema, as SQLAlchemy Core tables. Alembic migrations in core/migrations mirror it."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


class UTCDateTime(sa.types.TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# One row: the identity shared by every process on this store (names the Redis channel).
installation = sa.Table(
    "installation",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
)

centres = sa.Table(
    "centres",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("name_en", sa.String(255)),  # the name in English (null: pages use ``name``)
    sa.Column("timezone", sa.String(64), nullable=False),
    # The centre's change sequence: advanced in the transaction of every change.
    sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("ticket_footer", sa.Text),  # printed at the foot of every ticket
    # The digest of the provisioning file last applied (core/provisioning.py file_digest).
    sa.Column("provisioned_digest", sa.String(64)),
    # The rating tablet's reasons for a low score (null: the defaults) and how long it
    # waits for an answer before going back to idle (null: the default).
    sa.Column("rating_reasons", sa.JSON),
    sa.Column("rating_timeout_s", sa.Integer),
    # Display boards: the scrolling notice line, the layout (auto | hall | office), and how
    # calls are announced (ticket numbers read as digits or as a number; times each).
    sa.Column("notice", sa.Text),
    sa.Column("board_layout", sa.String(16), nullable=False, server_default="auto"),
    sa.Column("announce_form", sa.String(16), nullable=False, server_default="digits"),
    sa.Column("announce_repeats", sa.Integer, nullable=False, server_default="1"),
    # Opening hours by weekday and closed days (core/hours.py; NULL hours: the usual ones),
    # and appointments: slot length, how many days ahead, the share of the counters' time
    # that bookings may take (core/appointments.py).
    sa.Column("opening_hours", sa.JSON),
    sa.Column("closed_days", sa.JSON),
    sa.Column("slot_minutes", sa.Integer, nullable=False, server_default="30"),
    sa.Column("booking_days", sa.Integer, nullable=False, server_default="14"),
    sa.Column("appointment_share", sa.Float, nullable=False, server_default="0.5"),
    # Text a ticket's holder when this many people are ahead (core/notices.py).
    sa.Column("notify_ahead", sa.Integer, nullable=False, server_default="3"),
    # Nobody should wait longer than this (seconds; null: DEFAULT_TARGET_WAIT_S, 20 minutes,
    # Ho Chi Minh City's published target): the monitor marks a queue past it.
    sa.Column("target_wait_s", sa.Integer),
)

# The agencies (cơ quan: "Sở Tư pháp") whose procedures a centre receives: each service
# is one agency's. A retired agency keeps its services' history and reports.
agencies = sa.Table(
    "agencies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("centre_id", sa.ForeignKey("centres.id"), nullable=False),
    sa.Column("code", sa.String(32), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("name_en", sa.String(255)),  # null: the Vietnamese name on English pages
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.UniqueConstraint("centre_id", "code"),
)

services = sa.Table(
    "services",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("centre_id", sa.ForeignKey("centres.id"), nullable=False),
    sa.Column("code", sa.String(32), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("agency_id", sa.ForeignKey("agencies.id"), nullable=False),
    # In English, for pages in English and tickets taken in English (null: Vietnamese).
    sa.Column("name_en", sa.String(255)),
    sa.Column("prefix", sa.String(4), nullable=False),
    sa.Column("start", sa.Integer, nullable=False, server_default="1"),
    # Moving average of recent service times, a cache rebuilt by every finish.
    sa.Column("avg_service_s", sa.Float, nullable=False, server_default="300"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    # Bookings a slot takes (NULL: from the centre's share of the counters' time; 0: none).
    sa.Column("slot_capacity", sa.Integer),
    # Its own opening hours, as the centre's (core/hours.py; NULL: the centre's), within
    # which its tickets are issued, and the priority groups it accepts (core/engine.py
    # PRIORITIES' codes; NULL: every group).
    sa.Column("opening_hours", sa.JSON),
    sa.Column("priorities", sa.JSON),
    sa.UniqueConstraint("centre_id", "code"),
)

counters = sa.Table(
    "counters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("centre_id", sa.ForeignKey("centres.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="closed"),
    sa.Column("pause_reason", sa.String(200)),
    sa.Column("staff_id", sa.ForeignKey("staff.id")),
    sa.Column("priority_streak", sa.Integer, nullable=False, server_default="0"),
    # Appointments called in a row while walk-ins wait (core/ordering.py's rule).
    sa.Column("appointment_streak", sa.Integer, nullable=False, server_default="0"),
    # False: retired by an admin (its tickets, history and reports stay; boards, clerks'
    # pages and the monitor no longer show it and nobody can open it).
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.UniqueConstraint("centre_id", "number"),
)

counter_services = sa.Table(
    "counter_services",
    metadata,
    sa.Column("counter_id", sa.ForeignKey("counters.id"), primary_key=True),
    sa.Column("service_id", sa.ForeignKey("services.id"), primary_key=True),
)

staff = sa.Table(
    "staff",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # The centre that owns the account (its file sets the password, name and photo).
    sa.Column("centre_id", sa.ForeignKey("centres.id"), nullable=False),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("full_name", sa.String(255), nullable=False),
    # Shown on the rating tablet: a JPEG made from the provisioning file's photo, and
    # the start of its SHA-256 (its address changes with the picture).
    sa.Column("photo", sa.LargeBinary),
    sa.Column("photo_digest", sa.String(16)),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
)

# The role an account holds in each centre it works for (core/permissions.py); an
# account lent to another centre holds a role there too.
staff_roles = sa.Table(
    "staff_roles",
    metadata,
    sa.Column("staff_id", sa.ForeignKey("staff.id"), primary_key=True),
    sa.Column("centre_id", sa.ForeignKey("centres.id"), primary_key=True),
    sa.Column("role", sa.String(24), nullable=False),
)

staff_counters = sa.Table(
    "staff_counters",
    metadata,
    sa.Column("staff_id", sa.ForeignKey("staff.id"), primary_key=True),
    sa.Column("counter_id", sa.ForeignKey("counters.id"), primary_key=True),
)

staff_sessions = sa.Table(
    "staff_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("staff_id", sa.ForeignKey("staff.id"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    # Where it logged in from (the client's address as the server saw it), and when a page
    # of it was last seen connected (gateway/sessions.py, every minute; at first: login).
    sa.Column("address", sa.String(64)),
    sa.Column("seen_at", UTCDateTime),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("centre_id", sa.ForeignKey("centres.id"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("counter_id", sa.ForeignKey("counters.id")),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    # A kiosk's tickets are printed by this agent (the hardware agent on the kiosk's PC).
    sa.Column("printed_by", sa.ForeignKey("devices.id")),
    # What staff must see to (core/engine.py DEVICE_ALERTS), since when; NULL: all well.
    sa.Column("alert", sa.String(32)),
    sa.Column("alert_since", UTCDateTime),
    # The staff member who acknowledged the alert, and when (cleared with a new alert).
    sa.Column("alert_acked_by", sa.ForeignKey("staff.id")),
    sa.Column("alert_acked_at", UTCDateTime),
    # Presence (core/presence.py): when a server process last had it connected, and whether
    # it was last recorded online (the change is recorded once, when this flips).
    sa.Column("last_seen", UTCDateTime),
    sa.Column("online", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("centre_id", "name"),
)

device_counters = sa.Table(
    "device_counters",
    metadata,
    sa.Column("device_id", sa.ForeignKey("devices.id"), primary_key=True),
    sa.Column("counter_id", sa.ForeignKey("counters.id"), primary_key=True),
)

number_sequences = sa.Table(
    "number_sequences",
    metadata,
    sa.Column("centre_id", sa.ForeignKey("centres.id"), primary_key=True),
    sa.Column("prefix", sa.String(4), primary_key=True),
    sa.Column("business_date", sa.Date, primary_key=True),
    sa.Column("last_number", sa.Integer, nullable=False),
)

_WAITING = "status IN ('waiting', 'transferred')"

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("centre_id", sa.ForeignKey("centres.id"), nullable=False),
    sa.Column("service_id", sa.ForeignKey("services.id"), nullable=False),
    sa.Column("business_date", sa.Date, nullable=False),
    sa.Column("prefix", sa.String(4), nullable=False),
    sa.Column("seq_no", sa.Integer, nullable=False),
    sa.Column("number", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("priority", sa.String(32)),
    sa.Column("public_key", sa.String(32), nullable=False, unique=True),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("called_at", UTCDateTime),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("call_count", sa.Integer, nullable=False, server_default="0"),
    # Whole seconds waited (issued to last call) and served (done only), set as the times
    # are stamped (core/lifecycle.py durations): what the reports add up (migration 0017).
    sa.Column("wait_s", sa.Integer),
    sa.Column("service_s", sa.Integer),
    # The counter serving it (or that last served it); target_counter_id: transferred there.
    sa.Column("counter_id", sa.ForeignKey("counters.id")),
    sa.Column("target_counter_id", sa.ForeignKey("counters.id")),
    sa.Column("staff_id", sa.ForeignKey("staff.id")),
    sa.Column("issued_by_device_id", sa.ForeignKey("devices.id")),
    sa.Column("outcome", sa.String(32)),
    # The start of the booked slot, for a ticket an appointment checked in as (in its
    # window): called ahead of walk-ins from then (core/ordering.py); NULL: a walk-in.
    sa.Column("booked_for", UTCDateTime),
    # A number to tell its holder their turn is near (kiosk or booking), erased when the
    # ticket's day ends (core/appointments.py purge_phones).
    sa.Column("phone", sa.String(16)),
    sa.UniqueConstraint("centre_id", "prefix", "business_date", "seq_no"),
    # The queue's look-ups (its leading columns) and the reports' passes over a range of
    # days, which read this index alone (the columns after issued_at, migration 0019).
    sa.Index(
        "ix_tickets_queue",
        "centre_id",
        "business_date",
        "status",
        "service_id",
        "issued_at",
        "wait_s",
        "service_s",
        "counter_id",
        "staff_id",
        "booked_for",
    ),
    # The tickets an appointment checked in as, by day (the reports, migration 0019).
    sa.Index(
        "ix_tickets_booked_day",
        "centre_id",
        "business_date",
        sqlite_where=sa.text("booked_for IS NOT NULL"),
        postgresql_where=sa.text("booked_for IS NOT NULL"),
    ),
    sa.Index("ix_tickets_counter_status", "counter_id", "status"),
    # The head of each queue (core/ordering.py), one index probe per call (migration 0004).
    *(
        sa.Index(
            f"ix_tickets_head_{kind}",
            "service_id",
            "business_date",
            "issued_at",
            "id",
            sqlite_where=sa.text(f"{_WAITING} AND target_counter_id IS NULL AND {cond}"),
            postgresql_where=sa.text(f"{_WAITING} AND target_counter_id IS NULL AND {cond}"),
        )
        for kind, cond in (("priority", "priority IS NOT NULL"), ("normal", "priority IS NULL"))
    ),
    sa.Index(
        "ix_tickets_head_targeted",
        "target_counter_id",
        "business_date",
        "issued_at",
        "id",
        sqlite_where=sa.text(_WAITING),
        postgresql_where=sa.text(_WAITING),
    ),
    # Appointments waiting in their service's queue (core/ordering.py): empty most days.
    sa.Index(
        "ix_tickets_booked",
        "service_id",
        "business_date",
        "booked_for",
        "id",
        sqlite_where=sa.text(
            f"{_WAITING} AND target_counter_id IS NULL AND booked_for IS NOT NULL"
        ),
        postgresql_where=sa.text(
            f"{_WAITING} AND target_counter_id IS NULL AND booked_for IS NOT NULL"
        ),
    ),
    # The tickets whose holder left a phone number (core/notices.py reads them often).
    sa.Index(
        "ix_tickets_phone",
        "business_date",
        sqlite_where=sa.text("phone IS NOT NULL"),
        postgresql_where=sa.text("phone IS NOT NULL"),
    ),
)

# Tickets waiting per service and business day, kept by the engine in the transaction of
# every change that moves a ticket into or out of a queue (counting them cost each issue).
queue_counts = sa.Table(
    "queue_counts",
    metadata,
    sa.Column("service_id", sa.ForeignKey("services.id"), primary_key=True),
    sa.Column("business_date", sa.Date, primary_key=True),
    sa.Column("waiting", sa.Integer, nullable=False, server_default="0"),
    sa.Column("waiting_priority", sa.Integer, nullable=False, server_default="0"),
)

# One print job per ticket issued at a kiosk that has a printing agent. The agent reports
# each job's result once; the job's state is the ticket's print state.
print_jobs = sa.Table(
    "print_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ticket_id", sa.ForeignKey("tickets.id"), nullable=False, unique=True),
    sa.Column("kiosk_id", sa.ForeignKey("devices.id"), nullable=False),
    sa.Column("agent_id", sa.ForeignKey("devices.id"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("deadline", UTCDateTime, nullable=False),  # not to be started after this
    # pending | printed | failed (error says why) | expired (not started in time)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("error", sa.String(32)),
    sa.Column("printer", sa.JSON),  # the printer's status as the agent last read it
    sa.Column("reported_at", UTCDateTime),
    sa.Column("ticket_face", sa.JSON, nullable=False),  # what is printed (hardware/ticket.py)
    sa.Index("ix_print_jobs_pending", "agent_id", "state"),
)

# Dossiers (hồ sơ) by code within a centre (core/dossiers.py); visits touch them through
# ticket_dossiers (ticket, code).
dossiers = sa.Table(
    "dossiers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("centre_id", sa.ForeignKey("centres.id"), nullable=False),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("procedure", sa.String(255)),  # thủ tục
    sa.Column("field", sa.String(255)),  # lĩnh vực
    sa.Column("applicant_name", sa.String(255)),
    # The look-up's second factor (core/dossiers.py public_view): the last four digits of
    # the applicant's phone (the number itself is not kept), a code printed on the receipt.
    sa.Column("phone_tail", sa.String(4)),
    sa.Column("receipt_pin", sa.String(16)),
    sa.Column("submitted_via", sa.String(16)),  # in_person | online | post
    sa.Column("received_at", UTCDateTime),
    sa.Column("due_at", UTCDateTime),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("returned_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("centre_id", "code"),
    # The reports' ranges (core/reports.py, migrations 0016 and 0019): received, returned
    # (each with what its counts read, so that they read the index alone), still open.
    sa.Index("ix_dossiers_centre_received", "centre_id", "received_at", "submitted_via", "field"),
    sa.Index("ix_dossiers_centre_returned", "centre_id", "returned_at", "due_at", "field"),
    sa.Index(
        "ix_dossiers_open_due",
        "centre_id",
        "due_at",
        sqlite_where=sa.text("returned_at IS NULL"),
        postgresql_where=sa.text("returned_at IS NULL"),
    ),
)

ticket_dossiers = sa.Table(
    "ticket_dossiers",
    metadata,
    sa.Column("ticket_id", sa.ForeignKey("tickets.id"), primary_key=True),
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Index("ix_ticket_dossiers_code", "code"),
)

ratings = sa.Table(
    "ratings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ticket_id", sa.ForeignKey("tickets.id"), nullable=False, unique=True),
    sa.Column("centre_id", sa.ForeignKey("centres.id"), nullable=False),
    sa.Column("service_id", sa.ForeignKey("services.id"), nullable=False),
    sa.Column("counter_id", sa.ForeignKey("counters.id"), nullable=False),
    sa.Column("staff_id", sa.ForeignKey("staff.id")),
    sa.Column("device_id", sa.ForeignKey("devices.id")),  # null: on the status page
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("rated_at", UTCDateTime, nullable=False),
    # The reports' range (migration 0016), with what their counts read (migration 0019).
    sa.Index(
        "ix_ratings_centre_rated",
        "centre_id",
        "rated_at",
        "score",
        "service_id",
        "counter_id",
        "staff_id",
    ),
    # The ratings that give reasons (a low rating's): the reports read their reasons.
    sa.Index(
        "ix_ratings_reasons",
        "centre_id",
        "rated_at",
        sqlite_where=sa.text("CAST(reasons AS TEXT) != '[]'"),
        postgresql_where=sa.text("CAST(reasons AS TEXT) != '[]'"),
    ),
    # The ratings with a comment (the reports' comments, migration 0019).
    sa.Index(
        "ix_ratings_comment",
        "centre_id",
        "rated_at",
        sqlite_where=sa.text("comment IS NOT NULL"),
        postgresql_where=sa.text("comment IS NOT NULL"),
    ),
)

# A citizen's booked time (core/appointments.py): ``booked`` until checked in at a kiosk
# (``checked_in``, with its ticket) or cancelled; past its slot unchecked, it is missed.
appointments = sa.Table(
    "appointments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("centre_id", sa.ForeignKey("centres.id"), nullable=False),
    sa.Column("service_id", sa.ForeignKey("services.id"), nullable=False),
    sa.Column("code", sa.String(8), nullable=False, unique=True),
    sa.Column("slot_start", UTCDateTime, nullable=False),
    sa.Column("slot_end", UTCDateTime, nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("phone", sa.String(16)),  # kept until the slot's day ends, then purged
    sa.Column("lang", sa.String(2), nullable=False, server_default="vi"),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("ticket_id", sa.ForeignKey("tickets.id")),
    sa.Index("ix_appointments_slot", "service_id", "slot_start"),
    sa.Index("ix_appointments_phone", "centre_id", "phone"),
    sa.Index("ix_appointments_start", "slot_start"),
)

# Messages to citizens, written in the transaction that makes them due and sent after it
# by each server process's sender (gateway/notify.py): nothing is lost, nothing waits on
# a gateway. ``dedupe`` makes each message (a booking's confirmation, a ticket's "your
# turn is near") one row however many processes notice it.
notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("centre_id", sa.ForeignKey("centres.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # booked, reminder, near, called
    sa.Column("phone", sa.String(16)),  # erased once sent, failed or expired
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("dedupe", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),  # pending, sent, failed, expired
    sa.Column("channel", sa.String(8)),  # the channel that took it (sms, zns)
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("error", sa.String(200)),
    sa.Index("ix_notifications_due", "status", "next_at"),
)

# Append-only: one row per change of a centre, numbered by the centre's seq. It is the
# audit (who, when, what, request_id) and the event log clients are resynchronised from.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("centre_id", sa.ForeignKey("centres.id"), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(64)),
    sa.Column("ticket_id", sa.ForeignKey("tickets.id")),
    sa.Column("counter_id", sa.ForeignKey("counters.id")),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("delivery", sa.JSON, nullable=False),
    sa.UniqueConstraint("centre_id", "seq"),
    # Which tickets were transferred, for the reports (migration 0016).
    sa.Index(
        "ix_audit_log_transferred",
        "ticket_id",
        sqlite_where=sa.text("action = 'transferred'"),
        postgresql_where=sa.text("action = 'transferred'"),
    ),
)

# The first result of each (actor, request_id), so a repeated request is answered, not redone.
request_results = sa.Table(
    "request_results",
    metadata,
    sa.Column("actor", sa.String(64), primary_key=True),
    sa.Column("request_id", sa.String(96), primary_key=True),
    sa.Column("result", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
