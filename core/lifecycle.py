"""The ticket's and the counter's lifecycles, declared as data.

Each table says, for an operation, from which states it may start and the state it
leads to. The engine checks every transition with :func:`ticket_guard` or
:func:`counter_guard`; the refusal comes from the table, never from ``if`` chains spread
over the operations. docs/protocol.md prints these same tables (a test compares them).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import QueueError


@dataclass(frozen=True)
class Transition:
    sources: tuple[str, ...]  # states the operation may start from
    target: str  # the state it leads to


# -- tickets ---------------------------------------------------------------------------
TICKET_STATES = ("waiting", "called", "serving", "transferred", "done", "no_show")
WAITING = ("waiting", "transferred")  # in a queue, callable
AT_COUNTER = ("called", "serving")  # a counter's current ticket

TICKET_TRANSITIONS: dict[str, Transition] = {
    "issue": Transition((), "waiting"),
    "call": Transition(WAITING, "called"),
    "recall": Transition(("called",), "called"),
    "start": Transition(("called",), "serving"),
    "no_show": Transition(("called",), "no_show"),
    "finish": Transition(AT_COUNTER, "done"),
    "transfer": Transition(AT_COUNTER, "transferred"),
}

NEW_TICKET = TICKET_TRANSITIONS["issue"].target

# -- counters --------------------------------------------------------------------------
COUNTER_STATES = ("closed", "open", "paused")

COUNTER_TRANSITIONS: dict[str, Transition] = {
    "open": Transition(("closed",), "open"),
    "pause": Transition(("open",), "paused"),
    "resume": Transition(("paused",), "open"),
    "close": Transition(("open", "paused"), "closed"),
    "call": Transition(("open",), "open"),  # calling needs an open counter
}

# What a counter in a state says when an operation cannot start there.
_COUNTER_REFUSALS = {
    ("pause", "paused"): "already_paused",
    ("resume", "open"): "not_paused",
    ("resume", "closed"): "not_paused",
    ("call", "paused"): "counter_paused",
}


def ticket_guard(operation: str, status: str, number: str) -> str:
    """The ticket's new state, or the table's refusal of ``operation`` in ``status``."""
    t = TICKET_TRANSITIONS[operation]
    if status not in t.sources:
        key = "ticket_not_waiting" if t.sources == WAITING else "ticket_wrong_status"
        raise QueueError("conflict", key, number=number, status=status)
    return t.target


def counter_guard(operation: str, status: str) -> str:
    """The counter's new state, or the table's refusal of ``operation`` in ``status``."""
    t = COUNTER_TRANSITIONS[operation]
    if status not in t.sources:
        raise QueueError("conflict", _COUNTER_REFUSALS.get((operation, status), "counter_closed"))
    return t.target


def table_markdown() -> str:
    """Both tables as docs/protocol.md prints them."""
    lines = []
    for title, table in (("Ticket", TICKET_TRANSITIONS), ("Counter", COUNTER_TRANSITIONS)):
        lines += [f"| {title.lower()} operation | from | to |", "|---|---|---|"]
        for op, t in table.items():
            sources = ", ".join(f"`{s}`" for s in t.sources) or "(new)"
            lines.append(f"| `{op}` | {sources} | `{t.target}` |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
