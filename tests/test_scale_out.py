"""Several server processes sharing PostgreSQL and Redis behave as one server."""

from __future__ import annotations

import threading

from conftest import DISPLAY, KIOSK, ServerProcess

COUNTERS = 4
TICKETS = 60


def _centre_file(tmp_path):
    """A centre whose four counters all serve one service, staffed by clerks allowed anywhere."""
    lines = [
        '[centre]\ncode = "SO"\nname = "Trung tâm thử nghiệm nhiều tiến trình"\n',
        '[[services]]\ncode = "TP"\nname = "Lý lịch tư pháp"\nagency = "Sở Tư pháp"\n'
        'prefix = "A"\n',
    ]
    for n in range(1, COUNTERS + 1):
        lines.append(f'[[counters]]\nnumber = {n}\nname = "Quầy {n}"\nservices = ["TP"]\n')
    lines.append(
        '[[staff]]\nusername = "clerk2"\npassword = "clerk2-secret"\n'
        'full_name = "Trần Thị Bình"\nrole = "clerk"\n'
    )
    lines.append(f'[[devices]]\nname = "Kiosk"\nkind = "kiosk"\ntoken = "{KIOSK}"\n')
    lines.append(f'[[devices]]\nname = "Bảng"\nkind = "display"\ntoken = "{DISPLAY}"\n')
    path = tmp_path / "scale.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _pair(tmp_path, pg_url, redis_url, provision=None):
    first = ServerProcess(
        tmp_path, pg_url, redis_url, **({"provision": provision} if provision else {})
    ).start()
    second = ServerProcess(tmp_path, pg_url, redis_url, provision=None).start()
    return first, second


def test_call_on_one_process_reaches_display_on_the_other(tmp_path, pg_url, redis_url, devices):
    a, b = _pair(tmp_path, pg_url, redis_url)
    try:
        display = devices.display(b)
        display.wait_event("snapshot")
        devices.kiosk(a).call("issue", {"service": "TP"})
        assert display.wait_event("update", kind="issued")["ticket"]["number"] == "A001"
        counter = devices.counter(a, "clerk1", 1)
        assert counter.call("call_next", {})["ok"]
        called = display.wait_event("called")
        assert called["ticket"]["number"] == "A001"
        assert called["counter"]["number"] == 1
        health = b.url + "/healthz"
        import requests

        assert requests.get(health, timeout=5).json() == {
            "status": "ok",
            "database": "ok",
            "redis": "ok",
        }
    finally:
        a.stop()
        b.stop()


def test_counters_on_two_processes_never_get_the_same_ticket(tmp_path, pg_url, redis_url, devices):
    a, b = _pair(tmp_path, pg_url, redis_url, provision=_centre_file(tmp_path))
    try:
        display_b = devices.display(b)
        display_a = devices.display(a)
        for d in (display_a, display_b):
            d.wait_event("snapshot")
        kiosk = devices.kiosk(a)
        for _ in range(TICKETS):
            assert kiosk.call("issue", {"service": "TP"})["ok"]
        counters = [devices.counter(a if n % 2 else b, "clerk2", n) for n in range(1, COUNTERS + 1)]
        served: dict[int, list[int]] = {n: [] for n in range(1, COUNTERS + 1)}
        failures: list[dict] = []

        def work(n, counter):
            while True:
                ack = counter.call("call_next", {})
                if not ack["ok"]:
                    if ack["error"]["code"] != "queue_empty":
                        failures.append(ack)
                    return
                served[n].append(ack["ticket"]["id"])
                start = counter.call("start", {"ticket_id": ack["ticket"]["id"]})
                if not start["ok"]:
                    failures.append(start)
                    return

        threads = [
            threading.Thread(target=work, args=(n, c))
            for n, c in zip(range(1, COUNTERS + 1), counters, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not failures, failures[:3]
        everything = [tid for ids in served.values() for tid in ids]
        assert len(everything) == len(set(everything)) == TICKETS
        assert all(served.values()), f"some counter served nothing: {served}"

        # Both displays saw every change, once, in seq order, whichever process made it.
        last = devices.display(a).wait_event("snapshot")["seq"]
        for d in (display_a, display_b):
            d.wait_for(lambda n, data: n in ("called", "update") and data["seq"] == last)
        seqs_a, seqs_b = display_a.seqs(), display_b.seqs()
        expected = list(range(seqs_a[0], last + 1))
        assert seqs_a == expected, f"display on A: {seqs_a}"
        assert seqs_b == expected, f"display on B: {seqs_b}"
    finally:
        a.stop()
        b.stop()


def test_changes_reach_other_processes_even_when_redis_loses_them(
    tmp_path, pg_url, redis_url, devices
):
    """Process A cannot reach Redis at all: B still shows A's changes, in order, read back
    from the store, and A reports itself degraded."""
    import requests

    from conftest import free_port

    a = ServerProcess(tmp_path, pg_url, f"redis://127.0.0.1:{free_port()}/0").start()
    b = ServerProcess(tmp_path, pg_url, redis_url, provision=None).start()
    try:
        display = devices.display(b)
        first = display.wait_event("snapshot")["seq"]
        kiosk = devices.kiosk(a)
        numbers = [kiosk.call("issue", {"service": "TP"})["ticket"]["number"] for _ in range(5)]
        seen = [
            display.wait_event("update", kind="issued", timeout=10)["ticket"]["number"]
            for _ in numbers
        ]
        assert seen == numbers
        assert display.seqs() == list(range(first + 1, first + 6))
        health = requests.get(a.url + "/healthz", timeout=5)
        assert health.status_code == 200
        assert health.json() == {"status": "degraded", "database": "ok", "redis": "unreachable"}
    finally:
        a.stop()
        b.stop()
