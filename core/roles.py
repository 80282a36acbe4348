"""The device roles, declared once: namespace, snapshot, and which changes concern them.

The doors (one per role folder), the hub's batching and docs/protocol.md's role table
all read this. An :class:`Audience` is a set of devices that receive exactly the same
batches (same role, centre and binding), so the hub builds and encodes each batch once
per audience, whatever the number of sockets in it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Change kinds (the audit log's actions that devices hear about).
TICKET_KINDS = ("issued", "called", "started", "finished", "no_show", "transferred", "cancelled")
COUNTER_KINDS = ("counter_opened", "counter_paused", "counter_resumed", "counter_closed")
CONFIGURED = "configured"  # provisioning changed the centre: every device takes a snapshot
# One entry of the configuration changed (the admin API, core/admin.py): only the devices
# it concerns hear it (docs/protocol.md section 6.6). The audit log's action stays
# ``configured``; these are the kinds devices are told.
SERVICE_CHANGED = "service_changed"  # with the service as a kiosk shows it (``active``)
COUNTER_CHANGED = "counter_changed"  # its devices take a new snapshot
DEVICE_CHANGED = "device_changed"  # its open connections are bound again
DEVICE_REVOKED = "device_revoked"  # its open connections are closed
STAFF_CHANGED = "staff_changed"  # an account's entry; its ended sessions' sockets close
SESSIONS_ENDED = "sessions_ended"  # an admin ended sessions: their sockets close
# An agency's entry (the monitor hears it); a new name reaches kiosks and counters as a
# ``service_changed`` of each of its services.
AGENCY_CHANGED = "agency_changed"
# After these, every process checks the credentials of its open connections at once
# (gateway/sessions.py): a revoked device or an ended session is cut off everywhere.
ACCESS_KINDS = frozenset(
    (CONFIGURED, DEVICE_CHANGED, DEVICE_REVOKED, STAFF_CHANGED, SESSIONS_ENDED)
)
PRINTED = "printed"  # an agent reported a print job's result
DEVICE_ALERT = "device_alert"  # a device needs staff (a printer out of paper), or no longer

# A call or recall is kind "called" (recall: true); the audit action says which.
ACTION_KIND = {"recalled": "called"}


def change_record(kind: str, body=None, *, counters=(), services=(), summaries=()) -> dict:
    """A change as the audit log keeps it and delivery routes it: its ``kind`` and body
    (what devices are told), the summaries of the services whose counts or waits it
    moved, and its route: the counters (ids) and services (codes) it touches."""
    return {
        "kind": ACTION_KIND.get(kind, kind),
        **(body or {}),
        "services": list(summaries),
        "route": {
            "counters": list(dict.fromkeys(c for c in counters if c is not None)),
            "services": list(dict.fromkeys(services)),
        },
    }


@dataclass(frozen=True)
class Audience:
    """Devices that get the same batches.

    counters: the counters followed (None: all of the centre's).
    services: codes of the services whose counts are shown (None: all; empty: none).
    device: the one device it is (an agent: print jobs are addressed to it), or None.
    """

    role: str
    centre_id: int
    counters: frozenset[int] | None = None
    services: frozenset[str] | None = None
    device: int | None = None

    @property
    def room(self) -> str:
        parts = [self.role, str(self.centre_id)]
        if self.device is not None:
            parts.append(f"d{self.device}")
        for values in (self.counters, self.services):
            parts.append("*" if values is None else ",".join(sorted(map(str, values))))
        return "aud:" + ":".join(parts)

    def follows_counter(self, change: Mapping) -> bool:
        touched = change["route"]["counters"]
        return self.counters is None or any(c in self.counters for c in touched)

    def follows_service(self, change: Mapping) -> bool:
        touched = change["route"]["services"]
        return self.services is None or any(s in self.services for s in touched)

    def shows(self, service_code: str) -> bool:
        return self.services is None or service_code in self.services


def _kiosk(a: Audience, change: Mapping) -> bool:
    """Counts and waits (the batch's services), how the printing of tickets went, and the
    services offered (a service added, changed or retired)."""
    return change["kind"] in (PRINTED, SERVICE_CHANGED)


# A board shows each counter's status and current number: what changes them.
_BOARD_KINDS = frozenset((*TICKET_KINDS, *COUNTER_KINDS, COUNTER_CHANGED)) - {
    "issued",
    "started",
    "cancelled",
}


def _board(a: Audience, change: Mapping) -> bool:
    """Calls, recalls, the end of each visit and status changes at its counters."""
    return change["kind"] in _BOARD_KINDS and a.follows_counter(change)


def _counter(a: Audience, change: Mapping) -> bool:
    """Its own counter's changes and tickets, and every change to the tickets waiting
    for its services (issued, called elsewhere, transferred in or out), and changes to
    those services' entries; the centre's device alerts (clerks are the staff in the hall)."""
    if change["kind"] == DEVICE_ALERT or a.follows_counter(change):
        return True
    return change["kind"] in (*TICKET_KINDS, SERVICE_CHANGED) and a.follows_service(change)


def _agent(a: Audience, change: Mapping) -> bool:
    """What its counters' boards show, the tickets it is to print and their results."""
    if change["kind"] == "issued":
        job = change.get("print")
        return job is not None and job["agent"] == a.device
    if change["kind"] == PRINTED:
        return change["agent"] == a.device
    return _board(a, change)


def _ticket(a: Audience, change: Mapping) -> bool:
    """The public status page of one ticket (``device`` is the ticket's id)."""
    ticket = change.get("ticket")
    return ticket is not None and ticket.get("id") == a.device


_TABLET_KINDS = frozenset((*TICKET_KINDS, *COUNTER_KINDS, COUNTER_CHANGED, "rated")) - {
    "issued",
    "cancelled",
}


def _tablet(a: Audience, change: Mapping) -> bool:
    """Its counter's visits (current ticket, finished: the rate request) and ratings."""
    return change["kind"] in _TABLET_KINDS and a.follows_counter(change)


def _manager(a: Audience, change: Mapping) -> bool:
    """Everything that happens in its centre (the live monitor shows every queue, counter
    and device); counts come with the batches, at most every ``counts_interval_s``."""
    return True


@dataclass(frozen=True)
class Role:
    name: str
    namespace: str
    snapshot_event: str
    concerns: Callable[[Audience, Mapping], bool]
    listens_only: bool  # other events are refused as read-only, not unknown
    receives: str  # what concerns it, as docs/protocol.md's role table says
    # Event fields other roles are not sent: an issue's print job (with the ticket's face)
    # is for its agent only.
    private: tuple[str, ...] = ("print",)
    # What opens its door: a device token of this role's kind ("device"), a staff session
    # ("staff", core/permissions.py), or the key of the one thing it follows ("key").
    credential: str = "device"
    # Kinds that, like counts, ride its next batch or go when the hub's counts interval
    # ends (gateway/hub.py counts_interval_s): a kiosk flood's tickets then cost a monitor
    # a few frames a second, not one per ticket. Every other event goes at once.
    paced: frozenset[str] = frozenset()

    def wants(self, audience: Audience, change: Mapping) -> bool:
        return change["kind"] == CONFIGURED or self.concerns(audience, change)


ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        Role(
            "kiosk",
            "/kiosk",
            "services",
            _kiosk,
            False,
            "how the printing of tickets went (`printed`); every service added, changed or "
            "retired (`service_changed`); counts, waits and open/closed of every service",
        ),
        Role(
            "counter",
            "/counter",
            "counter_state",
            _counter,
            False,
            "every change to its counter (`counter_changed` included) and its tickets, to "
            "the tickets waiting for its services and to those services' entries "
            "(`service_changed`); the centre's device alerts; counts of its services",
            credential="staff",
        ),
        Role(
            "display",
            "/display",
            "snapshot",
            _board,
            True,
            "calls, recalls, status and entry changes (`counter_changed`) of its counters "
            "(all, or those it is bound to); counts of their services",
        ),
        Role(
            "rating",
            "/rating",
            "rating_state",
            _tablet,
            False,
            "its counter's visits, status and entry (a `finished` is the rate request; "
            "`counter_changed`) and ratings; no counts",
        ),
        Role(
            "agent",
            "/agent",
            "agent_state",
            _agent,
            False,
            "the tickets it is to print (`issued` with `print`); what its counters' devices "
            "show: calls, recalls, status and entry changes of its counters; counts of their "
            "services",
            private=(),
        ),
        Role(
            "ticket",
            "/ticket",
            "ticket_state",
            _ticket,
            True,
            "the public status page of one ticket (its key as credential): that ticket's "
            "changes; counts of its service",
            credential="key",
        ),
        Role(
            "manager",
            "/manage",
            "monitor_state",
            _manager,
            False,
            "every change of its centre (tickets, counters, device alerts, configuration "
            "entries, access ended); counts of every service; new tickets and print results "
            "paced like counts",
            credential="staff",
            paced=frozenset(("issued", PRINTED)),
        ),
    )
}


