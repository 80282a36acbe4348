"""The ticket's and the counter's lifecycles, declared as data, with their effects.

Each table says, for an operation, from which states it may start, the state it leads
to, and what else the transition does: the change it records, the ticket's time it
stamps or clears, what it does to its service's waiting count, and, for a counter, which
current ticket it accepts. The engine's operations read these (core/engine.py) instead
of repeating them; one guard per table refuses with the table's words. The clerk's page
gets :func:`counter_actions` in its snapshot, so it offers an action exactly when the
server would accept it. docs/protocol.md prints these tables (a test compares them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from .errors import QueueError


@dataclass(frozen=True)
class Transition:
    sources: tuple[str, ...]  # states the operation may start from
    target: str  # the state it leads to
    records: str | None = None  # the change kind recorded (core/roles.py)
    stamps: str | None = None  # the ticket's time set to now
    clears: tuple[str, ...] = ()  # the ticket's fields emptied
    waiting: int = 0  # what it does to the waiting count of the ticket's service
    # Counters: the current ticket's states it accepts (None: no current ticket), and
    # whether a current ticket being served is finished first.
    with_current: tuple[str | None, ...] | None = None
    finishes_current: bool = False
    # Only a while after this time of the ticket (the engine's setting says how long).
    waits_after: str | None = None
    # Counters: tickets sent to this counter and still waiting go back to their service's
    # queue (a closed counter never strands anyone).
    releases_sent: bool = False
    # Tickets: leaves its service's queue for another's (waiting -1 there, +1 in the new
    # one when the service changes), keeping its place (its issue time).
    requeues: bool = False
    # Counters: the current ticket (called or being served) goes back to its service's
    # queue, keeping its place (the ticket's ``transfer`` effects, to no counter).
    returns_current: bool = False


# -- tickets ---------------------------------------------------------------------------
def durations(
    status: str,
    issued_at: datetime,
    called_at: datetime | None,
    started_at: datetime | None,
    finished_at: datetime | None,
) -> dict:
    """A ticket's wait (issued to its last call) and, once done, its service time (from
    its start, or its call when never started, to its finish), in whole seconds rounded
    half up: kept on the ticket as each transition stamps its times (the reports add
    them up instead of computing them from every ticket's times)."""

    def seconds(later, earlier):
        return math.floor((later - earlier).total_seconds() + 0.5)

    begun = started_at or called_at
    return {
        "wait_s": seconds(called_at, issued_at) if called_at else None,
        "service_s": (
            seconds(finished_at, begun) if status == "done" and finished_at and begun else None
        ),
    }


TICKET_STATES = ("waiting", "called", "serving", "transferred", "done", "no_show", "cancelled")
WAITING = ("waiting", "transferred")  # in a queue, callable
AT_COUNTER = ("called", "serving")  # a counter's current ticket

TICKET_TRANSITIONS: dict[str, Transition] = {
    "issue": Transition((), "waiting", "issued", "issued_at", waiting=+1),
    "call": Transition(WAITING, "called", "called", "called_at", waiting=-1),
    "recall": Transition(("called",), "called", "recalled"),
    "start": Transition(("called",), "serving", "started", "started_at"),
    "no_show": Transition(
        ("called",), "no_show", "no_show", "finished_at", waits_after="called_at"
    ),
    "finish": Transition(AT_COUNTER, "done", "finished", "finished_at"),
    # Back in a queue, keeping its place: served again from the start.
    "transfer": Transition(
        AT_COUNTER, "transferred", "transferred", clears=("started_at",), waiting=+1
    ),
    # A manager's, from the monitor (MANAGER_ACTIONS): a waiting ticket taken out of the
    # queue, or sent to another service or counter, keeping its place.
    "cancel": Transition(WAITING, "cancelled", "cancelled", "finished_at", waiting=-1),
    "move": Transition(WAITING, "transferred", "transferred", requeues=True),
}

NEW_TICKET = TICKET_TRANSITIONS["issue"].target

# -- counters --------------------------------------------------------------------------
COUNTER_STATES = ("closed", "open", "paused")
IDLE = (None,)  # no ticket called or being served

COUNTER_TRANSITIONS: dict[str, Transition] = {
    "open": Transition(("closed",), "open", "counter_opened"),
    "pause": Transition(("open",), "paused", "counter_paused", with_current=IDLE),
    "resume": Transition(("paused",), "open", "counter_resumed", with_current=IDLE),
    "close": Transition(
        ("open", "paused"), "closed", "counter_closed", with_current=IDLE, releases_sent=True
    ),
    # Calling needs an open counter, free or serving (that visit is finished first, without
    # an outcome: the clerk's page asks for it before calling); a ticket still called
    # refuses it, so pressing "next" twice never turns the citizen walking to the counter
    # into a no-show.
    "call": Transition(("open",), "open", with_current=(None, "serving"), finishes_current=True),
    # A manager closes a counter left open (the clerk gone): whoever is at it goes back to
    # the queue, and so do the tickets sent to it.
    "close_left": Transition(
        ("open", "paused"),
        "closed",
        "counter_closed",
        with_current=(None, *AT_COUNTER),
        releases_sent=True,
        returns_current=True,
    ),
}

# A no-show may be marked only this long after the (first) call: a citizen needs time to
# walk to the counter (the engine's default; MOTCUA_NO_SHOW_AFTER_S).
NO_SHOW_AFTER_S = 60

# What a counter in a state says when an operation cannot start there.
_COUNTER_REFUSALS = {
    ("pause", "paused"): "already_paused",
    ("resume", "open"): "not_paused",
    ("resume", "closed"): "not_paused",
    ("call", "paused"): "counter_paused",
}
# ... and when it holds a ticket the operation does not accept (else counter_has_current).
_CURRENT_REFUSALS = {
    ("call", "called"): "counter_busy_called",
}


def ticket_guard(operation: str, status: str, number: str) -> Transition:
    """The transition of ``operation`` from ``status``, or the table's refusal."""
    t = TICKET_TRANSITIONS[operation]
    if status not in t.sources:
        key = "ticket_not_waiting" if t.sources == WAITING else "ticket_wrong_status"
        raise QueueError("conflict", key, number=number, status=status)
    return t


def counter_guard(operation: str, status: str, current=None) -> Transition:
    """The transition of ``operation`` from ``status`` with ``current`` (the counter's
    current ticket: anything with ``status`` and ``number``, or None), or the table's
    refusal."""
    t = COUNTER_TRANSITIONS[operation]
    if status not in t.sources:
        raise QueueError("conflict", _COUNTER_REFUSALS.get((operation, status), "counter_closed"))
    held = current.status if current is not None else None
    if t.with_current is not None and held not in t.with_current:
        key = _CURRENT_REFUSALS.get((operation, held), "counter_has_current")
        raise QueueError("conflict", key, number=current.number)
    return t


# The clerk's actions at a counter (the /counter events, a keypad's keys) and the lifecycle
# operation each is: counter operations check the counter's table, ticket operations the
# current ticket's.
CLERK_ACTIONS = {
    "call_next": ("counter", "call"),
    "call": ("counter", "call"),
    "recall": ("ticket", "recall"),
    "start": ("ticket", "start"),
    "no_show": ("ticket", "no_show"),
    "finish": ("ticket", "finish"),
    "transfer": ("ticket", "transfer"),
    "pause": ("counter", "pause"),
    "resume": ("counter", "resume"),
    "close": ("counter", "close"),
}


# A manager's actions on the monitor (the /manage events) and the lifecycle operation each
# is: on a waiting ticket, or on a counter.
MANAGER_ACTIONS = {
    "cancel": ("ticket", "cancel"),
    "move": ("ticket", "move"),
    "close_counter": ("counter", "close_left"),
}


def manager_actions() -> dict[str, dict]:
    """When each of a manager's actions may be taken, as data for the monitor: the ticket's
    states (``ticket``) or the counter's (``counter``) it accepts."""
    return {
        action: {
            table: list(
                (TICKET_TRANSITIONS if table == "ticket" else COUNTER_TRANSITIONS)[op].sources
            )
        }
        for action, (table, op) in MANAGER_ACTIONS.items()
    }


def counter_actions(no_show_after_s: float = NO_SHOW_AFTER_S) -> dict[str, dict]:
    """When each clerk's action may be taken, as data for the clerk's page: the counter's
    states (``counter``) and the current ticket's (``ticket``, null: none) it accepts, and
    for an action that must wait, how long after which time of the ticket (``after``)."""
    out = {}
    for action, (table, operation) in CLERK_ACTIONS.items():
        if table == "ticket":
            # A ticket at the counter: the counter is open (it can't pause or close then).
            t = TICKET_TRANSITIONS[operation]
            out[action] = {"counter": ["open"], "ticket": list(t.sources)}
            if t.waits_after:
                out[action]["after"] = {"time": t.waits_after, "seconds": no_show_after_s}
        else:
            t = COUNTER_TRANSITIONS[operation]
            held = [None, *AT_COUNTER] if t.with_current is None else list(t.with_current)
            out[action] = {"counter": list(t.sources), "ticket": held}
    return out


def table_markdown() -> str:
    """Both tables as docs/protocol.md prints them."""
    lines = []
    for title, table in (("Ticket", TICKET_TRANSITIONS), ("Counter", COUNTER_TRANSITIONS)):
        lines += [
            f"| {title.lower()} operation | from | to | records | also |",
            "|---|---|---|---|---|",
        ]
        for op, t in table.items():
            sources = ", ".join(f"`{s}`" for s in t.sources) or "(new)"
            records = f"`{t.records}`" if t.records else ""
            lines.append(f"| `{op}` | {sources} | `{t.target}` | {records} | {_effects(t)} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _effects(t: Transition) -> str:
    also = []
    if t.stamps:
        also.append(f"sets `{t.stamps}`")
    also += [f"clears `{c}`" for c in t.clears]
    if t.waiting:
        also.append(f"waiting {t.waiting:+d}")
    if t.waits_after:
        also.append(f"only a while after `{t.waits_after}`")
    if t.finishes_current:
        also.append("finishes a ticket being served")
    if t.requeues:
        also.append("leaves its queue for another's, keeping its place")
    if t.releases_sent:
        also.append("tickets sent to it go back to their service's queue")
    if t.returns_current:
        also.append("its current ticket goes back to its service's queue")
    if t.with_current is not None:
        held = ", ".join("none" if s is None else f"`{s}`" for s in t.with_current)
        also.append(f"current ticket: {held}")
    return "; ".join(also)
