"""Several server processes sharing PostgreSQL and Redis behave as one server."""

from __future__ import annotations

import threading
import time

from harness.centre import DISPLAY, KIOSK, CentreServer
from harness.process import free_port

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
    first = CentreServer(
        tmp_path, pg_url, redis_url, **({"provision": provision} if provision else {})
    ).start()
    second = CentreServer(tmp_path, pg_url, redis_url, provision=None).start()
    return first, second


def test_call_on_one_process_reaches_display_on_the_other(tmp_path, pg_url, redis_url, devices):
    a, b = _pair(tmp_path, pg_url, redis_url)
    try:
        display = devices.display(b)
        display.wait_event("snapshot")
        devices.kiosk(a).call("issue", {"service": "TP"})
        assert display.wait_service("TP", waiting=1)
        counter = devices.counter(a, "clerk1", 1)
        assert counter.call("call_next", {})["ok"]
        called = display.wait_change("called")
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

        # Both displays saw every call once, in seq order, whichever process made it, in
        # batches that follow each other; and they end in the same state.
        def calls(display):
            return [e for b in display.batches() for e in b["events"] if e["kind"] == "called"]

        for d in (display_a, display_b):
            deadline = time.monotonic() + 10
            while len(calls(d)) < TICKETS and time.monotonic() < deadline:
                time.sleep(0.05)
            assert d.chain_problem() is None
            assert sorted(e["ticket"]["id"] for e in calls(d)) == sorted(everything)
        assert display_a.event_seqs() == display_b.event_seqs()
        assert display_a.batches()[-1]["services"] == display_b.batches()[-1]["services"]
    finally:
        a.stop()
        b.stop()


def test_changes_reach_other_processes_even_when_redis_loses_them(
    tmp_path, pg_url, redis_url, devices
):
    """Process A cannot reach Redis at all: B still shows A's changes, in order, read back
    from the store, and A reports itself degraded."""
    import requests

    a = CentreServer(tmp_path, pg_url, f"redis://127.0.0.1:{free_port()}/0").start()
    b = CentreServer(tmp_path, pg_url, redis_url, provision=None).start()
    try:
        display = devices.display(b)
        first = display.wait_event("snapshot")["seq"]
        kiosk = devices.kiosk(a)
        for _ in range(5):
            assert kiosk.call("issue", {"service": "TP"})["ok"]
        display.wait_service("TP", waiting=5)
        batches = display.batches()
        assert batches[0]["after"] == first and batches[-1]["seq"] == first + 5
        assert display.chain_problem() is None
        health = requests.get(a.url + "/healthz", timeout=5)
        assert health.status_code == 200
        assert health.json() == {"status": "degraded", "database": "ok", "redis": "unreachable"}
    finally:
        a.stop()
        b.stop()


def test_a_process_hears_only_the_centres_of_its_devices(tmp_path, pg_url, redis_url, devices):
    """Changes travel on one Redis channel per centre, and a process subscribes to a
    centre's channel while one of its devices is connected there: a process serving no
    device of a centre hears nothing of it."""
    import redis
    import sqlalchemy as sa

    from harness.centre import COMMUNE

    a, b = _pair(tmp_path, pg_url, redis_url)
    a.provision_also(COMMUNE)
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        installation = conn.execute(sa.text("SELECT id FROM installation")).scalar_one()
        ids = dict(conn.execute(sa.text("SELECT code, id FROM centres")).all())
    engine.dispose()
    prefix = f"motcua:changes:{installation}"
    r = redis.Redis.from_url(redis_url)

    def listeners():
        channels = [prefix, f"{prefix}:{ids['T1']}", f"{prefix}:{ids['T2']}"]
        return [n for _, n in r.pubsub_numsub(*channels)]

    def until(expected):
        deadline = time.monotonic() + 10
        while listeners() != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return listeners()

    try:
        # Both processes listen to the installation; nobody to a centre without devices.
        assert until([2, 0, 0]) == [2, 0, 0]
        display_a = devices.display(a)
        display_a.wait_event("snapshot")
        assert until([2, 1, 0]) == [2, 1, 0]
        devices.kiosk(b, "t2-kiosk-token-00001").wait_event("services")
        assert until([2, 1, 1]) == [2, 1, 1]
        # A's one listener to T1 goes with its last T1 device: B (T2 only) never listened.
        display_a.close()
        assert until([2, 0, 1]) == [2, 0, 1]
        # A T1 device on B: B follows T1 from now on, and hears the calls made on A.
        display_b = devices.display(b)
        display_b.wait_event("snapshot")
        assert until([2, 1, 1]) == [2, 1, 1]
        kiosk = devices.kiosk(a)
        kiosk.wait_event("services")
        assert until([2, 2, 1]) == [2, 2, 1]
        assert kiosk.call("issue", {"service": "TP"})["ok"]
        assert kiosk.call("issue", {"service": "TP"})["ok"]
        display_b.wait_service("TP", waiting=2)
        assert devices.counter(a, "clerk1", 1).call("call_next", {})["ok"]
        assert display_b.wait_change("called")["ticket"]["number"] == "A001"
        assert display_b.chain_problem() is None
    finally:
        r.close()
        a.stop()
        b.stop()
