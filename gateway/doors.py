"""The base of every role's Socket.IO namespace ("door").

A door authenticates the connection, joins it to its audience's room (core/roles.py),
sends its role's snapshot, and turns each event into one engine call. Every event is
acknowledged with ``{"ok": true, ...}`` or ``{"ok": false, "error": {"code",
"message"}}``; nothing a client sends can raise out of here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from flask_socketio import ConnectionRefusedError, Namespace
from gevent.event import AsyncResult

from core.auth import token_hash
from core.engine import Actor
from core.errors import QueueError, refusal_of
from core.permissions import Principal, require
from core.roles import ROLES, Audience, Role
from core.validation import TYPE_NAMES, parse

from .api import device_actor

log = logging.getLogger("motcua.doors")

SNAPSHOT_REUSE_S = 2.0
# Audiences read in one transaction, and such reads in flight at once (a hall
# reconnecting): a board's snapshot is seven statements, so a read of a hundred kept the
# devices of all the others waiting seconds for it; several overlap the database's work.
SNAPSHOTS_AT_ONCE = 25
SNAPSHOT_READERS = 4


@dataclass
class Client:
    """One authenticated connection."""

    actor: Actor
    lang: str = "vi"
    principal: Principal | None = None  # a staff connection's account and its roles
    counter_ids: list[int] = field(default_factory=list)  # a display's or agent's counters
    service_codes: frozenset[str] | None = None  # the services its counts show (None: all)
    base_url: str = ""  # the server's address as this client reached it
    audience: Audience | None = None
    tokens: float = 0.0
    refilled: float = field(default_factory=time.monotonic)
    session: str | None = None  # a clerk's session token's digest (gateway/sessions.py)
    device_token: str | None = None  # a device's token's digest (gateway/sessions.py)
    holds_counter: bool = False  # a clerk's: the counter was open and theirs as they came


def refusal(error: QueueError, lang: str) -> ConnectionRefusedError:
    """A refused connection, saying why: the client's connect_error gets
    ``{"message": <sentence>, "data": {"code", "message"}}``."""
    body = error.as_dict(lang)
    return ConnectionRefusedError(body["message"], body)


@dataclass(frozen=True)
class EngineOp:
    """An event that is exactly the engine operation ``name``, called with the client's
    actor and the event's fields."""

    name: str


