"""The centre's reports: what a date range of one centre adds up to, in the terms
provinces report in (issue 17; every figure is defined in docs/reports.md).

Pure reads over the store, no web framework: :func:`summary` and :func:`breakdown` take
a connection and answer plain dicts (the JSON of ``/api/v1/reports/…``); :func:`table`
flattens either into headings and rows for the CSV and XLSX downloads.

Each figure is an SQL aggregate grouped by the breakdown's key (the indexes it needs are
migration 0016's): tickets by status, transferred tickets, waits and service times
counted per whole second (from which the mean, median and 90th percentile are exact),
ratings by level and reasons, dossiers received, returned and overdue. A range is whole
days in the centre's time zone, both ends included.
"""

from __future__ import annotations

import json
import math
import sqlite3
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import accumulate
from operator import mul
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import models as m
from .clock import iso, zone
from .errors import QueueError

# The target wait when a centre sets none: "nobody waits more than 20 minutes to submit"
# (Ho Chi Minh City's published target; ../shared/design.md, facts of the field).
TARGET_WAIT_S = 1200
MAX_DAYS = 366  # the longest range one request may ask for (a leap year)
BREAKDOWNS = ("agency", "service", "counter", "clerk", "hour", "weekday", "field")
# What each breakdown groups (the others are null in its rows): a dossier records no
# service, counter or clerk, and a ticket no procedure field.
FAMILIES = {
    "agency": ("tickets", "ratings"),
    "service": ("tickets", "ratings"),
    "counter": ("tickets", "ratings"),
    "clerk": ("tickets", "ratings"),
    "hour": ("tickets", "ratings", "dossiers"),
    "weekday": ("tickets", "ratings", "dossiers"),
    "field": ("dossiers",),
    None: ("tickets", "ratings", "dossiers"),  # the summary
}
# Rating levels (core/rating.py LEVELS): score -> the summary's key.
LEVEL_KEYS = {3: "very_satisfied", 2: "satisfied", 1: "dissatisfied"}
CHANNELS = {"in_person": "in_person", "online": "online", "post": "post"}


def N_(msgid: str) -> str:  # noqa: N802 - marks words for the catalog (scripts/messages.py)
    return msgid


WEEKDAYS = (
    N_("Thứ Hai"),
    N_("Thứ Ba"),
    N_("Thứ Tư"),
    N_("Thứ Năm"),
    N_("Thứ Sáu"),
    N_("Thứ Bảy"),
    N_("Chủ nhật"),
)
UNKNOWN = N_("Không xác định")


# -- the range ------------------------------------------------------------------------------
def _bad(name: str, vi: str, en: str) -> QueueError:
    return QueueError("bad_request", "bad_value", field=name, why=(vi, en))


def parse_range(first: str | None, last: str | None) -> tuple[date, date]:
    """``from`` and ``to`` as a request gives them (YYYY-MM-DD), checked: both present,
    real dates, ``from`` not after ``to``, at most :data:`MAX_DAYS` days."""
    days = []
    for name, value in (("from", first), ("to", last)):
        if not value:
            raise QueueError("bad_request", "missing_field", field=name)
        try:
            if len(value) != 10:
                raise ValueError(value)
            days.append(date.fromisoformat(value))
        except ValueError:
            raise _bad(
                name, "phải là một ngày dạng YYYY-MM-DD", "must be a date as YYYY-MM-DD"
            ) from None
    if days[0] > days[1]:
        raise _bad("from", "không được sau ngày “to”", "must not be after 'to'")
    if (days[1] - days[0]).days + 1 > MAX_DAYS:
        raise _bad(
            "to",
            f"mỗi báo cáo tối đa {MAX_DAYS} ngày",
            f"a report covers at most {MAX_DAYS} days",
        )
    return days[0], days[1]


@dataclass(frozen=True)
class Span:
    """A centre's range: whole local days ``first`` to ``last``; ``start`` and ``end``
    are the UTC instants of the first day's midnight and of the day after the last's."""

    centre_id: int
    code: str
    tz: str
    target: int
    first: date
    last: date
    start: datetime
    end: datetime

    @classmethod
    def of(cls, conn: Connection, centre_id: int, first: date, last: date) -> Span:
        c = conn.execute(sa.select(m.centres).where(m.centres.c.id == centre_id)).one()
        tz = zone(c.timezone)
        # The centre's own target wait when its row has one (the monitor's setting).
        target = getattr(c, "target_wait_s", None) or TARGET_WAIT_S
        return cls(
            centre_id,
            c.code,
            c.timezone,
            int(target),
            first,
            last,
            datetime.combine(first, time(), tzinfo=tz),
            datetime.combine(last + timedelta(days=1), time(), tzinfo=tz),
        )


# -- adding up ------------------------------------------------------------------------------
def share(part: int, whole: int) -> float:
    """``part / whole``; 1.0 when there is nothing to count (nobody waited too long, no
    one was dissatisfied, nothing was returned late)."""
    return 1.0 if whole == 0 else part / whole


def _cumulative(histogram: Counter) -> tuple[list[int], list[int]]:
    """The values of ``{value: how many}`` in order, and how many are at most each (a
    year's waits are 100,000s of values: sorted, counted and searched in C)."""
    values = sorted(histogram)
    return values, list(accumulate(map(histogram.__getitem__, values)))


