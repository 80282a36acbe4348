"""A process follows only the centres its sockets belong to (gateway/hub.py): in-process,
with the engine on SQLite and a transport that records what it is asked to do."""

from __future__ import annotations

import json

import gevent
import gevent.event
import pytest

from gateway.hub import ChangeHub
from harness.centre import KIOSK

OTHER_CENTRE = 7_000  # a centre no socket here belongs to


class RecordingTransport:
    url = "memory://"

    def __init__(self):
        self.published: list[tuple[int, list[int]]] = []  # (centre, seqs)
        self.subscriptions: list[str] = []
        self.listening = gevent.event.Event()
        self.stop = gevent.event.Event()

    def publish(self, centre_id, message):
        self.published.append((centre_id, [c["seq"] for c in json.loads(message)["changes"]]))

    def listen(self, centres):
        self.subscriptions.append(f"listen {sorted(centres())}")
        self.listening.set()
        yield None
        self.stop.wait()

    def follow(self, centre_id):
        self.subscriptions.append(f"follow {centre_id}")

    def unfollow(self, centre_id):
        self.subscriptions.append(f"unfollow {centre_id}")


class CountingStore:
    """The local store, counting which centres' seqs are read."""

    def __init__(self, store):
        self.store = store
        self.asked: list[list[int]] = []
        self.fail = False

    def centre_seqs(self, ids):
        if self.fail:
            raise ConnectionError("database down")
        self.asked.append(sorted(ids))
        return self.store.centre_seqs(ids)

    def changes(self, *args):
        return self.store.changes(*args)


@pytest.fixture
def hub(local):
    sent: list[tuple[str, dict]] = []
    transport = RecordingTransport()
    store = CountingStore(local.store)
    hub = ChangeHub(
        lambda namespace, room, batch: sent.append((room, batch)),
        store,
        lambda: transport,
        sweep_s=3600,
        counts_interval_s=0,
    )
    local.store.on_commit = lambda changes: (local.changes.extend(changes), hub.committed(changes))
    hub.start()
    transport.listening.wait(5)
    hub.sent, hub.recording, hub.counting = sent, transport, store
    yield hub
    hub.stop()


def seq_of(local) -> int:
    [(_, seq)] = local.store.centre_seqs([local.centre_id])
    return seq


def settle():
    for _ in range(5):
        gevent.sleep(0)


def test_a_centre_without_sockets_here_is_published_but_not_followed(local, hub):
    local.engine.issue_ticket(local.device(KIOSK), "TP")
    settle()
    assert hub.following() == []
    assert hub.recording.published == [(local.centre_id, [seq_of(local)])]
    assert hub.sent == []
    assert hub.sequencer.delivered(local.centre_id) is None
    hub._sweep()
    assert hub.counting.asked == []  # nothing followed: nothing to compare


def test_the_first_socket_starts_the_centre_at_the_store_seq_and_the_last_stops_it(local, hub):
    local.engine.issue_ticket(local.device(KIOSK), "TP")
    start = seq_of(local)
    kiosks = local.audience("kiosk")
    hub.join("s1", kiosks)
    hub.join("s2", kiosks)
    assert hub.following() == [local.centre_id]
    assert hub.recording.subscriptions == ["listen []", f"follow {local.centre_id}"]
    assert hub.sequencer.delivered(local.centre_id) == start == hub.flushed(local.centre_id)

    local.engine.issue_ticket(local.device(KIOSK), "TP")
    settle()
    [(room, batch)] = hub.sent
    assert room == kiosks.room and (batch["after"], batch["seq"]) == (start, start + 1)

    hub.leave("s1")
    assert hub.following() == [local.centre_id]
    hub.leave("s2")
    assert hub.following() == []
    assert hub.recording.subscriptions[-1] == f"unfollow {local.centre_id}"
    assert hub.sequencer.delivered(local.centre_id) is None
    local.engine.issue_ticket(local.device(KIOSK), "TP")
    settle()
    assert len(hub.sent) == 1  # nobody here to hear it


def test_moving_a_socket_within_its_centre_keeps_the_centre_followed(local, hub):
    hub.join("s1", local.audience("display"))
    hub.join("s1", local.audience("display", [local.counter_id(1)]))
    assert hub.recording.subscriptions == ["listen []", f"follow {local.centre_id}"]
    assert hub.following() == [local.centre_id]


def test_a_join_that_cannot_read_the_store_changes_nothing(local, hub):
    hub.counting.fail = True
    with pytest.raises(ConnectionError):
        hub.join("s1", local.audience("kiosk"))
    assert hub.following() == []
    assert hub.recording.subscriptions[-2:] == [
        f"follow {local.centre_id}",
        f"unfollow {local.centre_id}",
    ]
    hub.counting.fail = False
    hub.join("s1", local.audience("kiosk"))
    assert hub.following() == [local.centre_id]


def test_changes_of_other_centres_heard_from_elsewhere_are_ignored(local, hub):
    hub.join("s1", local.audience("kiosk"))
    hub._offer({"centre": OTHER_CENTRE, "seq": 5, "change": {}})
    settle()
    assert hub.sent == [] and hub.sequencer.delivered(OTHER_CENTRE) is None


def test_the_sweep_reads_only_followed_centres_and_delivers_what_was_missed(local, hub):
    hub.join("s1", local.audience("kiosk"))
    start = seq_of(local)
    # A change committed by another program (no transport told us): the sweep finds it.
    local.store.on_commit = local.changes.extend
    local.engine.issue_ticket(local.device(KIOSK), "TP")
    hub._sweep()
    settle()
    assert hub.counting.asked[-1] == [local.centre_id]
    [(_, batch)] = hub.sent
    assert (batch["after"], batch["seq"]) == (start, start + 1)


def test_a_writer_batch_is_published_per_centre_in_order(local, hub):
    changes = [
        {"centre": 1, "seq": 10, "change": {}},
        {"centre": 1, "seq": 11, "change": {}},
        {"centre": 2, "seq": 4, "change": {}},
        {"centre": 1, "seq": 12, "change": {}},
    ]
    hub.committed(changes)
    settle()
    assert hub.recording.published == [(1, [10, 11]), (2, [4]), (1, [12])]


def test_listening_again_subscribes_every_followed_centre(local, hub):
    hub.join("s1", local.audience("kiosk"))
    hub.recording.listening.clear()
    hub.recording.stop.set()  # the subscription ends: the hub listens again after a pause
    assert hub.recording.listening.wait(5)
    assert hub.recording.subscriptions[-1] == f"listen [{local.centre_id}]"
