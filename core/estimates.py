"""Counts and estimates, one definition each: how many wait, how many are ahead of a
ticket, how long the wait is likely to be, and the moving average of service times."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from . import models as m
from .clock import business_date
from .lifecycle import WAITING
from .raw import Raw
from .store import Tx

SERVICE_TIME_WEIGHT = 0.2  # weight of the newest service time in the moving average
SERVICE_TIME_BOUNDS = (30.0, 7200.0)  # a visit shorter or longer counts as these
# Nobody should wait longer than this to be called, unless the centre sets its own
# (``[centre] target_wait_s``): Ho Chi Minh City's published target, 20 minutes.
DEFAULT_TARGET_WAIT_S = 1200

_q, _c, _cs = m.queue_counts, m.counters, m.counter_services


def target_wait_s(centre_row) -> int:
    """The centre's target wait in seconds (its own, or the default)."""
    return centre_row.target_wait_s or DEFAULT_TARGET_WAIT_S


class Serving(NamedTuple):
    """The counters assigned to a service: open, all, and paused (on a break: they serve
    the queue again when it ends, so the service stays open to new tickets)."""

    open: int
    all: int
    paused: int = 0


def estimate_wait_s(
    ahead: int, avg_service_s: float, open_counters: int, all_counters: int, paused: int = 0
) -> int:
    """People ahead times the recent average service time, shared by the open counters
    serving the service (by those on a break while none is open, or by all assigned
    counters while none is open yet)."""
    servers = open_counters or paused or all_counters or 1
    return int(math.ceil(ahead * avg_service_s / servers))


def service_time_average(service_id: int, took_s: float) -> sa.Update:
    """The statement folding one finished visit into its service's moving average."""
    took = max(SERVICE_TIME_BOUNDS[0], min(SERVICE_TIME_BOUNDS[1], took_s))
    s = m.services
    return (
        sa.update(s)
        .where(s.c.id == service_id)
        .values(
            avg_service_s=s.c.avg_service_s * (1 - SERVICE_TIME_WEIGHT) + took * SERVICE_TIME_WEIGHT
        )
    )


# -- waiting counts, maintained ---------------------------------------------------------
_COUNT_WAITING = Raw(
    """INSERT INTO queue_counts (service_id, business_date, waiting, waiting_priority)
       VALUES (:service_id, :day, :delta, :delta_priority)
       ON CONFLICT (service_id, business_date) DO UPDATE SET
         waiting = queue_counts.waiting + excluded.waiting,
         waiting_priority = queue_counts.waiting_priority + excluded.waiting_priority
       RETURNING waiting, waiting_priority"""
)
_SERVING_ONE = Raw(
    """SELECT COALESCE(SUM(CASE WHEN c.status = 'open' THEN 1 ELSE 0 END), 0), COUNT(*),
              COALESCE(SUM(CASE WHEN c.status = 'paused' THEN 1 ELSE 0 END), 0)
       FROM counter_services cs JOIN counters c ON c.id = cs.counter_id
       WHERE cs.service_id = :service_id AND c.active"""
)


def count_waiting(conn: Connection, service_id: int, day, delta: int, priority: bool) -> tuple:
    """A ticket joins (+1) or leaves (-1) a service's queue of ``day``; returns the
    service's new (waiting, waiting_priority)."""
    return _COUNT_WAITING.one(
        conn,
        {
            "service_id": service_id,
            "day": day,
            "delta": delta,
            "delta_priority": delta if priority else 0,
        },
    )


def counters_serving_one(conn: Connection, service_id: int) -> Serving:
    """The counters serving the service: open, assigned, paused."""
    n_open, n_all, n_paused = _SERVING_ONE.one(conn, {"service_id": service_id})
    return Serving(int(n_open), int(n_all), int(n_paused))


_WAITING_COUNTS = sa.select(_q.c.service_id, _q.c.waiting).where(
    _q.c.business_date == sa.bindparam("day"),
    _q.c.service_id.in_(sa.bindparam("ids", expanding=True)),
)


def waiting_counts(conn: Connection, day, service_ids: Iterable[int]) -> dict:
    """service_id -> tickets waiting on ``day``."""
    return dict(conn.execute(_WAITING_COUNTS, {"day": day, "ids": list(service_ids)}).all())


def waiting_by_centre(conn: Connection, centre_ids: Iterable[int], now) -> dict[int, tuple]:
    """centre id -> (its code, tickets waiting in all its services on its business day
    at ``now``), for these centres: what the server's metrics show (gateway/metrics.py).
    The maintained counts, read by their key: one statement for the centres and one per
    business date (one, unless their time zones are on different dates)."""
    ids = sorted(set(centre_ids))
    if not ids:
        return {}
    c, s = m.centres, m.services
    rows = conn.execute(sa.select(c.c.id, c.c.code, c.c.timezone).where(c.c.id.in_(ids))).all()
    days: dict = {}
    for row in rows:
        days.setdefault(business_date(now, row.timezone), []).append(row.id)
    waiting: dict[int, int] = {}
    for day, of_day in days.items():
        waiting.update(
            conn.execute(
                sa.select(s.c.centre_id, sa.func.sum(_q.c.waiting))
                .select_from(s.join(_q, (_q.c.service_id == s.c.id) & (_q.c.business_date == day)))
                .where(s.c.centre_id.in_(of_day))
                .group_by(s.c.centre_id)
            ).all()
        )
    return {row.id: (row.code, int(waiting.get(row.id) or 0)) for row in rows}


