"""A past month for the demo centre (``server.py serve --demo``), so that its reports and
its staffing advice have something to show: each open day's citizens arrive in the
morning and afternoon peaks of a real centre, wait for the counters serving their
service (first come, first served), are served for about their service's time, rate
most visits, and leave dossiers that come back on time or late (a few still overdue);
more dossiers arrive online and by post. Counters open and close with the opening hours.

Written once, straight into the tables the reports read, before any device connects
(nothing is delivered: the changes it records take the centre's next ``seq`` numbers
while no process follows the centre yet). A centre that already has a past is left as it
is, so restarting the demo keeps its history.
"""

from __future__ import annotations

import math
import random
import secrets
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from . import models as m
from .hours import OpeningHours
from .lifecycle import durations
from .roles import change_record
from .store import Store, Tx

# Arrivals an hour, relative to the day's mean: a peak at opening, a smaller one after
# lunch (hours in the centre's local time).
PEAKS = {7: 0.8, 8: 1.4, 9: 1.5, 10: 1.1, 11: 0.5, 13: 0.7, 14: 1.2, 15: 1.0, 16: 0.6}
REASONS = ("Thời gian chờ quá lâu", "Hướng dẫn không rõ ràng", "Thái độ phục vụ chưa tốt")


def seed_past(store: Store, centre_code: str, days: int = 30, per_day: int = 120, seed: int = 7):
    """Fill the ``days`` days before today; returns the number of tickets written (0 when
    the centre already has a past)."""
    return store.write(
        lambda tx: _seed(tx, centre_code, days, per_day, random.Random(seed)),
        centre_id=0,
        actor="system:demo",
    )


def _seed(tx: Tx, code: str, days: int, per_day: int, rng: random.Random) -> int:
    conn = tx.conn
    c, t = m.centres, m.tickets
    centre = conn.execute(sa.select(c).where(c.c.code == code)).one()
    zone = ZoneInfo(centre.timezone)
    today = tx.now.astimezone(zone).date()
    past = conn.execute(
        sa.select(t.c.id).where(t.c.centre_id == centre.id, t.c.business_date < today).limit(1)
    ).first()
    if past is not None:
        return 0
    hours = OpeningHours.parse(centre.opening_hours, centre.closed_days)
    services = conn.execute(
        sa.select(m.services).where(m.services.c.centre_id == centre.id, m.services.c.active)
    ).all()
    counters = conn.execute(sa.select(m.counters).where(m.counters.c.centre_id == centre.id)).all()
    serves = {
        s.id: [
            cid
            for (cid,) in conn.execute(
                sa.select(m.counter_services.c.counter_id).where(
                    m.counter_services.c.service_id == s.id
                )
            )
        ]
        for s in services
    }
    clerks = [
        sid
        for (sid,) in conn.execute(
            sa.select(m.staff_roles.c.staff_id).where(
                m.staff_roles.c.centre_id == centre.id, m.staff_roles.c.role == "clerk"
            )
        )
    ] or [None]
    staff_of = {ct.id: clerks[i % len(clerks)] for i, ct in enumerate(counters)}
    seq = centre.seq
    audit: list[dict] = []

    def record(at: datetime, action: str, counter_id=None, ticket_id=None, details=None):
        nonlocal seq
        seq += 1
        audit.append(
            {
                "centre_id": centre.id,
                "seq": seq,
                "at": at,
                "action": action,
                "actor": "system:demo",
                "ticket_id": ticket_id,
                "counter_id": counter_id,
                "details": details or {},
                "delivery": change_record(action, counters=[counter_id] if counter_id else ()),
            }
        )

    written = 0
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        ranges = hours.ranges(day)
        if not ranges:
            continue
        for opens, closes in ranges:
            for ct in counters:
                record(datetime.combine(day, opens, zone), "counter_opened", ct.id)
                record(datetime.combine(day, closes, zone), "counter_closed", ct.id)
        written += _day(
            conn, centre, zone, day, ranges, services, serves, staff_of, rng, per_day, tx.now
        )
        _mail_and_online(conn, centre, zone, day, ranges, rng, tx.now)
    if audit:
        conn.execute(sa.insert(m.audit_log), audit)
        conn.execute(sa.update(c).where(c.c.id == centre.id).values(seq=seq))
    return written


def _arrivals(day: date, ranges, zone: ZoneInfo, rng: random.Random, per_day: int) -> list:
    """Arrival times of a day: a Poisson process whose rate follows PEAKS."""
    out = []
    minutes = sum(
        (datetime.combine(day, b) - datetime.combine(day, a)).seconds / 60 for a, b in ranges
    )
    base = per_day / max(minutes, 1)  # citizens a minute, before the peaks
    for opens, closes in ranges:
        at = datetime.combine(day, opens, zone)
        end = datetime.combine(day, closes, zone) - timedelta(minutes=20)
        while True:
            rate = base * PEAKS.get(at.hour, 0.6)
            at += timedelta(minutes=rng.expovariate(rate))
            if at >= end:
                break
            out.append(at)
    return out


