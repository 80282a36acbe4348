"""The demo's past month (core/demo_history.py): days within the opening hours, visits
served in order at the counters of their service, ratings and dossiers linked, written
once; the staffing advice then sees the counters open."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core import demo_history, staffing
from core import models as m

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def test_a_past_month_is_written_once_and_reads_as_a_centre_would_have_lived_it(local):
    holiday = datetime.now(ZONE).date() - timedelta(days=3)
    local.store.write(
        lambda tx: tx.conn.execute(sa.update(m.centres).values(closed_days=[holiday.isoformat()])),
        centre_id=0,
        actor="test",
    )
    n = demo_history.seed_past(local.store, "T1", days=14, per_day=60)
    assert n > 300
    assert demo_history.seed_past(local.store, "T1", days=14, per_day=60) == 0  # once
    t = m.tickets
    rows = local.read(lambda c: c.execute(sa.select(t)).all())
    today = datetime.now(ZONE).date()
    assert all(today - timedelta(days=14) <= r.business_date < today for r in rows)
    assert holiday not in {r.business_date for r in rows}  # a closed day stays empty
    for r in rows:
        local_issue = r.issued_at.astimezone(ZONE)
        assert local_issue.date() == r.business_date
        assert 7 <= local_issue.hour < 17
        if r.status == "done":
            assert r.issued_at <= r.called_at < r.started_at < r.finished_at
    statuses = {s: sum(r.status == s for r in rows) for s in ("done", "no_show", "cancelled")}
    assert statuses["done"] > 0.85 * len(rows) and statuses["no_show"] > 0
    ratings = local.read(lambda c: c.execute(sa.select(m.ratings)).all())
    done = {r.id for r in rows if r.status == "done"}
    assert ratings and all(r.ticket_id in done for r in ratings)
    assert sum(r.score == 3 for r in ratings) > 0.7 * len(ratings)
    vias = local.read(
        lambda c: dict(
            c.execute(
                sa.select(m.dossiers.c.submitted_via, sa.func.count()).group_by(
                    m.dossiers.c.submitted_via
                )
            ).all()
        )
    )
    assert set(vias) >= {"in_person", "online"}
    last = max(r.business_date for r in rows)
    advice = local.read(
        lambda c: staffing.advise(c, local.centre_id, last.weekday(), last, target_s=1200, weeks=2)
    )
    assert any(a.open > 0 for a in advice) and any(a.arrivals > 0 for a in advice)
