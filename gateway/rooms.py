"""python-socketio's room bookkeeping, at the cost of the client's own rooms.

Its manager finds a leaving client's rooms by testing every room of the namespace (each
client has a room of its own, so a namespace holds about as many rooms as connections),
and keeps the clients connecting and disconnecting in lists that it searches. With 5,000
boards on a process each disconnect cost ~4,000 look-ups: a hall losing its network, or a
storm of reconnections, took the process tens of seconds of CPU, quadratic in its size
(bench/connect_storm.py: 75 % of the server in ``basic_disconnect``). Here each client's
rooms are indexed, and the pending clients are kept in sets (insertion-ordered dicts with
the list methods the manager uses), so a disconnect costs what the client's own rooms
cost.
"""

from __future__ import annotations

import socketio


class _SidSet(dict):
    """The manager's list of pending clients, as a set: ``append``, ``remove``, ``in``
    and ``len`` in constant time."""

    def __init__(self, sids=()):
        super().__init__((s, None) for s in sids)

    def append(self, sid) -> None:
        self[sid] = None

    def remove(self, sid) -> None:
        del self[sid]


class _Pending(dict):
    """namespace -> pending clients: the manager stores a new list; a set is kept."""

    def __setitem__(self, namespace, sids) -> None:
        super().__setitem__(namespace, sids if isinstance(sids, _SidSet) else _SidSet(sids))


class IndexedManager(socketio.Manager):
    """socketio.Manager whose disconnects and room look-ups cost the client's own rooms."""

    def __init__(self):
        super().__init__()
        self.pending_connect = _Pending()
        self.pending_disconnect = _Pending()
        self._rooms_of: dict[tuple[str, str], set] = {}  # (namespace, sid) -> its rooms

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid, namespace, room):
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def basic_disconnect(self, sid, namespace, **kwargs):
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self._rooms_of.pop((namespace, sid), None)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            sids = pending.get(namespace)
            if sids is not None and sid in sids:
                sids.remove(sid)
                if not sids:
                    del pending[namespace]

    def get_rooms(self, sid, namespace):
        return [r for r in self._rooms_of.get((namespace, sid), ()) if r is not None]