def _day(conn, centre, zone, day, ranges, services, serves, staff_of, rng, per_day, now):
    """One day's tickets, served first come first served by the counters of each service."""
    t = m.tickets
    free: dict[int, datetime] = {}
    numbers: dict[str, int] = {}
    weights = [1.0 / (1 + i * 0.35) for i in range(len(services))]  # the first ones busiest
    written = 0
    for arrived in _arrivals(day, ranges, zone, rng, per_day):
        service = rng.choices(services, weights)[0]
        counters = serves.get(service.id) or []
        if not counters:
            continue
        counter_id = min(counters, key=lambda cid: free.get(cid, arrived))
        called = max(arrived, free.get(counter_id, arrived))
        numbers[service.prefix] = numbers.get(service.prefix, service.start - 1) + 1
        roll = rng.random()
        status = "done" if roll < 0.94 else "no_show" if roll < 0.985 else "cancelled"
        mean_s = max(service.avg_service_s, 60)
        serve_s = min(3 * mean_s, rng.lognormvariate(math.log(mean_s) - 0.1, 0.45))
        started = called + timedelta(seconds=rng.uniform(20, 90))
        finished = started + timedelta(seconds=serve_s)
        if status == "cancelled":
            called = started = finished = None
        elif status == "no_show":
            started, finished = None, called + timedelta(seconds=75)
        free[counter_id] = finished or free.get(counter_id, arrived)
        ticket_id = conn.execute(
            sa.insert(t)
            .values(
                centre_id=centre.id,
                service_id=service.id,
                business_date=day,
                prefix=service.prefix,
                seq_no=numbers[service.prefix],
                number=f"{service.prefix}{numbers[service.prefix]:03d}",
                status=status,
                public_key=secrets.token_urlsafe(16),
                issued_at=arrived,
                called_at=called,
                started_at=started,
                finished_at=finished,
                call_count=1 if called else 0,
                counter_id=counter_id if called else None,
                staff_id=staff_of.get(counter_id) if called else None,
                outcome="received" if status == "done" else None,
                **durations(status, arrived, called, started, finished),
            )
            .returning(t.c.id)
        ).scalar_one()
        written += 1
        if status == "done":
            outcome = (service, ticket_id, counter_id, staff_of.get(counter_id), finished)
            _visit_outcomes(conn, centre, outcome, rng, now)
    return written


def _visit_outcomes(conn, centre, outcome, rng, now):
    service, ticket_id, counter_id, staff_id, finished = outcome
    if rng.random() < 0.65:  # most visits are rated
        score = rng.choices((3, 2, 1), (0.86, 0.11, 0.03))[0]
        conn.execute(
            sa.insert(m.ratings).values(
                ticket_id=ticket_id,
                centre_id=centre.id,
                service_id=service.id,
                counter_id=counter_id,
                staff_id=staff_id,
                score=score,
                reasons=[rng.choice(REASONS)] if score == 1 else [],
                comment=None,
                rated_at=finished + timedelta(seconds=rng.uniform(5, 60)),
            )
        )
    if rng.random() < 0.8:  # a dossier received at the counter
        code = _dossier(conn, centre, service.name, "in_person", finished, rng, now)
        conn.execute(sa.insert(m.ticket_dossiers).values(ticket_id=ticket_id, code=code))


def _mail_and_online(conn, centre, zone, day, ranges, rng, now) -> None:
    opens = datetime.combine(day, ranges[0][0], zone)
    for via, n in (("online", rng.randint(8, 16)), ("post", rng.randint(0, 4))):
        for _ in range(n):
            at = opens + timedelta(minutes=rng.uniform(0, 480))
            _dossier(conn, centre, "Hộ tịch", via, at, rng, now)


def _dossier(conn, centre, field, via, received, rng, now) -> str:
    """A dossier received at ``received``, due in 3 to 15 working days' time, returned on
    time mostly, late sometimes, or still out."""
    code = f"DEMO-{received:%y%m%d}-{secrets.token_hex(5).upper()}"
    due = received + timedelta(days=rng.choice((3, 5, 7, 10, 15)))
    roll = rng.random()
    returned = None
    if roll < 0.9:
        returned = received + (due - received) * rng.uniform(0.4, 0.98)
    elif roll < 0.96:
        returned = due + timedelta(days=rng.uniform(0.5, 4))
    if returned is not None and returned > now:
        returned = None
    conn.execute(
        sa.insert(m.dossiers).values(
            centre_id=centre.id,
            code=code,
            procedure=None,
            field=field,
            submitted_via=via,
            received_at=received,
            due_at=due,
            status="returned" if returned else "processing",
            returned_at=returned,
            created_at=received,
            updated_at=returned or received,
        )
    )
    return code
