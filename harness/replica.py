"""A device's state as a page builds it: its role's snapshot, then every protocol v2
batch applied in order (docs/protocol.md, "Following state"). Tests compare a replica
with a fresh snapshot: if they differ, a device would show something wrong."""

from __future__ import annotations

import copy

WAITING = ("waiting", "transferred")
RECENT_CALLS = 10


class NeedsSync(Exception):
    """The batch does not follow what was applied (a gap) or the centre was reconfigured:
    the device must ask for a snapshot."""


class Replica:
    role = ""

    def __init__(self, snapshot: dict):
        assert snapshot["protocol"] == 2, snapshot
        self.state = copy.deepcopy(snapshot)

    @property
    def seq(self) -> int:
        return self.state["seq"]

    def apply(self, batch: dict) -> None:
        """Apply one ``changes`` batch; raise NeedsSync on a gap."""
        if batch["seq"] <= self.seq:
            return  # already in the snapshot
        if batch["after"] > self.seq:
            raise NeedsSync(f"gap: applied up to {self.seq}, batch starts after {batch['after']}")
        for event in batch["events"]:
            if event["seq"] > self.seq:
                if event["kind"] == "configured":
                    raise NeedsSync("the centre was reconfigured")
                self.event(event)
        for summary in batch["services"]:
            self.service(summary)
        self.state["seq"] = batch["seq"]

    def event(self, event: dict) -> None:
        pass

    def service(self, summary: dict) -> None:
        pass

    def comparable(self) -> dict:
        return self.state


class KioskReplica(Replica):
    role = "kiosk"

    def service(self, summary):
        for s in self.state["services"]:
            if s["code"] == summary["code"]:
                s.update(summary)


def calling(recent_calls: list, counters: list) -> dict | None:
    """The board's "now calling": the newest recent call whose ticket is still its
    counter's current one, or None (docs/protocol.md 8.3, ``calling``)."""
    current = {c["number"]: (c["current"] or {}).get("number") for c in counters}
    for call in recent_calls:
        if current.get(call["counter"]["number"]) == call["ticket"]["number"]:
            return call
    return None


class BoardReplica(Replica):
    """A display board (or an agent's view of its counters' boards)."""

    role = "display"

    def _counter(self, number):
        return next((c for c in self.state["counters"] if c["number"] == number), None)

    def event(self, event):
        self._event(event)
        if "recent_calls" in self.state:  # a board (an agent has no "now calling")
            self.state["calling"] = calling(self.state["recent_calls"], self.state["counters"])

    def _event(self, event):
        kind = event["kind"]
        if kind.startswith("counter_"):
            c = self._counter(event["counter"]["number"])
            if c is not None:
                c["status"] = event["counter"]["status"]
            return
        ticket = event["ticket"]
        c = self._counter(ticket.get("counter"))
        if c is None:
            return
        if kind == "called":
            c["current"] = {"number": ticket["number"], "service": ticket["service"]["code"]}
            if "recent_calls" in self.state:
                self.state["recent_calls"] = [event, *self.state["recent_calls"]][:RECENT_CALLS]
        elif kind in ("finished", "no_show", "transferred"):
            if c["current"] and c["current"]["number"] == ticket["number"]:
                c["current"] = None

    def service(self, summary):
        waiting = self.state.get("waiting")
        if waiting is not None and summary["code"] in waiting:
            waiting[summary["code"]] = summary["waiting"]


class AgentReplica(BoardReplica):
    """An agent: its counters' boards, and its print jobs until it reports them."""

    role = "agent"

    def event(self, event):
        if event["kind"] == "issued":
            self.state["print_jobs"].append(event["print"])
        elif event["kind"] == "printed":
            jobs = self.state["print_jobs"]
            jobs[:] = [j for j in jobs if j["job"] != event["job"]]
        else:
            super().event(event)


class CounterReplica(Replica):
    role = "counter"

    def event(self, event):
        me = self.state["counter"]
        kind = event["kind"]
        if kind.startswith("counter_"):
            if event["counter"]["number"] == me["number"]:
                me["status"] = event["counter"]["status"]
                me["pause_reason"] = event["counter"]["pause_reason"]
            return
        if kind == "rated":
            return
        if kind == "device_alert":
            alerts = [a for a in self.state["device_alerts"] if a["device"] != event["device"]]
            if event["alert"] is not None:
                alerts.append({k: event[k] for k in ("device", "alert", "since")})
                alerts.sort(key=lambda a: a["device"]["id"])
            self.state["device_alerts"] = alerts
            return
        ticket = event["ticket"]
        current = self.state["current"]
        if ticket["status"] in ("called", "serving") and ticket["counter"] == me["number"]:
            self.state["current"] = ticket
        elif current and current["id"] == ticket["id"]:
            self.state["current"] = None
        queue = [t for t in self.state["queue"] if t["id"] != ticket["id"]]
        if ticket["status"] in WAITING and (
            ticket["target_counter"] == me["number"]
            or (ticket["target_counter"] is None and ticket["service"]["code"] in me["services"])
        ):
            queue.append(ticket)
            queue.sort(key=lambda t: (t["issued_at"], t["id"]))
        self.state["queue"] = queue

    def comparable(self):
        state = copy.deepcopy(self.state)
        waiting = {code: 0 for code in state["counter"]["services"]}
        for t in state["queue"]:
            waiting[t["service"]["code"]] = waiting.get(t["service"]["code"], 0) + 1
        state["waiting"] = waiting
        return state


class RatingReplica(Replica):
    role = "rating"

    def event(self, event):
        me = self.state["counter"]
        kind = event["kind"]
        if kind.startswith("counter_"):
            if event["counter"]["number"] == me["number"]:
                me.update(event["counter"])
                self.state["staff"] = event["staff"]
            return
        awaiting = self.state["awaiting_rating"]
        if kind == "rated":
            if awaiting and awaiting["ticket"]["id"] == event["ticket"]["id"]:
                self.state["awaiting_rating"] = None
            return
        ticket = event["ticket"]
        if ticket["counter"] != me["number"]:
            return
        current = self.state["current"]
        if ticket["status"] in ("called", "serving"):
            self.state["current"] = ticket
        elif current and current["id"] == ticket["id"]:
            self.state["current"] = None
        if kind == "finished":
            self.state["awaiting_rating"] = {
                "ticket": {k: ticket[k] for k in ("id", "number", "service")},
                "staff": event["staff"],
                "counter": {"number": me["number"]},
            }


REPLICAS = {
    r.role: r for r in (KioskReplica, BoardReplica, AgentReplica, CounterReplica, RatingReplica)
}
