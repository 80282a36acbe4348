"""The appointments API on a real server (SQLite and PostgreSQL): slots, booking,
reading and cancelling by code, limits and refusals in Vietnamese."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import requests

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def tomorrow() -> str:
    return (datetime.now(ZONE).date() + timedelta(days=1)).isoformat()


def test_a_citizen_books_reads_and_cancels_an_appointment(any_server):
    api = any_server.url + "/api/v1/appointments"
    r = requests.get(api + "/slots", params={"service": "TP", "date": tomorrow()}, timeout=10)
    assert r.status_code == 200, r.text
    slots = r.json()["slots"]
    assert slots and slots[0]["start"] == tomorrow() + "T07:30+07:00" and slots[0]["free"] > 0

    booking = {
        "service": "TP",
        "slot": slots[0]["start"],
        "name": "Trần Thị Bình",
        "phone": "0912 345 678",
    }
    r = requests.post(api, json=booking, timeout=10)
    assert r.status_code == 200, r.text
    booked = r.json()
    code = booked["code"]
    assert booked["status"] == "booked" and booked["name"] == "Trần Thị Bình"
    assert booked["phone"] == "*******678" and booked["service"]["name"] == "Lý lịch tư pháp"
    after = requests.get(api + "/slots", params={"service": "TP", "date": tomorrow()}, timeout=10)
    assert after.json()["slots"][0]["free"] == slots[0]["free"] - 1

    assert requests.get(f"{api}/{code}", timeout=10).json()["status"] == "booked"
    r = requests.delete(f"{api}/{code}", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    again = requests.delete(f"{api}/{code}", timeout=10)
    assert again.status_code == 409
    assert again.json()["error"]["message"] == f"Lịch hẹn {code} đã được hủy trước đó."


def test_bad_requests_are_refused_clearly_and_bookings_are_limited_per_address(sqlite_server):
    api = sqlite_server.url + "/api/v1/appointments"
    r = requests.get(api + "/slots", params={"service": "TP", "date": "mai"}, timeout=10)
    assert r.status_code == 400
    assert (
        r.json()["error"]["message"] == "Giá trị của “date” không hợp lệ: phải có dạng YYYY-MM-DD"
    )
    r = requests.get(api + "/slots", params={"service": "TP", "date": "2020-01-01"}, timeout=10)
    assert r.status_code == 400 and "Chỉ đặt lịch được" in r.json()["error"]["message"]
    r = requests.get(
        api + "/slots", params={"service": "TP", "date": "mai", "lang": "en"}, timeout=10
    )
    assert r.json()["error"]["message"] == "Invalid 'date': must be YYYY-MM-DD"
    assert requests.get(api + "/12345678", timeout=10).json()["error"]["message"] == (
        "Mã lịch hẹn gồm 8 chữ số: hãy kiểm tra lại từng số."
    )
    r = requests.post(api, data="không phải JSON", timeout=10)
    assert r.status_code == 400
    slot = requests.get(
        api + "/slots", params={"service": "TP", "date": tomorrow()}, timeout=10
    ).json()["slots"][0]["start"]
    statuses = []
    for i in range(7):
        body = {"service": "TP", "slot": slot, "name": f"Người {i}", "phone": f"09{i:08d}"}
        statuses.append(requests.post(api, json=body, timeout=10).status_code)
    # Five at once from one address (the garbage one above counted), then the limit (10
    # an hour: one every 6 minutes).
    assert statuses[:4] == [200] * 4 and statuses[4:] == [429, 429, 429]