class Door(Namespace):
    """A role's namespace. Subclasses set ``role`` (a key of core.roles.ROLES), implement
    ``authenticate``, ``audience`` and ``snapshot``, and declare events in ``events``:
    name -> (fields, EngineOp or the name of a door method[, the staff permission it
    needs, when it is not the door's own])."""

    role_name = ""
    events: dict[str, tuple] = {}
    # What a staff door's connections and events need (core/permissions.py); device doors
    # need none: a device's token opens its own role's door only.
    permission: str | None = None

    def __init__(self, ctx):
        self.role: Role = ROLES[self.role_name]
        super().__init__(self.role.namespace)
        self.ctx = ctx  # gateway.context.ServerContext
        self.clients: dict[str, Client] = {}
        self._snapshots: dict[str, tuple[float, AsyncResult]] = {}
        # Audiences whose snapshots are asked while one is read are read together.
        self._snapshot_reads = ctx.gathered(self.snapshots, SNAPSHOTS_AT_ONCE, SNAPSHOT_READERS)

    # -- to implement ----------------------------------------------------------------------
    def authenticate(self, auth: dict, lang: str) -> Client:
        raise NotImplementedError

    def audience(self, client: Client) -> Audience:
        """Which batches the client receives (the same for every device bound alike)."""
        raise NotImplementedError

    def snapshot(self, conn, client: Client) -> dict:
        """The audience's snapshot, read in ``conn``: once for all its devices
        (``_shared_snapshot``), so nothing in it may be the one device's (``own``)."""
        raise NotImplementedError

    def snapshots(self, conn, clients: dict[str, Client]) -> dict[str, dict]:
        """Several audiences' snapshots (room -> a client of it) in one read: each as
        ``snapshot`` gives it. A door whose views read many audiences in fewer statements
        implements this instead (a counter's, a tablet's: :meth:`by_counter`)."""
        return {room: self.snapshot(conn, client) for room, client in clients.items()}

    @staticmethod
    def by_counter(view, conn, clients: dict[str, Client], *args) -> dict[str, dict]:
        """Rooms' snapshots from ``view(conn, counter ids, *args)`` (-> by counter id),
        for doors whose audience is the client's counter."""
        ids = {room: client.actor.counter_id for room, client in clients.items()}
        found = view(conn, ids.values(), *args)
        return {room: found[counter_id] for room, counter_id in ids.items()}

    def own(self, client: Client, data: dict) -> dict:
        """The shared snapshot as this device gets it (a board's announcement URL names
        the board): a copy with its own parts, or ``data`` itself when it has none."""
        return data

    def refresh(self, client: Client) -> None:
        """Re-read what the client is bound to (after provisioning changed it)."""

    def admit(self, client: Client) -> None:
        """Runs before the connection is accepted (and before it joins its rooms), so
        whatever it changes is in place by the time the client can send anything."""

    # -- connection ------------------------------------------------------------------------
    def on_connect(self, auth=None):
        from flask import request

        lang = "en" if isinstance(auth, dict) and auth.get("lang") == "en" else "vi"
        try:
            if auth is not None and not isinstance(auth, dict):
                raise QueueError("bad_request", "bad_payload")
            client = self.authenticate(auth or {}, lang)
            if client.actor.kind == "device":  # its open sockets close when it is replaced
                client.device_token = token_hash(auth["token"])
            client.lang = lang
            client.tokens = self.ctx.event_burst
            self.admit(client)
            sid = request.sid
            self._bind(sid, client)
        except QueueError as e:
            raise refusal(e, lang) from None
        except Exception as e:
            error = refusal_of(e)
            if error.code == "unavailable":
                log.error("connection to %s refused: the database failed: %s", self.namespace, e)
            else:
                log.exception("connection to %s failed", self.namespace)
            raise refusal(error, lang) from None
        client.base_url = request.host_url.rstrip("/")
        self.clients[sid] = client
        if client.actor.kind == "device" and self.ctx.presence is not None:
            # The monitor shows it online soon.
            self.ctx.presence.connected(client.actor.centre_id, client.actor.id)
        # Sent once the connection is acknowledged: an emit from inside the connect
        # handler would reach the client before its namespace is connected.
        self.socketio.start_background_task(self._first_snapshot, sid, client)
        return True

    def _first_snapshot(self, sid: str, client: Client) -> None:
        try:
            self._send_snapshot(sid, client)
        except Exception:
            log.exception("snapshot failed for %s on %s", client.actor.key, self.namespace)

    def _bind(self, sid: str, client: Client) -> None:
        """Join the client's audience, or move it if its binding changed (provisioning)."""
        audience = self.audience(client)
        if audience == client.audience:
            return
        self.ctx.hub.join(sid, audience)  # first: it may read the store, and fail
        server = self.socketio.server
        if client.audience is not None:
            server.leave_room(sid, client.audience.room, namespace=self.namespace)
        server.enter_room(sid, audience.room, namespace=self.namespace)
        client.audience = audience

    def _send_snapshot(self, sid: str, client: Client) -> dict:
        data = self.own(client, self._shared_snapshot(client))
        self.socketio.emit(self.role.snapshot_event, data, namespace=self.namespace, to=sid)
        return data

    def _shared_snapshot(self, client: Client) -> dict:
        """The audience's snapshot, read once for all its devices asking at about the same
        time (a hall of boards reconnecting after a restart): a snapshot is a function of
        the audience, and one read is reused while no change newer than it was delivered
        here and it is under SNAPSHOT_REUSE_S old. Audiences asking while another's is
        read are read together, in one transaction."""
        room = client.audience.room
        now = time.monotonic()
        cached = self._snapshots.get(room)
        if cached is not None and now - cached[0] < SNAPSHOT_REUSE_S:
            taken = cached[1]
            if not taken.ready():
                taken.get()  # a read in flight: its error is this client's too
            # Even a read still in flight when the client joined its room may have begun
            # before a change whose batch was sent to the room before it joined: reused
            # only when no change newer than it has been delivered here.
            if taken.successful() and taken.value["seq"] >= self.ctx.hub.flushed(
                client.actor.centre_id
            ):
                return taken.value
            now = time.monotonic()
        taken = AsyncResult()
        self._snapshots[room] = (now, taken)
        try:
            data = self._snapshot_reads(room, client)
        except BaseException as e:
            taken.set_exception(e)
            self._snapshots.pop(room, None)
            raise
        taken.set(data)
        return data

    def on_disconnect(self, reason=None):
        from flask import request

        self.clients.pop(request.sid, None)
        self.ctx.hub.leave(request.sid)

    # -- events ----------------------------------------------------------------------------
    def trigger_event(self, event, *args):
        # python-socketio passes a client's event named "connect" or "disconnect" here
        # like the real thing: only a new socket connects, only a leaving one disconnects.
        if event == "connect" and args[0] not in self.clients:
            return super().trigger_event(event, *args)
        if event == "disconnect" and not self.socketio.server.manager.is_connected(
            args[0], self.namespace
        ):
            return super().trigger_event(event, *args)
        # Events need no Flask request context (building one cost a tenth of the server's
        # time under a kiosk flood): the connection's state is the door's Client.
        return self._dispatch(event, *args)

    def _dispatch(self, event: str, sid: str, *args) -> dict:
        client = self.clients.get(sid)
        lang = client.lang if client else "vi"
        # Counted by name when the door knows it: a name a client makes up is "unknown",
        # so clients cannot add series to the metrics.
        known = isinstance(event, str) and (event in self.events or event == "sync")
        self.ctx.metrics.event(self.role_name, event if known else "unknown")
        try:
            if client is None:
                raise QueueError("unauthorized", "auth_missing")
            if not self._take_token(client):
                raise QueueError("rate_limited", "rate_limited")
            # Each device's (clerk's, ticket's) budget of work, all its connections together
            # and, with Redis, all the server's processes (gateway/limits.py).
            if self.ctx.budget is not None:
                self.ctx.budget.spend(client.actor.key)
            if not isinstance(event, str):
                raise QueueError("bad_request", "unknown_event", event=str(event)[:40])
            if len(args) > 1:
                raise QueueError("bad_request", "bad_payload")
            payload = args[0] if args else None
            if event == "sync":
                parse(payload, {})
                self.refresh(client)
                self._bind(sid, client)
                data = self._send_snapshot(sid, client)
                return {"ok": True, "seq": data["seq"]}
            if event not in self.events:
                if self.role.listens_only:
                    raise QueueError("forbidden", "read_only_role", event=str(event)[:40])
                raise QueueError("bad_request", "unknown_event", event=str(event)[:40])
            fields, target, *needs = self.events[event]
            self.check(client, needs[0] if needs else self.permission)
            values = parse(payload, fields)
            if values.get("lang") in ("vi", "en"):  # a request in a language is refused in it
                lang = values["lang"]
            if isinstance(target, EngineOp):
                result = getattr(self.ctx.engine, target.name)(client.actor, **values)
            else:
                result = getattr(self, target)(client, **values)
            return {"ok": True, **(result or {})}
        except QueueError as e:
            return {"ok": False, "error": e.as_dict(lang)}
        except Exception as e:
            error = refusal_of(e)
            if error.code == "unavailable":
                log.error("event %s on %s: the database failed: %s", event, self.namespace, e)
            else:
                log.exception("event %s on %s failed", event, self.namespace)
            return {"ok": False, "error": error.as_dict(lang)}

    @staticmethod
    def check(client: Client, permission: str | None) -> None:
        """The one permission check of every event: a staff connection's principal must
        hold ``permission`` in the centre it acts in."""
        if permission is not None:
            require(client.principal, permission, client.actor.centre_id)

    def _take_token(self, client: Client) -> bool:
        now = time.monotonic()
        client.tokens = min(
            self.ctx.event_burst, client.tokens + (now - client.refilled) * self.ctx.event_rate
        )
        client.refilled = now
        if client.tokens < 1:
            return False
        client.tokens -= 1
        return True

    # -- helpers for subclasses ------------------------------------------------------------
    def read(self, view, *args):
        """``view(conn, *args)`` (a core.views read) in one read transaction."""
        return self.ctx.store.read(lambda conn: view(conn, *args))

    def device(self, auth: dict, kind: str, binding: bool = False) -> Any:
        """Authenticate a device token of ``kind``; returns the device row (and with
        ``binding``, the lookup's counter ids and service codes too)."""
        token = auth.get("token")
        if not isinstance(token, str) or not token:
            raise QueueError("unauthorized", "auth_missing")
        found = self.ctx.lookup_device(token, binding)
        device = found[0] if binding else found
        # A token of another kind (another device's, a clerk's) is refused as unknown: a
        # refusal never tells a prober what else a token would open.
        if device is None or device.kind != kind:
            if device is None and self.ctx.device_revoked(token, kind):
                raise QueueError("unauthorized", "device_revoked")
            raise QueueError("unauthorized", "auth_invalid")
        return found

    device_actor = staticmethod(device_actor)


