"""The counter's door (/counter): clerks call, serve, transfer and pause."""

from __future__ import annotations

from core.engine import Actor
from core.errors import QueueError
from core.validation import INT_LIMIT, REQUEST_ID, TYPE_NAMES, Field
from gateway.doors import Client, Door

TICKET = Field(int, required=True, min=1)
_R = {"request_id": REQUEST_ID}


class CounterDoor(Door):
    snapshot_event = "counter_state"
    events = {
        "call_next": ({**_R}, "call_next"),
        "call": ({"ticket_id": TICKET, **_R}, "call"),
        "recall": ({"ticket_id": TICKET, **_R}, "recall"),
        "start": ({"ticket_id": TICKET, **_R}, "start"),
        "no_show": ({"ticket_id": TICKET, **_R}, "no_show"),
        "finish": (
            {
                "ticket_id": TICKET,
                "dossiers": Field(list, items=str, max_items=20, max_len=64),
                "outcome": Field(str, max_len=32, nullable=True),
                **_R,
            },
            "finish",
        ),
        "transfer": (
            {
                "ticket_id": TICKET,
                "service": Field(str, max_len=32),
                "counter": Field(int, min=1),
                **_R,
            },
            "transfer",
        ),
        "pause": ({"reason": Field(str, required=True, max_len=200), **_R}, "pause"),
        "resume": ({**_R}, "resume"),
        "close": ({**_R}, "close"),
    }

    def authenticate(self, auth: dict, lang: str) -> Client:
        token = auth.get("token")
        if not isinstance(token, str) or not token:
            raise QueueError("unauthorized", "auth_missing")
        if "counter" not in auth:
            raise QueueError("bad_request", "auth_counter_missing")
        number = auth["counter"]
        if not isinstance(number, int) or isinstance(number, bool):
            raise QueueError("bad_request", "wrong_type", field="counter", expected=TYPE_NAMES[int])
        if not 1 <= number < INT_LIMIT:
            raise QueueError("not_found", "unknown_counter", number=number)
        staff, counter = self.ctx.lookup_staff_counter(token, number)
        actor = Actor("staff", staff.id, staff.centre_id, staff.role, counter.id, staff.full_name)
        return Client(actor)

    def rooms(self, client: Client) -> list[str]:
        return [f"counter:{client.actor.counter_id}"]

    def snapshot(self, client: Client) -> dict:
        return self.ctx.engine.counter_snapshot(client.actor.counter_id)

    def admit(self, client: Client) -> None:
        self.ctx.engine.open_counter(client.actor)

    def call_next(self, client, request_id):
        return self.ctx.engine.call_next(client.actor, request_id)

    def call(self, client, ticket_id, request_id):
        return self.ctx.engine.call_ticket(client.actor, ticket_id, request_id)

    def recall(self, client, ticket_id, request_id):
        return self.ctx.engine.recall(client.actor, ticket_id, request_id)

    def start(self, client, ticket_id, request_id):
        return self.ctx.engine.start(client.actor, ticket_id, request_id)

    def no_show(self, client, ticket_id, request_id):
        return self.ctx.engine.no_show(client.actor, ticket_id, request_id)

    def finish(self, client, ticket_id, dossiers, outcome, request_id):
        return self.ctx.engine.finish(client.actor, ticket_id, dossiers, outcome, request_id)

    def transfer(self, client, ticket_id, service, counter, request_id):
        return self.ctx.engine.transfer(client.actor, ticket_id, service, counter, request_id)

    def pause(self, client, reason, request_id):
        return self.ctx.engine.pause(client.actor, reason, request_id)

    def resume(self, client, request_id):
        return self.ctx.engine.resume(client.actor, request_id)

    def close(self, client, request_id):
        return self.ctx.engine.close_counter(client.actor, request_id)
