"""The centre's reports (core/reports.py, docs/reports.md) equal figures counted here,
independently, from what the test itself generated.

Two sources, as a centre's data has them:
- **today, through the engine**: tickets issued at a kiosk, called, served, transferred,
  marked no-show, rated on the tablet with reasons, and dossiers received and returned at
  the counter. The engine stamps the present, so these are today's.
- **a past month (August 2026), backdated**: the engine cannot backdate, so the month's
  tickets (with the seconds the engine keeps on each, ``lifecycle.durations``), their
  transfers (the audit log's ``transferred`` records, as the engine writes them: checked
  by the first test) and their ratings are direct timestamped inserts; its
  dossiers go through the integration API's own code (``dossiers.upsert_dossiers``, what
  ``POST /api/v1/dossiers`` runs) with past dates, as the province's system sends them.
"""

from __future__ import annotations

import math
import random
import secrets
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from core import dossiers, reports
from core import models as m
from core.errors import QueueError
from core.lifecycle import durations
from core.provisioning import provision
from core.rating import DEFAULT_REASONS
from core.store import Store
from harness.centre import CENTRE, INTEGRATION, KIOSK, RATING_1
from harness.local import LocalCentre

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
COMMENTS = ("Cán bộ nhiệt tình, hướng dẫn rõ ràng", "Phòng chờ hơi nóng", "Cảm ơn chị Lan")
FIRST, LAST = date(2026, 8, 1), date(2026, 8, 31)


# -- counted here, independently ----------------------------------------------------------
def _stats(values):
    if not values:
        return {"mean": 0, "median": 0, "p90": 0}
    v = sorted(values)
    n = len(v)
    median = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    rank = math.ceil(n * 9 / 10)  # nearest rank: 90 % of the values are at most this one
    return {
        "mean": round(sum(v) / n, 1),
        "median": round(median, 1),
        "p90": round(v[rank - 1], 1),
    }


def _share(part, whole):
    return 1.0 if whole == 0 else part / whole


def _ticket_figures(tickets, target=1200):
    waits = [t["wait"] for t in tickets if t["wait"] is not None]
    served = [t["service"] for t in tickets if t["status"] == "done"]
    return {
        "tickets": {
            "issued": len(tickets),
            "served": sum(t["status"] == "done" for t in tickets),
            "no_show": sum(t["status"] == "no_show" for t in tickets),
            "cancelled": sum(t["status"] == "cancelled" for t in tickets),
            "transferred": sum(t["transferred"] for t in tickets),
        },
        "wait_s": {
            **_stats(waits),
            "within_target_share": _share(sum(w <= target for w in waits), len(waits)),
            "target": target,
        },
        "service_s": _stats(served),
    }


def _rating_figures(ratings):
    by = Counter(r["score"] for r in ratings)
    reasons = Counter(x for r in ratings for x in r["reasons"])
    total = len(ratings)
    return {
        "ratings": {
            "very_satisfied": by[3],
            "satisfied": by[2],
            "dissatisfied": by[1],
            "total": total,
            "satisfied_share": _share(by[3] + by[2], total),
            "very_satisfied_share": _share(by[3], total),
            "reasons": dict(reasons),
        }
    }


def _dossier_figures(received, returned, overdue):
    on_time = [d for d in returned if d["due"] is None or d["returned"] <= d["due"]]
    return {
        "dossiers": {
            "received": len(received),
            "in_person": sum(d["via"] == "in_person" for d in received),
            "online": sum(d["via"] == "online" for d in received),
            "post": sum(d["via"] == "post" for d in received),
            "returned": len(returned),
            "returned_on_time": len(on_time),
            "returned_late": len(returned) - len(on_time),
            "overdue_now": len(overdue),
            "on_time_share": _share(len(on_time), len(returned)),
        }
    }


def _same(report_part, expected_part):
    """Equal, shares within a float's rounding."""
    assert report_part.keys() == expected_part.keys()
    for key, want in expected_part.items():
        got = report_part[key]
        if isinstance(want, dict):
            _same(got, want)
        elif isinstance(want, float):
            assert got == pytest.approx(want), key
        else:
            assert got == want, key


# -- today, through the engine -------------------------------------------------------------
def _today_rows(local):
    def read(conn):
        t = m.tickets
        return {r.id: r for r in conn.execute(sa.select(t).where(t.c.centre_id == local.centre_id))}

    return local.read(read)


