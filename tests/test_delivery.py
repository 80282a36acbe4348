"""Protocol v2 over real sockets: every device rebuilds the truth from its snapshot and
the batches it receives, on SQLite, on PostgreSQL, and across two processes with Redis."""

from __future__ import annotations

import random
import threading
import time

import pytest

from harness.centre import (
    AGENT,
    DISPLAY,
    DISPLAY_C3,
    KIOSK,
    KIOSK_B,
    RATING_1,
    RATING_2,
    CentreServer,
)
from harness.replica import REPLICAS, NeedsSync

QUIET_S = 1.0  # longer than the hub's hold on counts-only batches (0.5 s)


class Hall:
    """Every kind of device on one or two server processes, following the centre."""

    def __init__(self, devices, first, second=None):
        second = second or first
        self.kiosks = [devices.kiosk(first), devices.kiosk(second, KIOSK_B)]
        self.clerks = {
            1: devices.counter(first, "clerk1", 1),
            2: devices.counter(second, "clerk2", 2),
            3: devices.counter(first, "clerk3", 3),
        }
        self.tablets = {1: devices.rating(second, RATING_1), 2: devices.rating(first, RATING_2)}
        self.followers = [
            ("kiosk", self.kiosks[0]),
            ("display", devices.display(first, DISPLAY)),
            ("display", devices.display(second, DISPLAY_C3)),
            ("agent", devices(second, "/agent", {"token": AGENT})),
            *(("counter", c) for c in self.clerks.values()),
            *(("rating", t) for t in self.tablets.values()),
        ]
        snapshot_event = {
            "kiosk": "services",
            "display": "snapshot",
            "agent": "agent_state",
            "counter": "counter_state",
            "rating": "rating_state",
        }
        self.snapshots = [d.wait_event(snapshot_event[role]) for role, d in self.followers]
        self.snapshot_event = snapshot_event

    def day(self, rng: random.Random, steps: int) -> None:
        current: dict[int, dict] = {}
        finished: list[tuple[int, int]] = []
        for _ in range(steps):
            n = rng.choice([1, 2, 3])
            clerk, ticket = self.clerks[n], current.get(n)
            roll = rng.random()
            if roll < 0.35:
                rng.choice(self.kiosks).call(
                    "issue",
                    {
                        "service": rng.choice(["TP", "TP", "HT", "DD"]),
                        "priority": rng.choice([None, None, "elderly"]),
                    },
                )
            elif ticket is None or roll < 0.45:
                ack = clerk.call("call_next", {})
                if ack["ok"]:
                    if ticket is not None:
                        finished.append((n, ticket["id"]))
                    current[n] = ack["ticket"]
                elif ticket is None and rng.random() < 0.2:
                    if clerk.call("pause", {"reason": "Nghỉ giữa giờ"})["ok"]:
                        assert clerk.call("resume", {})["ok"]
            elif roll < 0.55:
                clerk.call("start", {"ticket_id": ticket["id"]})
            elif roll < 0.62:
                clerk.call("recall", {"ticket_id": ticket["id"]})
            elif roll < 0.72:
                if clerk.call("finish", {"ticket_id": ticket["id"]})["ok"]:
                    finished.append((n, ticket["id"]))
                    current.pop(n)
            elif roll < 0.78:
                if clerk.call("no_show", {"ticket_id": ticket["id"]})["ok"]:
                    current.pop(n)
            elif roll < 0.86:
                target = rng.choice([{"service": "HT"}, {"service": "DD"}, {"counter": 3}])
                if clerk.call("transfer", {"ticket_id": ticket["id"], **target})["ok"]:
                    current.pop(n)
            elif finished:
                n, ticket_id = finished.pop(rng.randrange(len(finished)))
                if n in self.tablets:
                    self.tablets[n].call(
                        "rate", {"ticket_id": ticket_id, "score": rng.randint(1, 3)}
                    )

    def check_every_replica(self) -> None:
        """Each device's snapshot plus its batches equals a fresh snapshot."""
        time.sleep(QUIET_S)
        for (role, device), snapshot in zip(self.followers, self.snapshots, strict=True):
            replica = REPLICAS[role](snapshot)
            for batch in device.batches():
                replica.apply(batch)
            assert device.chain_problem() is None, role
            with device.cond:
                device.events.clear()
            device.call("sync")
            fresh = device.wait_event(self.snapshot_event[role])
            assert replica.seq <= fresh["seq"]
            assert replica.comparable() == {**fresh, "seq": replica.seq}, role


