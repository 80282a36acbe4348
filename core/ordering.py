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


def _queue_members() -> sa.Subquery:
    """The tickets each counter of ``:ids`` may call (``counter_id``, ``ticket_id``):
    the waiting tickets of business day ``:day`` of its centre, of its services and sent to
    no counter, and those sent to it. Built once; read for many counters at a time."""
    t, cs, c = m.tickets, m.counter_services, m.counters
    ids = sa.bindparam("ids", expanding=True)
    waiting = sa.and_(
        t.c.centre_id == c.c.centre_id,
        t.c.business_date == sa.bindparam("day"),
        t.c.status.in_(WAITING),
    )
    own = (
        sa.select(c.c.id.label("counter_id"), t.c.id.label("ticket_id"))
        .join(cs, cs.c.counter_id == c.c.id)
        .join(t, sa.and_(t.c.service_id == cs.c.service_id, t.c.target_counter_id.is_(None)))
        .where(c.c.id.in_(ids), waiting)
    )
    sent = (
        sa.select(c.c.id.label("counter_id"), t.c.id.label("ticket_id"))
        .join(t, t.c.target_counter_id == c.c.id)
        .where(c.c.id.in_(ids), waiting)
    )
    return sa.union_all(own, sent).subquery("queue_members")


QUEUE_MEMBERS = _queue_members()


class CounterQueue:
    """The tickets a counter may call: today's waiting tickets of its services that are
    not sent to another counter, and those transferred to this counter (for many counters
    at once: :data:`QUEUE_MEMBERS`)."""

    def __init__(self, conn: Connection, counter: Mapping, business_date, now=None):
        self.conn = conn
        self.counter = counter
        self.business_date = business_date
        self.now = now  # for appointments whose slot has begun

    def heads(self) -> Heads:
        """The heads of the counter's queue, in one statement: the earliest issued
        priority ticket, the appointment whose slot began the earliest (none before any
        slot has begun, or without ``now``), and the earliest issued other ticket (a
        transfer keeps its issue time). Each is an indexed lookup of the head of each of
        the counter's services and of what was sent to it (migrations 0004 and 0014's
        partial indexes), not a scan of everything waiting: a call costs the same with
        20,000 tickets waiting, and one round trip to the store whatever it serves."""
        found = {
            kind: Head(ticket_id, issued_at)
            for kind, ticket_id, issued_at in _HEADS.run(
                self.conn,
                {
                    "counter_id": self.counter["id"],
                    "day": self.business_date,
                    "now": self.now,
                },
            )
        }
        return Heads(found.get("priority"), found.get("due"), found.get("normal"))


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


class Heads(NamedTuple):
    priority: Head | None
    due: Head | None  # an appointment in its slot
    normal: Head | None


# Literal statuses, so the planner can use the partial indexes whose WHERE says the same.
_WAITING_SQL = "status IN ('waiting', 'transferred')"
_PRIORITY_SQL = {"priority": "priority IS NOT NULL", "normal": "priority IS NULL"}


def _probe(where: str, order: str) -> str:
    """The id of the first ticket (by ``order``) of today's waiting ones that ``where``
    picks: one index probe (ORDER BY ... LIMIT 1 on a partial index in that order)."""
    return (
        f"SELECT (SELECT id FROM tickets WHERE {where} AND business_date = :day"
        f" AND {_WAITING_SQL} ORDER BY {order}, id LIMIT 1)"
    )


def _first(conditions: list[str], order: str) -> str:
    """The first ticket, by ``order``, among the heads of the counter's own services
    (counter_services: one probe each) and of the tickets sent to it, for each of
    ``conditions``: ``(id, issued_at)``, none or one row."""
    probes = []
    for cond in conditions:
        probes.append(
            _probe(f"service_id = cs.service_id AND target_counter_id IS NULL AND {cond}", order)
            + " FROM counter_services cs WHERE cs.counter_id = :counter_id"
        )
        probes.append(_probe(f"target_counter_id = :counter_id AND {cond}", order))
    return (
        f"SELECT id, issued_at FROM tickets WHERE id IN ({' UNION ALL '.join(probes)})"
        f" ORDER BY {order}, id LIMIT 1"
    )


_HEADS = Raw(
    " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, id, issued_at FROM ({sql}) AS {kind}"
        for kind, sql in (
            ("priority", _first([_PRIORITY_SQL["priority"]], "issued_at")),
            # Appointments in their slot (tickets.booked_for: the slot's start), earliest
            # slot first (no :now, no appointment: NULL compares false).
            ("due", _first(["booked_for IS NOT NULL AND booked_for <= :now"], "booked_for")),
            ("normal", _first([_PRIORITY_SQL["normal"]], "issued_at")),
        )
    )
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
        heads = queue.heads()
        other = self._other(queue.counter, heads)
        if queue.counter["priority_streak"] >= self.max_streak and other is not None:
            return other
        return heads.priority or other

    def _other(self, counter: Mapping, heads: Heads) -> Head | None:
        if heads.due is None:
            return heads.normal
        if counter["appointment_streak"] >= self.max_appointments:
            return heads.normal or heads.due
        return heads.due
