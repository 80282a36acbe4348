"""The display board's door (/display): it listens; it changes nothing."""

from __future__ import annotations

from core.roles import Audience
from gateway.doors import Client, Door


class DisplayDoor(Door):
    role_name = "display"

    def authenticate(self, auth: dict, lang: str) -> Client:
        device = self.device(auth, "display")
        return Client(self.device_actor(device), counter_ids=self.ctx.device_counter_ids(device.id))

    def refresh(self, client: Client) -> None:
        client.counter_ids = self.ctx.device_counter_ids(client.actor.id)

    def audience(self, client: Client) -> Audience:
        return self.board_audience(client)

    def snapshot(self, client: Client) -> dict:
        return self.ctx.engine.display_snapshot(client.actor.centre_id, client.counter_ids)