class StaffDoor(Door):
    """A door for logged-in staff (a clerk's counter page, a manager's monitor): the
    connection's ``auth`` carries the session ``token`` and optionally the ``centre`` code
    to act in (default: the account's own); the account must hold ``permission`` there."""

    def staff(self, auth: dict) -> tuple[str, str | None]:
        """The session token and the centre code the connection names, checked for type."""
        token = auth.get("token")
        if not isinstance(token, str) or not token:
            raise QueueError("unauthorized", "auth_missing")
        centre = auth.get("centre")
        if centre is not None and (not isinstance(centre, str) or len(centre) > 32):
            raise QueueError("bad_request", "wrong_type", field="centre", expected=TYPE_NAMES[str])
        return token, centre

    @staticmethod
    def staff_actor(principal: Principal, role: str, centre_id: int, counter_id=None) -> Actor:
        return Actor("staff", principal.staff_id, centre_id, role, counter_id, principal.full_name)


class BoardDoor(Door):
    """A device that shows what happens at counters (a hallway display, an agent's LED
    boards): bound to some counters, or all of the centre's; it only listens."""

    def authenticate(self, auth: dict, lang: str) -> Client:
        device, ids, codes = self.device(auth, self.role_name, binding=True)
        return Client(self.device_actor(device), counter_ids=ids, service_codes=codes)

    def refresh(self, client: Client) -> None:
        client.counter_ids, client.service_codes = self.ctx.device_binding(client.actor.id)

    def audience(self, client: Client) -> Audience:
        """Its counters (or all) and the counts of the services those serve."""
        ids = client.counter_ids
        return Audience(
            self.role_name,
            client.actor.centre_id,
            frozenset(ids) if ids else None,
            client.service_codes,
        )
