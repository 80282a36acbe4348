"""Acknowledged means committed: restarts and SIGKILL lose nothing, seq continues."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import socketio
import sqlalchemy as sa

from core.store import normalise_url
from harness.centre import KIOSK, KIOSK_B, CentreServer


def test_restart_mid_flow_keeps_queue_and_seq(any_server, devices):
    kiosk = devices.kiosk(any_server)
    tickets = [kiosk.call("issue", {"service": "TP"})["ticket"] for _ in range(3)]
    counter = devices.counter(any_server, "clerk1", 1)
    counter.wait_event("counter_state")
    called = counter.call("call_next", {})["ticket"]
    assert called["number"] == "A001"
    display = devices.display(any_server)
    before = display.wait_event("snapshot")
    for d in (kiosk, counter, display):
        d.close()

    any_server.restart()

    display = devices.display(any_server)
    after = display.wait_event("snapshot")
    assert after["seq"] == before["seq"]
    assert after["counters"][0]["current"] == {"number": "A001", "service": "TP"}
    assert after["recent_calls"][0]["ticket"]["number"] == "A001"
    counter = devices.counter(any_server, "clerk1", 1)
    state = counter.wait_event("counter_state")
    assert state["current"]["id"] == called["id"] and state["current"]["status"] == "called"
    assert state["waiting"]["TP"] == 2
    kiosk = devices.kiosk(any_server)
    fourth = kiosk.call("issue", {"service": "TP"})
    assert fourth["ticket"]["number"] == "A004"
    batch = display.wait_event("changes")
    assert batch["after"] == after["seq"] and batch["seq"] == after["seq"] + 1
    assert batch["services"][0] == {**batch["services"][0], "code": "TP", "waiting": 3}
    assert counter.call("start", {"ticket_id": tickets[0]["id"]})["ok"]


def _issue_until_stopped(server, token, stop, acked, errors):
    sio = socketio.Client(reconnection=False)
    try:
        sio.connect(
            server.url,
            namespaces=["/kiosk"],
            auth={"token": token},
            transports=["websocket"],
            wait_timeout=10,
        )
        while not stop.is_set():
            rid = uuid.uuid4().hex
            ack = sio.call(
                "issue", {"service": "TP", "request_id": rid}, namespace="/kiosk", timeout=10
            )
            if ack.get("ok"):
                acked.append(ack["ticket"])
            else:
                errors.append(ack)
    except Exception:  # noqa: BLE001 - the server is killed under us on purpose
        pass
    finally:
        try:
            sio.disconnect()
        except Exception:  # noqa: BLE001
            pass


def test_sigkill_while_kiosks_issue_loses_no_acknowledged_ticket(any_server, devices):
    stop = threading.Event()
    acked: list[dict] = []
    errors: list[dict] = []
    kiosks = [
        threading.Thread(target=_issue_until_stopped, args=(any_server, token, stop, acked, errors))
        for token in (KIOSK, KIOSK_B, KIOSK, KIOSK_B)
    ]
    for t in kiosks:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    any_server.kill()
    stop.set()
    for t in kiosks:
        t.join(15)
    assert len(acked) >= 150, f"only {len(acked)} tickets acknowledged before the kill"
    assert not errors, errors[:3]

    any_server.start()
    engine = sa.create_engine(normalise_url(any_server.database_url))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, number, seq_no, issued_at FROM tickets ORDER BY id")
        ).all()
        seqs = conn.execute(sa.text("SELECT seq FROM audit_log ORDER BY seq")).scalars().all()
        centre_seq = conn.execute(sa.text("SELECT seq FROM centres")).scalar_one()
    engine.dispose()

    stored = {r.id: r.number for r in rows}
    for ticket in acked:
        assert stored.get(ticket["id"]) == ticket["number"], f"acknowledged {ticket} is lost"
    numbers = [r.number for r in rows]
    assert len(numbers) == len(set(numbers)), "a number was issued twice"
    assert [r.seq_no for r in rows] == list(range(1, len(rows) + 1)), "numbering has a gap"
    assert [r.issued_at for r in rows] == sorted(r.issued_at for r in rows)
    assert seqs == list(range(1, centre_seq + 1)), "the change sequence has a gap"

    # The restarted server carries on from there.
    kiosk = devices.kiosk(any_server)
    assert kiosk.wait_event("services")["seq"] == centre_seq
    nxt = kiosk.call("issue", {"service": "TP"})
    assert nxt["ticket"]["number"] == f"A{len(rows) + 1:03d}"


def test_repeated_request_id_issues_one_ticket_even_across_restart(sqlite_server, devices):
    kiosk = devices.kiosk(sqlite_server)
    first = kiosk.call("issue", {"service": "TP", "request_id": "press-1"})
    again = kiosk.call("issue", {"service": "TP", "request_id": "press-1"})
    assert again == first
    kiosk.close()
    sqlite_server.restart()
    kiosk = devices.kiosk(sqlite_server)
    assert kiosk.call("issue", {"service": "TP", "request_id": "press-1"}) == first
    # Another kiosk may use the same request_id for its own press.
    other = devices.kiosk(sqlite_server, KIOSK_B).call(
        "issue", {"service": "TP", "request_id": "press-1"}
    )
    assert other["ticket"]["number"] == "A002"


@pytest.mark.parametrize("bad", ["not toml [", "[centre]\ncode = 1\n"])
def test_server_refuses_to_start_with_an_invalid_provisioning_file(tmp_path, bad):
    path = tmp_path / "bad.toml"
    path.write_text(bad)
    srv = CentreServer(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", provision=path)
    with pytest.raises(RuntimeError, match="exited with 2"):
        srv.start(timeout=15)
    assert "bad.toml" in srv.log()
