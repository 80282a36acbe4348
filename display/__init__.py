"""The display board's door (/display): it listens; it changes nothing."""

from __future__ import annotations

from gateway.doors import BoardDoor, Client


class DisplayDoor(BoardDoor):
    role_name = "display"

    def snapshot(self, client: Client) -> dict:
        return self.ctx.engine.display_snapshot(client.actor.centre_id, client.counter_ids)
