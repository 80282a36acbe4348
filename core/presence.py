"""Which devices are online, kept in the store so that every server process agrees.

Each server process, every ``interval`` seconds, writes ``last_seen = now`` for the devices
connected to it (:func:`renew`, one statement for all of them, whatever their centre). A
device is **online** while
its ``last_seen`` is less than ``OFFLINE_AFTER`` intervals old: whichever process it is
connected to, and however many, and a process that dies simply stops renewing its devices.
Reads (the monitor's snapshot) compute it from ``last_seen``; nothing else is needed.

Presence itself is not a change (it would advance every centre's ``seq`` each time a
device connects): the monitor reads it (its snapshot, and event ``devices`` every
interval). What needs staff is: each process's sweep (:func:`sweep`, for the centres it
follows) flips to offline the devices recorded online whose ``last_seen`` is too old, and a
board, tablet or agent offline **during the centre's opening hours** (core/hours.py)
raises the device alert ``offline``, a ``device_alert`` change that clerks and managers
hear and a manager may acknowledge (one switched off after closing time is alerted when
the centre opens, if it is still away); the heartbeat that finds it back clears the
alert. Flips are conditional updates of the device's ``online``
flag inside a write transaction, so two processes never record the same one twice.

A round reads first which centres have something to flip (:func:`due`, one query for all
the centres a process serves) and runs :func:`heartbeat` and :func:`sweep` only for those,
each in its centre's transaction: a province's process serves hundreds of centres, and a
write per centre every round held its writer (and each centre's lock) for hundreds of
milliseconds, ahead of the clerks' calls (issue 22).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from . import models as m
from . import views
from .acting import Actor, record
from .hours import HoursError, OpeningHours
from .store import Store, Tx
from .views import alert_view

log = logging.getLogger("motcua.presence")

OFFLINE_AFTER = 3  # heartbeats missed before a device counts as offline
# Devices whose absence needs staff: a board the hall cannot read, a counter's tablet, the
# agent driving printers and LED boards. (A kiosk's printer raises its own alerts.)
ALERT_WHEN_OFFLINE = ("display", "rating", "agent")
OFFLINE_ALERT = "offline"

_d = m.devices


def system_actor(centre_id: int) -> Actor:
    """Who records presence: the server itself (audit actor ``system:0``)."""
    return Actor("system", 0, centre_id, "presence")


def is_online(last_seen: datetime | None, now: datetime, interval_s: float) -> bool:
    return last_seen is not None and now - last_seen < timedelta(seconds=interval_s * OFFLINE_AFTER)


def _set_alert(tx: Tx, actor: Actor, row, alert: str | None, tz: str) -> None:
    if row.alert == alert:
        return
    since = tx.now if alert else None
    tx.conn.execute(
        _d.update()
        .where(_d.c.id == row.id)
        .values(alert=alert, alert_since=since, alert_acked_by=None, alert_acked_at=None)
    )
    record(tx, actor, "device_alert", alert_view(row, alert, since, tz))


def heartbeat(tx: Tx, centre_id: int, device_ids, tz: str) -> int:
    """The devices ``device_ids`` of the centre are connected here now: renew their
    ``last_seen``, flip to online those recorded offline and clear their ``offline``
    alert. Returns the flips."""
    ids = sorted(set(device_ids))
    if not ids:
        return 0
    tx.conn.execute(
        _d.update().where(_d.c.centre_id == centre_id, _d.c.id.in_(ids)).values(last_seen=tx.now)
    )
    back = tx.conn.execute(
        _d.update()
        .where(_d.c.centre_id == centre_id, _d.c.id.in_(ids), _d.c.online.is_(False))
        .values(online=True)
        .returning(_d.c.id, _d.c.name, _d.c.kind, _d.c.last_seen, _d.c.alert)
    ).all()
    actor = system_actor(centre_id)
    for row in sorted(back, key=lambda r: r.id):
        if row.alert == OFFLINE_ALERT:
            _set_alert(tx, actor, row, None, tz)
    return len(back)


# Devices renewed in one write: the writer runs one operation at a time, so a clerk's call
# waits for one such write at most, not for thousands of rows (a province's process
# renewing its 5,000 devices in one statement held its calls ~100 ms every round).
RENEW_AT_ONCE = 250


def round_of(store: Store, connected: dict[int, set[int]], centres, interval_s: float) -> None:
    """One process's round: renew the devices ``connected`` to it (centre -> device ids)
    and, in each centre of ``centres`` (those it serves) where something flips, its
    heartbeat and sweep in the centre's own transaction. A centre that fails is logged and
    left to the next round; a lost database fails the round."""
    ids = sorted(d for devices in connected.values() for d in devices)
    for i in range(0, len(ids), RENEW_AT_ONCE):
        some = ids[i : i + RENEW_AT_ONCE]
        store.write(
            lambda tx, some=some: renew(tx, some),
            centre_id=0,
            actor="system:0",
            operation="presence",
        )
    flips = store.read(lambda conn: due(conn, connected, centres, m.utcnow(), interval_s))
    for centre_id in sorted(flips):
        device_ids = connected.get(centre_id, ())

        def write(tx, centre_id=centre_id, device_ids=device_ids):
            tz = views.centre(tx.conn, centre_id).timezone
            heartbeat(tx, centre_id, device_ids, tz)
            sweep(tx, centre_id, interval_s, tz)

        try:
            store.write(write, centre_id=centre_id, actor="system:0", operation="presence")
        except Exception as e:  # noqa: BLE001 - a lost database: next round
            log.warning("could not renew the presence of centre %s's devices: %s", centre_id, e)


def renew(tx: Tx, device_ids) -> None:
    """``last_seen = now`` for these devices, whatever their centre: presence is not a
    change, so no centre is locked."""
    ids = sorted(set(device_ids))
    if ids:
        tx.conn.execute(_d.update().where(_d.c.id.in_(ids)).values(last_seen=tx.now))


def due(conn, connected: dict[int, set[int]], centres, now: datetime, interval_s: float) -> set:
    """Of ``centres`` (those a process serves), the ones where :func:`heartbeat` or
    :func:`sweep` would flip something: a device connected here (``connected``: centre ->
    device ids) recorded offline, a device recorded online that nobody renewed, or, while
    the centre is open, a device whose absence needs staff and has no alert yet."""
    centres = sorted(set(centres))
    if not centres:
        return set()
    cutoff = now - timedelta(seconds=interval_s * OFFLINE_AFTER)
    here = sorted({d for ids in connected.values() for d in ids})
    c = m.centres
    hours = conn.execute(
        sa.select(c.c.id, c.c.timezone, c.c.opening_hours, c.c.closed_days).where(
            c.c.id.in_(centres)
        )
    ).all()
    open_ = [r.id for r in hours if _open(r, now)]
    flips = [
        sa.and_(
            _d.c.centre_id.in_(centres),
            _d.c.online.is_(True),
            sa.or_(_d.c.last_seen.is_(None), _d.c.last_seen < cutoff),
        )
    ]
    if here:
        flips.append(sa.and_(_d.c.id.in_(here), _d.c.online.is_(False)))
    if open_:
        flips.append(
            sa.and_(
                _d.c.centre_id.in_(open_),
                _d.c.online.is_(False),
                _d.c.active.is_(True),
                _d.c.kind.in_(ALERT_WHEN_OFFLINE),
                _d.c.alert.is_(None),
                _d.c.last_seen.is_not(None),
            )
        )
    return set(conn.execute(sa.select(_d.c.centre_id).where(sa.or_(*flips)).distinct()).scalars())


def _open(row, now: datetime) -> bool:
    """Whether a centre (its row's timezone and hours) is open at ``now``; open when its
    stored hours cannot be read."""
    try:
        hours = OpeningHours.parse(row.opening_hours, row.closed_days)
    except HoursError:
        return True
    return hours.is_open(now, ZoneInfo(row.timezone))


def centre_open(conn, centre_id: int, now: datetime) -> bool:
    """Whether the centre is open at ``now`` by its opening hours (the usual ones when it
    has none; open, when its stored hours cannot be read)."""
    c = m.centres
    row = conn.execute(
        sa.select(c.c.timezone, c.c.opening_hours, c.c.closed_days).where(c.c.id == centre_id)
    ).one()
    return _open(row, now)


def sweep(tx: Tx, centre_id: int, interval_s: float, tz: str) -> int:
    """Flip to offline the centre's devices recorded online whose ``last_seen`` is too old
    (no process has renewed them); while the centre is open, raise the alert of those
    whose absence needs staff (seen at least once: a device never installed is not
    missed). Returns the alerts raised."""
    cutoff = tx.now - timedelta(seconds=interval_s * OFFLINE_AFTER)
    tx.conn.execute(
        _d.update()
        .where(
            _d.c.centre_id == centre_id,
            _d.c.online.is_(True),
            sa.or_(_d.c.last_seen.is_(None), _d.c.last_seen < cutoff),
        )
        .values(online=False)
    )
    if not centre_open(tx.conn, centre_id, tx.now):
        return 0
    # A conditional update: of several processes sweeping, one raises each alert.
    missed = tx.conn.execute(
        _d.update()
        .where(
            _d.c.centre_id == centre_id,
            _d.c.online.is_(False),
            _d.c.active.is_(True),
            _d.c.kind.in_(ALERT_WHEN_OFFLINE),
            _d.c.alert.is_(None),
            _d.c.last_seen.is_not(None),
        )
        .values(alert=OFFLINE_ALERT, alert_since=tx.now, alert_acked_by=None, alert_acked_at=None)
        .returning(_d.c.id, _d.c.name, _d.c.kind)
    ).all()
    actor = system_actor(centre_id)
    for row in sorted(missed, key=lambda r: r.id):
        record(tx, actor, "device_alert", alert_view(row, OFFLINE_ALERT, tx.now, tz))
    return len(missed)
