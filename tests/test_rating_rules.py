"""Ratings over Socket.IO against a real server: once per visit, at its counter's tablet
or on its own status page, within the window; reasons from the centre's list, comments as
plain text; a clerk's own counts; the clerk's photo for the tablet only."""

from __future__ import annotations

import json
import time

import requests
import sqlalchemy as sa

from harness.centre import KIOSK, RATING_1, RATING_2, CentreServer


def served(kiosk, clerk, service="TP") -> dict:
    ticket = kiosk.call("issue", {"service": service})["ticket"]
    for event in ("call", "start", "finish"):
        assert clerk.call(event, {"ticket_id": ticket["id"]})["ok"], event
    return ticket


def stored(server) -> list[tuple]:
    engine = sa.create_engine(server.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT ticket_id, score, reasons, comment, device_id FROM ratings")
            ).all()
            audit = conn.execute(
                sa.text("SELECT actor, details FROM audit_log WHERE action = 'rated' ORDER BY seq")
            ).all()
    finally:
        engine.dispose()
    load = lambda v: json.loads(v) if isinstance(v, str) else v  # noqa: E731
    return [(t, s, load(r), c, d) for t, s, r, c, d in rows], [(a, load(d)) for a, d in audit]


def test_once_per_visit_at_its_counter_and_audited(sqlite_server, devices):
    kiosk = devices.kiosk(sqlite_server)
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    tablet, other = devices.rating(sqlite_server), devices.rating(sqlite_server, RATING_2)
    ticket = served(kiosk, clerk)
    # Another counter's tablet is refused, and stores nothing.
    wrong = other.call("rate", {"ticket_id": ticket["id"], "score": 3})
    assert wrong["error"]["code"] == "forbidden"
    assert "Chỉ đánh giá được tại quầy đã phục vụ số A001" in wrong["error"]["message"]
    first = tablet.call(
        "rate",
        {
            "ticket_id": ticket["id"],
            "score": 1,
            "reasons": ["Thời gian chờ quá lâu", "Thái độ phục vụ chưa tốt"],
            "comment": "  Chờ   lâu\nquá  ",
        },
    )
    assert first == {"ok": True}
    # A second rating is refused: ratings are never changed.
    again = tablet.call("rate", {"ticket_id": ticket["id"], "score": 3})
    assert again["error"]["code"] == "already_rated"
    rows, audit = stored(sqlite_server)
    tablet_id = rows[0][4]
    assert rows == [
        (
            ticket["id"],
            1,
            ["Thái độ phục vụ chưa tốt", "Thời gian chờ quá lâu"],  # in the centre's order
            "Chờ lâu quá",
            tablet_id,
        )
    ]
    assert audit == [
        (
            f"device:{tablet_id}",
            {
                "score": 1,
                "reasons": ["Thái độ phục vụ chưa tốt", "Thời gian chờ quá lâu"],
                "comment": True,
                "via": "tablet",
            },
        )
    ]
    # The devices hear that it was rated, never the score or the comment.
    heard = clerk.wait_change("rated")
    assert heard["ticket"] == {"id": ticket["id"], "number": "A001"}
    assert "score" not in json.dumps(heard) and "lâu" not in json.dumps(heard)


def test_outside_the_window_refused(tmp_path, devices):
    server = CentreServer(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", env={"MOTCUA_RATING_WINDOW_S": "1"}
    ).start()
    try:
        kiosk = devices.kiosk(server)
        clerk = devices.counter(server, "clerk1", 1)
        tablet = devices.rating(server)
        ticket = served(kiosk, clerk)
        time.sleep(1.5)
        late = tablet.call("rate", {"ticket_id": ticket["id"], "score": 2})
        assert late["error"]["code"] == "forbidden"
        assert "Đã quá thời gian đánh giá cho số A001" in late["error"]["message"]
        assert tablet.fresh_snapshot("rating_state")["awaiting_rating"] is None
        assert stored(server)[0] == []
    finally:
        server.stop()


