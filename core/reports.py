"""The centre's reports: what a date range of one centre adds up to, in the terms
provinces report in (issue 17; every figure is defined in docs/reports.md).

Pure reads over the store, no web framework: :func:`summary` and :func:`breakdown` take
a connection and answer plain dicts (the JSON of ``/api/v1/reports/…``); :func:`table`
flattens either into headings and rows for the CSV and XLSX downloads.

Three figure families, one query each over the range's rows (a ticket query, a rating
query, a dossier query; the indexes they need are migration 0014's); counts, means and
percentiles are added up here, per key of the breakdown, in one pass over those rows.
A range is whole days in the centre's time zone, both ends included.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import models as m
from .clock import zone
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
        # A centre's own target wait, once its settings have one (the monitor's issue 17).
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


def _p90(values: list[float]) -> float:
    """The 90th percentile by nearest rank: the smallest value that at least 90 % of the
    values do not exceed."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def times(values: list[float]) -> dict:
    """Mean, median and 90th percentile of durations in seconds (0 when there are none),
    rounded to a tenth of a second."""
    if not values:
        return {"mean": 0, "median": 0, "p90": 0}
    return {
        "mean": round(statistics.fmean(values), 1),
        "median": round(statistics.median(values), 1),
        "p90": round(_p90(values), 1),
    }


