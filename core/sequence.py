"""Each centre's changes in ``seq`` order, whatever order they arrive in.

Changes reach a server process from its own writer, from other processes (through a
transport such as Redis) and from the audit log (gap fill); any of them may come late,
twice or never. :class:`Sequencer` releases each centre's changes exactly once, in
``seq`` order, and says which ranges are missing so its owner can read them back from
the store. It keeps no timers and does no I/O, so it is tested in-process.
"""

from __future__ import annotations

from collections.abc import Mapping


class Sequencer:
    """Orders changes per centre. A change is a mapping with ``centre`` and ``seq``."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}
        self._pending: dict[int, dict[int, Mapping]] = {}

    def start_at(self, centre_id: int, last_seq: int) -> None:
        """Changes of ``centre_id`` up to ``last_seq`` are already delivered."""
        self._next[centre_id] = last_seq + 1

    def forget(self, centre_id: int) -> None:
        """Stop ordering the centre (its next change starts it again, or ``start_at``)."""
        self._next.pop(centre_id, None)
        self._pending.pop(centre_id, None)

    def delivered(self, centre_id: int) -> int | None:
        """The last seq released for the centre (None: nothing known yet)."""
        nxt = self._next.get(centre_id)
        return None if nxt is None else nxt - 1

    def offer(self, change: Mapping) -> list[Mapping]:
        """The changes released by this one, in order: none if it is early (kept until
        the gap closes) or already released; else it and any kept successors."""
        centre_id, seq = change["centre"], change["seq"]
        expected = self._next.setdefault(centre_id, seq)
        if seq < expected:
            return []
        pending = self._pending.setdefault(centre_id, {})
        if seq > expected:
            pending.setdefault(seq, change)
            return []
        out = []
        while change is not None:
            out.append(change)
            self._next[centre_id] = change["seq"] + 1
            change = pending.pop(self._next[centre_id], None)
        return out

    def gap(self, centre_id: int) -> tuple[int, int] | None:
        """The first missing range (first, last) of a centre holding early changes."""
        pending = self._pending.get(centre_id)
        if not pending:
            return None
        return self._next[centre_id], min(pending) - 1

    def behind(self, centre_id: int, store_seq: int) -> tuple[int, int] | None:
        """The range to read back when the store has reached ``store_seq``."""
        nxt = self._next.get(centre_id)
        if nxt is None or store_seq < nxt:
            return None
        return nxt, store_seq
