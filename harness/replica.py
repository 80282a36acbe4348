"""A device's state as a page builds it: its role's snapshot, then every protocol v2
batch applied in order (docs/protocol.md, "Following state"). Tests compare a replica
with a fresh snapshot: if they differ, a device would show something wrong."""

from __future__ import annotations

import copy

from hardware.following import BoardState, Following, NeedsSync

WAITING = ("waiting", "transferred")
__all__ = ["NeedsSync", "REPLICAS"]


class Replica(Following):
    role = ""

    def comparable(self) -> dict:
        return self.state


class KioskReplica(Replica):
    role = "kiosk"
    resync = frozenset(("configured",))

    def event(self, event):
        """A service added, changed or retired (docs/protocol.md 8.1)."""
        if event["kind"] != "service_changed":
            return
        shown = {k: v for k, v in event["service"].items() if k != "active"}
        services = self.state["services"]
        at = next((i for i, s in enumerate(services) if s["code"] == shown["code"]), None)
        if not event["service"]["active"]:
            if at is not None:
                del services[at]
        elif at is not None:
            services[at] = shown
        else:
            services.append(shown)

    def service(self, summary):
        for s in self.state["services"]:
            if s["code"] == summary["code"]:
                s.update(summary)


class BoardReplica(BoardState, Replica):
    """A display board: the agent's reducer (hardware/following.py)."""

    role = "display"


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


class ManagerReplica(Replica):
    """The manager's monitor (manage/static/monitor.js follows the same rules): counters'
    status, clerk and current ticket, the queue, the services' summaries, device alerts.
    Today's figures, the devices' presence and the waits that grow with the clock are
    read, not followed."""

    role = "manager"
    # Every entry of the configuration is on the monitor: it takes a new snapshot.
    resync = Replica.resync | {
        "device_changed",
        "device_revoked",
        "staff_changed",
        "sessions_ended",
    }

    def service(self, summary):
        for s in self.state["services"]:
            if s["code"] == summary["code"]:
                s.update(summary)

    def event(self, event):
        kind = event["kind"]
        if kind.startswith("counter_"):
            for c in self.state["counters"]:
                if c["number"] == event["counter"]["number"]:
                    c.update(event["counter"])
                    staff = event["staff"]
                    c["clerk"] = staff["full_name"] if staff and c["status"] != "closed" else None
            return
        if kind == "printed":
            for d in self.state["devices"]:
                if d["device"]["id"] == event["kiosk"] and event["printer"]:
                    d["paper"] = event["printer"]["paper"]
            return
        if kind == "device_alert":
            for d in self.state["devices"]:
                if d["device"]["id"] == event["device"]["id"]:
                    d.update(
                        alert=event["alert"],
                        since=event["since"],
                        acknowledged=event.get("acknowledged"),
                    )
            alerts = [
                a for a in self.state["device_alerts"] if a["device"]["id"] != event["device"]["id"]
            ]
            if event["alert"]:
                alerts.append({k: event[k] for k in ("device", "alert", "since")})
            self.state["device_alerts"] = sorted(alerts, key=lambda a: a["device"]["id"])
            return
        ticket = event.get("ticket")
        if ticket is None or "status" not in ticket:
            return  # rated, printed: nothing the monitor shows
        for c in self.state["counters"]:
            if ticket["status"] in ("called", "serving") and ticket["counter"] == c["number"]:
                c["current"] = ticket
            elif c["current"] and c["current"]["id"] == ticket["id"]:
                c["current"] = None
        queue = [t for t in self.state["queue"] if t["id"] != ticket["id"]]
        if ticket["status"] in WAITING:
            queue.append(ticket)
            queue.sort(key=lambda t: (t["issued_at"], t["id"]))
        self.state["queue"] = queue

    def comparable(self):
        state = copy.deepcopy(self.state)
        for key in ("now", "figures"):
            state.pop(key)
        for s in state["services"]:
            del s["longest_wait_s"], s["over_target"]
        for d in state["devices"]:  # presence is read (event ``devices``), not followed
            del d["last_seen"], d["online"]
        return state


REPLICAS = {
    r.role: r
    for r in (
        KioskReplica,
        BoardReplica,
        AgentReplica,
        CounterReplica,
        RatingReplica,
        ManagerReplica,
    )
}