def _whole(duration: timedelta) -> int:
    """Durations are counted in whole seconds, to the nearest (docs/reports.md)."""
    return math.floor(duration.total_seconds() + 0.5)


def test_a_day_through_the_engine_is_counted_as_it_happened(local):
    kiosk = local.device(KIOSK)
    ids = {}
    for name, service, priority in (
        ("t1", "TP", None),
        ("t2", "TP", "elderly"),
        ("t3", "HT", None),
        ("t4", "DD", None),
        ("t5", "TP", None),
        ("t6", "HT", None),  # still waiting at the end
    ):
        ids[name] = local.engine.issue_ticket(kiosk, service, priority)["ticket"]["id"]
    e = local.engine
    clerk1 = local.clerk("clerk1", 1)
    e.call_ticket(clerk1, ids["t2"])
    e.start(clerk1, ids["t2"])
    e.finish(clerk1, ids["t2"], ["H15.01-261207-0001"], "received")
    e.call_ticket(clerk1, ids["t1"])
    e.no_show(clerk1, ids["t1"])
    e.call_ticket(clerk1, ids["t3"])
    e.start(clerk1, ids["t3"])
    e.transfer(clerk1, ids["t3"], service="DD")
    e.call_ticket(clerk1, ids["t5"])
    e.start(clerk1, ids["t5"])
    e.finish(clerk1, ids["t5"], ["H15.01-261207-0002"], "returned")
    clerk3 = local.clerk("clerk3", 3)
    for name in ("t3", "t4"):
        e.call_ticket(clerk3, ids[name])
        e.start(clerk3, ids[name])
        e.finish(clerk3, ids[name])
    tablet = local.device(RATING_1)
    e.rate(tablet, ids["t2"], 1, ["Thời gian chờ quá lâu"], "Chờ lâu quá")
    e.rate(tablet, ids["t5"], 3)

    rows = _today_rows(local)
    status = {"t1": "no_show", "t6": "waiting"}
    tickets = [
        {
            "status": rows[i].status,
            "transferred": name == "t3",
            "wait": _whole(rows[i].called_at - rows[i].issued_at) if rows[i].called_at else None,
            "service": _whole(rows[i].finished_at - rows[i].started_at)
            if rows[i].status == "done"
            else None,
        }
        for name, i in ids.items()
    ]
    assert [t["status"] for t in tickets] == [status.get(n, "done") for n in ids]
    today = datetime.now(TZ).date()
    got = local.read(lambda conn: reports.summary(conn, local.centre_id, today, today, m.utcnow()))
    assert (got["ok"], got["centre"], got["from"], got["to"]) == (
        True,
        "T1",
        today.isoformat(),
        today.isoformat(),
    )
    now = datetime.now(UTC)
    made = [{"via": "in_person", "returned": None, "due": None}] * 2
    _same(
        {k: got[k] for k in ("tickets", "wait_s", "service_s", "ratings", "dossiers")},
        {
            **_ticket_figures(tickets),
            **_rating_figures(
                [{"score": 1, "reasons": ["Thời gian chờ quá lâu"]}, {"score": 3, "reasons": []}]
            ),
            **_dossier_figures(made, [{"returned": now, "due": None}], []),
        },
    )
    assert got["comments"]["total"] == 1
    assert [(c["score"], c["text"], c["counter"]) for c in got["comments"]["shown"]] == [
        (1, "Chờ lâu quá", "Quầy 1")
    ]
    # Each ticket counts where it ended: its last service, counter and clerk.
    by_counter = local.read(
        lambda conn: reports.breakdown(conn, local.centre_id, "counter", today, today, now)
    )
    assert [
        (r["label"], r["tickets"]["issued"], r["tickets"]["served"]) for r in by_counter["rows"]
    ] == [
        ("Quầy 1", 3, 2),
        ("Quầy 3", 2, 2),
        ("Không xác định", 1, 0),
    ]
    by_service = local.read(
        lambda conn: reports.breakdown(conn, local.centre_id, "service", today, today, now)
    )
    assert {r["label"]: r["tickets"]["issued"] for r in by_service["rows"]} == {
        "Lý lịch tư pháp": 3,
        "Hộ tịch": 1,
        "Đất đai": 2,
    }
    by_clerk = local.read(
        lambda conn: reports.breakdown(conn, local.centre_id, "clerk", today, today, now)
    )
    assert {r["label"]: r["ratings"]["total"] for r in by_clerk["rows"]} == {
        "Nguyễn Văn A": 2,
        "Phạm Văn Cường": 0,
        "Không xác định": 0,
    }