def times(histogram: Counter, cumulative: tuple[list[int], list[int]] | None = None) -> dict:
    """Mean, median and 90th percentile of durations in whole seconds, given as
    ``{seconds: how many}`` (0 when there are none). The median of an even count is the
    mean of the middle two; the 90th percentile is by nearest rank: the smallest value
    that at least 90 % of the values do not exceed. Rounded to a tenth of a second.
    ``cumulative``: the histogram's :func:`_cumulative`, when the caller has it."""
    values, seen = cumulative or _cumulative(histogram)
    n = seen[-1] if seen else 0
    if n == 0:
        return {"mean": 0, "median": 0, "p90": 0}

    def nth(i: int) -> int:  # the i-th smallest (0-based)
        return values[bisect_right(seen, i)]

    median = (nth((n - 1) // 2) + nth(n // 2)) / 2
    return {
        "mean": round(sum(map(mul, values, map(histogram.__getitem__, values))) / n, 1),
        "median": round(median, 1),
        "p90": round(float(nth(math.ceil(0.9 * n) - 1)), 1),
    }


@dataclass
class Figures:
    """The families for one key of a breakdown (or for the whole range): counts, and
    durations as ``{seconds: how many}``."""

    tickets: Counter = field(default_factory=Counter)
    waits: Counter = field(default_factory=Counter)
    services: Counter = field(default_factory=Counter)
    levels: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    dossiers: Counter = field(default_factory=Counter)

    def answer(self, families: Iterable[str], target: int) -> dict:
        out: dict[str, Any] = {"tickets": None, "wait_s": None, "service_s": None}
        out.update(ratings=None, dossiers=None)
        if "tickets" in families:
            t = self.tickets
            out["tickets"] = {
                k: t[k] for k in ("issued", "served", "no_show", "cancelled", "transferred")
            }
            values, seen = waits = _cumulative(self.waits)
            at_most = bisect_right(values, target)
            within = seen[at_most - 1] if at_most else 0
            out["wait_s"] = {
                **times(self.waits, waits),
                "within_target_share": share(within, seen[-1] if seen else 0),
                "target": target,
            }
            out["service_s"] = times(self.services)
        if "ratings" in families:
            lv = {key: self.levels[score] for score, key in LEVEL_KEYS.items()}
            total = sum(lv.values())
            out["ratings"] = {
                **lv,
                "total": total,
                "satisfied_share": share(lv["very_satisfied"] + lv["satisfied"], total),
                "very_satisfied_share": share(lv["very_satisfied"], total),
                "reasons": dict(sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            }
        if "dossiers" in families:
            d = self.dossiers
            keys = ("received", "in_person", "online", "post", "returned")
            out["dossiers"] = {k: d[k] for k in keys}
            out["dossiers"].update(
                returned_on_time=d["returned_on_time"],
                returned_late=d["returned_late"],
                overdue_now=d["overdue_now"],
                on_time_share=share(d["returned_on_time"], d["returned"]),
            )
        return out


# -- in SQL, on SQLite and PostgreSQL alike -----------------------------------------------------
_t, _s, _r, _d, _a = m.tickets, m.services, m.ratings, m.dossiers, m.audit_log
# A literal, so that the partial index ix_audit_log_transferred (migration 0016) applies.
_TRANSFERRED = sa.literal_column("'transferred'")
_BUCKET_S = 900  # a time bucket when the zone's offset is not constant over the range


def _n(value: int):
    """A number written into the SQL: a bound parameter would make PostgreSQL see the
    GROUP BY's expression as another than the SELECT's."""
    return sa.literal_column(str(int(value)), sa.BigInteger)


# SQLite 3.38 has unixepoch(): the seconds strftime('%s') writes as text (both from the
# same milliseconds, both cut down to the second), as an integer, ~40 ms less a pass over
# a year's tickets.
_UNIXEPOCH = sqlite3.sqlite_version_info >= (3, 38)


def _epoch(sqlite: bool, col):
    """Whole seconds since 1970 (UTC) of a time column."""
    if sqlite:  # stored as UTC text (core/models.py UTCDateTime)
        if _UNIXEPOCH:  # the same whole seconds as strftime's, without the text between
            return sa.func.unixepoch(col)
        return sa.cast(sa.func.strftime("%s", col), sa.Integer)
    # date_part's double, not extract's numeric (PostgreSQL 14+): a third of the time
    # over a year's rows, and as exact here: microseconds since 1970 are below 2**53,
    # so the quotient is within 1.2e-7 s of the true one, never across a whole second.
    return sa.cast(
        sa.func.floor(sa.func.date_part(sa.literal_column("'epoch'"), col)), sa.BigInteger
    )


def _seconds(sqlite: bool, later, earlier):
    """``later - earlier`` in seconds, to the nearest whole second."""
    if sqlite:
        diff = (sa.func.julianday(later) - sa.func.julianday(earlier)) * _n(86400)
    else:
        diff = sa.extract("epoch", later - earlier)
    return sa.cast(sa.func.round(diff), sa.Integer)


def _fixed_offset(span: Span) -> int | None:
    """The zone's offset from UTC in seconds when it is the same all over the range (no
    daylight saving change inside it: Vietnam's always), else None."""
    z = zone(span.tz)
    # Every day's midnight and noon, and the end: a change on any day falls between two.
    instants = [span.end]
    for i in range((span.last - span.first).days + 1):
        day = span.first + timedelta(days=i)
        instants += [datetime.combine(day, time(h), tzinfo=z) for h in (0, 12)]
    offsets = {at.astimezone(z).utcoffset() for at in instants}
    return int(offsets.pop().total_seconds()) if len(offsets) == 1 else None


class _Keys:
    """How rows are grouped for breakdown ``by``: the SQL expression of a family's key,
    and what a key read back means (an hour or weekday from a time bucket, when the
    zone's offset changes inside the range)."""

    def __init__(self, conn: Connection, span: Span, by: str | None):
        self.by = by
        self.sqlite = conn.dialect.name == "sqlite"
        self.offset = _fixed_offset(span) if by in ("hour", "weekday") else None
        self.zone = zone(span.tz)
        # An agency is its services' (a few dozen rows): rows are grouped by service,
        # each read back as its agency, rather than each joined to its service.
        self.agency_of = {}
        if by == "agency":
            a = m.agencies
            self.agency_of = dict(
                conn.execute(sa.select(_s.c.id, a.c.name).join(a, a.c.id == _s.c.agency_id)).all()
            )

    def of(self, at=None, service=None, counter=None, clerk=None, fld=None):
        """The key's expression (None: the whole range, one group)."""
        by = self.by
        if by in ("hour", "weekday"):
            epoch = _epoch(self.sqlite, at)
            if self.offset is None:
                return epoch // _n(_BUCKET_S)
            local = epoch + _n(self.offset)
            if by == "hour":
                return local // _n(3600) % _n(24)
            return (local // _n(86400) + _n(3)) % _n(7)  # 1970-01-01 was a Thursday
        return {
            "agency": service,
            "service": service,
            "counter": counter,
            "clerk": clerk,
            "field": fld,
        }.get(by)

    @property
    def as_read(self) -> bool:
        """Whether every key reads back as itself (:meth:`read`)."""
        return self.by != "agency" and (
            self.by not in ("hour", "weekday") or self.offset is not None
        )

    def read(self, key):
        if self.by == "agency" and key is not None:
            return self.agency_of[key]
        if self.by not in ("hour", "weekday") or key is None:
            return key
        key = int(key)
        if self.offset is not None:
            return key
        local = datetime.fromtimestamp(key * _BUCKET_S, self.zone)
        return local.hour if self.by == "hour" else local.weekday()


def _grouped(conn: Connection, keys: _Keys, key, frm, where, *columns):
    """``SELECT key, columns..., COUNT(*) FROM frm WHERE where GROUP BY key, columns``:
    ``(key, *columns, n)`` tuples, the key read back (:meth:`_Keys.read`)."""
    labelled = [(key if key is not None else sa.null()).label("k")]
    labelled += [c.label(f"c{i}") for i, c in enumerate(columns)]
    group = [sa.literal_column("k")] if key is not None else []
    group += [sa.literal_column(f"c{i}") for i in range(len(columns))]
    q = sa.select(*labelled, sa.func.count().label("n")).select_from(frm).where(*where)
    rows = _fetch(conn, q.group_by(*group))
    if keys.as_read:  # most keys are read back as they are: the rows as fetched
        return rows
    return [(keys.read(row[0]), *row[1:]) for row in rows]


def _fetch(conn: Connection, q) -> list[tuple]:
    """``q``'s rows as the driver's tuples (its ``fetchall``, in C), not SQLAlchemy rows
    one by one: a year's histograms are 100,000s of rows of plain integers and strings,
    which need none of SQLAlchemy's processing (no column here is a date or a time)."""
    result = conn.execute(q)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def _issued_in(span: Span) -> list:
    """The range's tickets: issued on its days (``business_date``)."""
    t = _t
    return [
        t.c.centre_id == span.centre_id,
        t.c.business_date >= span.first,
        t.c.business_date <= span.last,
    ]


def _add_tickets(conn: Connection, span: Span, keys: _Keys, group, arrived=None) -> None:
    """The range's tickets: those issued on its days (``business_date``, the local day of
    ``issued_at``): by status, transferred or not, and their durations (the seconds each
    ticket keeps, core/lifecycle.py durations). The status counts come from the queue's
    index alone (``ix_tickets_queue``: centre, day, status, service, issue time); the
    waits and the service times are one pass each, grouped by the key and the seconds
    only (a year has ~100,000 distinct waits; with the status as well, 165,000 groups).

    ``arrived`` (the summary's :class:`_Arrived`, ``keys`` of the whole range) takes the
    walk-ins' waits from the same pass: the range's less the appointments', which are
    read apart (a few a day) with their own wait from the slot's start."""
    t = _t
    key = keys.of(
        at=t.c.issued_at,
        service=t.c.service_id,
        counter=t.c.counter_id,
        clerk=t.c.staff_id,
    )
    frm = t
    where = _issued_in(span)
    if keys.by in ("hour", "weekday"):
        # The hour or day of each ticket is worked out once for the statuses and the
        # service seconds (only those done have any: one group for each other status).
        served = t.c.service_s
        for k, status, seconds, n in _grouped(conn, keys, key, frm, where, t.c.status, served):
            f = group(k)
            f.tickets["issued"] += n
            if status in _STATUS_FIGURE:
                f.tickets[_STATUS_FIGURE[status]] += n
            if status == "done" and seconds is not None:
                f.services[seconds] += n
    else:
        for k, status, n in _grouped(conn, keys, key, frm, where, t.c.status):
            f = group(k)
            f.tickets["issued"] += n
            if status in _STATUS_FIGURE:
                f.tickets[_STATUS_FIGURE[status]] += n
    sent = sa.select(_a.c.ticket_id).where(_a.c.action == _TRANSFERRED)
    for k, n in _grouped(conn, keys, key, frm, [*where, t.c.id.in_(sent)]):
        group(k).tickets["transferred"] += n
    waited = [*where, t.c.wait_s.isnot(None)]
    seen, waits = _NONE, None
    for k, seconds, n in _grouped(conn, keys, key, frm, waited, t.c.wait_s):
        if k != seen:  # the rows come by key: a year's are 100,000s
            seen, waits = k, group(k).waits
        waits[seconds] += n
    if arrived is not None:
        # The appointments checked in (a few a day, ix_tickets_booked_day): their own
        # wait (from the slot's start, or the check-in when later) and their wait_s,
        # taken from the range's to leave the walk-ins'.
        began = sa.case((t.c.booked_for > t.c.issued_at, t.c.booked_for), else_=t.c.issued_at)
        own = _seconds(keys.sqlite, t.c.called_at, began)
        booked = [*waited, t.c.booked_for.isnot(None)]
        walk_ins = Counter(group(None).waits)  # the summary's: one group
        for _k, seconds, from_slot, n in _grouped(conn, keys, None, t, booked, t.c.wait_s, own):
            arrived.appointments[max(0, from_slot)] += n
            walk_ins[seconds] -= n
        arrived.walk_ins = +walk_ins
    if keys.by not in ("hour", "weekday"):
        done = [*where, t.c.status == "done", t.c.service_s.isnot(None)]
        for k, seconds, n in _grouped(conn, keys, key, frm, done, t.c.service_s):
            group(k).services[seconds] += n


# -- hours and weekdays in one ordered pass ----------------------------------------------------
# The breakdowns by hour and weekday (with the zone's offset the same over the range) read
# each table once without SQL's GROUP BY on the hour or day: SQLite has no hash aggregate,
# so grouping by an expression sorts every row (~0.3 s for a year's tickets). The tickets
# are grouped by their index's own order (business day, status: no sort), the rows'
# figures come back packed, each row's key with its value (value * _PACK + key), as the
# text of a list of integers, and are counted in Python (json and Counter, in C).
_SHIFT = 5
_PACK, _MASK = 1 << _SHIFT, (1 << _SHIFT) - 1  # above every key: 0-23 hours, 0-6 weekdays
PACKED = True  # False: the breakdowns by hour and weekday by the SQL GROUP BY (the oracle)


def _packed(sqlite: bool, value):
    """The group's values (nulls left out) as integers separated by commas, or null."""
    if sqlite:
        return sa.func.group_concat(value)
    return sa.func.string_agg(sa.cast(value, sa.Text), sa.literal_column("','"))


def _unpack(text: str | None) -> list[int]:
    return json.loads(f"[{text}]") if text else []


def _spread(codes: Counter) -> dict[int, dict[int, int]]:
    """``{value * _PACK + key: how many}`` as ``{key: {value: how many}}``."""
    out: dict[int, dict[int, int]] = {}
    for code, n in codes.items():
        key = code & _MASK  # the same as divmod's, for a negative value as well
        values = out.get(key)
        if values is None:
            values = out[key] = {}
        values[code >> _SHIFT] = n
    return out


def _by_time(keys: _Keys) -> bool:
    """Whether breakdown ``keys`` reads its rows packed (:data:`PACKED`)."""
    return PACKED and keys.by in ("hour", "weekday") and keys.offset is not None


def _add_tickets_packed(conn: Connection, span: Span, keys: _Keys, group) -> None:
    """:func:`_add_tickets` by hour or weekday: one pass over the range's tickets,
    grouped by business day and status in the order of ``ix_tickets_queue``, that brings
    back each status's keys, and the waits and service seconds packed with theirs."""
    t = _t
    key = keys.of(at=t.c.issued_at)
    where = _issued_in(span)
    pack = _n(_PACK)
    q = (
        sa.select(
            t.c.status,
            _packed(keys.sqlite, key),
            _packed(keys.sqlite, t.c.wait_s * pack + key),
            _packed(keys.sqlite, t.c.service_s * pack + key),
        )
        .where(*where)
        .group_by(t.c.business_date, t.c.status)
    )
    statuses: dict[str, Counter] = {}
    waits, services = Counter(), Counter()
    for status, issued, waited, served in _fetch(conn, q):
        statuses.setdefault(status, Counter()).update(_unpack(issued))
        waits.update(_unpack(waited))
        if status == "done":
            services.update(_unpack(served))
    for status, counts in statuses.items():
        figure = _STATUS_FIGURE.get(status)
        for k, n in counts.items():
            f = group(k)
            f.tickets["issued"] += n
            if figure:
                f.tickets[figure] += n
    for k, values in _spread(waits).items():
        group(k).waits.update(values)
    for k, values in _spread(services).items():
        group(k).services.update(values)
    sent = sa.select(_a.c.ticket_id).where(_a.c.action == _TRANSFERRED)
    for k, n in _grouped(conn, keys, key, t, [*where, t.c.id.in_(sent)]):
        group(k).tickets["transferred"] += n


def _add_ratings_packed(conn: Connection, span: Span, keys: _Keys, group) -> None:
    """:func:`_add_ratings` by hour or weekday: the levels packed with their keys."""
    r = _r
    key = keys.of(at=r.c.rated_at)
    where = [r.c.centre_id == span.centre_id, r.c.rated_at >= span.start, r.c.rated_at < span.end]
    q = sa.select(_packed(keys.sqlite, r.c.score * _n(_PACK) + key)).where(*where)
    for k, levels in _spread(Counter(_unpack(conn.execute(q).scalar()))).items():
        group(k).levels.update(levels)
    _add_reasons(conn, keys, key, where, group)


# Each channel (``submitted_via``) as a number, and that number's figure; 0: none.
_CHANNEL_CODES = {via: code for code, via in enumerate(CHANNELS, 1)}
_CHANNEL_FIGURES = {code: CHANNELS[via] for via, code in _CHANNEL_CODES.items()}


def _add_dossiers_packed(conn: Connection, span: Span, keys: _Keys, group) -> None:
    """:func:`_add_dossiers` by hour or weekday: received with their channel's number
    (0: none), returned with whether late (1), each packed with its key."""
    d = _d
    mine = d.c.centre_id == span.centre_id
    via = sa.case(_CHANNEL_CODES, value=d.c.submitted_via, else_=0)
    key = keys.of(at=d.c.received_at)
    q = sa.select(_packed(keys.sqlite, via * _n(_PACK) + key)).where(
        mine, d.c.received_at >= span.start, d.c.received_at < span.end
    )
    for k, vias in _spread(Counter(_unpack(conn.execute(q).scalar()))).items():
        f = group(k)
        for code, n in vias.items():
            f.dossiers["received"] += n
            if code in _CHANNEL_FIGURES:
                f.dossiers[_CHANNEL_FIGURES[code]] += n
    key = keys.of(at=d.c.returned_at)
    q = sa.select(_packed(keys.sqlite, _late() * _n(_PACK) + key)).where(
        mine, d.c.returned_at >= span.start, d.c.returned_at < span.end
    )
    for k, lates in _spread(Counter(_unpack(conn.execute(q).scalar()))).items():
        f = group(k)
        for is_late, n in lates.items():
            f.dossiers["returned"] += n
            f.dossiers["returned_late" if is_late else "returned_on_time"] += n


@dataclass
class _Arrived:
    """The waits of the range's called tickets, walk-ins' (their ``wait_s``: from taking
    the number) apart from appointments' (from the slot's start, or the check-in when
    later), as ``{seconds: how many}``."""

    walk_ins: Counter = field(default_factory=Counter)
    appointments: Counter = field(default_factory=Counter)


_NONE = object()  # a key no row has
_STATUS_FIGURE = {"done": "served", "no_show": "no_show", "cancelled": "cancelled"}


def _add_ratings(conn: Connection, span: Span, keys: _Keys, group) -> None:
    """The ratings given in the range (``rated_at``): by level and reasons given."""
    r = _r
    key = keys.of(
        at=r.c.rated_at,
        service=r.c.service_id,
        counter=r.c.counter_id,
        clerk=r.c.staff_id,
    )
    frm = r
    where = [r.c.centre_id == span.centre_id, r.c.rated_at >= span.start, r.c.rated_at < span.end]
    for k, score, n in _grouped(conn, keys, key, frm, where, r.c.score):
        group(k).levels[score] += n
    _add_reasons(conn, keys, key, where, group)


def _add_reasons(conn: Connection, keys: _Keys, key, where: list, group) -> None:
    """The reasons given with the ratings ``where`` picks, by ``key``."""
    r = _r
    # The reasons of those that give some (a low rating's, a few in a hundred): the
    # partial index ix_ratings_reasons (migration 0019) has them, its condition spelt
    # the same here so that SQLite and PostgreSQL see it applies.
    reasons = sa.cast(r.c.reasons, sa.Text)  # JSON has no equality on PostgreSQL
    given = [*where, reasons != sa.literal_column("'[]'")]
    for k, text, n in _grouped(conn, keys, key, r, given, reasons):
        f = group(k)
        for reason in json.loads(text or "[]"):
            f.reasons[reason] += n


def _late():
    """1 for a dossier returned after its due time, else 0."""
    d = _d
    return sa.case((sa.and_(d.c.due_at.isnot(None), d.c.returned_at > d.c.due_at), 1), else_=0)


def _add_dossiers(conn: Connection, span: Span, keys: _Keys, group, now: datetime) -> None:
    """Dossiers received in the range (``received_at``) by channel, returned in it
    (``returned_at``) on time or late, and overdue now (not cancelled, not returned, past
    ``due_at`` at ``now``; not split by hour or weekday: it has no time in the range)."""
    d = _d
    mine = d.c.centre_id == span.centre_id
    key = keys.of(at=d.c.received_at, fld=d.c.field)
    where = [mine, d.c.received_at >= span.start, d.c.received_at < span.end]
    for k, via, n in _grouped(conn, keys, key, d, where, d.c.submitted_via):
        f = group(k)
        f.dossiers["received"] += n
        if via in CHANNELS:
            f.dossiers[CHANNELS[via]] += n
    key = keys.of(at=d.c.returned_at, fld=d.c.field)
    where = [mine, d.c.returned_at >= span.start, d.c.returned_at < span.end]
    for k, is_late, n in _grouped(conn, keys, key, d, where, _late()):
        f = group(k)
        f.dossiers["returned"] += n
        f.dossiers["returned_late" if is_late else "returned_on_time"] += n
    if keys.by in ("hour", "weekday"):
        return
    where = [
        mine,
        d.c.returned_at.is_(None),
        d.c.due_at < now,
        d.c.status.notin_(("returned", "cancelled")),
    ]
    for k, n in _grouped(conn, keys, keys.of(fld=d.c.field), d, where):
        group(k).dossiers["overdue_now"] += n


# -- the answers --------------------------------------------------------------------------------
def _figures(
    conn: Connection, span: Span, by: str | None, now: datetime, arrived: _Arrived | None = None
) -> dict:
    groups: dict[Any, Figures] = {}

    def group(key) -> Figures:
        f = groups.get(key)
        if f is None:
            f = groups[key] = Figures()
        return f

    keys = _Keys(conn, span, by)
    families = FAMILIES[by]
    if "tickets" in families:
        if _by_time(keys):
            _add_tickets_packed(conn, span, keys, group)
        else:
            _add_tickets(conn, span, keys, group, arrived)
    if "ratings" in families:
        if _by_time(keys):
            _add_ratings_packed(conn, span, keys, group)
        else:
            _add_ratings(conn, span, keys, group)
    if "dossiers" in families:
        if _by_time(keys):
            _add_dossiers_packed(conn, span, keys, group)
        else:
            _add_dossiers(conn, span, keys, group, now)
    return groups


def _head(span: Span) -> dict:
    return {
        "ok": True,
        "centre": span.code,
        "from": span.first.isoformat(),
        "to": span.last.isoformat(),
    }


def summary(conn: Connection, centre_id: int, first: date, last: date, now: datetime) -> dict:
    """The whole centre over the range (``now``: the moment "overdue now" is judged at),
    with the comments given with the range's ratings."""
    span = Span.of(conn, centre_id, first, last)
    arrived = _Arrived()
    groups = _figures(conn, span, None, now, arrived)
    return {
        **_head(span),
        **groups.get(None, Figures()).answer(FAMILIES[None], span.target),
        "comments": comments(conn, span),
        "appointments": appointments(conn, span, now, arrived),
    }


def appointments(
    conn: Connection, span: Span, now: datetime, arrived: _Arrived | None = None
) -> dict:
    """Bookings whose slot begins in the range (docs/reports.md): how they ended, and the
    waits of the appointments checked in in their window (from the slot's start, or the
    check-in when later) against the walk-ins' (from taking the number) of the range.
    ``arrived``: those waits as the summary's pass over the tickets counted them (read
    here when not given)."""
    a, t = m.appointments, _t
    rows = conn.execute(
        sa.select(a.c.status, a.c.slot_end, t.c.booked_for)
        .select_from(a.outerjoin(t, t.c.id == a.c.ticket_id))
        .where(a.c.centre_id == span.centre_id, a.c.slot_start >= span.start)
        .where(a.c.slot_start < span.end)
    ).all()
    out = dict.fromkeys(("booked", "cancelled", "checked_in", "late", "missed", "upcoming"), 0)
    out["booked"] = len(rows)
    for status, slot_end, booked_for in rows:
        if status == "checked_in":
            out["checked_in" if booked_for is not None else "late"] += 1
        elif status == "booked":
            out["missed" if slot_end <= now else "upcoming"] += 1
        elif status == "cancelled":
            out["cancelled"] += 1
    if arrived is None:
        arrived = _Arrived()
        whole = Figures()
        _add_tickets(conn, span, _Keys(conn, span, None), lambda _k: whole, arrived)
    waits = {"appointments": arrived.appointments, "walk_ins": arrived.walk_ins}
    out["wait_s"] = {k: {**times(v), "n": sum(v.values())} for k, v in waits.items()}
    return out


COMMENTS_SHOWN = 100  # the newest comments a summary lists (``total`` counts them all)


def comments(conn: Connection, span: Span) -> dict:
    """The comments given with the range's ratings (``rated_at``): how many, and the
    newest :data:`COMMENTS_SHOWN` with their time (in the centre's zone), level, service
    and counter. Plain text as the citizen typed it (core/rating.py refuses markup);
    whatever shows it escapes it."""
    r, c = _r, m.counters
    where = [
        r.c.centre_id == span.centre_id,
        r.c.rated_at >= span.start,
        r.c.rated_at < span.end,
        r.c.comment.isnot(None),
    ]
    total = conn.execute(sa.select(sa.func.count()).select_from(r).where(*where)).scalar_one()
    rows = conn.execute(
        sa.select(r.c.rated_at, r.c.score, r.c.comment, _s.c.name, c.c.name.label("counter"))
        .join(_s, _s.c.id == r.c.service_id)
        .outerjoin(c, c.c.id == r.c.counter_id)
        .where(*where)
        .order_by(r.c.rated_at.desc(), r.c.id.desc())
        .limit(COMMENTS_SHOWN)
    )
    shown = [
        {
            "at": iso(row.rated_at, span.tz),
            "score": row.score,
            "service": row.name,
            "counter": row.counter,
            "text": row.comment,
        }
        for row in rows
    ]
    return {"total": total, "shown": shown}


def _labels(conn: Connection, span: Span, by: str, keys) -> dict:
    """What each key of breakdown ``by`` is called (Vietnamese; hours and weekdays are
    catalog words, translated by whoever shows them)."""
    ids = [k for k in keys if k is not None]
    if by == "service":
        rows = conn.execute(sa.select(_s.c.id, _s.c.name).where(_s.c.id.in_(ids)))
        return dict(rows.all())
    if by == "counter":
        c = m.counters
        rows = conn.execute(sa.select(c.c.id, c.c.name).where(c.c.id.in_(ids)))
        return dict(rows.all())
    if by == "clerk":
        st = m.staff
        rows = conn.execute(sa.select(st.c.id, st.c.full_name).where(st.c.id.in_(ids)))
        return dict(rows.all())
    if by == "hour":
        return {h: f"{h:02d}:00–{(h + 1) % 24:02d}:00" for h in ids}
    if by == "weekday":
        return {d: WEEKDAYS[d] for d in ids}
    return {k: k for k in ids}  # agency, field: the text itself


def breakdown(
    conn: Connection, centre_id: int, by: str, first: date, last: date, now: datetime
) -> dict:
    """The range's figures per ``by`` (one of :data:`BREAKDOWNS`), one row per key that
    has anything to count; a row's ``key`` is null for what has none (a ticket never
    called has no counter, a dossier may have no field)."""
    if by not in BREAKDOWNS:
        raise _bad("by", "một trong: " + ", ".join(BREAKDOWNS), "one of: " + ", ".join(BREAKDOWNS))
    span = Span.of(conn, centre_id, first, last)
    groups = _figures(conn, span, by, now)
    labels = _labels(conn, span, by, groups)
    rows = [
        {
            "key": key,
            "label": UNKNOWN if key is None else labels.get(key, str(key)),
            **f.answer(FAMILIES[by], span.target),
        }
        for key, f in groups.items()
    ]
    numeric = by in ("hour", "weekday")
    rows.sort(key=lambda r: (r["key"] is None, r["key"] if numeric else r["label"].casefold()))
    return {**_head(span), "by": by, "target_wait_s": span.target, "rows": rows}


# -- as a table (CSV, XLSX) ------------------------------------------------------------------
# (family, figure, heading): the columns of a download, in order.
COLUMNS = (
    ("tickets", "issued", N_("Số phiếu đã cấp")),
    ("tickets", "served", N_("Số lượt đã phục vụ")),
    ("tickets", "no_show", N_("Vắng mặt khi gọi")),
    ("tickets", "cancelled", N_("Phiếu đã hủy")),
    ("tickets", "transferred", N_("Phiếu đã chuyển")),
    ("wait_s", "mean", N_("Thời gian chờ trung bình (giây)")),
    ("wait_s", "median", N_("Thời gian chờ trung vị (giây)")),
    ("wait_s", "p90", N_("Thời gian chờ, 90% không quá (giây)")),
    ("wait_s", "within_target_share", N_("Tỉ lệ chờ không quá thời gian mục tiêu")),
    ("wait_s", "target", N_("Thời gian chờ mục tiêu (giây)")),
    ("service_s", "mean", N_("Thời gian phục vụ trung bình (giây)")),
    ("service_s", "median", N_("Thời gian phục vụ trung vị (giây)")),
    ("service_s", "p90", N_("Thời gian phục vụ, 90% không quá (giây)")),
    ("ratings", "very_satisfied", N_("Rất hài lòng")),
    ("ratings", "satisfied", N_("Hài lòng")),
    ("ratings", "dissatisfied", N_("Không hài lòng")),
    ("ratings", "total", N_("Tổng số lượt đánh giá")),
    ("ratings", "satisfied_share", N_("Tỉ lệ hài lòng")),
    ("ratings", "very_satisfied_share", N_("Tỉ lệ rất hài lòng")),
    ("dossiers", "received", N_("Hồ sơ tiếp nhận")),
    ("dossiers", "in_person", N_("Tiếp nhận trực tiếp")),
    ("dossiers", "online", N_("Tiếp nhận trực tuyến")),
    ("dossiers", "post", N_("Tiếp nhận qua bưu chính")),
    ("dossiers", "returned", N_("Hồ sơ đã trả kết quả")),
    ("dossiers", "returned_on_time", N_("Trả đúng hạn")),
    ("dossiers", "returned_late", N_("Trả trễ hạn")),
    ("dossiers", "overdue_now", N_("Quá hạn chưa trả (hiện tại)")),
    ("dossiers", "on_time_share", N_("Tỉ lệ đúng hạn")),
)
BY_HEADINGS = {
    None: N_("Trung tâm"),
    "agency": N_("Cơ quan"),
    "service": N_("Lĩnh vực"),
    "counter": N_("Quầy"),
    "clerk": N_("Cán bộ"),
    "hour": N_("Giờ trong ngày"),
    "weekday": N_("Ngày trong tuần"),
    "field": N_("Lĩnh vực hồ sơ"),
}
RANGE_HEADINGS = (N_("Từ ngày"), N_("Đến ngày"))
REASON_HEADING = N_("Lý do không hài lòng: {reason}")
COMMENT_HEADINGS = (N_("Thời điểm"), N_("Mức đánh giá"), N_("Lĩnh vực"), N_("Quầy"), N_("Góp ý"))
LEVEL_WORDS = {3: N_("Rất hài lòng"), 2: N_("Hài lòng"), 1: N_("Không hài lòng")}


def table(report: dict, translate: Callable[[str], str] = lambda s: s) -> tuple[list, list, set]:
    """A summary or a breakdown as ``(headings, rows, shares)``: the range's days, what
    the row is (the centre, or the breakdown's key), then :data:`COLUMNS` that the report
    has, then one column per reason given; ``shares`` are the indexes of the columns that
    hold shares. Words pass through ``translate`` (the catalog); a figure a row does not
    have is None (an empty cell)."""
    by = report.get("by")
    rows = report["rows"] if by else [{"label": report["centre"], **report}]
    families = FAMILIES[by]
    columns = [c for c in COLUMNS if _family_of(c[0]) in families]
    reasons: list[str] = []
    for r in rows:
        for reason in (r.get("ratings") or {}).get("reasons", {}):
            if reason not in reasons:
                reasons.append(reason)
    headings = [translate(h) for h in (*RANGE_HEADINGS, BY_HEADINGS[by])]
    headings += [translate(h) for _f, _k, h in columns]
    headings += [translate(REASON_HEADING).format(reason=translate(x)) for x in reasons]
    out = []
    for r in rows:
        label = r["label"]
        line = [report["from"], report["to"], translate(label) if isinstance(label, str) else label]
        line += [(r.get(fam) or {}).get(key) for fam, key, _h in columns]
        given = (r.get("ratings") or {}).get("reasons", {})
        line += [given.get(x, 0) if r.get("ratings") is not None else None for x in reasons]
        out.append(line)
    first = len(RANGE_HEADINGS) + 1
    shares = {first + i for i, (_f, key, _h) in enumerate(columns) if key.endswith("_share")}
    return headings, out, shares


def _family_of(key: str) -> str:
    return "tickets" if key in ("wait_s", "service_s") else key


def comment_table(report: dict, translate: Callable[[str], str] = lambda s: s):
    """A summary's comments as ``(headings, rows)`` (its downloads' second sheet)."""
    rows = [
        [c["at"], translate(LEVEL_WORDS[c["score"]]), c["service"], c["counter"], c["text"]]
        for c in report["comments"]["shown"]
    ]
    return [translate(h) for h in COMMENT_HEADINGS], rows


# -- staffing advice (core/staffing.py), in the reports' terms ---------------------------------
STAFFING_WEEKS = (1, 26)  # how many past weeks the advice may be read from
STAFFING_HEADINGS = (
    N_("Lĩnh vực"),
    N_("Giờ trong ngày"),
    N_("Lượt đến mỗi giờ (trung bình)"),
    N_("Thời gian phục vụ trung bình (giây)"),
    N_("Số quầy cần"),
    N_("Số quầy đã mở (trung bình)"),
)


def parse_staffing(weekday: str | None, until: str | None, weeks: str | None, today: date):
    """``weekday`` (0 = Monday … 6), ``until`` (YYYY-MM-DD, default ``today``) and
    ``weeks`` (default core/staffing.py's) as a request gives them, checked."""
    from .staffing import DEFAULT_WEEKS

    if weekday is None or weekday == "":
        raise QueueError("bad_request", "missing_field", field="weekday")
    if weekday not in tuple("0123456"):
        raise _bad("weekday", "từ 0 (thứ Hai) đến 6 (Chủ nhật)", "0 (Monday) to 6 (Sunday)")
    day = today
    if until:
        try:
            if len(until) != 10:
                raise ValueError(until)
            day = date.fromisoformat(until)
        except ValueError:
            raise _bad(
                "until", "phải là một ngày dạng YYYY-MM-DD", "must be a date as YYYY-MM-DD"
            ) from None
    low, high = STAFFING_WEEKS
    n = DEFAULT_WEEKS
    if weeks:
        if not weeks.isdigit() or not low <= int(weeks) <= high:
            raise _bad("weeks", f"từ {low} đến {high}", f"{low} to {high}")
        n = int(weeks)
    return int(weekday), day, n


def staffing(conn: Connection, centre_id: int, weekday: int, until: date, weeks: int) -> dict:
    """How many counters each service needs, hour by hour of ``weekday``, for the
    centre's target wait, against how many were open: core/staffing.py's Erlang C advice
    from that weekday's last ``weeks`` occurrences up to ``until``."""
    from . import staffing as model

    span = Span.of(conn, centre_id, until, until)
    names = dict(
        conn.execute(sa.select(_s.c.code, _s.c.name).where(_s.c.centre_id == centre_id)).all()
    )
    advice = model.advise(conn, centre_id, weekday, until, target_s=span.target, weeks=weeks)
    return {
        "ok": True,
        "centre": span.code,
        "weekday": weekday,
        "until": until.isoformat(),
        "weeks": weeks,
        "target_wait_s": span.target,
        "level": model.DEFAULT_LEVEL,
        "rows": [
            {
                "service": a.service,
                "service_name": names.get(a.service, a.service),
                "hour": a.hour,
                "arrivals": round(a.arrivals, 2),
                "mean_service_s": None if a.mean_service_s is None else round(a.mean_service_s, 1),
                "needed": a.needed,
                "open": round(a.open, 2),
            }
            for a in advice
        ],
    }


def staffing_table(report: dict, translate: Callable[[str], str] = lambda s: s):
    """The advice as ``(headings, rows)`` for its downloads."""
    rows = [
        [
            r["service_name"],
            f"{r['hour']:02d}:00–{(r['hour'] + 1) % 24:02d}:00",
            r["arrivals"],
            r["mean_service_s"],
            r["needed"],
            r["open"],
        ]
        for r in report["rows"]
    ]
    return [translate(h) for h in STAFFING_HEADINGS], rows
