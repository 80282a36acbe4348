"""The counter's door (/counter): clerks call, serve, transfer and pause."""

from __future__ import annotations

from core.engine import Actor
from core.errors import QueueError
from core.roles import Audience
from core.validation import INT_LIMIT, REQUEST_ID, TYPE_NAMES, Field
from gateway.doors import Client, Door, EngineOp

TICKET = Field(int, required=True, min=1)
_R = {"request_id": REQUEST_ID}


class CounterDoor(Door):
    role_name = "counter"
    events = {
        "call_next": ({**_R}, EngineOp("call_next")),
        "call": ({"ticket_id": TICKET, **_R}, EngineOp("call_ticket")),
        "recall": ({"ticket_id": TICKET, **_R}, EngineOp("recall")),
        "start": ({"ticket_id": TICKET, **_R}, EngineOp("start")),
        "no_show": ({"ticket_id": TICKET, **_R}, EngineOp("no_show")),
        "finish": (
            {
                "ticket_id": TICKET,
                "dossiers": Field(list, items=str, max_items=20, max_len=64),
                "outcome": Field(str, max_len=32, nullable=True),
                **_R,
            },
            EngineOp("finish"),
        ),
        "transfer": (
            {
                "ticket_id": TICKET,
                "service": Field(str, max_len=32),
                "counter": Field(int, min=1),
                **_R,
            },
            EngineOp("transfer"),
        ),
        "pause": ({"reason": Field(str, required=True, max_len=200), **_R}, EngineOp("pause")),
        "resume": ({**_R}, EngineOp("resume")),
        "close": ({**_R}, EngineOp("close_counter")),
        # A read: the clerk's own ratings by level (never which visit got which).
        "my_ratings": ({}, EngineOp("staff_ratings")),
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
        staff, counter, codes = self.ctx.lookup_staff_counter(token, number)
        actor = Actor("staff", staff.id, staff.centre_id, staff.role, counter.id, staff.full_name)
        return Client(actor, service_codes=codes)

    def refresh(self, client: Client) -> None:
        client.service_codes = self.ctx.counter_service_codes(client.actor.counter_id)

    def audience(self, client: Client) -> Audience:
        return Audience(
            "counter",
            client.actor.centre_id,
            frozenset([client.actor.counter_id]),
            client.service_codes,
        )

    def snapshot(self, client: Client) -> dict:
        return self.ctx.engine.counter_snapshot(client.actor.counter_id)

    def admit(self, client: Client) -> None:
        self.ctx.engine.open_counter(client.actor)
