"""Queue ordering policies: which waiting ticket a counter calls next.

A policy sees the counter's queue only through :class:`CounterQueue`, so a new policy
(appointments first, weighted services, ...) is one small class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import models as m
from .lifecycle import WAITING
from .raw import Raw


class CounterQueue:
    """The tickets a counter may call: today's waiting tickets of its services that are
    not sent to another counter, and those transferred to this counter."""

    def __init__(self, conn: Connection, counter: Mapping, business_date, now=None):
        self.conn = conn
        self.counter = counter
        self.business_date = business_date
        self.now = now  # for appointments whose slot has begun
        self._services: list[int] | None = None

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

    def oldest(self, *, priority: bool | None = None) -> Head | None:
        """The earliest issued ticket (a transfer keeps its issue time); optionally only
        priority (True) or only normal (False) tickets.

        One indexed lookup per service and kind (migration 0004's partial indexes), not
        a scan of everything waiting: a call costs the same with 20,000 tickets waiting.
        """
        kinds = (
            ("priority", "normal")
            if priority is None
            else (("priority",) if priority else ("normal",))
        )
        day = self.business_date
        heads = []
        for kind in kinds:
            for service_id in self._service_ids():
                heads.append(_HEAD[kind].first(self.conn, {"service_id": service_id, "day": day}))
            heads.append(
                _TARGETED_HEAD[kind].first(
                    self.conn, {"counter_id": self.counter["id"], "day": day}
                )
            )
        found = [Head(*h) for h in heads if h is not None]
        return min(found, key=lambda h: (h.issued_at, h.id)) if found else None

    def due_appointment(self) -> Head | None:
        """The waiting ticket of an appointment whose slot began the earliest (None before
        any slot has begun, or without ``now``): one probe per service of a partial index
        that holds only waiting appointments (migration 0014), as ``oldest`` does."""
        if self.now is None:
            return None
        day, now = self.business_date, self.now
        heads = [
            _BOOKED_HEAD.first(self.conn, {"service_id": s, "day": day, "now": now})
            for s in self._service_ids()
        ]
        heads.append(
            _BOOKED_TARGETED.first(
                self.conn, {"counter_id": self.counter["id"], "day": day, "now": now}
            )
        )
        found = [h for h in heads if h is not None]
        if not found:
            return None
        ticket_id, issued_at, _booked_for = min(found, key=lambda h: (h[2], h[0]))
        return Head(ticket_id, issued_at)

    def _service_ids(self) -> list[int]:
        if self._services is None:
            rows = _SERVED.run(self.conn, {"counter_id": self.counter["id"]}).fetchall()
            self._services = [service_id for (service_id,) in rows]
        return self._services


def counter_service_ids(conn: Connection, counter_ids) -> list[int]:
    """The services the given counters serve (their queues draw from these)."""
    cs = m.counter_services
    return list(
        conn.execute(
            sa.select(cs.c.service_id)
            .where(cs.c.counter_id.in_(list(counter_ids)))
            .distinct()
            .order_by(cs.c.service_id)
        ).scalars()
    )


class Head(NamedTuple):
    id: int
    issued_at: object  # as the driver returns it: comparable within one store


# Literal statuses, so the planner can use the partial indexes whose WHERE says the same.
_WAITING_SQL = "status IN ('waiting', 'transferred')"
_PRIORITY_SQL = {"priority": "priority IS NOT NULL", "normal": "priority IS NULL"}
_HEAD = {
    kind: Raw(
        f"""SELECT id, issued_at FROM tickets
            WHERE service_id = :service_id AND business_date = :day
              AND {_WAITING_SQL} AND target_counter_id IS NULL AND {cond}
            ORDER BY issued_at, id LIMIT 1"""
    )
    for kind, cond in _PRIORITY_SQL.items()
}
_TARGETED_HEAD = {
    kind: Raw(
        f"""SELECT id, issued_at FROM tickets
            WHERE target_counter_id = :counter_id AND business_date = :day
              AND {_WAITING_SQL} AND {cond}
            ORDER BY issued_at, id LIMIT 1"""
    )
    for kind, cond in _PRIORITY_SQL.items()
}


_SERVED = Raw(
    "SELECT service_id FROM counter_services WHERE counter_id = :counter_id ORDER BY service_id"
)
# Appointments in their slot (tickets.booked_for: the slot's start), earliest slot first.
_BOOKED_HEAD = Raw(
    f"""SELECT id, issued_at, booked_for FROM tickets
        WHERE service_id = :service_id AND business_date = :day
          AND {_WAITING_SQL} AND target_counter_id IS NULL AND booked_for IS NOT NULL
          AND booked_for <= :now
        ORDER BY booked_for, id LIMIT 1"""
)
_BOOKED_TARGETED = Raw(
    f"""SELECT id, issued_at, booked_for FROM tickets
        WHERE target_counter_id = :counter_id AND business_date = :day
          AND {_WAITING_SQL} AND booked_for IS NOT NULL AND booked_for <= :now
        ORDER BY booked_for, id LIMIT 1"""
)


class OrderingPolicy(Protocol):
    def choose(self, queue: CounterQueue) -> Head | None: ...


class PriorityWithFairness:
    """The default order (docs/protocol.md §9, docs/appointments.md):

    1. Priority tickets (the elderly, people with disabilities, ...) first, but after
       ``max_streak`` consecutive priority calls at a counter the next other ticket goes
       next if one waits (users asked for 1-in-N fairness: priority must not starve
       everyone else).
    2. Then appointments whose slot has begun (checked in at a kiosk in their window),
       the earliest slot first, but at most ``max_appointments`` in a row at a counter
       while a walk-in waits: bookings take at most a share of the counters' time, and
       walk-ins are never held back for long.
    3. Then everyone else by the time they took their number (an appointment checked in
       before its slot is among them until the slot begins).
    """

    def __init__(self, max_streak: int = 3, max_appointments: int = 2):
        self.max_streak = max_streak
        self.max_appointments = max_appointments

    def choose(self, queue: CounterQueue) -> Head | None:
        if queue.counter["priority_streak"] >= self.max_streak:
            other = self._other(queue)
            if other is not None:
                return other
        return queue.oldest(priority=True) or self._other(queue)

    def _other(self, queue: CounterQueue) -> Head | None:
        due = queue.due_appointment()
        if due is None:
            return queue.oldest(priority=False)
        if queue.counter["appointment_streak"] >= self.max_appointments:
            return queue.oldest(priority=False) or due
        return due
