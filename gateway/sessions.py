"""Clerks' open sockets end with their session.

A session ends when its clerk logs out, when provisioning changes the password or
deactivates the account (core/auth.py ``end_sessions``), or when it expires. Its token then
stops working at once for HTTP; the sockets it opened are closed here: at once in the
process that served the logout, and within ``interval_s`` everywhere else (each process
checks the sessions of its open sockets, one query for all of them, so a change made by
``server.py provision`` or by another process is seen too).
"""

from __future__ import annotations

import logging

from core import auth

log = logging.getLogger("motcua.sessions")

CHECK_INTERVAL_S = 5.0


class SessionWatch:
    def __init__(self, socketio, store, doors, interval_s: float = CHECK_INTERVAL_S):
        self.socketio = socketio
        self.store = store
        self.doors = doors  # the doors whose clients may hold a session
        self.interval_s = interval_s
        self._task = None

    def start(self) -> None:
        if self._task is None and self.interval_s > 0:
            self._task = self.socketio.start_background_task(self._run)

    def _watched(self) -> list[tuple[object, str, str]]:
        return [
            (door, sid, client.session)
            for door in self.doors
            for sid, client in list(door.clients.items())
            if client.session
        ]

    def _close(self, door, sid: str, why: str) -> None:
        log.info("closing %s on %s: %s", sid, door.namespace, why)
        self.socketio.server.disconnect(sid, namespace=door.namespace)

    def ended(self, digest: str) -> None:
        """A session ended here (logout): close its sockets in this process now."""
        for door, sid, session in self._watched():
            if session == digest:
                self._close(door, sid, "logged out")

    def check(self) -> None:
        watched = self._watched()
        if not watched:
            return
        digests = sorted({s for _, _, s in watched})
        live = self.store.read(lambda conn: auth.live_sessions(conn, digests))
        for door, sid, session in watched:
            if session not in live:
                self._close(door, sid, "its session ended")

    def _run(self) -> None:
        while True:
            self.socketio.sleep(self.interval_s)
            try:
                self.check()
            except Exception as e:  # noqa: BLE001 - a lost database: try again next round
                log.warning("could not check the clerks' sessions: %s", e)