def test_comments_are_short_plain_text_and_reasons_the_centres(sqlite_server, devices):
    kiosk = devices.kiosk(sqlite_server)
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    tablet = devices.rating(sqlite_server)
    ticket = served(kiosk, clerk)

    def refused(payload, code, words):
        answer = tablet.call("rate", {"ticket_id": ticket["id"], **payload})
        assert answer["ok"] is False and answer["error"]["code"] == code, answer
        assert words in answer["error"]["message"], answer

    refused({"score": 1, "comment": "c" * 201}, "bad_request", "dài quá 200")
    # Collapsed spaces count: 200 characters after tidying is still too long.
    refused({"score": 1, "comment": "c" * 199 + " \n x"}, "bad_request", "dài quá 200")
    for markup in ("<script>alert(1)</script>", "xem <a href=x>đây</a>", "&lt;b&gt;", "<!-- -->"):
        refused({"score": 1, "comment": markup}, "bad_request", "không được chứa mã HTML")
    refused({"score": 1, "comment": "tab\u200bhidden"}, "bad_request", "ký tự điều khiển")
    refused({"score": 1, "reasons": ["Chờ lâu"]}, "bad_request", "không có lý do “Chờ lâu”")
    refused({"score": 3, "reasons": ["Thời gian chờ quá lâu"]}, "bad_request", "score = 1")
    assert stored(sqlite_server)[0] == []  # nothing refused was kept
    # Comparisons that are not markup are plain text, kept as typed.
    ok = tablet.call("rate", {"ticket_id": ticket["id"], "score": 2, "comment": "chờ < 5 phút"})
    assert ok == {"ok": True}
    assert stored(sqlite_server)[0][0][3] == "chờ < 5 phút"


def test_the_status_page_rates_its_own_visit_under_the_same_rules(sqlite_server, devices):
    kiosk = devices.kiosk(sqlite_server)
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    tablet = devices.rating(sqlite_server)
    issued = kiosk.call("issue", {"service": "TP"})
    key = issued["status_url"].rsplit("/t/", 1)[1]
    page = devices(sqlite_server, "/ticket", {"key": key})
    assert page.wait_event("ticket_state")["rating"] is None  # not served yet
    early = page.call("rate", {"score": 3})
    assert early["error"]["code"] == "forbidden" and "chưa được phục vụ xong" in str(early)
    for event in ("call", "start", "finish"):
        assert clerk.call(event, {"ticket_id": issued["ticket"]["id"]})["ok"]
    state = page.fresh_snapshot("ticket_state")["rating"]
    assert state["state"] == "open" and state["reasons"][0] == "Thái độ phục vụ chưa tốt"
    assert state["timeout_s"] == 30 and state["comment_max_len"] == 200
    # Only its own ticket: there is no ticket_id to name another one.
    other = page.call("rate", {"ticket_id": 1, "score": 3})
    assert other["error"]["code"] == "bad_request" and "ticket_id" in other["error"]["message"]
    assert page.call("rate", {"score": 1, "reasons": ["Hướng dẫn không rõ ràng"]}) == {"ok": True}
    # The tablet still asking hears it and stops; it cannot rate the visit again.
    assert tablet.wait_change("rated")["ticket"]["id"] == issued["ticket"]["id"]
    assert tablet.call("rate", {"ticket_id": issued["ticket"]["id"], "score": 3})["error"][
        "code"
    ] == ("already_rated")
    assert page.call("rate", {"score": 2})["error"]["code"] == "already_rated"
    assert page.fresh_snapshot("ticket_state")["rating"]["state"] == "rated"
    rows, audit = stored(sqlite_server)
    assert rows == [(issued["ticket"]["id"], 1, ["Hướng dẫn không rõ ràng"], None, None)]
    assert audit[0][0] == f"ticket:{issued['ticket']['id']}"
    assert audit[0][1]["via"] == "status_page"


