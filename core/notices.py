"""Messages to citizens (SMS, Zalo): which are due, and their words (docs/appointments.md).

A message is a row of the ``notifications`` outbox, written in a transaction and sent
after it by each server process's sender (gateway/notify.py), so a gateway that is down
or slow never holds up a queue operation and nothing due is lost. Each message has a
``dedupe`` key (the booking's code, the ticket and its call): written once however many
processes notice it.

Kinds:

- ``booked``: a booking's confirmation, written with the booking;
- ``reminder``: the day before a booked slot (from 08:00, the centre's time), unless the
  booking was made that day;
- ``near``: once, when at most the centre's ``notify_ahead`` people (default 3) are ahead
  of a waiting ticket whose holder left a phone number (at the kiosk, or by booking);
- ``called``: each time that ticket is called, with the counter.

``due`` finds the last three (each server process calls it every few seconds; the reads
are small: only tickets and bookings with a phone number).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from . import estimates
from . import models as m
from .lifecycle import WAITING
from .store import Store, Tx

KINDS = ("booked", "reminder", "near", "called")
REMIND_FROM_HOUR = 8
# How long a message is worth sending (after that it is ``expired``, not sent late).
EXPIRES = {
    "near": timedelta(minutes=30),
    "called": timedelta(minutes=10),
}

# (Vietnamese, English): the SMS text; ZNS templates take the same parameters.
TEXTS = {
    "booked": (
        "{centre}: Ông/Bà đã đặt lịch {service} lúc {time} ngày {date}. Mã lịch hẹn: {code}. "
        "Xem hoặc hủy: {url}",
        "{centre}: your appointment for {service} is at {time} on {date}. Code: {code}. "
        "See or cancel it: {url}",
    ),
    "reminder": (
        "{centre}: nhắc Ông/Bà lịch hẹn {service} lúc {time} ngày mai ({date}). Mã lịch hẹn: "
        "{code}. Mời Ông/Bà đến trước giờ hẹn và lấy số tại máy lấy số.",
        "{centre}: a reminder of your appointment for {service} tomorrow ({date}) at {time}. "
        "Code: {code}. Please come a little early and take your number at a kiosk.",
    ),
    "near": (
        "{centre}: sắp đến lượt số {number} ({service}): còn {ahead} người trước Ông/Bà. "
        "Mời Ông/Bà về khu vực chờ.",
        "{centre}: ticket {number} ({service}) is nearly up: {ahead} people ahead of you. "
        "Please come back to the waiting area.",
    ),
    "called": (
        "{centre}: mời số {number} đến quầy {counter}.",
        "{centre}: ticket {number}, please go to counter {counter}.",
    ),
}


def text(kind: str, params: dict) -> str:
    vi, en = TEXTS[kind]
    return (en if params.get("lang") == "en" else vi).format(**params)


def enqueue(
    conn,
    centre_id: int,
    kind: str,
    phone: str,
    params: dict,
    dedupe: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> None:
    """Write the message unless one with this ``dedupe`` key exists."""
    table = m.notifications
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)
    conn.execute(
        insert.values(
            centre_id=centre_id,
            kind=kind,
            phone=phone,
            params=params,
            dedupe=dedupe,
            status="pending",
            attempts=0,
            next_at=now,
            expires_at=expires_at or now + EXPIRES.get(kind, timedelta(days=1)),
            created_at=now,
        ).on_conflict_do_nothing(index_elements=["dedupe"])
    )


def _local(at: datetime, zone: ZoneInfo) -> tuple[str, str]:
    local = at.astimezone(zone)
    return local.strftime("%H:%M"), local.strftime("%d/%m/%Y")


def booking_params(centre, service, code: str, slot_start: datetime, lang: str, url: str):
    """A booking's message parameters (``centre``, ``service``: rows with their names)."""
    time_, day = _local(slot_start, ZoneInfo(centre.timezone))
    en = lang == "en"
    return {
        "centre": centre.name_en if en and centre.name_en else centre.name,
        "service": service.name_en if en and service.name_en else service.name,
        "time": time_,
        "date": day,
        "code": code,
        "url": url,
        "lang": lang,
    }


