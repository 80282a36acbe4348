"""Queue ordering policies: which waiting ticket a counter calls next.

A policy sees the counter's queue only through :class:`CounterQueue`, so a new policy
(appointments first, weighted services, ...) is one small class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from . import models as m
from .lifecycle import WAITING


class CounterQueue:
    """The tickets a counter may call: today's waiting tickets of its services that are
    not sent to another counter, and those transferred to this counter."""

    def __init__(self, conn: Connection, counter: Mapping, business_date):
        self.conn = conn
        self.counter = counter
        self.business_date = business_date

    def _base(self):
        t = m.tickets
        served = sa.select(m.counter_services.c.service_id).where(
            m.counter_services.c.counter_id == self.counter["id"]
        )
        return sa.select(t).where(
            t.c.centre_id == self.counter["centre_id"],
            t.c.business_date == self.business_date,
            t.c.status.in_(WAITING),
            sa.or_(
                t.c.target_counter_id == self.counter["id"],
                sa.and_(t.c.target_counter_id.is_(None), t.c.service_id.in_(served)),
            ),
        )

    def ids(self) -> sa.Select:
        """The ids of the tickets this counter may call, as a subquery."""
        return self._base().with_only_columns(m.tickets.c.id)

    def waiting_by_service(self) -> dict[int, int]:
        """service_id -> how many tickets this counter may call."""
        base = self._base().subquery()
        rows = self.conn.execute(
            sa.select(base.c.service_id, sa.func.count()).group_by(base.c.service_id)
        )
        return dict(rows.all())

    def oldest(self, *, priority: bool | None = None) -> Row | None:
        """The earliest issued ticket (a transfer keeps its issue time); optionally only
        priority (True) or only normal (False) tickets."""
        t = m.tickets
        q = self._base()
        if priority is True:
            q = q.where(t.c.priority.is_not(None))
        elif priority is False:
            q = q.where(t.c.priority.is_(None))
        return self.conn.execute(q.order_by(t.c.issued_at, t.c.id).limit(1)).first()


class OrderingPolicy(Protocol):
    def choose(self, queue: CounterQueue) -> Row | None: ...


class PriorityWithFairness:
    """Priority tickets first, but after ``max_streak`` consecutive priority calls at a
    counter the oldest normal ticket goes next if one waits (users asked for 1-in-N
    fairness: priority must not starve everyone else)."""

    def __init__(self, max_streak: int = 3):
        self.max_streak = max_streak

    def choose(self, queue: CounterQueue) -> Row | None:
        if queue.counter["priority_streak"] >= self.max_streak:
            normal = queue.oldest(priority=False)
            if normal is not None:
                return normal
        return queue.oldest(priority=True) or queue.oldest(priority=False)


class ArrivalOrder:
    """Strictly first come, first served."""

    def choose(self, queue: CounterQueue) -> Row | None:
        return queue.oldest()