def test_every_device_follows_a_random_day_from_its_batches(any_server, devices):
    hall = Hall(devices, any_server)
    rng = random.Random(11)
    for _ in range(3):  # checked along the day, not only at its end
        hall.day(rng, 60)
        hall.check_every_replica()


def test_devices_on_two_processes_follow_the_same_day(tmp_path, pg_url, redis_url, devices):
    a = CentreServer(tmp_path, pg_url, redis_url).start()
    b = CentreServer(tmp_path, pg_url, redis_url, provision=None).start()
    try:
        hall = Hall(devices, a, b)
        hall.day(random.Random(12), 120)
        hall.check_every_replica()
    finally:
        a.stop()
        b.stop()


def test_a_device_that_loses_a_batch_resynchronises_to_the_same_state(sqlite_server, devices):
    display = devices.display(sqlite_server)
    replica = REPLICAS["display"](display.wait_event("snapshot"))
    kiosk, clerk = devices.kiosk(sqlite_server), devices.counter(sqlite_server, "clerk1", 1)
    for _ in range(3):
        kiosk.call("issue", {"service": "TP"})
        time.sleep(0.6)  # past the counts hold: one batch each
    ticket = clerk.call("call_next", {})["ticket"]
    display.wait_change("called", ticket__id=ticket["id"])
    batches = display.batches()
    assert len(batches) >= 4
    lost, rest = batches[1], batches[2:]
    replica.apply(batches[0])
    with pytest.raises(NeedsSync):
        replica.apply(rest[0])  # its `after` is the seq of the lost one
    assert rest[0]["after"] == lost["seq"]
    with display.cond:
        display.events.clear()
    display.call("sync")
    replica = REPLICAS["display"](display.wait_event("snapshot"))
    assert replica.state["counters"][0]["current"] == {"number": ticket["number"], "service": "TP"}
    clerk.call("start", {"ticket_id": ticket["id"]})
    clerk.call("finish", {"ticket_id": ticket["id"]})
    display.wait_change("finished", ticket__id=ticket["id"])
    for batch in display.batches():
        replica.apply(batch)
    display.call("sync")
    assert replica.comparable() == {
        **display.wait_event("snapshot"),
        "seq": replica.seq,
    }


def test_during_a_small_flood_each_call_reaches_each_display_once_in_order(sqlite_server, devices):
    displays = [devices.display(sqlite_server) for _ in range(3)]
    displays.append(devices.display(sqlite_server, DISPLAY_C3))
    for d in displays:
        d.wait_event("snapshot")
    clerks = [
        devices.counter(sqlite_server, "clerk1", 1),
        devices.counter(sqlite_server, "clerk3", 3),
    ]
    stop = threading.Event()

    def flood(token):
        kiosk = devices.kiosk(sqlite_server, token)
        while not stop.is_set():
            kiosk.call("issue", {"service": random.choice(["TP", "DD"])})

    threads = [threading.Thread(target=flood, args=(t,)) for t in (KIOSK, KIOSK_B)]
    for t in threads:
        t.start()
    called: list[dict] = []
    try:
        time.sleep(0.3)
        for _ in range(15):
            for clerk in clerks:
                ack = clerk.call("call_next", {})
                assert ack["ok"], ack
                called.append(ack["ticket"])
                assert clerk.call("start", {"ticket_id": ack["ticket"]["id"]})["ok"]
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    time.sleep(QUIET_S)
    for d in displays:
        assert d.chain_problem() is None
        seqs = d.event_seqs()
        assert seqs == sorted(set(seqs)), "events twice or out of order"
        heard = [
            e["ticket"]["id"] for b in d.batches() for e in b["events"] if e["kind"] == "called"
        ]
        shown = [t for t in called if d is not displays[-1] or t["counter"] == 3]
        assert sorted(heard) == sorted(t["id"] for t in shown)
