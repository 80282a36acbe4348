"""GET /metrics on each server process: real devices act, a real scrape reads the figures
(docs/metrics.md)."""

from __future__ import annotations

import socket
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from harness.centre import DISPLAY, CentreServer
from harness.process import free_port


def scrape(server, host: str | None = None, **headers) -> dict:
    """{(sample name, sorted labels): value} of one real scrape of ``server``."""
    url = server.url if host is None else f"http://{host}:{server.port}"
    answer = requests.get(url + "/metrics", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def total(samples: dict, name: str, **labels) -> float:
    """The sum of ``name`` over the samples whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def wait_until(predicate, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_metrics_count_what_the_devices_did(any_server, devices):
    srv = any_server
    before = scrape(srv)
    assert value(before, "motcua_database_up") == 1
    assert value(before, "motcua_redis_up") is None  # one process, no Redis
    assert total(before, "motcua_connections") == 0
    assert total(before, "motcua_events_total") == 0
    assert value(before, "process_resident_memory_bytes") > 0
    assert value(before, "motcua_gc_collections_total", generation="0") is not None

    display = devices.display(srv)
    display.wait_event("snapshot")
    kiosk = devices.kiosk(srv)
    kiosk.wait_event("services")
    counter = devices.counter(srv, "clerk1", 1)
    counter.wait_event("counter_state")
    connected = scrape(srv)
    for role in ("display", "kiosk", "counter"):
        assert value(connected, "motcua_connections", role=role, centre="T1") == 1, role
    assert total(connected, "motcua_connections") == 3
    assert value(connected, "motcua_centres_followed") == 1
    waiting_before = value(connected, "motcua_tickets_waiting", centre="T1")

    for _ in range(3):
        assert kiosk.call("issue", {"service": "TP"})["ok"]
    refused = kiosk.call("issue", {"service": "NO"})
    assert not refused["ok"]
    assert not kiosk.call("no_such_event", {})["ok"]
    ack = counter.call("call_next", {})
    assert ack["ok"], ack
    assert display.wait_change("called")["ticket"]["number"] == ack["ticket"]["number"]

    after = scrape(srv)

    def grew(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert value(after, "motcua_events_total", role="kiosk", event="issue") == 4
    assert value(after, "motcua_events_total", role="kiosk", event="unknown") == 1
    assert value(after, "motcua_events_total", role="counter", event="call_next") == 1
    # Every operation through the writer, its histogram's count and its +Inf bucket alike.
    assert grew("motcua_operation_seconds_count", operation="issue_ticket") == 4
    assert grew("motcua_operation_seconds_bucket", operation="issue_ticket", le="+Inf") == 4
    assert grew("motcua_operation_seconds_count", operation="call_next") == 1
    assert 0 < grew("motcua_operation_seconds_sum", operation="call_next") < 5
    code = refused["error"]["code"]
    assert value(after, "motcua_operation_refusals_total", operation="issue_ticket", code=code) == 1
    assert total(after, "motcua_operation_refusals_total", operation="call_next") == 0
    buckets = sorted(
        (float(dict(ls)["le"]), v)
        for (n, ls), v in after.items()
        if n == "motcua_operation_seconds_bucket" and dict(ls)["operation"] == "issue_ticket"
    )
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == 4  # cumulative buckets
    # Three tickets issued, one called: two more waiting than before.
    assert value(after, "motcua_tickets_waiting", centre="T1") == waiting_before + 2
    # Issues and the call are changes, committed here and delivered to these devices.
    assert grew("motcua_changes_committed_total") >= 4
    assert grew("motcua_changes_delivered_total") >= 4
    assert grew("motcua_batches_sent_total", role="display") >= 1
    assert grew("motcua_batches_sent_total", role="counter") >= 1
    delays = grew("motcua_delivery_delay_seconds_count")
    assert delays >= 4
    assert grew("motcua_delivery_delay_seconds_bucket", le="+Inf") == delays
    assert 0 <= grew("motcua_delivery_delay_seconds_sum") < delays  # each well under 1 s
    assert value(after, "motcua_writer_queue_length") == 0

    # Devices that leave are no longer counted.
    display.close()
    gone = wait_until(
        lambda: value(scrape(srv), "motcua_connections", role="display", centre="T1") is None
    )
    assert gone


def _own_address() -> str | None:
    """A non-loopback address of this machine (the one it would reach the net from)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_metrics_answer_loopback_and_allowed_addresses_only(tmp_path):
    own = _own_address()
    if own is None:
        pytest.skip("this machine has no non-loopback address to scrape from")
    db = f"sqlite:///{tmp_path / 'motcua.sqlite3'}"
    # Listening on every address: a request to this machine's own address comes from it.
    closed = CentreServer(tmp_path, db)
    closed.args = ("--host", "0.0.0.0")
    closed.start()
    try:
        assert value(scrape(closed), "motcua_database_up") == 1  # loopback may
        refused = requests.get(f"http://{own}:{closed.port}/metrics", timeout=10)
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert error["code"] == "forbidden"
        assert own in error["message"] and "/metrics" in error["message"]
        english = requests.get(f"http://{own}:{closed.port}/metrics?lang=en", timeout=10)
        assert "MOTCUA_METRICS_ALLOW" in english.json()["error"]["message"]
        # Through a proxy (which says whom it forwards for), never, even from loopback.
        proxied = requests.get(
            closed.url + "/metrics", headers={"X-Forwarded-For": "127.0.0.1"}, timeout=10
        )
        assert proxied.status_code == 403
        assert (
            "proxy"
            in requests.get(
                closed.url + "/metrics?lang=en", headers={"X-Real-IP": "127.0.0.1"}, timeout=10
            ).json()["error"]["message"]
        )
    finally:
        closed.stop()

    allowed = CentreServer(tmp_path, db, env={"MOTCUA_METRICS_ALLOW": f"192.0.2.7, {own}/32"})
    allowed.args = ("--host", "0.0.0.0")
    allowed.start()
    try:
        assert value(scrape(allowed, host=own), "motcua_database_up") == 1
    finally:
        allowed.stop()

    wrong = CentreServer(tmp_path, db, env={"MOTCUA_METRICS_ALLOW": "10.0.0.300"})
    with pytest.raises(RuntimeError, match="MOTCUA_METRICS_ALLOW: '10.0.0.300' is neither"):
        wrong.start()
    wrong.stop()


def test_redis_health_and_delivery_across_processes(tmp_path, pg_url, redis_url, devices):
    """A process that cannot reach Redis says so (redis_up 0, failures counted), and
    another process reads its changes back from the store (the sweep, counted); on two
    processes that can, a change made on one is delivered, and measured, on the other."""
    lost = CentreServer(tmp_path, pg_url, f"redis://127.0.0.1:{free_port()}/0").start()
    b = CentreServer(tmp_path, pg_url, redis_url, provision=None).start()
    a = None
    try:
        display = devices.display(b, DISPLAY)
        display.wait_event("snapshot")
        kiosk = devices.kiosk(lost)
        assert kiosk.call("issue", {"service": "TP"})["ok"]
        down = wait_until(
            lambda: (
                (s := scrape(lost))
                and value(s, "motcua_redis_publish_failures_total") >= 1
                and value(s, "motcua_redis_receive_failures_total") >= 1
                and s
            )
        )
        assert down, scrape(lost)
        assert value(down, "motcua_redis_up") == 0
        assert value(down, "motcua_database_up") == 1
        # B never hears of it through Redis: its sweep reads it back, about a second late.
        assert display.wait_service("TP")  # the new waiting count
        swept = scrape(b)
        assert value(swept, "motcua_redis_up") == 1
        assert value(swept, "motcua_changes_read_back_total", reason="sweep") >= 1
        assert value(swept, "motcua_delivery_delay_seconds_count") >= 1
        assert value(swept, "motcua_delivery_delay_seconds_sum") > 0
        assert value(swept, "motcua_redis_publish_failures_total") == 0
        kiosk.close()
        display.close()
        lost.stop()

        a = CentreServer(tmp_path, pg_url, redis_url, provision=None).start()
        display = devices.display(b, DISPLAY)
        display.wait_event("snapshot")
        kiosk = devices.kiosk(a)
        kiosk.wait_event("services")
        counter = devices.counter(a, "clerk1", 1)
        counter.wait_event("counter_state")
        before_a, before_b = scrape(a), scrape(b)
        for s in (before_a, before_b):
            assert value(s, "motcua_redis_up") == 1
        assert value(before_b, "motcua_connections", role="display", centre="T1") == 1
        assert value(before_b, "motcua_connections", role="kiosk", centre="T1") is None
        assert value(before_a, "motcua_connections", role="kiosk", centre="T1") == 1
        assert kiosk.call("issue", {"service": "TP"})["ok"]
        ack = counter.call("call_next", {})
        assert ack["ok"], ack
        assert display.wait_change("called")["ticket"]["number"] == ack["ticket"]["number"]
        after_a, after_b = scrape(a), scrape(b)
        # The operations ran on A, not on B; B delivered them to its display.
        assert value(after_a, "motcua_operation_seconds_count", operation="call_next") == 1
        assert value(after_b, "motcua_operation_seconds_count", operation="call_next") is None
        assert value(after_b, "motcua_events_total", role="kiosk", event="issue") is None
        delivered = value(after_b, "motcua_changes_delivered_total") - value(
            before_b, "motcua_changes_delivered_total"
        )
        assert delivered >= 2
        measured = value(after_b, "motcua_delivery_delay_seconds_count") - value(
            before_b, "motcua_delivery_delay_seconds_count"
        )
        assert measured == delivered  # through Redis, each says when it was committed
        assert value(after_b, "motcua_batches_sent_total", role="display") > (
            value(before_b, "motcua_batches_sent_total", role="display") or 0
        )
        # Both follow the centre, and read the same waiting count from the store.
        assert value(after_a, "motcua_tickets_waiting", centre="T1") == value(
            after_b, "motcua_tickets_waiting", centre="T1"
        )
    finally:
        for server in (lost, a, b):
            if server is not None:
                server.stop()