# -- a past month, backdated ---------------------------------------------------------------
class Month:
    """August 2026 at the test centre, generated (seeded) and written to its store; the
    lists hold what was generated, in local terms, for counting here."""

    def __init__(self, local, seed=17):
        self.local = local
        self.rng = random.Random(seed)
        self.tickets: list[dict] = []
        self.ratings: list[dict] = []
        self.dossiers: list[dict] = []
        ids = local.read(self._ids)
        self.services, self.counters, self.staff = ids

    def _ids(self, conn):
        s, c, st, a = m.services, m.counters, m.staff, m.agencies
        with_agency = sa.select(s, a.c.name.label("agency")).join(a, a.c.id == s.c.agency_id)
        services = {r.code: (r.id, r.agency, r.prefix, r.name) for r in conn.execute(with_agency)}
        counters = {r.number: (r.id, r.name) for r in conn.execute(sa.select(c))}
        staff = {r.username: (r.id, r.full_name) for r in conn.execute(sa.select(st))}
        return services, counters, staff

    # Which counter and clerk serve a service's tickets (tests/centre.toml).
    SERVED_AT = {
        "TP": ((1, "clerk1"), (2, "clerk2")),
        "HT": ((1, "clerk1"),),
        "DD": ((3, "clerk3"),),
    }

    def generate(self):
        rng = self.rng
        days = [FIRST - timedelta(days=1)]  # the day before and after: outside the range
        days += [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
        days += [LAST + timedelta(days=1)]
        for day in days:
            if day.weekday() == 6:  # closed on Sundays
                continue
            for _ in range(rng.randint(6, 14)):
                local_at = datetime(day.year, day.month, day.day, 7, 30, tzinfo=TZ)
                self.ticket(day, local_at + timedelta(seconds=rng.randint(0, 9 * 3600)))
        # At the edges: served late on the last day and rated after midnight (the ticket
        # in the range, its rating not); the same the night before the first day.
        for day in (FIRST - timedelta(days=1), LAST):
            late = datetime(day.year, day.month, day.day, 23, 50, tzinfo=TZ)
            self.ticket(day, late, outcome="done", wait=300, service=270, rated_after=20)

    def ticket(self, day, issued, outcome=None, wait=None, service=None, rated_after=None):
        rng = self.rng
        code = rng.choice(("TP", "TP", "HT", "DD"))
        outcome = (
            outcome
            or rng.choices(
                ("done", "no_show", "cancelled", "waiting", "transferred"), (70, 8, 5, 5, 12)
            )[0]
        )
        transferred = outcome == "transferred"
        if transferred:  # sent on to another service, and served there
            code = rng.choice([c for c in ("TP", "HT", "DD") if c != code])
            outcome = "done"
        number, clerk = rng.choice(self.SERVED_AT[code])
        t = {
            "day": day,
            "code": code,
            "priority": rng.choice((None, None, None, "elderly", "disabled")),
            "issued": issued,
            "status": outcome,
            "transferred": transferred,
            "counter": None,
            "clerk": None,
            "called": None,
            "started": None,
            "finished": None,
        }
        if outcome in ("done", "no_show"):
            t["counter"], t["clerk"] = number, clerk
            t["called"] = issued + timedelta(seconds=wait or rng.randint(10, 2700))
            if outcome == "done":
                t["started"] = t["called"] + timedelta(seconds=rng.randint(5, 90))
                t["finished"] = t["started"] + timedelta(seconds=service or rng.randint(60, 1500))
            else:
                t["finished"] = t["called"] + timedelta(seconds=120)
        self.tickets.append(t)
        if outcome == "done" and (rated_after or rng.random() < 0.7):
            score = rng.choices((3, 2, 1), (75, 20, 5))[0]
            reasons = rng.sample(DEFAULT_REASONS, rng.randint(1, 2)) if score == 1 else []
            at = t["finished"] + timedelta(seconds=rated_after or rng.randint(5, 60))
            comment = rng.choice(COMMENTS) if rng.random() < 0.3 else None
            self.ratings.append(
                {"ticket": t, "score": score, "reasons": reasons, "at": at, "comment": comment}
            )

    def write(self):
        local = self.local

        def insert(tx):
            conn = tx.conn
            seq = 1_000_000
            per_prefix = Counter()
            for t in self.tickets:
                sid, _agency, prefix, _name = self.services[t["code"]]
                per_prefix[(prefix, t["day"])] += 1
                no = per_prefix[(prefix, t["day"])]
                t["id"] = conn.execute(
                    m.tickets.insert().values(
                        centre_id=local.centre_id,
                        service_id=sid,
                        business_date=t["day"],
                        prefix=prefix,
                        seq_no=no,
                        number=f"{prefix}{no:03d}",
                        status=t["status"],
                        priority=t["priority"],
                        public_key=secrets.token_urlsafe(16),
                        issued_at=t["issued"],
                        called_at=t["called"],
                        started_at=t["started"],
                        finished_at=t["finished"],
                        counter_id=self.counters[t["counter"]][0] if t["counter"] else None,
                        staff_id=self.staff[t["clerk"]][0] if t["clerk"] else None,
                        **durations(
                            t["status"], t["issued"], t["called"], t["started"], t["finished"]
                        ),
                    )
                ).inserted_primary_key[0]
                if t["transferred"]:
                    seq += 1
                    conn.execute(
                        m.audit_log.insert().values(
                            centre_id=local.centre_id,
                            seq=seq,
                            at=t["called"] - timedelta(seconds=60),
                            action="transferred",
                            actor=f"staff:{self.staff[t['clerk']][0]}",
                            ticket_id=t["id"],
                            details={"to_service": t["code"]},
                            delivery={},
                        )
                    )
            for r in self.ratings:
                t = r["ticket"]
                conn.execute(
                    m.ratings.insert().values(
                        ticket_id=t["id"],
                        centre_id=local.centre_id,
                        service_id=self.services[t["code"]][0],
                        counter_id=self.counters[t["counter"]][0],
                        staff_id=self.staff[t["clerk"]][0],
                        score=r["score"],
                        reasons=r["reasons"],
                        comment=r["comment"],
                        rated_at=r["at"],
                    )
                )

        local.store.write(insert, centre_id=local.centre_id, actor="test")

    def send_dossiers(self, now):
        """Dossiers as the province's system sends them, with past dates: received in July
        to September, each channel; returned on time, late, or not yet (overdue now, or
        not due yet); cancelled; one with no channel recorded."""
        rng = self.rng
        fields = ("Hộ tịch", "Đất đai", "Lý lịch tư pháp", None)
        items = []
        for i in range(240):
            received = datetime(2026, 7, 20, 8, tzinfo=TZ) + timedelta(
                minutes=rng.randint(0, 50 * 24 * 60)
            )
            due_days = rng.choice((3, 5, 10, 15, 200))
            due = datetime.combine(received.date() + timedelta(days=due_days), datetime.max.time())
            due = due.replace(microsecond=0, tzinfo=TZ)
            kind = rng.choices(("returned", "open", "cancelled"), (60, 35, 5))[0]
            returned = None
            if kind == "returned":
                returned = received + timedelta(hours=rng.randint(2, 24 * (due_days + 4)))
                if returned > now:
                    returned = None
            d = {
                "code": f"H15.50.05.13-{received:%y%m%d}-{i:04d}",
                "via": rng.choices(("in_person", "online", "post", None), (70, 18, 10, 2))[0],
                "field": rng.choice(fields),
                "received": received,
                "due": due,
                "returned": returned,
                "status": "returned"
                if returned
                else ("cancelled" if kind == "cancelled" else "processing"),
            }
            self.dossiers.append(d)
            item = {"code": d["code"], "status": d["status"], "received_at": received.isoformat()}
            if d["via"]:
                item["submitted_via"] = d["via"]
            if d["field"]:
                item["field"] = d["field"]
            # The due date as a date alone (the end of that day, in the centre's zone).
            item["due_at"] = d["due"].date().isoformat()
            if returned:
                item["returned_at"] = returned.isoformat()
            items.append(item)
        api = self.local.device(INTEGRATION)
        answer = dossiers.upsert_dossiers(self.local.store, api, {"dossiers": items})
        assert answer["created"] == len(items)


def _in_range(at):
    return at is not None and FIRST <= at.astimezone(TZ).date() <= LAST


def _expected(month: Month, by, now):
    """Every row of breakdown ``by`` (None: the summary), counted from the generated
    lists: {key: figures}."""
    tickets = [t for t in month.tickets if FIRST <= t["day"] <= LAST]
    for t in tickets:
        t["wait"] = (t["called"] - t["issued"]).total_seconds() if t["called"] else None
        t["service"] = (
            (t["finished"] - t["started"]).total_seconds() if t["status"] == "done" else None
        )
    ratings = [r for r in month.ratings if _in_range(r["at"])]
    svc, ctr, stf = month.services, month.counters, month.staff

    def ticket_key(t):
        code = t["code"]
        return {
            None: None,
            "agency": svc[code][1],
            "service": svc[code][0],
            "counter": ctr[t["counter"]][0] if t["counter"] else None,
            "clerk": stf[t["clerk"]][0] if t["clerk"] else None,
            "hour": t["issued"].astimezone(TZ).hour,
            "weekday": t["day"].weekday(),
        }[by]

    out: dict = defaultdict(lambda: {"tickets": [], "ratings": [], "rec": [], "ret": [], "od": []})
    if by != "field":
        for t in tickets:
            out[ticket_key(t)]["tickets"].append(t)
        for r in ratings:
            t = r["ticket"]
            key = (
                r["at"].astimezone(TZ).hour
                if by == "hour"
                else r["at"].astimezone(TZ).weekday()
                if by == "weekday"
                else ticket_key(t)
            )
            out[key]["ratings"].append(r)
    if by in (None, "field", "hour", "weekday"):
        for d in month.dossiers:

            def key(at, d=d):
                return {
                    None: None,
                    "field": d["field"],
                    "hour": at and at.astimezone(TZ).hour,
                    "weekday": at and at.astimezone(TZ).weekday(),
                }[by]

            if _in_range(d["received"]):
                out[key(d["received"])]["rec"].append(d)
            if _in_range(d["returned"]):
                out[key(d["returned"])]["ret"].append(d)
            if (
                d["returned"] is None
                and d["status"] != "cancelled"
                and d["due"] < now
                and by not in ("hour", "weekday")
            ):
                out[key(None)]["od"].append(d)
    families = reports.FAMILIES[by]
    figures = {}
    for key, g in out.items():
        f = {"tickets": None, "wait_s": None, "service_s": None, "ratings": None, "dossiers": None}
        if "tickets" in families:
            f.update(_ticket_figures(g["tickets"]))
            f.update(_rating_figures(g["ratings"]))
        if "dossiers" in families:
            f.update(_dossier_figures(g["rec"], g["ret"], g["od"]))
        figures[key] = f
    return figures


@pytest.fixture
def month(local):
    mo = Month(local)
    mo.generate()
    mo.write()
    mo.send_dossiers(datetime.now(UTC))
    return mo


def test_a_month_equals_what_was_counted(month, local):
    now = datetime.now(UTC)
    got = local.read(lambda conn: reports.summary(conn, local.centre_id, FIRST, LAST, now))
    want = _expected(month, None, now)[None]
    assert (got["from"], got["to"]) == ("2026-08-01", "2026-08-31")
    _same({k: got[k] for k in want}, want)
    # The month really has what the figures are about.
    t, d = got["tickets"], got["dossiers"]
    assert min(t.values()) > 0 and got["ratings"]["dissatisfied"] > 0
    assert min(d[k] for k in ("in_person", "online", "post", "returned_late", "overdue_now")) > 0
    assert d["received"] > d["in_person"] + d["online"] + d["post"]  # one has no channel
    assert 0 < got["wait_s"]["within_target_share"] < 1
    assert got["ratings"]["reasons"] and set(got["ratings"]["reasons"]) <= set(DEFAULT_REASONS)
    # The comments, newest first, at their local time.
    said = [r for r in month.ratings if r["comment"] and _in_range(r["at"])]
    order = {id(r): i for i, r in enumerate(month.ratings)}  # inserted in this order
    said.sort(key=lambda r: (r["at"], order[id(r)]), reverse=True)
    assert got["comments"]["total"] == len(said) > 0
    assert [
        (c["at"], c["score"], c["service"], c["counter"], c["text"])
        for c in got["comments"]["shown"]
    ] == [
        (
            r["at"].astimezone(TZ).isoformat(timespec="seconds"),
            r["score"],
            month.services[r["ticket"]["code"]][3],
            month.counters[r["ticket"]["counter"]][1],
            r["comment"],
        )
        for r in said[: reports.COMMENTS_SHOWN]
    ]


@pytest.mark.parametrize(
    "by", ["agency", "service", "counter", "clerk", "hour", "weekday", "field"]
)
def test_each_breakdown_equals_what_was_counted(month, local, by):
    now = datetime.now(UTC)
    got = local.read(lambda conn: reports.breakdown(conn, local.centre_id, by, FIRST, LAST, now))
    want = _expected(month, by, now)
    assert got["by"] == by
    assert sorted(map(str, (r["key"] for r in got["rows"]))) == sorted(map(str, want))
    for row in got["rows"]:
        _same({k: row[k] for k in want[row["key"]]}, want[row["key"]])
    if by == "weekday":
        assert "Chủ nhật" not in [r["label"] for r in got["rows"] if r["tickets"]["issued"]]
        assert got["rows"][0]["label"] == "Thứ Hai"
    if by == "hour":
        assert got["rows"][0]["label"].endswith(":00") and "–" in got["rows"][0]["label"]


def test_an_empty_range_has_zeros_and_shares_of_one(local):
    got = local.read(
        lambda conn: reports.summary(
            conn, local.centre_id, date(2020, 1, 1), date(2020, 1, 31), m.utcnow()
        )
    )
    assert got["tickets"] == dict.fromkeys(
        ("issued", "served", "no_show", "cancelled", "transferred"), 0
    )
    assert got["wait_s"] == {
        "mean": 0,
        "median": 0,
        "p90": 0,
        "within_target_share": 1.0,
        "target": 1200,
    }
    assert got["ratings"]["satisfied_share"] == got["ratings"]["very_satisfied_share"] == 1.0
    assert got["dossiers"]["on_time_share"] == 1.0


@pytest.mark.parametrize(
    ("first", "last", "field", "vi"),
    [
        (None, "2026-08-31", "from", "Thiếu trường bắt buộc “from”."),
        ("2026-08-01", "", "to", "Thiếu trường bắt buộc “to”."),
        ("2026-8-1", "2026-08-31", "from", "phải là một ngày dạng YYYY-MM-DD"),
        ("2026-08-01", "2026-02-30", "to", "phải là một ngày dạng YYYY-MM-DD"),
        ("2026-08-31", "2026-08-01", "from", "không được sau ngày “to”"),
        ("2025-08-01", "2026-08-02", "to", "tối đa 366 ngày"),
    ],
)
def test_a_bad_range_is_refused_naming_the_field(first, last, field, vi):
    with pytest.raises(QueueError) as refused:
        reports.parse_range(first, last)
    assert refused.value.code == "bad_request"
    message = refused.value.as_dict()["message"]
    assert f"“{field}”" in message and vi in message
    assert f"'{field}'" in refused.value.as_dict("en")["message"]


def test_a_leap_year_is_one_range():
    assert reports.parse_range("2024-01-01", "2024-12-31") == (date(2024, 1, 1), date(2024, 12, 31))


def test_the_download_table_has_vietnamese_headings_and_one_row_per_key(month, local):
    now = datetime.now(UTC)
    summary = local.read(lambda conn: reports.summary(conn, local.centre_id, FIRST, LAST, now))
    headings, rows, shares = reports.table(summary)
    assert {headings[i] for i in shares} == {
        "Tỉ lệ chờ không quá thời gian mục tiêu",
        "Tỉ lệ hài lòng",
        "Tỉ lệ rất hài lòng",
        "Tỉ lệ đúng hạn",
    }
    assert headings[:4] == ["Từ ngày", "Đến ngày", "Trung tâm", "Số phiếu đã cấp"]
    assert "Tỉ lệ đúng hạn" in headings and "Tiếp nhận qua bưu chính" in headings
    assert any(h.startswith("Lý do không hài lòng: ") for h in headings)
    assert rows == [[*rows[0][:3], *rows[0][3:]]] and rows[0][:4] == [
        "2026-08-01",
        "2026-08-31",
        "T1",
        summary["tickets"]["issued"],
    ]
    by_field = local.read(
        lambda conn: reports.breakdown(conn, local.centre_id, "field", FIRST, LAST, now)
    )
    headings, rows, _shares = reports.table(by_field)
    assert headings[2] == "Lĩnh vực hồ sơ" and "Số phiếu đã cấp" not in headings
    assert {r[2] for r in rows} == {"Hộ tịch", "Đất đai", "Lý lịch tư pháp", "Không xác định"}


def test_hours_and_weekdays_follow_a_daylight_saving_change(local):
    """Where the zone's offset changes inside the range (Berlin, 29 March 2026), each
    ticket still counts at its local hour and day."""
    berlin = ZoneInfo("Europe/Berlin")

    def write(tx):
        conn = tx.conn
        conn.execute(
            m.centres.update()
            .where(m.centres.c.id == local.centre_id)
            .values(timezone="Europe/Berlin")
        )
        service = conn.execute(sa.select(m.services.c.id).limit(1)).scalar()
        for no, day in enumerate((28, 30, 30), 1):  # Saturday (UTC+1), Monday (UTC+2)
            issued = datetime(2026, 3, day, 8, 30 + no, tzinfo=berlin)
            conn.execute(
                m.tickets.insert().values(
                    centre_id=local.centre_id,
                    service_id=service,
                    business_date=issued.date(),
                    prefix="Z",
                    seq_no=no,
                    number=f"Z{no}",
                    status="waiting",
                    public_key=secrets.token_urlsafe(16),
                    issued_at=issued,
                )
            )

    local.store.write(write, centre_id=local.centre_id, actor="test")
    first, last, now = date(2026, 3, 27), date(2026, 3, 31), m.utcnow()
    rows = {
        by: [
            (r["key"], r["label"], r["tickets"]["issued"])
            for r in local.read(
                lambda conn, by=by: reports.breakdown(conn, local.centre_id, by, first, last, now)
            )["rows"]
        ]
        for by in ("hour", "weekday")
    }
    assert rows["hour"] == [(8, "08:00–09:00", 3)]
    assert rows["weekday"] == [(0, "Thứ Hai", 2), (5, "Thứ Bảy", 1)]

    # A range that starts on the day of the change (at 02:00 that night): a ticket taken
    # before it, at 01:30 (UTC+1), still counts at 1 o'clock.
    def early(tx):
        service = tx.conn.execute(sa.select(m.services.c.id).limit(1)).scalar()
        issued = datetime(2026, 3, 29, 1, 30, tzinfo=berlin)
        tx.conn.execute(
            m.tickets.insert().values(
                centre_id=local.centre_id,
                service_id=service,
                business_date=issued.date(),
                prefix="Z",
                seq_no=9,
                number="Z9",
                status="waiting",
                public_key=secrets.token_urlsafe(16),
                issued_at=issued,
            )
        )

    local.store.write(early, centre_id=local.centre_id, actor="test")
    day = date(2026, 3, 29)
    hours = local.read(
        lambda conn: reports.breakdown(conn, local.centre_id, "hour", day, day, now)
    )["rows"]
    assert [(r["key"], r["tickets"]["issued"]) for r in hours] == [(1, 1)]


@pytest.fixture(params=["sqlite", "postgresql"])
def any_local(request, centre_file, tmp_path):
    """The test centre on SQLite (a copy of the template) or PostgreSQL (a fresh database,
    migrated and provisioned)."""
    if request.param == "sqlite":
        centre = LocalCentre(centre_file, tmp_path / "motcua.sqlite3")
    else:
        url = request.getfixturevalue("pg_url")
        store = Store(url)
        store.migrate()
        provision(store, CENTRE)
        store.dispose()
        centre = LocalCentre(None, None, url=url)
    yield centre
    centre.close()


def _today_through_the_engine(local):
    """A few of today's tickets (called, served, a no-show, one still waiting), rated,
    their dossiers received and returned: the live part of a range that ends today."""
    kiosk, e = local.device(KIOSK), local.engine
    ids = [
        local.engine.issue_ticket(kiosk, code)["ticket"]["id"] for code in "TP TP HT DD TP".split()
    ]
    clerk = local.clerk("clerk1", 1)
    e.call_ticket(clerk, ids[0])
    e.start(clerk, ids[0])
    e.finish(clerk, ids[0], ["H15.01-261207-0101"], "received")
    e.call_ticket(clerk, ids[1])
    e.no_show(clerk, ids[1])
    e.call_ticket(clerk, ids[2])
    e.start(clerk, ids[2])
    e.finish(clerk, ids[2], ["H15.01-261207-0101"], "returned")
    e.rate(local.device(RATING_1), ids[0], 1, ["Thời gian chờ quá lâu"])
    e.rate(local.device(RATING_1), ids[2], 3)


def test_hours_and_weekdays_read_packed_equal_the_grouped_count(any_local, monkeypatch):
    """The breakdowns by hour and weekday read each table in one pass, the rows' keys
    packed with their values (core/reports.py PACKED); the SQL GROUP BY they replaced
    stays as the oracle: every figure and every download the same, on both stores, over
    past days, today's live ones and empty ranges, in zones ahead of and behind UTC by
    hours and by parts of an hour, with odd rows (a wait below zero from a clock set back,
    a ticket whose business day is not its local day)."""
    local = any_local
    month = Month(local)
    month.generate()
    month.ticket(date(2026, 8, 4), datetime(2026, 8, 4, 9, tzinfo=TZ), "done", wait=120)
    month.tickets[-1]["called"] = month.tickets[-1]["issued"] - timedelta(seconds=7)
    month.write()
    month.send_dossiers(datetime.now(UTC))
    _today_through_the_engine(local)
    lowest = sa.select(sa.func.min(m.tickets.c.wait_s))
    assert local.read(lambda conn: conn.execute(lowest).scalar()) == -7
    packed_passes = []
    real = reports._add_tickets_packed
    monkeypatch.setattr(
        reports, "_add_tickets_packed", lambda *a: packed_passes.append(a) or real(*a)
    )
    today, now = datetime.now(TZ).date(), m.utcnow()
    ranges = [
        (FIRST, LAST),
        (FIRST, FIRST),
        (FIRST - timedelta(days=20), LAST + timedelta(days=40)),
        (today - timedelta(days=30), today),
        (today, today),
        (date(2020, 1, 1), date(2020, 1, 31)),
        (date(2026, 10, 20), date(2026, 10, 31)),  # Berlin's change to winter time: grouped
    ]
    zones = ("Asia/Ho_Chi_Minh", "Asia/Kolkata", "Australia/Eucla", "America/Bogota")

    def retime(zone):
        def write(tx):
            tx.conn.execute(
                m.centres.update().where(m.centres.c.id == local.centre_id).values(timezone=zone)
            )

        local.store.write(write, centre_id=local.centre_id, actor="test")

    for zone in (*zones, "Europe/Berlin"):
        retime(zone)
        for by in ("hour", "weekday"):
            for first, last in ranges:

                def ask(conn, by=by, first=first, last=last):
                    return reports.breakdown(conn, local.centre_id, by, first, last, now)

                monkeypatch.setattr(reports, "PACKED", True)
                packed = local.read(ask)
                monkeypatch.setattr(reports, "PACKED", False)
                grouped = local.read(ask)
                assert packed == grouped, (zone, by, first, last)
                assert reports.table(packed) == reports.table(grouped)
                if (first, last) == (FIRST, LAST):
                    assert sum(r["tickets"]["issued"] for r in packed["rows"]) > 200
    assert packed_passes and (today, today) in [(a[1].first, a[1].last) for a in packed_passes]


def test_downloads_keep_text_that_looks_like_a_formula_as_text():
    """A field from the province's system or a citizen's comment that starts like a
    formula ("=HYPERLINK(…)") is text in the CSV and in the XLSX, never run."""
    import io

    from openpyxl import load_workbook

    from manage import reports as downloads

    evil = '=HYPERLINK("http://example.invalid","Bấm vào đây")'
    headings, rows = ["Lĩnh vực hồ sơ", "Hồ sơ tiếp nhận"], [[evil, 3], ["-1 lần", -1]]
    text = downloads._csv(headings, rows).decode("utf-8-sig")
    quoted = "'" + evil.replace('"', '""')  # the CSV's quotes doubled
    assert text.splitlines()[1:] == [f'"{quoted}",3', "'-1 lần,-1"]
    sheet = load_workbook(io.BytesIO(downloads._xlsx([("Báo cáo", headings, rows, set())], 0)))
    cells = [[(c.value, c.data_type) for c in r] for r in sheet.active.iter_rows()]
    assert cells[1] == [(evil, "s"), (3, "n")] and cells[2] == [("-1 lần", "s"), (-1, "n")]
