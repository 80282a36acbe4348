"""Messages to citizens from a real server: a booking's confirmation and a ticket's
"your turn is near" and call reach a loopback stand-in for the SMS gateway once each,
with the right number and counter; a gateway that is down holds up nothing, and its
messages go when it is back."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

import pytest

from harness.booking import book, first_slot_tomorrow
from harness.centre import CentreServer
from harness.gateways import StandIn

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def gateway():
    g = StandIn().start()
    yield g
    g.stop()


@pytest.fixture
def server(tmp_path, gateway):
    env = {**gateway.env(), "MOTCUA_NOTIFY_EVERY_S": "0.2", "MOTCUA_NOTIFY_RETRY_S": "0.5"}
    srv = CentreServer(tmp_path, f"sqlite:///{tmp_path / 'motcua.sqlite3'}", env=env).start()
    yield srv
    srv.stop()


def test_near_and_called_reach_the_ticket_holder_once(server, gateway, devices):
    kiosk = devices.kiosk(server)
    tickets = [kiosk.call("issue", {"service": "TP"})["ticket"] for _ in range(5)]
    mine = tickets[-1]
    left = kiosk.call("notify_me", {"ticket_id": mine["id"], "phone": "0987 654 321"})
    assert left == {
        "ok": True,
        "ticket": {"id": mine["id"], "number": mine["number"]},
        "phone": "321",
    }
    clerk = devices.counter(server, "clerk1", 1)
    for _ in range(4):
        t = clerk.call("call_next", {})["ticket"]
        assert clerk.call("no_show", {"ticket_id": t["id"]})["ok"]
        time.sleep(0.3)  # a few of the sender's rounds between calls
    assert clerk.call("call_next", {})["ticket"]["id"] == mine["id"]
    got = gateway.wait(lambda r: len(r) >= 2)
    time.sleep(1)  # nothing more comes
    texts = [b["Content"] for _, b in gateway.received]
    assert len(texts) == 2, texts
    assert f"sắp đến lượt số {mine['number']}" in texts[0] and "còn 3 người" in texts[0]
    assert texts[1].endswith(f"mời số {mine['number']} đến quầy 1.")
    assert all(b["Phone"] == "0987654321" for _, b in got)


def test_a_gateway_down_delays_nothing_and_the_confirmation_goes_when_it_is_back(server, gateway):
    gateway.stop()
    slot = first_slot_tomorrow(server)
    started = time.monotonic()
    r = book(server, "Đỗ Minh Châu", "0912345678", slot=slot)
    assert r.status_code == 200 and time.monotonic() - started < 2
    code = r.json()["code"]
    time.sleep(1.5)  # the sender tried, failed, backs off
    assert gateway.received == []
    gateway.start()
    [(channel, sent)] = gateway.wait(lambda got: len(got) >= 1, timeout=15)
    assert channel == "sms" and code in sent["Content"] and sent["Phone"] == "0912345678"
