"""The hardware agent's door (/agent). The agent's device events come with the hardware
issues; for now it authenticates, is bound to its counters and receives every change."""

from __future__ import annotations

from .doors import Client, Door


class AgentDoor(Door):
    snapshot_event = "agent_state"
    events: dict = {}
    read_only = True

    def authenticate(self, auth: dict, lang: str) -> Client:
        device = self.device(auth, "agent")
        return Client(self.device_actor(device), counter_ids=self.ctx.device_counter_ids(device.id))

    def snapshot(self, client: Client) -> dict:
        state = self.ctx.engine.display_snapshot(client.actor.centre_id, client.counter_ids)
        return {"seq": state["seq"], "centre": state["centre"], "counters": state["counters"]}
