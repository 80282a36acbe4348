"""The rating tablet's door (/rating): shows the clerk, then asks for a rating."""

from __future__ import annotations

from core.roles import Audience
from core.validation import REQUEST_ID, Field
from gateway.doors import Client, Door, EngineOp


class RatingDoor(Door):
    role_name = "rating"
    events = {
        "rate": (
            {
                "ticket_id": Field(int, required=True, min=1),
                "score": Field(int, required=True, min=1, max=3),
                "reasons": Field(list, items=str, max_items=10, max_len=100),
                "comment": Field(str, max_len=500, nullable=True),
                "request_id": REQUEST_ID,
            },
            EngineOp("rate"),
        )
    }

    def authenticate(self, auth: dict, lang: str) -> Client:
        device = self.device(auth, "rating")
        return Client(self.device_actor(device, counter_id=device.counter_id))

    def audience(self, client: Client) -> Audience:
        return Audience(
            "rating", client.actor.centre_id, frozenset([client.actor.counter_id]), frozenset()
        )

    def snapshot(self, client: Client) -> dict:
        return self.ctx.engine.rating_snapshot(client.actor.counter_id)
