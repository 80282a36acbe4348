"""Dossier records (hồ sơ): linked to visits when a clerk finishes, kept in step with the
province's one-stop system through the integration API, looked up by citizens by code.
Real server processes; the look-up page in Debian's Chromium."""

from __future__ import annotations

import subprocess
import sys

import requests
from playwright.sync_api import expect

from harness.browser import PHONE_SCREEN, PageErrors, screenshot
from harness.centre import INTEGRATION, KIOSK
from harness.process import ROOT

CODE = "H15.50.05.13-261008-0975"


def api(server, method, path, key=INTEGRATION, **kw):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.request(method, server.url + path, headers=headers, timeout=10, **kw)


def serve(devices, server, clerk, dossiers, outcome):
    devices.kiosk(server).call("issue", {"service": "TP"})
    ticket = clerk.call("call_next", {})["ticket"]
    clerk.call("start", {"ticket_id": ticket["id"]})
    done = clerk.call(
        "finish", {"ticket_id": ticket["id"], "dossiers": dossiers, "outcome": outcome}
    )
    assert done["ok"], done
    return ticket["number"]


def test_visits_create_and_update_the_dossiers_they_touch(sqlite_server, devices):
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    first = serve(devices, sqlite_server, clerk, [CODE], "received")
    record = api(sqlite_server, "GET", f"/api/v1/dossiers/{CODE}").json()["dossier"]
    assert record["status"] == "received" and record["submitted_via"] == "in_person"
    assert record["procedure"] == "Lý lịch tư pháp" and record["returned_at"] is None
    # A visit that only guided the citizen links the code and changes nothing.
    second = serve(devices, sqlite_server, clerk, [CODE], "guided")
    assert (
        api(sqlite_server, "GET", f"/api/v1/dossiers/{CODE}").json()["dossier"]["status"]
        == "received"
    )
    # A visit may name several dossiers: each takes the visit's outcome.
    other = "H15.50.05.13-261126-0001"
    third = serve(devices, sqlite_server, clerk, [CODE, other], "returned")
    record = api(sqlite_server, "GET", f"/api/v1/dossiers/{CODE}").json()["dossier"]
    assert record["status"] == "returned" and record["returned_at"]
    assert [v["ticket"] for v in record["visits"]] == [first, second, third]
    assert [v["outcome"] for v in record["visits"]] == ["received", "guided", "returned"]
    assert (
        api(sqlite_server, "GET", f"/api/v1/dossiers/{other}").json()["dossier"]["status"]
        == "returned"
    )
    # Nobody made this one.
    assert api(sqlite_server, "GET", "/api/v1/dossiers/H15.50.05.13-000000-0000").status_code == 404


def test_bulk_upsert_is_idempotent_and_validated(sqlite_server):
    body = {
        "dossiers": [
            {
                "code": CODE,
                "procedure": "Cấp phiếu lý lịch tư pháp",
                "field": "Lý lịch tư pháp",
                "applicant_name": "Nguyễn Thị Lan",
                "submitted_via": "online",
                "received_at": "2026-11-20T08:15:00+07:00",
                "due_at": "2026-11-27",
                "status": "processing",
            },
            {"code": "H15.50.05.13-261120-0002", "status": "result_ready"},
        ]
    }
    first = api(sqlite_server, "POST", "/api/v1/dossiers", json=body)
    assert first.status_code == 200
    assert first.json() == {"ok": True, "created": 2, "updated": 0, "unchanged": 0}
    again = api(sqlite_server, "POST", "/api/v1/dossiers", json=body).json()
    assert again == {"ok": True, "created": 0, "updated": 0, "unchanged": 2}
    body["dossiers"][1]["status"] = "returned"
    assert api(sqlite_server, "POST", "/api/v1/dossiers", json=body).json()["updated"] == 1
    record = api(sqlite_server, "GET", f"/api/v1/dossiers/{CODE}").json()["dossier"]
    assert record["due_at"] == "2026-11-27T23:59:59+07:00"  # a date: due all that day
    assert record["applicant_name"] == "Nguyễn Thị Lan" and record["visits"] == []

    def refused(payload, field):
        r = api(sqlite_server, "POST", "/api/v1/dossiers", json=payload)
        assert r.status_code == 400, (payload, r.text)
        assert field in r.json()["error"]["message"], r.json()
        return r.json()["error"]["message"]

    refused({"dossiers": [{"code": CODE}]}, "dossiers[0].status")
    refused({"dossiers": [{"code": "x", "status": "received"}]}, "dossiers[0].code")
    refused({"dossiers": [{"code": CODE, "status": "lost"}]}, "dossiers[0].status")
    refused({"dossiers": [{"code": CODE, "status": "received", "due_at": "mai"}]}, "due_at")
    refused(
        {"dossiers": [{"code": CODE, "status": "received", "due_at": "2026-11-27T10:00"}]},
        "due_at",
    )
    refused({"dossiers": [{"code": CODE, "status": "received", "colour": "red"}]}, "colour")
    refused({"dossiers": [{"code": CODE, "status": "received"}] * 2}, "dossiers[1].code")
    refused({"dossiers": []}, "dossiers")
    r = api(sqlite_server, "POST", "/api/v1/dossiers", data="not json")
    assert r.status_code == 400


