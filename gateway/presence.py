"""Devices' presence, renewed by each server process (core/presence.py says the rules).

Every ``interval_s`` (``MOTCUA_PRESENCE_S``, 15 s), and soon after a device connects,
this process writes ``last_seen`` for the devices connected to it (one statement for all)
and sweeps the centres it follows for devices no process has renewed for a while, which
it records offline: one read finds the centres where something flips, and only those are
written, each in its centre's transaction. Several processes agree through the store:
each renews only its own devices, and a flip is a conditional update, recorded once
whoever sees it first.
"""

from __future__ import annotations

import logging

from core import presence, views

log = logging.getLogger("motcua.presence")


class PresenceLoop:
    def __init__(self, socketio, store, hub, doors, interval_s: float = views.PRESENCE_S):
        self.socketio = socketio
        self.store = store
        self.hub = hub
        self.doors = doors  # every door: their device clients are renewed
        self.interval_s = interval_s
        self._task = None
        self._soon = False
        self._new: dict[int, set[int]] = {}  # devices connected since the last soon round

    def start(self) -> None:
        if self._task is None and self.interval_s > 0:
            self._task = self.socketio.start_background_task(self._run)

    def connected(self, centre_id: int, device_id: int) -> None:
        """A device connected here: renew soon (in a second, with any others arriving),
        so the monitor shows it online without waiting for the next round. That round
        takes only the devices connected since the last: a hall of thousands
        reconnecting (a process killed) is renewed as it arrives, not whole every second."""
        self._new.setdefault(centre_id, set()).add(device_id)
        if not self._soon and self._task is not None:
            self._soon = True
            self.socketio.start_background_task(self._soon_round)

    def _soon_round(self) -> None:
        self.socketio.sleep(1.0)
        self._soon = False
        new, self._new = self._new, {}
        here = self._connected_devices()  # those still connected
        new = {c: ids & here[c] for c, ids in new.items() if ids & here.get(c, set())}
        try:
            presence.round_of(self.store, new, set(new), self.interval_s)
        except Exception as e:  # noqa: BLE001 - a lost database: the next round
            log.warning("could not renew the presence of the devices just connected: %s", e)

    def _connected_devices(self) -> dict[int, set[int]]:
        """centre id -> ids of the devices connected to this process."""
        out: dict[int, set[int]] = {}
        for door in self.doors:
            for client in list(door.clients.values()):
                actor = client.actor
                if actor.kind == "device":
                    out.setdefault(actor.centre_id, set()).add(actor.id)
        return out

    def _round(self) -> None:
        connected = self._connected_devices()
        centres = set(connected) | set(self.hub.following())
        try:
            presence.round_of(self.store, connected, centres, self.interval_s)
        except Exception as e:  # noqa: BLE001 - a lost database: next round
            log.warning("could not renew the presence of this process's devices: %s", e)

    def _run(self) -> None:
        while True:
            self.socketio.sleep(self.interval_s)
            self._round()
