"""The hardware agent's door (/agent), on the server side: the agent process (hardware/)
drives printers, keypads and LED boards and talks to the server only through this
protocol. For now it authenticates, is bound to its counters and follows them."""

from __future__ import annotations

from core.roles import Audience
from gateway.doors import Client, Door


class AgentDoor(Door):
    role_name = "agent"

    def authenticate(self, auth: dict, lang: str) -> Client:
        device = self.device(auth, "agent")
        return Client(self.device_actor(device), counter_ids=self.ctx.device_counter_ids(device.id))

    def refresh(self, client: Client) -> None:
        client.counter_ids = self.ctx.device_counter_ids(client.actor.id)

    def audience(self, client: Client) -> Audience:
        return self.board_audience(client)

    def snapshot(self, client: Client) -> dict:
        return self.ctx.engine.agent_snapshot(client.actor.centre_id, client.counter_ids)
