"""The hardware agent prints kiosks' tickets: a real server, a real agent process
(`server.py agent`), a network printer stand-in on loopback that records every byte.
The test centre's agent prints Kiosk B's tickets (tests/centre.toml)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest

from hardware.ticket import TicketFace, render
from harness.centre import AGENT, KIOSK, KIOSK_B, CentreServer
from harness.printer import FakeNetworkPrinter, decode_tickets
from harness.process import ROOT

pytestmark = pytest.mark.timeout(120)


def face_of(job: dict) -> TicketFace:
    face = dict(job["face"])
    face["issued_at"] = datetime.fromisoformat(face["issued_at"])
    return TicketFace(**face)


def wait_printed(kiosk, ticket_id: int, timeout: float = 20) -> dict:
    return kiosk.wait_for(
        lambda n, d: n == "change" and d["kind"] == "printed" and d["ticket"]["id"] == ticket_id,
        timeout=timeout,
        what=f"printed for ticket {ticket_id}",
    )


def test_a_ticket_prints_exactly_as_its_preview(sqlite_server, devices, agent_factory):
    devices.counter(sqlite_server, "clerk1", 1)  # TP open
    watcher = devices(sqlite_server, "/agent", {"token": AGENT})  # sees the jobs' faces
    with FakeNetworkPrinter("ok") as printer:
        agent_factory(sqlite_server, printer.url).start()
        kiosk = devices.kiosk(sqlite_server, KIOSK_B)
        issued = kiosk.call("issue", {"service": "TP", "priority": "elderly"})
        assert issued["ok"] and issued["print"]["job"] >= 1
        result = wait_printed(kiosk, issued["ticket"]["id"])
        assert result["state"] == "printed" and result["error"] is None
        assert result["printer"] == {"online": True, "paper": "ok"}
        job = watcher.wait_change("issued")["print"]
        assert job["job"] == issued["print"]["job"]
        assert job["face"]["number"] == issued["ticket"]["number"]
        assert job["face"]["priority"] == "Người cao tuổi"
        assert job["face"]["status_url"] == issued["status_url"]
        printed = decode_tickets(printer.received)
        assert len(printed) == 1
        assert printed[0].tobytes() == render(face_of(job), 576).tobytes()
        # Another kiosk's tickets carry no job and never reach this agent's printer.
        other = devices.kiosk(sqlite_server, KIOSK).call("issue", {"service": "TP"})
        assert other["ok"] and other["print"] is None
        time.sleep(0.5)
        assert len(decode_tickets(printer.received)) == 1


def test_out_of_paper_keeps_the_ticket_and_says_why(sqlite_server, devices, agent_factory):
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    with FakeNetworkPrinter("out") as printer:
        agent_factory(sqlite_server, printer.url).start()
        kiosk = devices.kiosk(sqlite_server, KIOSK_B)
        issued = kiosk.call("issue", {"service": "TP"})
        result = wait_printed(kiosk, issued["ticket"]["id"])
        assert result["state"] == "failed" and result["error"] == "out_of_paper"
        assert result["printer"]["paper"] == "out"
        assert decode_tickets(printer.received) == []
        # Staff hear of it: every counter of the centre gets the kiosk's alert.
        alert = clerk.wait_change("device_alert")
        assert alert["device"]["name"] == "Kiosk B" and alert["alert"] == "out_of_paper"
        assert clerk.fresh_snapshot("counter_state")["device_alerts"][0]["alert"] == (
            "out_of_paper"
        )
        # Paper put back: the next ticket prints and the alert is cleared.
        printer.mode = "ok"
        again = kiosk.call("issue", {"service": "TP"})
        assert wait_printed(kiosk, again["ticket"]["id"])["state"] == "printed"
        assert clerk.wait_change("device_alert")["alert"] is None
        assert clerk.fresh_snapshot("counter_state")["device_alerts"] == []
    # The ticket is as valid as a printed one: the clerk calls it.
    assert clerk.call("call_next", {})["ticket"]["number"] == issued["ticket"]["number"]


def test_unreachable_printer_fails_the_job_not_the_ticket(sqlite_server, devices, agent_factory):
    printer = FakeNetworkPrinter("ok")
    url = printer.url
    printer.close()  # nothing listens there any more
    agent_factory(sqlite_server, url).start()
    kiosk = devices.kiosk(sqlite_server, KIOSK_B)
    issued = kiosk.call("issue", {"service": "TP"})
    result = wait_printed(kiosk, issued["ticket"]["id"])
    assert (result["state"], result["error"]) == ("failed", "unreachable")


def test_a_job_past_its_deadline_is_dropped_not_printed_late(tmp_path, devices, agent_factory):
    server = CentreServer(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", env={"MOTCUA_PRINT_DEADLINE_S": "1"}
    ).start()
    try:
        kiosk = devices.kiosk(server, KIOSK_B)
        issued = kiosk.call("issue", {"service": "TP"})  # no agent running yet
        time.sleep(1.5)
        with FakeNetworkPrinter("ok") as printer:
            agent_factory(server, printer.url).start()  # finds the job in its snapshot
            result = wait_printed(kiosk, issued["ticket"]["id"])
            assert (result["state"], result["error"]) == ("expired", "expired")
            assert decode_tickets(printer.received) == []
    finally:
        server.stop()


def test_an_agent_killed_mid_job_never_prints_it_twice(sqlite_server, devices, agent_factory):
    kiosk = devices.kiosk(sqlite_server, KIOSK_B)
    # A printer that takes the connection and never reads: the job hangs mid-way...
    with FakeNetworkPrinter("silent") as stalled:
        agent = agent_factory(sqlite_server, stalled.url).start()
        issued = kiosk.call("issue", {"service": "TP"})
        job = issued["print"]["job"]
        deadline = time.monotonic() + 15
        while {"job": job, "step": "started"} not in agent.journal_entries():
            assert time.monotonic() < deadline, "the agent never started the job"
            time.sleep(0.05)
        agent.stop(signal.SIGKILL)  # ...and the agent dies during it.
    with FakeNetworkPrinter("ok") as printer:
        agent_factory(sqlite_server, printer.url).start()
        result = wait_printed(kiosk, issued["ticket"]["id"])
        assert (result["state"], result["error"]) == ("failed", "interrupted")
        time.sleep(0.5)
        assert decode_tickets(printer.received) == []


def test_results_are_reported_once_and_only_by_the_agent(sqlite_server, devices):
    kiosk = devices.kiosk(sqlite_server, KIOSK_B)
    job = kiosk.call("issue", {"service": "TP"})["print"]["job"]
    agent = devices(sqlite_server, "/agent", {"token": AGENT})
    first = agent.call("print_result", {"job": job, "printed": True, "request_id": "r1"})
    assert first == {"ok": True, "state": "printed"}
    # Repeated with its request_id: the same answer, nothing recorded twice.
    again = agent.call("print_result", {"job": job, "printed": True, "request_id": "r1"})
    assert again == first
    other = agent.call("print_result", {"job": job, "printed": False, "error": "io_error"})
    assert other["error"]["code"] == "conflict"
    assert agent.call("print_result", {"job": 99999, "printed": True})["error"]["code"] == (
        "not_found"
    )
    bad = agent.call("print_result", {"job": job, "printed": False, "error": "gremlins"})
    assert bad["error"]["code"] == "bad_request"
    weird = agent.call(
        "print_result", {"job": job, "printed": True, "printer": {"online": "yes", "paper": 1}}
    )
    assert weird["error"]["code"] == "bad_request"
    # A kiosk cannot report prints.
    assert kiosk.call("print_result", {"job": job, "printed": True})["ok"] is False


def test_a_bad_agent_configuration_is_refused_with_its_reason(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text('server = "http://127.0.0.1:1"\n[printers."K"]\nwidth = 100\n')
    out = subprocess.run(
        [sys.executable, str(ROOT / "server.py"), "agent", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert "thiếu “token”" in out.stdout


def test_a_ticket_taken_in_english_prints_its_service_in_both(
    sqlite_server, devices, agent_factory, tmp_path
):
    """The citizen chose English: the face carries the English name under the Vietnamese
    one, and its QR code opens the status page in English."""
    devices.counter(sqlite_server, "clerk1", 1)
    watcher = devices(sqlite_server, "/agent", {"token": AGENT})
    agent_factory(sqlite_server, f"png://{tmp_path / 'png'}").start()
    kiosk = devices.kiosk(sqlite_server, KIOSK_B)
    english = kiosk.call("issue", {"service": "TP", "lang": "en"})
    assert english["ok"] and english["status_url"].endswith("?lang=en")
    job = watcher.wait_change("issued")["print"]
    assert job["face"]["service"] == "Lý lịch tư pháp"
    assert job["face"]["service_en"] == "Criminal record certificates"
    assert job["face"]["status_url"] == english["status_url"]
    assert wait_printed(kiosk, english["ticket"]["id"])["state"] == "printed"
    vietnamese = kiosk.call("issue", {"service": "TP", "lang": "vi"})
    job = watcher.wait_change("issued")["print"]
    assert "service_en" not in job["face"] and "?" not in vietnamese["status_url"]
    # Named by the centre's date and time of issue (Asia/Ho_Chi_Minh), not the machine's.
    assert wait_printed(kiosk, vietnamese["ticket"]["id"])["state"] == "printed"
    names = sorted(p.name for p in (tmp_path / "png").glob("*.png"))
    local = datetime.fromisoformat(english["ticket"]["issued_at"])
    assert names[0].startswith(f"ticket-{local:%Y%m%d-%H%M%S}-A001-"), names
    assert len(names) == 2 and "-A002-" in names[1]
    refused = kiosk.call("issue", {"service": "TP", "lang": "fr"})
    assert refused["error"]["code"] == "bad_request" and "lang" in refused["error"]["message"]
