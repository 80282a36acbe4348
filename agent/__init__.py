"""The hardware agent's door (/agent), on the server side: the agent process (hardware/)
drives printers, keypads and LED boards and talks to the server only through this
protocol. For now it authenticates, is bound to its counters and follows them."""

from __future__ import annotations

from gateway.doors import BoardDoor, Client


class AgentDoor(BoardDoor):
    role_name = "agent"

    def snapshot(self, client: Client) -> dict:
        return self.ctx.engine.agent_snapshot(client.actor.centre_id, client.counter_ids)
