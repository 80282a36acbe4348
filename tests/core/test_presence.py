"""Devices' presence in the store (core/presence.py): renewed by whichever process a
device is connected to, read by the monitor without a change (no seq spent on a device
connecting), an offline board's alert raised once however many processes sweep, and
acknowledged by a manager (audited), the monitor's replica following it all."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core import models as m
from core import presence, views
from core.errors import QueueError
from harness.centre import DISPLAY, KIOSK, RATING_1
from harness.replica import REPLICAS

INTERVAL = 10.0
ALL_DAY = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture(autouse=True)
def open_all_day(local):
    """The centre open whatever the time the tests run at (one test closes it)."""
    _hours(local, ALL_DAY)


def _hours(local, hours):
    with local.store.engine.begin() as conn:
        conn.execute(m.centres.update().values(opening_hours=hours, closed_days=None))


def _renew(local, devices):
    """A process's round: it renews the devices connected to it and sweeps the centre
    where something flips (gateway/presence.py)."""
    connected = {local.centre_id: {d.id for d in devices}} if devices else {}
    presence.round_of(local.store, connected, [local.centre_id], INTERVAL)


def _age(local, device, seconds):
    d = m.devices
    with local.store.engine.begin() as conn:
        seen = conn.execute(sa.select(d.c.last_seen).where(d.c.id == device.id)).scalar()
        conn.execute(
            d.update()
            .where(d.c.id == device.id)
            .values(last_seen=seen - timedelta(seconds=seconds))
        )


def _devices(local):
    snap = local.view(views.monitor_snapshot, local.centre_id, INTERVAL)
    return {d["device"]["name"]: d for d in snap["devices"]}, snap


def _kinds(local, start):
    return [(c["change"]["kind"], c["change"].get("alert")) for c in local.changes[start:]]


def test_a_device_is_online_while_some_process_renews_it_and_its_alert_is_raised_once(local):
    board, kiosk = local.device(DISPLAY), local.device(KIOSK)
    devices, _ = _devices(local)
    assert devices["Bảng sảnh"]["online"] is False and devices["Bảng sảnh"]["last_seen"] is None
    start = len(local.changes)
    _renew(local, [board, kiosk])  # process A has both
    _renew(local, [])  # process B has none: it sweeps, and must not flip them
    assert _kinds(local, start) == []  # presence is read, not a change
    devices, _ = _devices(local)
    assert devices["Bảng sảnh"]["online"] and devices["Kiosk A"]["online"]
    assert devices["Bảng sảnh"]["last_seen"] is not None

    # A dies with the board on it: nobody renews it; the first sweep after the cutoff
    # flips it offline (once), raising the board's alert.
    start = len(local.changes)
    _renew(local, [kiosk])
    _age(local, board, INTERVAL * presence.OFFLINE_AFTER + 1)
    assert _devices(local)[0]["Bảng sảnh"]["online"] is False  # reads need no sweep
    _renew(local, [kiosk])  # process B
    _renew(local, [kiosk])  # process C
    changes = [c["change"] for c in local.changes[start:]]
    assert [(c["kind"], c["alert"]) for c in changes] == [("device_alert", "offline")]
    assert changes[0]["device"]["name"] == "Bảng sảnh"
    devices, _ = _devices(local)
    assert devices["Bảng sảnh"]["alert"] == "offline" and devices["Kiosk A"]["alert"] is None

    # Back on another process: online again, the alert cleared.
    start = len(local.changes)
    _renew(local, [board])
    assert _kinds(local, start) == [("device_alert", None)]
    assert _devices(local)[0]["Bảng sảnh"]["online"] is True


def test_a_kiosk_gone_offline_raises_no_alert_of_its_own(local):
    kiosk = local.device(KIOSK)
    _renew(local, [kiosk])
    _age(local, kiosk, INTERVAL * presence.OFFLINE_AFTER + 1)
    start = len(local.changes)
    _renew(local, [])
    assert _kinds(local, start) == []  # its printer's alerts are its own
    assert _devices(local)[0]["Kiosk A"]["online"] is False


def test_a_manager_acknowledges_an_alert_audited(local):
    board, tablet = local.device(DISPLAY), local.device(RATING_1)
    _renew(local, [board, tablet])
    _age(local, board, INTERVAL * presence.OFFLINE_AFTER + 1)
    _renew(local, [tablet])
    manager = local.manager()
    first = _devices(local)[1]
    start_seq = first["seq"]
    with pytest.raises(QueueError) as refused:
        local.engine.acknowledge_alert(manager, tablet.id)  # nothing to acknowledge
    assert refused.value.key == "no_device_alert"
    with pytest.raises(QueueError) as refused:
        local.engine.acknowledge_alert(manager, 9999)
    assert refused.value.code == "not_found"
    seen = local.engine.acknowledge_alert(manager, board.id, request_id="a1")
    assert seen["acknowledged"]["by"] == "Đỗ Thị Hạnh" and seen["alert"] == "offline"
    a = m.audit_log
    actor = local.read(
        lambda conn: conn.execute(
            sa.select(a.c.actor).where(a.c.action == "device_alert").order_by(a.c.seq.desc())
        ).scalar()
    )
    assert actor == f"staff:{manager.id}"
    devices, _ = _devices(local)
    assert devices["Bảng sảnh"]["acknowledged"]["by"] == "Đỗ Thị Hạnh"
    # Clerks hear the acknowledgement as the alert it still is; the monitor follows it.
    audience = local.audience("manager")
    follower = REPLICAS["manager"](first)
    for b in local.batches(audience, start_seq, itertools.repeat(2)):
        follower.apply(b)
    fresh = REPLICAS["manager"](_devices(local)[1])
    assert follower.comparable() == fresh.comparable()
    # Back online: the alert clears, and its acknowledgement with it.
    _renew(local, [board, tablet])
    devices, _ = _devices(local)
    assert devices["Bảng sảnh"]["alert"] is None and devices["Bảng sảnh"]["acknowledged"] is None


def test_a_board_away_while_the_centre_is_closed_is_alerted_when_it_opens(local):
    board, tablet = local.device(DISPLAY), local.device(RATING_1)
    _renew(local, [board, tablet])
    _hours(local, {})  # closed every day
    _age(local, board, INTERVAL * presence.OFFLINE_AFTER + 1)
    start = len(local.changes)
    _renew(local, [tablet])
    _renew(local, [tablet])
    assert _kinds(local, start) == []  # nobody needs to know at night
    assert _devices(local)[0]["Bảng sảnh"]["online"] is False
    _hours(local, ALL_DAY)  # the centre opens, the board still away
    _renew(local, [tablet])
    _renew(local, [tablet])
    assert _kinds(local, start) == [("device_alert", "offline")]


def test_a_round_writes_in_a_centre_only_where_something_flips(local):
    """A province's process serves hundreds of centres: its round renews every device in
    one statement and reads which centres have a flip; a quiet centre gets no write (and
    its lock is not taken) however many rounds pass."""
    board, tablet = local.device(DISPLAY), local.device(RATING_1)
    here = {local.centre_id: {board.id, tablet.id}}

    def due(connected):
        return local.store.read(
            lambda conn: presence.due(conn, connected, [local.centre_id], m.utcnow(), INTERVAL)
        )

    assert due(here) == {local.centre_id}  # never seen: recorded offline, connected here
    _renew(local, [board, tablet])
    assert due(here) == set() and due({}) == set()  # all online and renewed: nothing to do
    _age(local, board, INTERVAL * presence.OFFLINE_AFTER + 1)
    assert due({local.centre_id: {tablet.id}}) == {local.centre_id}  # the board went away
    _renew(local, [tablet])  # flipped offline, alert raised
    assert due({local.centre_id: {tablet.id}}) == set()  # alerted once: quiet again
    _hours(local, {})
    _renew(local, [board, tablet])  # back: online, alert cleared
    _age(local, board, INTERVAL * presence.OFFLINE_AFTER + 1)
    _renew(local, [tablet])  # offline again, while closed: no alert
    assert due({local.centre_id: {tablet.id}}) == set()  # and no write every night round
    _hours(local, ALL_DAY)
    assert due({local.centre_id: {tablet.id}}) == {local.centre_id}  # opening: alert due
