"""Every namespace asked with every kind of credential, and every /counter event with
every staff role, on a real server holding two centres (tests/centre.toml and
tests/commune.toml: T2's manager, admin, the province's admin, clerk1 lent to T2)."""

from __future__ import annotations

import pytest

from counter import CounterDoor
from harness.centre import AGENT, COMMUNE, DISPLAY, INTEGRATION, KIOSK, RATING_1, CentreServer
from harness.devices import connect_refused
from manage.monitor import ManageDoor

DEVICE_TOKENS = {
    "kiosk": KIOSK,
    "display": DISPLAY,
    "rating": RATING_1,
    "agent": AGENT,
    "integration": INTEGRATION,
}
STAFF = ("clerk1", "quanly2", "quantri2", "tinh")
STAFF_NAMESPACES = ("/counter", "/manage")


@pytest.fixture(scope="module")
def province(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("province")
    server = CentreServer(tmp, f"sqlite:///{tmp / 'motcua.sqlite3'}").start()
    server.provision_also(COMMUNE)
    yield server
    server.stop()


def test_device_doors_open_to_their_own_kind_only(province, devices):
    sessions = {u: province.login(u) for u in STAFF}
    for namespace in ("kiosk", "display", "rating", "agent"):
        for kind, token in DEVICE_TOKENS.items():
            if kind == namespace:
                assert devices(province, f"/{namespace}", {"token": token}).sio.connected
            else:
                refused = connect_refused(province, f"/{namespace}", {"token": token})
                assert refused["data"]["code"] == "unauthorized", (namespace, kind)
        for username, session in sessions.items():
            refused = connect_refused(province, f"/{namespace}", {"token": session})
            assert refused["data"]["code"] == "unauthorized", (namespace, username)
        refused = connect_refused(province, f"/{namespace}", {})
        assert refused["data"]["code"] == "unauthorized"


def test_staff_doors_refuse_devices_and_nobody(province):
    for namespace in STAFF_NAMESPACES:
        for kind, token in DEVICE_TOKENS.items():
            auth = {"token": token, "counter": 1}
            refused = connect_refused(province, namespace, auth)
            assert refused["data"]["code"] == "unauthorized", (namespace, kind)
        for auth in ({}, {"counter": 1}, {"token": "made-up-session-token", "counter": 1}):
            refused = connect_refused(province, namespace, auth)
            assert refused["data"]["code"] == "unauthorized", (namespace, auth)


@pytest.mark.parametrize(
    "username, centre, refusal",
    [
        ("clerk1", None, "forbidden"),  # a clerk: no monitor
        ("clerk1", "T2", "forbidden"),  # nor where it is lent
        ("quanly1", None, None),  # T1's manager
        ("quanly1", "T2", "forbidden"),  # no role in T2
        ("quanly2", None, None),  # T2's manager, its own centre
        ("quanly2", "T1", "forbidden"),
        ("quantri2", "T2", None),
        ("tinh", "T1", None),  # the province's admin, anywhere
        ("tinh", "T2", None),
        ("tinh", "T9", "not_found"),
    ],
)
def test_the_monitor_door_asks_the_permission_table(province, devices, username, centre, refusal):
    auth = {"token": province.login(username)}
    if centre:
        auth["centre"] = centre
    if refusal is not None:
        refused = connect_refused(province, "/manage", auth)
        assert refused["data"]["code"] == refusal
        if refusal == "forbidden":
            assert "không có quyền xem màn hình giám sát" in refused["data"]["message"]
        return
    manager = devices(province, "/manage", auth)
    snapshot = manager.wait_event("monitor_state")
    assert snapshot["centre"]["code"] == (centre or {"quanly1": "T1"}.get(username, "T2"))
    # Every event of the door, with every role that may open it: answered by its rules,
    # never refused for want of a permission (monitor.act is held by the same roles).
    for event in ManageDoor.events:
        answer = manager.call(event, {"bogus": 1})
        assert answer["ok"] is False
        assert answer["error"]["code"] == "bad_request", (event, answer)
    assert manager.call("figures")["ok"]
    assert manager.call("no_such_event")["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    "username, counter, centre, refusal",
    [
        ("clerk1", 1, None, None),  # its own centre's counter
        ("clerk1", 2, "T2", None),  # lent to T2, counter 2 there
        ("clerk1", 1, "T2", "forbidden"),  # T2 assigns it counter 2 only
        ("clerk1", 1, "T9", "not_found"),
        ("quanly2", 1, None, None),  # T2's manager at T2's counter 1
        ("quanly2", 1, "T1", "forbidden"),  # no role in T1
        ("quantri2", 2, "T2", None),
        ("tinh", 3, "T1", None),  # the province's admin, anywhere
        ("tinh", 1, "T2", None),
    ],
)
def test_the_counter_door_asks_the_permission_table(
    province, devices, username, counter, centre, refusal
):
    auth = {"token": province.login(username), "counter": counter}
    if centre:
        auth["centre"] = centre
    if refusal is None:
        clerk = devices(province, "/counter", auth)
        snapshot = clerk.wait_event("counter_state")
        assert snapshot["counter"]["number"] == counter
        # Every event of the door, with every role: answered by its rules, never refused
        # for want of a permission these roles all hold.
        for event in CounterDoor.events:
            answer = clerk.call(event, {"bogus": 1})
            assert answer["ok"] is False
            assert answer["error"]["code"] == "bad_request", (event, answer)
        assert clerk.call("my_day")["ok"]
    else:
        refused = connect_refused(province, "/counter", auth)
        assert refused["data"]["code"] == refusal
        if refusal == "forbidden" and username == "quanly2":
            assert "không có quyền làm việc tại quầy" in refused["data"]["message"]


def test_a_staff_connection_names_its_centre_as_a_string(province):
    auth = {"token": province.login("clerk1"), "counter": 1, "centre": 7}
    assert connect_refused(province, "/counter", auth)["data"]["code"] == "bad_request"
