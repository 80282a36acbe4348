"""Following a role's state from the protocol: its snapshot, then every protocol v2 batch
applied in order (docs/protocol.md 6.4), and a board's reducer on top of it.

The hardware agent drives its counters' LED boards and keypad displays from
:class:`BoardState`; the tests' replicas (harness/replica.py) are built on the same
classes and compared with fresh snapshots, so what the agent shows and what the tests
check cannot drift apart. The display page (display/static/board.js) follows the same
rules in JavaScript. Plain protocol data: nothing of the server's is imported here.
"""

from __future__ import annotations

import copy

RECENT_CALLS = 10  # the latest calls a board lists (core/views.py RECENT_CALLS)


class NeedsSync(Exception):
    """The batch does not follow what was applied (a gap) or the centre was reconfigured:
    the device must ask for a snapshot."""


class Following:
    """A role's state: a snapshot, then each ``changes`` batch; subclasses say what an
    event and a service summary change (``event``, ``service``). ``resync``: the kinds
    after which it takes a snapshot instead (docs/protocol.md 6.4)."""

    resync = frozenset(("configured", "counter_changed", "service_changed"))

    def __init__(self, snapshot: dict):
        assert snapshot["protocol"] == 2, snapshot
        self.state = copy.deepcopy(snapshot)

    @property
    def seq(self) -> int:
        return self.state["seq"]

    def apply(self, batch: dict) -> None:
        """Apply one ``changes`` batch; raise NeedsSync on a gap or a reconfiguration."""
        if batch["seq"] <= self.seq:
            return  # already in the snapshot
        if batch["after"] > self.seq:
            raise NeedsSync(f"gap: applied up to {self.seq}, batch starts after {batch['after']}")
        for event in batch["events"]:
            if event["seq"] > self.seq:
                if event["kind"] in self.resync:
                    raise NeedsSync(f"the centre's configuration changed ({event['kind']})")
                self.event(event)
        for summary in batch["services"]:
            self.service(summary)
        self.state["seq"] = batch["seq"]

    def event(self, event: dict) -> None:
        pass

    def service(self, summary: dict) -> None:
        pass


def calling(recent_calls: list, counters: list) -> dict | None:
    """The board's "now calling": the newest recent call whose ticket is still its
    counter's current one, or None (docs/protocol.md 8.3, ``calling``)."""
    current = {c["number"]: (c["current"] or {}).get("number") for c in counters}
    for call in recent_calls:
        if current.get(call["counter"]["number"]) == call["ticket"]["number"]:
            return call
    return None


class BoardState(Following):
    """What the boards of some counters show (a display's snapshot, or an agent's): each
    counter's status and current number, the waiting counts, and for a display its latest
    calls and the call in progress. ``touched`` and ``called`` say, after each ``apply``,
    which counters changed and which were (re)called (number -> whether a recall), so a
    device rewrites only those (a recall must be written even if the number is the same)."""

    def __init__(self, snapshot: dict):
        super().__init__(snapshot)
        self.touched: set[int] = set()
        self.called: dict[int, bool] = {}

    def counter(self, number) -> dict | None:
        return next((c for c in self.state["counters"] if c["number"] == number), None)

    def apply(self, batch: dict) -> None:
        self.touched, self.called = set(), {}
        super().apply(batch)

    def event(self, event):
        kind = event["kind"]
        if kind.startswith("counter_"):
            c = self.counter(event["counter"]["number"])
            if c is not None:
                c["status"] = event["counter"]["status"]
                self.touched.add(c["number"])
            return
        ticket = event.get("ticket")
        c = self.counter(ticket.get("counter")) if ticket else None
        if c is None:
            return
        if kind == "called":
            c["current"] = {"number": ticket["number"], "service": ticket["service"]["code"]}
            self.called[c["number"]] = bool(event.get("recall"))
            if "recent_calls" in self.state:
                self.state["recent_calls"] = [event, *self.state["recent_calls"]][:RECENT_CALLS]
        elif kind in ("finished", "no_show", "transferred"):
            if c["current"] and c["current"]["number"] == ticket["number"]:
                c["current"] = None
                self.called.pop(c["number"], None)
                self.touched.add(c["number"])
        if "recent_calls" in self.state:  # a display (an agent has no "now calling")
            self.state["calling"] = calling(self.state["recent_calls"], self.state["counters"])

    def service(self, summary):
        waiting = self.state.get("waiting")
        if waiting is not None and summary["code"] in waiting:
            waiting[summary["code"]] = summary["waiting"]
