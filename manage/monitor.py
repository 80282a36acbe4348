"""The manager's live monitor (issue 17): its door (/manage) and its page (/manage/).

Managers and admins of a centre (permission ``monitor.view``) follow every queue, counter
and device alert of the centre live, from the ``monitor_state`` snapshot and the change
batches (core/roles.py, role ``manager``: every change of its centre). Their actions
(permission ``monitor.act``) are engine operations on the lifecycle tables, audited with
the manager as actor: cancel a waiting ticket, move it to another service or counter
keeping its place, close a counter left open (core/lifecycle.py MANAGER_ACTIONS).
"""

from __future__ import annotations

from core import auth as core_auth
from core import views
from core.auth import token_hash
from core.roles import Audience
from core.validation import REQUEST_ID, Field
from gateway.doors import Client, EngineOp, StaffDoor

TICKET = Field(int, required=True, min=1)
_R = {"request_id": REQUEST_ID}
_ACT = "monitor.act"


class ManageDoor(StaffDoor):
    """``/manage``: ``auth`` carries the session ``token`` and, for an account working
    for several centres, the ``centre`` code to watch (default: its own)."""

    role_name = "manager"
    permission = "monitor.view"
    events = {
        # Today's figures again (visits served, mean waits): the page asks after changes.
        "figures": ({}, "figures"),
        "cancel": ({"ticket_id": TICKET, **_R}, EngineOp("cancel_ticket"), _ACT),
        "move": (
            {
                "ticket_id": TICKET,
                "service": Field(str, max_len=32),
                "counter": Field(int, min=1),
                **_R,
            },
            EngineOp("move_ticket"),
            _ACT,
        ),
        "close_counter": (
            {"counter": Field(int, required=True, min=1), **_R},
            EngineOp("close_left_counter"),
            _ACT,
        ),
    }

    def authenticate(self, auth: dict, lang: str) -> Client:
        token, centre = self.staff(auth)

        def find(conn):
            principal = core_auth.principal_for_token(conn, token)
            centre_id, role = core_auth.staff_centre_id(conn, principal, centre, self.permission)
            return principal, centre_id, role

        principal, centre_id, role = self.ctx.store.read(find)
        # The session is watched: ended, the socket is closed (gateway/sessions.py).
        return Client(
            self.staff_actor(principal, role, centre_id),
            principal=principal,
            session=token_hash(token),
        )

    def audience(self, client: Client) -> Audience:
        return Audience("manager", client.actor.centre_id)

    def snapshot(self, client: Client) -> dict:
        return self.read(views.monitor_snapshot, client.actor.centre_id)

    def figures(self, client: Client) -> dict:
        return self.read(views.monitor_figures, client.actor.centre_id)


DOORS: tuple[type, ...] = (ManageDoor,)