def test_keys_are_scoped_to_their_centre_and_revocable(sqlite_server, tmp_path):
    assert api(sqlite_server, "GET", f"/api/v1/dossiers/{CODE}", key=None).status_code == 401
    assert api(sqlite_server, "GET", f"/api/v1/dossiers/{CODE}", key=KIOSK).status_code == 401
    body = {"dossiers": [{"code": CODE, "status": "received"}]}
    assert api(sqlite_server, "POST", "/api/v1/dossiers", json=body).status_code == 200
    # Another centre on the same installation, with its own key.
    other = tmp_path / "other.toml"
    other.write_text(
        '[centre]\ncode = "T2"\nname = "Trung tâm khác"\n\n'
        '[[services]]\ncode = "TP"\nname = "Lý lịch tư pháp"\nagency = "Sở Tư pháp"\n'
        'prefix = "A"\n\n'
        '[[devices]]\nname = "Một cửa"\nkind = "integration"\ntoken = "other-centre-key-0001"\n',
        encoding="utf-8",
    )
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "server.py"),
            "provision",
            str(other),
            "--database-url",
            sqlite_server.database_url,
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    foreign = "other-centre-key-0001"
    assert api(sqlite_server, "GET", f"/api/v1/dossiers/{CODE}", key=foreign).status_code == 404
    changed = {"dossiers": [{"code": CODE, "status": "cancelled"}]}
    assert (
        api(sqlite_server, "POST", "/api/v1/dossiers", key=foreign, json=changed).json()["created"]
        == 1
    )  # its own dossier of that code, not ours
    mine = api(sqlite_server, "GET", f"/api/v1/dossiers/{CODE}").json()["dossier"]
    assert mine["status"] == "received"


def test_a_citizen_looks_up_a_dossier_by_code(sqlite_server, browser):
    body = {
        "dossiers": [
            {
                "code": CODE,
                "procedure": "Cấp phiếu lý lịch tư pháp",
                "applicant_name": "Nguyễn Thị Lan",
                "applicant_phone": "0912 345 678",
                "received_at": "2026-11-20T08:15:00+07:00",
                "due_at": "2026-11-23",
                "status": "processing",
            }
        ]
    }
    assert api(sqlite_server, "POST", "/api/v1/dossiers", json=body).ok
    page = browser.new_page(viewport=PHONE_SCREEN, locale="vi-VN")
    errors = PageErrors(page)
    page.goto(sqlite_server.url + "/hs/")
    page.fill("#code", CODE)
    page.get_by_role("button", name="Tra cứu").click()
    expect(page.get_by_test_id("dossier-status")).to_have_text("Đang giải quyết")
    dossier = page.get_by_test_id("dossier")
    # The code alone shows the status, no personal data (issue 20).
    expect(dossier).not_to_contain_text("Nguyễn")
    expect(page.get_by_test_id("due")).to_have_count(0)
    page.fill("#code", CODE)
    page.fill("#pin", "5678")  # the phone's last four digits
    page.get_by_role("button", name="Tra cứu").click()
    expect(dossier).to_contain_text("Nguyễn T. L.")  # initials only
    expect(dossier).not_to_contain_text("Thị Lan")
    expect(page.get_by_test_id("due")).to_have_text("23/11/2026")
    expect(page.get_by_test_id("overdue")).to_be_visible()  # due on the 23rd, still open
    screenshot(page, "dossier-lookup")
    assert errors.errors == []
    page.goto(sqlite_server.url + "/hs/H15.50.05.13-000000-0000")
    expect(page.get_by_test_id("missing")).to_be_visible()
    page.close()


def test_look_ups_cannot_walk_through_codes(sqlite_server):
    statuses = [
        requests.get(f"{sqlite_server.url}/hs/H15.50.05.13-261120-{n:04d}", timeout=10).status_code
        for n in range(15)
    ]
    assert statuses[:10] == [404] * 10
    assert set(statuses[10:]) == {429}
