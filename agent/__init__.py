"""The hardware agent's door (/agent), on the server side: the agent process (hardware/)
drives printers, keypads and LED boards and talks to the server only through this
protocol. It follows its counters, gets the print jobs of the kiosks it prints for, and
reports each job's result."""

from __future__ import annotations

from core.roles import Audience
from core.validation import REQUEST_ID, Field
from gateway.doors import BoardDoor, Client, EngineOp


class AgentDoor(BoardDoor):
    role_name = "agent"
    events = {
        "print_result": (
            {
                "job": Field(int, required=True, min=1),
                "printed": Field(bool, required=True),
                "error": Field(str, max_len=32, nullable=True),
                "printer": Field(dict, nullable=True),
                "request_id": REQUEST_ID,
            },
            EngineOp("report_print"),
        )
    }

    def audience(self, client: Client) -> Audience:
        """Its counters' boards, and its own print jobs: an audience of its own."""
        board = super().audience(client)
        return Audience(
            board.role, board.centre_id, board.counters, board.services, device=client.actor.id
        )

    def snapshot(self, client: Client) -> dict:
        return self.ctx.engine.agent_snapshot(
            client.actor.centre_id, client.counter_ids, client.actor.id
        )
