"""gateway/rooms.py: the indexed manager keeps exactly python-socketio's rooms, and a
client's disconnect never walks the namespace's other rooms (it did: quadratic in the
process's connections)."""

from __future__ import annotations

import itertools
import random

import socketio

from gateway.rooms import IndexedManager


class _Server:
    """What a manager asks of its server: new ids."""

    def __init__(self):
        self._ids = itertools.count(1)
        self.eio = self
        self.packet_class = socketio.packet.Packet

    def generate_id(self):
        return f"s{next(self._ids)}"


def managers():
    out = []
    for cls in (socketio.Manager, IndexedManager):
        m = cls()
        m.set_server(_Server())
        out.append(m)
    return out


def state(m) -> dict:
    rooms = {ns: {r: dict(b) for r, b in rs.items()} for ns, rs in m.rooms.items()}
    pending = (
        {ns: sorted(s) for ns, s in m.pending_connect.items()},
        {ns: sorted(s) for ns, s in m.pending_disconnect.items()},
    )
    return {"rooms": rooms, "pending": pending}


def test_the_same_rooms_as_python_socketio_through_any_sequence():
    rng = random.Random(7)
    plain, indexed = managers()
    live: list[tuple[str, str]] = []  # (namespace, sid), the same in both
    for step in range(3000):
        op = rng.random()
        ns = rng.choice(["/display", "/counter"])
        if op < 0.35 or not live:
            eio = f"e{step}"
            sids = [m.connect(eio, ns) for m in (plain, indexed)]
            assert sids[0] == sids[1]
            live.append((ns, sids[0]))
        elif op < 0.6:
            n, sid = rng.choice(live)
            room = f"room{rng.randrange(20)}"
            for m in (plain, indexed):
                m.enter_room(sid, n, room)
        elif op < 0.75:
            n, sid = rng.choice(live)
            room = rng.choice(plain.get_rooms(sid, n) or ["room0"])
            for m in (plain, indexed):
                m.leave_room(sid, n, room)
        else:  # as the server leaves: told first (its handler runs), then gone
            n, sid = live.pop(rng.randrange(len(live)))
            told = rng.random() < 0.7
            for m in (plain, indexed):
                if told:
                    m.pre_disconnect(sid, n)
                    assert not m.is_connected(sid, n)
                m.disconnect(sid, n)
        if step % 100 == 0:
            assert state(plain) == state(indexed), step
            for n, sid in live:
                assert sorted(plain.get_rooms(sid, n)) == sorted(indexed.get_rooms(sid, n))
                assert plain.is_connected(sid, n) == indexed.is_connected(sid, n)
    assert state(plain) == state(indexed)


class _NoWalk(dict):
    """A namespace's rooms that may be looked up, not walked."""

    def copy(self):
        raise AssertionError("the namespace's rooms were walked")

    def items(self):
        raise AssertionError("the namespace's rooms were walked")


def test_a_disconnect_looks_only_at_the_clients_own_rooms():
    _, m = managers()
    sids = [m.connect(f"e{i}", "/display") for i in range(2000)]
    for i, sid in enumerate(sids):
        m.enter_room(sid, "/display", f"centre{i % 7}")
    m.rooms["/display"] = _NoWalk(m.rooms["/display"])
    for sid in sids[:1000]:
        m.disconnect(sid, "/display")
    assert len(m.rooms["/display"][None]) == 1000
    assert sum(len(m.rooms["/display"][f"centre{c}"]) for c in range(7)) == 1000
