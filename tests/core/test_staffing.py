"""Staffing advice (core/staffing.py): Erlang C against known values and against a
simulated queue, and the advice read from a centre's past weeks."""

from __future__ import annotations

import heapq
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from core import models as m
from core import staffing
from harness.centre import KIOSK


def test_erlang_c_matches_known_values():
    assert staffing.erlang_c(3, 2.0) == pytest.approx(4 / 9)
    assert staffing.erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: waits with prob. rho
    assert staffing.erlang_c(2, 2.0) == 1.0  # overloaded: everyone waits, forever
    assert staffing.erlang_c(5, 0.0) == 0.0
    # Large centres stay finite and in [0, 1] (the recurrence never overflows).
    assert 0 < staffing.erlang_c(150, 140.0) < 1


def simulate(servers: int, per_hour: float, mean_s: float, n: int, rng) -> list[float]:
    """Waits of ``n`` citizens in an M/M/c queue served first come, first served."""
    free = [0.0] * servers  # when each counter is next free
    heapq.heapify(free)
    t, waits = 0.0, []
    for _ in range(n):
        t += rng.expovariate(per_hour / 3600)
        start = max(t, heapq.heappop(free))
        waits.append(start - t)
        heapq.heappush(free, start + rng.expovariate(1 / mean_s))
    return waits[n // 10 :]  # without the first tenth (the queue filling up)


def test_the_counters_advised_meet_the_target_in_a_simulated_queue_and_one_fewer_does_not():
    rng = random.Random(3)
    per_hour, mean_s, target_s = 30.0, 600.0, 600.0  # a load of 5 erlangs
    needed = staffing.counters_needed(per_hour, mean_s, target_s, level=0.9)
    assert needed == 7
    for servers, meets in ((needed, True), (needed - 1, False)):
        waits = simulate(servers, per_hour, mean_s, 200_000, rng)
        share = sum(w <= target_s for w in waits) / len(waits)
        model = staffing.share_within(servers, per_hour * mean_s / 3600, mean_s, target_s)
        assert share == pytest.approx(model, abs=0.02)  # busy queues vary between runs
        assert (share >= 0.9) is meets


def test_nobody_coming_needs_no_counter_and_a_flood_needs_many():
    assert staffing.counters_needed(0, 600, 1200) == 0
    assert staffing.counters_needed(600, 600, 1200) > 100


def _at(zone, day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC)


def test_advice_reads_each_hour_of_the_weekday_from_the_past_weeks(local):
    """Two past Mondays: 6 citizens of TP between 8 and 9 each Monday, 10 minutes of
    service each, counter 1 open 8:00-10:00 on both: 6 an hour, one counter open."""
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    mondays = [date(2026, 11, 23), date(2026, 11, 30)]
    kiosk = local.device(KIOSK)
    clerk = local.clerk("clerk1", 1)
    counter_id = local.counter_id(1)
    tickets = [local.engine.issue_ticket(kiosk, "TP")["ticket"]["id"] for _ in range(12)]
    local.engine.close_counter(clerk)
    t, a = m.tickets, m.audit_log

    def backdate(tx):
        conn = tx.conn
        for i, ticket_id in enumerate(tickets):
            day = mondays[i // 6]
            issued = _at(zone, day, 8, (i % 6) * 10)
            conn.execute(
                sa.update(t)
                .where(t.c.id == ticket_id)
                .values(
                    status="finished",
                    business_date=day,
                    issued_at=issued,
                    started_at=issued + timedelta(minutes=5),
                    finished_at=issued + timedelta(minutes=15),
                )
            )
        conn.execute(sa.delete(a).where(a.c.action.in_(("counter_opened", "counter_closed"))))
        seq = 10_000
        for day in mondays:
            for hour, action in ((8, "counter_opened"), (10, "counter_closed")):
                seq += 1
                conn.execute(
                    sa.insert(a).values(
                        centre_id=local.centre_id,
                        seq=seq,
                        at=_at(zone, day, hour),
                        action=action,
                        actor="staff:1",
                        counter_id=counter_id,
                        details={},
                        delivery={"route": {"counters": [counter_id]}},
                    )
                )

    local.store.write(backdate, centre_id=local.centre_id, actor="test")
    advice = local.read(
        lambda conn: staffing.advise(
            conn, local.centre_id, 0, date(2026, 12, 6), target_s=1200, weeks=2
        )
    )
    tp = {h.hour: h for h in advice if h.service == "TP"}
    assert tp[8].arrivals == 6 and tp[8].mean_service_s == 600 and tp[8].open == 1.0
    assert tp[8].needed == staffing.counters_needed(6, 600, 1200)
    assert tp[9].arrivals == 0 and tp[9].open == 1.0 and tp[9].needed == 0
    assert 10 not in tp
