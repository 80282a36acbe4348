"""Who acts, and how one change is recorded: shared by the engine and the other core
modules that write (printing, dossiers)."""

from __future__ import annotations

from dataclasses import dataclass

from .roles import change_record
from .store import Tx


@dataclass(frozen=True)
class Actor:
    """Who is acting: a device (kiosk, display, rating, agent) or a staff member."""

    kind: str  # "device" | "staff" | "ticket" (a status page: its key is the credential)
    id: int
    centre_id: int
    role: str  # device kind, or staff role
    counter_id: int | None = None  # the counter a clerk operates / a tablet stands at
    name: str = ""
    # A device acting for the counter's clerk on duty (an agent's call keypad): the clerk
    # the visit is served by. The audit's actor stays the device; its details name them.
    clerk_id: int | None = None
    clerk_name: str = ""

    @classmethod
    def staff(cls, principal, role: str, counter) -> Actor:
        """A staff member (a core.permissions.Principal) acting at ``counter`` (a row)."""
        return cls(
            "staff", principal.staff_id, counter.centre_id, role, counter.id, principal.full_name
        )

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def staff_id(self) -> int | None:
        """The clerk doing it: the staff member acting, or the one a device acts for."""
        return self.id if self.kind == "staff" else self.clerk_id

    @property
    def staff_name(self) -> str:
        return self.name if self.kind == "staff" else self.clerk_name


def record(
    tx: Tx,
    actor: Actor,
    action: str,
    body: dict | None = None,
    *,
    counters=(),
    services=(),
    summaries=(),
    request_id: str | None = None,
    ticket_id: int | None = None,
    details: dict | None = None,
) -> int:
    """Record one change of the actor's centre. ``counters`` (ids) and ``services``
    (codes) are what it touches, for routing; ``summaries`` the services whose counts or
    waits it moved. A device acting for a clerk is the audit's actor; the details name
    the clerk (``on_behalf_of``)."""
    if actor.kind != "staff" and actor.clerk_id is not None:
        details = {
            **(details or {}),
            "on_behalf_of": {"staff": actor.clerk_id, "full_name": actor.clerk_name},
        }
    return tx.change(
        actor.centre_id,
        action,
        actor.key,
        change=change_record(
            action, body, counters=counters, services=services, summaries=summaries
        ),
        request_id=request_id,
        ticket_id=ticket_id,
        counter_id=actor.counter_id,
        details=details,
    )
