"""The hardware agent's door (/agent), on the server side: the agent process (hardware/)
drives printers, keypads and LED boards and talks to the server only through this
protocol. It follows its counters, gets the print jobs of the kiosks it prints for,
reports each job's result, and passes on its call keypads' presses (``counter_action``:
the engine's operation of the same name, for the counter's clerk on duty)."""

from __future__ import annotations

from core.roles import Audience
from core.validation import REQUEST_ID, Field
from gateway.bundle import RoleBundle
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
        ),
        "counter_action": (
            {
                "counter": Field(int, required=True, min=1),
                "action": Field(str, required=True, max_len=16),
                "reason": Field(str, max_len=200, nullable=True),
                "request_id": REQUEST_ID,
            },
            EngineOp("counter_action"),
        ),
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


bundle = RoleBundle(None, (AgentDoor,))