def counters_serving(conn: Connection, service_ids: Iterable[int]) -> dict[int, Serving]:
    """service_id -> the counters serving it (open, assigned, paused)."""
    return {sid: counters_serving_one(conn, sid) for sid in service_ids}


def summary(code: str, waiting: int, avg_service_s: float, serving: tuple) -> dict:
    """A service's state as devices see it (the protocol's service summary). A service
    whose counters are all paused stays ``open`` (its queue is served after the break)
    and says it is ``on_break``."""
    s = Serving(*serving)
    return {
        "code": code,
        "waiting": waiting,
        "estimated_wait_s": estimate_wait_s(waiting, avg_service_s, *s),
        "open": s.open + s.paused > 0,
        "on_break": s.open == 0 and s.paused > 0,
    }


_SUMMARY_ROWS: dict[int, Raw] = {}


def _summary_rows(n: int) -> Raw:
    """Per service of ``n``: its code, average, waiting on ``:day`` and its counters
    (open, assigned, paused), in one statement."""
    raw = _SUMMARY_ROWS.get(n)
    if raw is None:
        ids = ", ".join(f":s{i}" for i in range(n))
        raw = _SUMMARY_ROWS[n] = Raw(
            f"""SELECT s.id, s.code, s.avg_service_s, COALESCE(MAX(q.waiting), 0),
                  COALESCE(SUM(CASE WHEN c.status = 'open' THEN 1 ELSE 0 END), 0),
                  COUNT(c.id),
                  COALESCE(SUM(CASE WHEN c.status = 'paused' THEN 1 ELSE 0 END), 0)
               FROM services s
               LEFT JOIN queue_counts q ON q.service_id = s.id AND q.business_date = :day
               LEFT JOIN counter_services cs ON cs.service_id = s.id
               LEFT JOIN counters c ON c.id = cs.counter_id AND c.active
               WHERE s.id IN ({ids})
               GROUP BY s.id, s.code, s.avg_service_s"""
        )
    return raw


def summary_after(tx: Tx, service_id: int, code: str, day) -> dict:
    """The summary of a service as the operation leaves it, for a change to carry: filled
    in before its changes are written, for all of its services at once (an operation
    that moves two tickets of one service reads it once)."""
    wanted = tx.at_flush(_fill_summaries)
    return wanted.setdefault((service_id, day), {"code": code})


def _fill_summaries(tx: Tx, wanted: dict) -> None:
    days: dict = {}
    for service_id, day in wanted:
        days.setdefault(day, []).append(service_id)
    for day, ids in days.items():
        for sid, found in _read_summaries(tx.conn, ids, day).items():
            wanted[sid, day].update(found)


def _read_summaries(conn: Connection, service_ids: list[int], day) -> dict[int, dict]:
    """service_id -> its summary on ``day``, in one statement."""
    if not service_ids:
        return {}
    params = {"day": day, **{f"s{i}": sid for i, sid in enumerate(service_ids)}}
    rows = _summary_rows(len(service_ids)).run(conn, params)
    return {
        sid: summary(code, int(waiting), avg, tuple(map(int, serving)))
        for sid, code, avg, waiting, *serving in rows
    }


def summaries(conn: Connection, services: Iterable[Row], day) -> list[dict]:
    """Summaries of ``services`` (rows with an id) on ``day``, in their order."""
    services = list(services)
    found = _read_summaries(conn, [s.id for s in services], day)
    return [found[s.id] for s in services]


def people_ahead(conn: Connection, ticket: Row) -> int:
    """Waiting tickets of the same service called before this one by the default order:
    earlier priority tickets for a priority ticket; all priority tickets, appointments and
    earlier walk-ins for a walk-in; all priority tickets and appointments of earlier slots
    for an appointment. (Counters serving several services, the fairness rules and slots
    not yet begun make it an estimate.)"""
    t = m.tickets
    earlier = sa.or_(
        t.c.issued_at < ticket.issued_at,
        sa.and_(t.c.issued_at == ticket.issued_at, t.c.id < ticket.id),
    )
    q = sa.select(sa.func.count()).where(
        t.c.centre_id == ticket.centre_id,
        t.c.business_date == ticket.business_date,
        t.c.service_id == ticket.service_id,
        t.c.status.in_(WAITING),
        t.c.id != ticket.id,
    )
    booked_for = getattr(ticket, "booked_for", None)
    if ticket.priority is not None:
        q = q.where(t.c.priority.is_not(None), earlier)
    elif booked_for is not None:
        q = q.where(
            sa.or_(
                t.c.priority.is_not(None),
                t.c.booked_for < booked_for,
                sa.and_(t.c.booked_for == booked_for, earlier),
            )
        )
    else:
        q = q.where(sa.or_(t.c.priority.is_not(None), t.c.booked_for.is_not(None), earlier))
    return conn.execute(q).scalar_one()