# Kinds of device token: one per device role, and "integration", the province's one-stop
# system, whose token is the integration API's key (HTTP only, no namespace).
DEVICE_KINDS = (*(r.name for r in ROLES.values() if r.credential == "device"), "integration")


def public_event(change: Mapping, seq: int) -> dict:
    """A stored change as a batch lists it: without its route and its service summaries
    (a batch carries the latest summaries once, separately)."""
    event = {k: v for k, v in change.items() if k not in ("route", "services")}
    event["seq"] = seq
    return event


def _shown(role: Role, event: dict) -> dict:
    if any(k in event for k in role.private):
        return {k: v for k, v in event.items() if k not in role.private}
    return event


def batch_for(audience: Audience, changes: list[Mapping], after: int) -> dict | None:
    """The ``changes`` batch for ``audience`` covering seq ``after+1 …`` the last change's
    (``changes``: ``{"seq", "change", "event"}`` in seq order, ``event`` its public form);
    None when nothing in them concerns it."""
    role = ROLES[audience.role]
    events = [_shown(role, c["event"]) for c in changes if role.wants(audience, c["change"])]
    services: dict[str, dict] = {}
    for c in changes:
        for s in c["change"]["services"]:
            if audience.shows(s["code"]):
                services[s["code"]] = s
    if not events and not services:
        return None
    return {
        "after": after,
        "seq": changes[-1]["seq"],
        "events": events,
        "services": list(services.values()),
    }


def table_markdown() -> str:
    """The role table of docs/protocol.md."""
    lines = ["| role | namespace | snapshot event | receives |", "|---|---|---|---|"]
    for r in ROLES.values():
        lines.append(f"| {r.name} | `{r.namespace}` | `{r.snapshot_event}` | {r.receives} |")
    return "\n".join(lines) + "\n"
