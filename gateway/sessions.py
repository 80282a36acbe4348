"""Open sockets end with the credential that opened them.

A clerk's session ends when its clerk logs out, when a password is changed or the account
deactivated (core/auth.py ``end_sessions``: provisioning or the admin API), when an admin
ends it, or when it expires; a device's token ends when the device is revoked or given
another token. The token
then stops working at once for HTTP and for new connections; the sockets it opened are
closed here, in every process:

- at once in the process that served a logout;
- within a second everywhere else after a change of the centre that may end access
  (core/roles.py ``ACCESS_KINDS``: ``device_revoked``, ``staff_changed``,
  ``sessions_ended``, ``configured``...), which each process hears in the centre's order
  (gateway/hub.py, through Redis between processes) and answers by checking the
  credentials of all its open sockets against the store (one query each for sessions and
  devices): the store says what holds, the change only says when to look;
- within ``interval_s`` otherwise for sessions (one expired; the live ones are marked seen
  every ``core.auth.SEEN_EVERY_S``, for the admin's list), and for devices within
  ``interval_s`` per ``PERIODIC_DEVICES`` of them open here (a change made by another
  program while no process followed the centre).

A closed page connects again, is refused with the reason (a revoked device: "device_revoked",
which the device pages show), and stays refused. A device whose binding changed
(``device_changed``) is bound again and sent a new snapshot instead; an account whose
entry changed (``staff_changed``) acts with its new roles on its open sockets, and loses
those it no longer holds.
"""

from __future__ import annotations

import logging
import time

from core import auth
from core.roles import ACCESS_KINDS, DEVICE_CHANGED, STAFF_CHANGED

log = logging.getLogger("motcua.sessions")

CHECK_INTERVAL_S = 5.0
# Devices read by each periodic check (one statement under SQLite's parameter limit).
PERIODIC_DEVICES = 500


