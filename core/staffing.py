"""Staffing advice: how many counters each service needs, hour by hour, for the centre's
target wait, against how many were open (issue 17, the reports' last part).

The model (Erlang C, an M/M/c queue per service and hour, taken one hour at a time):

- citizens of a service arrive at random (a Poisson process) at the rate measured for that
  hour of that weekday, the mean over the last weeks;
- service times are exponential with the service's mean, measured over the same days
  (from a clerk's start to finish);
- the service's counters serve its queue only, first come first served; nobody leaves
  before being served; each hour is in steady state on its own (no queue carried over
  from the hour before: busy mornings are underestimated when a queue builds up).

With ``c`` counters and an offered load ``a = λ·s`` (λ arrivals a second, ``s`` seconds of
service each), a citizen waits at all with probability ``C(c, a)`` (Erlang's C formula),
and waits longer than ``t`` with probability ``C(c, a)·exp(-(c - a)·t / s)``. A service
needs the fewest counters ``c > a`` for which at least ``level`` of its citizens (default
90 %) are called within the target wait.

A counter shared by several services is counted by each service it is open for, so
the "open" column can add up to more than the counters the centre has; the "needed"
column assumes each service's counters serve it alone (pooled counters need fewer).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core import models as m

DEFAULT_LEVEL = 0.9  # the share of citizens to call within the target wait
DEFAULT_WEEKS = 8  # how many past weeks' same weekday the rates are taken from
MAX_COUNTERS = 200  # an answer above this says the load is out of any centre's reach


def erlang_c(servers: int, load: float) -> float:
    """The probability that an arrival waits: Erlang's C formula for ``servers`` counters
    and ``load`` erlangs (1.0 when the load is not below the number of counters)."""
    if load <= 0:
        return 0.0
    if servers <= load:
        return 1.0
    # Erlang B by its recurrence (stable for any size), then C from B.
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return servers * b / (servers - load * (1 - b))


def share_within(servers: int, load: float, mean_service_s: float, target_s: float) -> float:
    """The share of citizens called within ``target_s`` seconds."""
    if load <= 0:
        return 1.0
    if servers <= load:
        return 0.0
    waits = erlang_c(servers, load)
    return 1.0 - waits * math.exp(-(servers - load) * target_s / mean_service_s)


def counters_needed(
    arrivals_per_hour: float,
    mean_service_s: float,
    target_s: float,
    level: float = DEFAULT_LEVEL,
) -> int:
    """The fewest counters that call ``level`` of the citizens within the target wait
    (0 when nobody comes)."""
    if arrivals_per_hour <= 0 or mean_service_s <= 0:
        return 0
    load = arrivals_per_hour * mean_service_s / 3600
    servers = max(1, math.floor(load) + 1)
    while share_within(servers, load, mean_service_s, target_s) < level:
        servers += 1
        if servers > MAX_COUNTERS:
            return MAX_COUNTERS
    return servers


@dataclass(frozen=True)
class HourAdvice:
    service: str  # the service's code
    hour: int  # 0-23, the centre's local time
    arrivals: float  # citizens an hour, mean over the days measured
    mean_service_s: float | None  # None: nobody of the service was served on those days
    needed: int
    open: float  # counters open (paused included) for the service that hour, mean of the days


def advise(
    conn,
    centre_id: int,
    weekday: int,
    until: date,
    *,
    target_s: float,
    weeks: int = DEFAULT_WEEKS,
    level: float = DEFAULT_LEVEL,
) -> list[HourAdvice]:
    """Advice for ``weekday`` (0 = Monday) from that weekday's last ``weeks`` occurrences
    on or before ``until``, by service and hour (hours where a service had arrivals or an
    open counter), in the centre's time zone."""
    c = m.centres
    zone = ZoneInfo(conn.execute(sa.select(c.c.timezone).where(c.c.id == centre_id)).scalar_one())
    last = until - timedelta(days=(until.weekday() - weekday) % 7)
    days = [last - timedelta(weeks=k) for k in range(weeks)]
    spans = [
        (
            datetime.combine(d, time(), zone).astimezone(ZoneInfo("UTC")),
            datetime.combine(d + timedelta(days=1), time(), zone).astimezone(ZoneInfo("UTC")),
        )
        for d in days
    ]
    codes = dict(
        conn.execute(
            sa.select(m.services.c.id, m.services.c.code).where(m.services.c.centre_id == centre_id)
        ).all()
    )
    arrivals: dict[tuple[str, int], int] = defaultdict(int)
    service_s: dict[str, list[float]] = defaultdict(list)
    open_s: dict[tuple[str, int], float] = defaultdict(float)
    t = m.tickets
    serves = _counter_services(conn, centre_id, codes)
    for day, (start, end) in zip(days, spans, strict=True):
        # By business day: the queue's index (centre, business_date) finds them in a year.
        rows = conn.execute(
            sa.select(t.c.service_id, t.c.issued_at, t.c.started_at, t.c.finished_at).where(
                t.c.centre_id == centre_id, t.c.business_date == day
            )
        ).all()
        for service_id, issued, started, finished in rows:
            code = codes[service_id]
            arrivals[code, issued.astimezone(zone).hour] += 1
            if started is not None and finished is not None and finished > started:
                service_s[code].append((finished - started).total_seconds())
        for counter_id, opened, closed in _open_intervals(conn, centre_id, start, end):
            for code in serves.get(counter_id, ()):
                _spread(open_s, code, opened.astimezone(zone), closed.astimezone(zone))
    n = len(days)
    out = []
    for code, hour in sorted(set(arrivals) | set(open_s)):
        times = service_s.get(code)
        mean_s = sum(times) / len(times) if times else None
        rate = arrivals.get((code, hour), 0) / n
        out.append(
            HourAdvice(
                service=code,
                hour=hour,
                arrivals=rate,
                mean_service_s=mean_s,
                needed=counters_needed(rate, mean_s or 0, target_s, level),
                open=open_s.get((code, hour), 0.0) / 3600 / n,
            )
        )
    return out