def test_a_clerk_sees_only_their_own_counts_and_never_todays(sqlite_server, devices):
    from datetime import date

    kiosk = devices.kiosk(sqlite_server)
    clerk1 = devices.counter(sqlite_server, "clerk1", 1)
    clerk2 = devices.counter(sqlite_server, "clerk2", 2)
    tablet1, tablet2 = devices.rating(sqlite_server), devices.rating(sqlite_server, RATING_2)
    for score in (3, 3, 1, 2, 3):
        t = served(kiosk, clerk1)
        assert tablet1.call("rate", {"ticket_id": t["id"], "score": score})["ok"]
    t = served(kiosk, clerk2)
    assert tablet2.call("rate", {"ticket_id": t["id"], "score": 2})["ok"]
    # Today's ratings are not shown: a count moving right after a visit would tell the
    # clerk how that citizen rated.
    mine = clerk1.call("my_ratings")
    assert mine["ok"] and mine["levels"] is None and mine["at_least"] == 5
    assert clerk1.call("my_day")["ratings"]["levels"] is None
    # The same ratings a day earlier (this month): now they count, each clerk their own.
    first = mine["from"]  # the month's first business day
    assert date.fromisoformat(first).day == 1
    engine = sa.create_engine(sqlite_server.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE ratings SET rated_at = datetime(rated_at, '-1 day')"))
    engine.dispose()
    mine = clerk1.call("my_ratings")
    if mine["to"] is None:  # the month's first day: yesterday was last month
        assert mine["levels"] is None
    else:
        assert mine["from"] == first
        assert mine["levels"] == {"1": 1, "2": 1, "3": 3}
        # Fewer than five (clerk2 has one): not shown either.
        assert clerk2.call("my_ratings")["levels"] is None
    # It takes nothing to name: no other clerk, no ticket.
    asked = clerk1.call("my_ratings", {"staff": "clerk2"})
    assert asked["error"]["code"] == "bad_request"
    # Tablets and kiosks cannot ask.
    assert tablet1.call("my_ratings")["error"]["code"] == "bad_request"


def test_the_clerks_photo_only_for_a_tablet(sqlite_server, devices):
    url = sqlite_server.url + "/rating/photo"
    assert requests.get(url, timeout=5).status_code == 401
    bearer = {"Authorization": f"Bearer {KIOSK}"}
    assert requests.get(url, headers=bearer, timeout=5).status_code == 401
    bearer = {"Authorization": "Bearer not-a-token-at-all"}
    assert requests.get(url, headers=bearer, timeout=5).status_code == 401
    bearer = {"Authorization": f"Bearer {RATING_1}"}
    # Counter 1 closed: nobody on duty. Open, but the test centre has no photo for clerk1.
    assert requests.get(url, headers=bearer, timeout=5).status_code == 204
    devices.counter(sqlite_server, "clerk1", 1)
    assert requests.get(url, headers=bearer, timeout=5).status_code == 204


def test_provisioning_checks_the_rating_settings_and_photos(tmp_path):
    import pytest

    from core.provisioning import ProvisioningError, load
    from harness.centre import CENTRE

    base = CENTRE.read_text(encoding="utf-8")
    centre = 'timezone = "Asia/Ho_Chi_Minh"'
    clerk = 'full_name = "Nguyễn Văn A"'

    def check(text):
        path = tmp_path / "c.toml"
        path.write_text(text, encoding="utf-8")
        return load(path)

    (tmp_path / "not-a-photo.jpg").write_text("hello", encoding="utf-8")
    for change, words in (
        ((centre, f"{centre}\nrating_timeout_s = 5"), "từ 10 đến 300"),
        ((centre, f"{centre}\nrating_reasons = []"), "từ 1 đến 10"),
        ((centre, f'{centre}\nrating_reasons = ["Chậm", " Chậm "]'), "bị trùng"),
        ((centre, f'{centre}\nrating_reasons = ["{"x" * 101}"]'), "dài quá 100"),
        ((clerk, f'{clerk}\nphoto = "missing.png"'), "không đọc được tệp"),
        ((clerk, f'{clerk}\nphoto = "not-a-photo.jpg"'), "không phải tệp ảnh"),
    ):
        with pytest.raises(ProvisioningError) as e:
            check(base.replace(*change, 1))
        assert words in str(e.value), (change, str(e.value))
    photo = CENTRE.parent / "photos" / "clerk1.png"
    data = check(base.replace(clerk, f'{clerk}\nphoto = "{photo}"', 1))
    jpeg = next(s for s in data["staff"] if s["username"] == "clerk1")["_photo"]
    assert jpeg[:3] == b"\xff\xd8\xff"  # made a JPEG, the same bytes each time
    assert (
        check(base.replace(clerk, f'{clerk}\nphoto = "{photo}"', 1))["staff"][0]["_photo"] == jpeg
    )