def due(store: Store, now: datetime, public_url: str = "") -> int:
    """Write the reminders, "near" and "called" messages due now; returns how many
    candidates were looked at (each is written once, by its dedupe key)."""
    found = store.read(lambda conn: _candidates(conn, now, public_url))
    if not found:
        return 0

    def op(tx: Tx) -> int:
        for centre_id, kind, phone, params, dedupe, expires in found:
            enqueue(tx.conn, centre_id, kind, phone, params, dedupe, tx.now, expires)
        return len(found)

    return store.write(op, centre_id=0, actor="system:notices")


def _candidates(conn, now: datetime, public_url: str) -> list[tuple]:
    out: list[tuple] = []
    t, s, c, ct = m.tickets, m.services, m.centres, m.counters
    n = m.notifications
    already = set(
        conn.execute(
            sa.select(n.c.dedupe).where(n.c.created_at >= now - timedelta(days=2))
        ).scalars()
    )
    rows = conn.execute(
        sa.select(
            t,
            s.c.name.label("service_name"),
            s.c.name_en.label("service_name_en"),
            c.c.name.label("centre_name"),
            c.c.name_en.label("centre_name_en"),
            c.c.notify_ahead,
            ct.c.number.label("counter_number"),
        )
        .join(s, s.c.id == t.c.service_id)
        .join(c, c.c.id == t.c.centre_id)
        .outerjoin(ct, ct.c.id == t.c.counter_id)
        .where(
            t.c.phone.is_not(None),
            t.c.business_date >= (now - timedelta(days=1)).date(),
            t.c.status.in_((*WAITING, "called")),
        )
    ).all()
    for row in rows:
        lang = "vi"
        params = {
            "centre": row.centre_name,
            "service": row.service_name,
            "number": row.number,
            "lang": lang,
        }
        if row.status == "called":
            key = f"called:{row.id}:{row.call_count}"
            if key not in already:
                out.append(
                    (
                        row.centre_id,
                        "called",
                        row.phone,
                        {**params, "counter": row.counter_number},
                        key,
                        now + EXPIRES["called"],
                    )
                )
            continue
        key = f"near:{row.id}"
        if key in already:
            continue
        ahead = estimates.people_ahead(conn, row)
        if ahead <= row.notify_ahead:
            out.append(
                (
                    row.centre_id,
                    "near",
                    row.phone,
                    {**params, "ahead": ahead},
                    key,
                    now + EXPIRES["near"],
                )
            )
    out.extend(_reminders(conn, now, already, public_url))
    return out


def _reminders(conn, now: datetime, already: set, public_url: str) -> list[tuple]:
    a, s, c = m.appointments, m.services, m.centres
    rows = conn.execute(
        sa.select(
            a.c.code,
            a.c.centre_id,
            a.c.phone,
            a.c.lang,
            a.c.slot_start,
            a.c.created_at,
            s.c.name.label("service_name"),
            s.c.name_en.label("service_name_en"),
            c.c.name.label("centre_name"),
            c.c.name_en.label("centre_name_en"),
            c.c.timezone,
        )
        .join(s, s.c.id == a.c.service_id)
        .join(c, c.c.id == a.c.centre_id)
        .where(
            a.c.status == "booked",
            a.c.phone.is_not(None),
            a.c.slot_start > now,
            a.c.slot_start < now + timedelta(days=2),
        )
    ).all()
    out = []
    for row in rows:
        key = f"reminder:{row.code}"
        if key in already:
            continue
        zone = ZoneInfo(row.timezone)
        today = now.astimezone(zone)
        if (
            row.slot_start.astimezone(zone).date() - today.date() != timedelta(days=1)
            or today.hour < REMIND_FROM_HOUR
            or row.created_at.astimezone(zone).date() == today.date()  # confirmed today
        ):
            continue
        en = row.lang == "en"
        time_, day = _local(row.slot_start, zone)
        params = {
            "centre": row.centre_name_en if en and row.centre_name_en else row.centre_name,
            "service": row.service_name_en if en and row.service_name_en else row.service_name,
            "time": time_,
            "date": day,
            "code": row.code,
            "url": f"{public_url.rstrip('/')}/hen/{row.code}",
            "lang": row.lang,
        }
        out.append((row.centre_id, "reminder", row.phone, params, key, row.slot_start))
    return out