def _counter_services(conn, centre_id: int, codes: dict[int, str]) -> dict[int, list[str]]:
    cs, c = m.counter_services, m.counters
    rows = conn.execute(
        sa.select(cs.c.counter_id, cs.c.service_id)
        .join(c, c.c.id == cs.c.counter_id)
        .where(c.c.centre_id == centre_id)
    ).all()
    out: dict[int, list[str]] = defaultdict(list)
    for counter_id, service_id in rows:
        out[counter_id].append(codes[service_id])
    return out


def _open_intervals(conn, centre_id: int, start: datetime, end: datetime):
    """(counter id, opened, closed) of each time a counter was open within [start, end),
    from the audit log (a counter still open at ``end`` is cut there; one already open at
    ``start`` counts from its last opening before it)."""
    a = m.audit_log
    rows = conn.execute(
        sa.select(a.c.counter_id, a.c.at, a.c.action, a.c.delivery)
        .where(
            a.c.centre_id == centre_id,
            a.c.action.in_(("counter_opened", "counter_closed")),
            a.c.at < end,
        )
        .order_by(a.c.seq)
    ).all()
    opened_at: dict[int, datetime] = {}
    for counter_id, at, action, delivery in rows:
        if counter_id is None:  # closed by a manager: the counter is in the change's route
            routed = (delivery or {}).get("route", {}).get("counters", ())
            counter_id = next(iter(routed), None)
            if counter_id is None:
                continue
        if action == "counter_opened":
            opened_at.setdefault(counter_id, at)
        else:
            began = opened_at.pop(counter_id, None)
            if began is not None and at > start:
                yield counter_id, max(began, start), at
    for counter_id, began in opened_at.items():
        yield counter_id, max(began, start), end


def _spread(seconds: dict, code: str, opened: datetime, closed: datetime) -> None:
    """Add the interval's seconds to each local hour it covers."""
    at = opened
    while at < closed:
        next_hour = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        upto = min(next_hour, closed)
        seconds[code, at.hour] += (upto - at).total_seconds()
        at = upto