class SessionWatch:
    """socketio: the server's Flask-SocketIO object; store: core.store.Store; doors: the
    doors whose clients hold a session or a device token; interval_s: how often every
    open socket's credential is checked (0: only after changes and logouts)."""

    def __init__(self, socketio, store, doors, interval_s: float = CHECK_INTERVAL_S):
        self.socketio = socketio
        self.store = store
        self.doors = doors
        self.interval_s = interval_s
        self._task = None
        self._pending = False  # a check is due: changes arriving meanwhile share it
        self._after = 0  # the periodic check's next devices: those with greater ids, in turn
        self._marked = 0.0  # when the open sessions were last marked seen (monotonic)

    def start(self) -> None:
        if self._task is None and self.interval_s > 0:
            self._task = self.socketio.start_background_task(self._run)

    def _clients(self):
        return [
            (door, sid, client) for door in self.doors for sid, client in list(door.clients.items())
        ]

    def _watched(self) -> list[tuple[object, str, str]]:
        return [
            (door, sid, client.session) for door, sid, client in self._clients() if client.session
        ]

    def _close(self, door, sid: str, why: str) -> None:
        log.info("closing %s on %s: %s", sid, door.namespace, why)
        self.socketio.server.disconnect(sid, namespace=door.namespace)

    def ended(self, digest: str) -> None:
        """A session ended here (logout): close its sockets in this process now."""
        for door, sid, session in self._watched():
            if session == digest:
                self._close(door, sid, "logged out")

    def changed(self, change: dict) -> None:
        """A released change of a centre followed here (gateway/hub.py): after one that may
        end access, check every open socket soon (in its own greenlet)."""
        kind = change["kind"]
        if kind == DEVICE_CHANGED and change["device"]["active"]:
            self.socketio.start_background_task(self._rebind, change["device"]["id"])
        if kind == STAFF_CHANGED:
            self.socketio.start_background_task(self._regrant, change["staff"]["id"])
        if kind in ACCESS_KINDS and not self._pending:
            self._pending = True
            self.socketio.start_background_task(self._check_now)

    def _check_now(self) -> None:
        self._pending = False
        try:
            self.check()
        except Exception as e:  # noqa: BLE001 - the periodic check tries again
            log.warning("could not check the open sockets' credentials: %s", e)

    def _rebind(self, device_id: int) -> None:
        """A device's entry changed: its sockets here follow its new binding (a new
        snapshot), without the other devices of the centre taking one."""
        for door, sid, client in self._clients():
            if client.actor.kind == "device" and client.actor.id == device_id:
                try:
                    door.refresh(client)
                    door._bind(sid, client)
                    door._send_snapshot(sid, client)
                except Exception as e:  # noqa: BLE001 - it takes one at its next sync
                    log.warning("could not rebind device %s: %s", device_id, e)

    def _regrant(self, staff_id: int) -> None:
        """An account's entry changed: its sockets here act with its roles as they now are,
        and those it may no longer hold (no role with the door's permission in the
        socket's centre, or a counter no longer among its counters) are closed."""
        mine = [
            (door, sid, client)
            for door, sid, client in self._clients()
            if client.principal is not None and client.principal.staff_id == staff_id
        ]
        if not mine:
            return
        centres = {client.actor.centre_id for _, _, client in mine}

        def read(conn):
            principal = auth.principal_by_id(conn, staff_id)
            allowed = {c: set(auth.staff_counter_ids(conn, staff_id, c)) for c in centres}
            return principal, allowed

        try:
            principal, allowed = self.store.read(read)
        except Exception as e:  # noqa: BLE001 - the session check still runs
            log.warning("could not read the roles of staff %s: %s", staff_id, e)
            return
        for door, sid, client in mine:
            centre, counter = client.actor.centre_id, client.actor.counter_id
            held = principal is not None and (
                door.permission is None or principal.may(door.permission, centre)
            )
            if held and counter is not None and allowed[centre]:
                held = counter in allowed[centre]
            if held:
                client.principal = principal
            else:
                self._close(door, sid, "its account no longer holds this connection")

    def check(self, changed: bool = True) -> None:
        """Close the sockets whose credential ended: every session and, after a change
        (``changed``), every device. The periodic check (``changed=False``) reads the
        devices ``PERIODIC_DEVICES`` at a time, in turn: a device's token ends only with
        a change of its centre, which the hub releases here and which calls this at once,
        so the round is a net for what that missed, and reading thousands of devices in
        the process's loop every round stalled it (7 ms at 5,000 on SQLite). Sessions are
        read every time: they also end by expiring."""
        clients = self._clients()
        sessions = sorted({c.session for _, _, c in clients if c.session})
        devices = sorted({c.actor.id for _, _, c in clients if c.actor.kind == "device"})
        if not changed and len(devices) > PERIODIC_DEVICES:
            later = [d for d in devices if d > self._after]
            devices = (later + devices[: len(devices) - len(later)])[:PERIODIC_DEVICES]
            self._after = devices[-1]
        if not sessions and not devices:
            return

        def read(conn):
            return auth.live_sessions(conn, sessions), auth.active_devices(conn, devices)

        live, active = self.store.read(read)
        if not changed and live and time.monotonic() - self._marked >= auth.SEEN_EVERY_S:
            # The admin's list of sessions says when each was last seen (core/admin.py).
            self._marked = time.monotonic()
            auth.seen(self.store, sorted(live))
        checked = set(devices)
        for door, sid, client in clients:
            if client.session and client.session not in live:
                self._close(door, sid, "its session ended")
            elif (
                client.device_token
                and client.actor.id in checked
                and active.get(client.actor.id) != client.device_token
            ):
                self._close(door, sid, "the device was revoked or given another token")

    def _run(self) -> None:
        while True:
            self.socketio.sleep(self.interval_s)
            try:
                self.check(changed=False)
            except Exception as e:  # noqa: BLE001 - a lost database: try again next round
                log.warning("could not check the open sockets' credentials: %s", e)
