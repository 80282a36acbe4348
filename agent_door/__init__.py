"""The hardware agent's door (/agent), on the server side: the agent process (hardware/)
drives printers, keypads and LED boards and talks to the server only through this
protocol. It follows its counters, gets the print jobs of the kiosks it prints for,
reports each job's result (core/printing.py), and passes on its call keypads' presses
(``counter_action``: the clerk's action of that name for the counter's clerk on duty,
core/keypads.py)."""

from __future__ import annotations

from core import keypads, printing, views
from core.roles import Audience
from core.validation import REQUEST_ID, Field
from gateway.bundle import RoleBundle
from gateway.doors import BoardDoor, Client


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
            "print_result",
        ),
        "counter_action": (
            {
                "counter": Field(int, required=True, min=1),
                "action": Field(str, required=True, max_len=16),
                "reason": Field(str, max_len=200, nullable=True),
                "request_id": REQUEST_ID,
            },
            "counter_action",
        ),
    }

    def audience(self, client: Client) -> Audience:
        """Its counters' boards, and its own print jobs: an audience of its own."""
        board = super().audience(client)
        return Audience(
            board.role, board.centre_id, board.counters, board.services, device=client.actor.id
        )

    def snapshot(self, conn, client: Client) -> dict:
        return views.agent_snapshot(
            conn, client.actor.centre_id, client.counter_ids, client.actor.id
        )

    def print_result(self, client: Client, **result) -> dict:
        return printing.report_print(self.ctx.store, client.actor, **result)

    def counter_action(self, client: Client, **press) -> dict:
        return keypads.counter_action(self.ctx.engine, client.actor, **press)


bundle = RoleBundle(None, (AgentDoor,))