@dataclass
class Figures:
    """The three families for one key of a breakdown (or for the whole range)."""

    tickets: Counter = field(default_factory=Counter)
    waits: list = field(default_factory=list)
    services: list = field(default_factory=list)
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
            within = sum(1 for w in self.waits if w <= target)
            out["wait_s"] = {
                **times(self.waits),
                "within_target_share": share(within, len(self.waits)),
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


# -- the three queries ------------------------------------------------------------------------
_t, _s, _r, _d, _a = m.tickets, m.services, m.ratings, m.dossiers, m.audit_log
# A literal, so that the partial index ix_audit_log_transferred (migration 0014) applies.
_TRANSFERRED = sa.literal_column("'transferred'")


def _local(tz: str) -> Callable[[datetime], datetime]:
    z = zone(tz)
    return lambda at: at.astimezone(z)


def _ticket_rows(conn: Connection, span: Span):
    """The range's tickets: those issued on its days (``business_date``, the local day of
    ``issued_at``), each with whether it was ever transferred."""
    transferred = (
        sa.exists()
        .where(_a.c.ticket_id == _t.c.id, _a.c.action == _TRANSFERRED)
        .label("transferred")
    )
    q = (
        sa.select(
            _t.c.status,
            _t.c.service_id,
            _s.c.agency,
            _t.c.counter_id,
            _t.c.staff_id,
            _t.c.business_date,
            _t.c.issued_at,
            _t.c.called_at,
            _t.c.started_at,
            _t.c.finished_at,
            transferred,
        )
        .join(_s, _s.c.id == _t.c.service_id)
        .where(
            _t.c.centre_id == span.centre_id,
            _t.c.business_date >= span.first,
            _t.c.business_date <= span.last,
        )
    )
    return conn.execute(q)


def _add_tickets(groups, key, rows) -> None:
    for r in rows:
        f = groups(key(r))
        t = f.tickets
        t["issued"] += 1
        if r.status == "done":
            t["served"] += 1
            begun = r.started_at or r.called_at
            f.services.append((r.finished_at - begun).total_seconds())
        elif r.status == "no_show":
            t["no_show"] += 1
        elif r.status == "cancelled":
            t["cancelled"] += 1
        if r.transferred:
            t["transferred"] += 1
        if r.called_at is not None:
            f.waits.append((r.called_at - r.issued_at).total_seconds())


def _rating_rows(conn: Connection, span: Span):
    """The ratings given in the range (``rated_at``)."""
    q = (
        sa.select(
            _r.c.score,
            _r.c.reasons,
            _r.c.service_id,
            _s.c.agency,
            _r.c.counter_id,
            _r.c.staff_id,
            _r.c.rated_at,
        )
        .join(_s, _s.c.id == _r.c.service_id)
        .where(
            _r.c.centre_id == span.centre_id,
            _r.c.rated_at >= span.start,
            _r.c.rated_at < span.end,
        )
    )
    return conn.execute(q)


def _add_ratings(groups, key, rows) -> None:
    for r in rows:
        f = groups(key(r))
        f.levels[r.score] += 1
        f.reasons.update(r.reasons or ())


def _dossier_rows(conn: Connection, span: Span, now: datetime):
    """Every dossier the figures count: received in the range (``received_at``), returned
    in the range (``returned_at``), or overdue now (not cancelled, not returned, past
    ``due_at`` at ``now``)."""
    in_range = {
        name: sa.and_(col >= span.start, col < span.end)
        for name, col in (("received", _d.c.received_at), ("returned", _d.c.returned_at))
    }
    overdue = sa.and_(
        _d.c.returned_at.is_(None),
        _d.c.due_at < now,
        _d.c.status.notin_(("returned", "cancelled")),
    )
    q = sa.select(
        _d.c.field,
        _d.c.submitted_via,
        _d.c.received_at,
        _d.c.due_at,
        _d.c.returned_at,
        in_range["received"].label("in_received"),
        in_range["returned"].label("in_returned"),
        overdue.label("overdue"),
    ).where(_d.c.centre_id == span.centre_id, sa.or_(*in_range.values(), overdue))
    return conn.execute(q)


def _add_dossiers(groups, by, local, rows) -> None:
    # By hour or weekday a dossier counts where its own time falls: received by
    # received_at, returned by returned_at; overdue now has no time of the range.
    for r in rows:
        if r.in_received:
            f = groups(_dossier_key(by, r, r.received_at, local))
            f.dossiers["received"] += 1
            if r.submitted_via in CHANNELS:
                f.dossiers[CHANNELS[r.submitted_via]] += 1
        if r.in_returned:
            f = groups(_dossier_key(by, r, r.returned_at, local))
            f.dossiers["returned"] += 1
            late = r.due_at is not None and r.returned_at > r.due_at
            f.dossiers["returned_late" if late else "returned_on_time"] += 1
        if r.overdue and by not in ("hour", "weekday"):
            groups(_dossier_key(by, r, None, local)).dossiers["overdue_now"] += 1


def _dossier_key(by, r, at, local):
    if by == "field":
        return r.field
    if by == "hour":
        return local(at).hour
    if by == "weekday":
        return local(at).weekday()
    return None


# -- the answers --------------------------------------------------------------------------------
def _keys(by: str | None, local) -> tuple[Callable, Callable]:
    """The key of a ticket row and of a rating row in breakdown ``by``."""
    if by is None or by == "field":
        return (lambda r: None), (lambda r: None)
    if by in ("agency", "counter"):
        col = by if by == "agency" else "counter_id"
        return (lambda r: getattr(r, col)), (lambda r: getattr(r, col))
    if by == "service":
        return (lambda r: r.service_id), (lambda r: r.service_id)
    if by == "clerk":
        return (lambda r: r.staff_id), (lambda r: r.staff_id)
    if by == "hour":
        return (lambda r: local(r.issued_at).hour), (lambda r: local(r.rated_at).hour)
    return (lambda r: r.business_date.weekday()), (lambda r: local(r.rated_at).weekday())


def _figures(conn: Connection, span: Span, by: str | None, now: datetime) -> dict:
    groups: dict[Any, Figures] = {}

    def group(key) -> Figures:
        f = groups.get(key)
        if f is None:
            f = groups[key] = Figures()
        return f

    local = _local(span.tz)
    ticket_key, rating_key = _keys(by, local)
    families = FAMILIES[by]
    if "tickets" in families:
        _add_tickets(group, ticket_key, _ticket_rows(conn, span))
    if "ratings" in families:
        _add_ratings(group, rating_key, _rating_rows(conn, span))
    if "dossiers" in families:
        _add_dossiers(group, by, local, _dossier_rows(conn, span, now))
    return groups


def _head(span: Span) -> dict:
    return {
        "ok": True,
        "centre": span.code,
        "from": span.first.isoformat(),
        "to": span.last.isoformat(),
    }


def summary(conn: Connection, centre_id: int, first: date, last: date, now: datetime) -> dict:
    """The whole centre over the range (``now``: the moment "overdue now" is judged at)."""
    span = Span.of(conn, centre_id, first, last)
    groups = _figures(conn, span, None, now)
    return {**_head(span), **groups.get(None, Figures()).answer(FAMILIES[None], span.target)}


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
