"""Booking through a running server's API, as a citizen's phone does (docs/appointments.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import requests

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")  # tests/centre.toml's


def first_slot_tomorrow(server, service: str = "TP") -> str:
    day = (datetime.now(ZONE).date() + timedelta(days=1)).isoformat()
    r = requests.get(
        server.url + "/api/v1/appointments/slots",
        params={"service": service, "date": day},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["slots"][0]["start"]


def book(server, name: str, phone: str, service: str = "TP", slot: str | None = None):
    """POST a booking of ``slot`` (default: tomorrow's first); the response."""
    body = {
        "service": service,
        "slot": slot or first_slot_tomorrow(server, service),
        "name": name,
        "phone": phone,
    }
    return requests.post(server.url + "/api/v1/appointments", json=body, timeout=10)
