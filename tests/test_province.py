"""A province on one installation (issue 22): a province file applied by `server.py
provision` in one process (both stores), its dry run and refusals, the demo province, and
the province's overview (/manage/province) in Chromium, held to who may see what."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import expect

from core.auth import password_matches
from core.store import normalise_url
from harness.browser import CLERK_SCREEN, PageErrors, screenshot
from harness.centre import CENTRE, COMMUNE, COMMUNE_PASSWORDS, KIOSK, PASSWORDS
from harness.process import ROOT, ServerProcess, login

pytestmark = pytest.mark.timeout(240)


def run(tmp_path, *args):
    env = {
        **os.environ,
        "MOTCUA_INSTANCE_PATH": str(tmp_path / "instance"),
        "MOTCUA_SECRET_KEY": "province-test-secret",
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "server.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
    )


def province(tmp_path, *extra: tuple[str, str]):
    """A province of tests/centre.toml (T1) and tests/commune.toml (T2, which borrows
    T1's clerk1), listed commune first: the loan puts T1 first all the same. ``extra``:
    more centre files, (name, text), under xa/."""
    folder = tmp_path / "province"
    (folder / "xa").mkdir(parents=True)
    shutil.copy(COMMUNE, folder / "xa" / "commune.toml")
    shutil.copy(CENTRE, folder / "centre.toml")
    for name, text in extra:
        (folder / "xa" / name).write_text(text, encoding="utf-8")
    path = folder / "province.toml"
    path.write_text(
        '[province]\ncode = "TN"\nname = "Tỉnh Thử Nghiệm"\n'
        'centres = ["xa/*.toml", "centre.toml"]\n',
        encoding="utf-8",
    )
    return path


def rows(url: str, query: str) -> list:
    engine = sa.create_engine(normalise_url(url))
    with engine.connect() as conn:
        found = conn.execute(sa.text(query)).all()
    engine.dispose()
    return found


def test_a_province_file_is_applied_in_one_command_on_both_stores(tmp_path, any_store_url):
    path = province(tmp_path)
    dry = run(tmp_path, "provision", path, "--database-url", any_store_url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "== T1 " in dry.stdout and "== T2 " in dry.stdout
    assert rows(any_store_url, "SELECT code FROM centres") == []  # a dry run writes nothing

    first = run(tmp_path, "provision", path, "--database-url", any_store_url)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    # T1 first (it lends clerk1 to T2), each centre under its heading, then the totals.
    assert out.index("== T1 ") < out.index("== T2 ")
    assert "+ staff clerk1" in out and "+ device Kiosk xã" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("Tỉnh TN (Tỉnh Thử Nghiệm): 2 trung tâm, 2 thay đổi"), last
    hashed = len(PASSWORDS) + len(COMMUNE_PASSWORDS)
    assert f"{hashed} mật khẩu mới được băm, 0 được kiểm tra" in last
    assert sorted(r[0] for r in rows(any_store_url, "SELECT code FROM centres")) == ["T1", "T2"]
    # Hashed in parallel, each one right: every password of both files logs in.
    stored = dict(rows(any_store_url, "SELECT username, password_hash FROM staff"))
    for username, password in {**PASSWORDS, **COMMUNE_PASSWORDS}.items():
        assert password_matches(stored[username], password), username
        assert stored[username].startswith("scrypt:32768:8:3$")

    again = run(tmp_path, "provision", path, "--database-url", any_store_url)
    assert again.returncode == 0, again.stderr
    last = again.stdout.strip().splitlines()[-1]
    assert "2 trung tâm, 0 thay đổi, 2 không đổi" in last
    assert "0 mật khẩu mới được băm, 0 được kiểm tra" in last  # nothing re-checked

    # One password changed in one file: that centre's accounts are checked (in
    # parallel), the one changed is hashed, the other centre is not even looked at.
    commune = path.parent / "xa" / "commune.toml"
    commune.write_text(
        commune.read_text(encoding="utf-8").replace("quanly2-secret", "quanly2-new-secret"),
        encoding="utf-8",
    )
    changed = run(tmp_path, "provision", path, "--database-url", any_store_url)
    assert changed.returncode == 0, changed.stderr
    lines = changed.stdout.strip().splitlines()
    assert lines[1:-1] == ["~ staff quanly2 (password_hash)"], lines
    assert f"1 mật khẩu mới được băm, {len(COMMUNE_PASSWORDS)} được kiểm tra" in lines[-1]
    stored = dict(rows(any_store_url, "SELECT username, password_hash FROM staff"))
    assert password_matches(stored["quanly2"], "quanly2-new-secret")


def test_a_refused_centre_names_its_file_line_and_centre_and_nothing_is_written(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    bad = (
        '[centre]\ncode = "T3"\nname = "Bộ phận Một cửa xã Ba"\n\n'
        '[[services]]\ncode = "HT"\nname = "Hộ tịch"\nagency = "UBND xã"\nprefix = "a1"\n'
    )
    path = province(tmp_path, ("t3.toml", bad))
    refused = run(tmp_path, "provision", path, "--database-url", url)
    assert refused.returncode == 2
    line = bad.splitlines().index('prefix = "a1"') + 1
    assert f"xa/t3.toml:{line}: trung tâm “T3”: “prefix”" in refused.stderr, refused.stderr
    assert rows(url, "SELECT code FROM centres") == []

    # Two centres owning one account: the second file is named, at its entry.
    twice = (
        '[centre]\ncode = "T4"\nname = "Bộ phận Một cửa xã Bốn"\n\n'
        '[[staff]]\nusername = "quanly2"\nfull_name = "Trùng tên"\nrole = "manager"\n'
    )
    path = province(tmp_path / "b", ("zz.toml", twice))
    refused = run(tmp_path, "provision", path, "--database-url", url)
    assert refused.returncode == 2
    assert "xa/zz.toml:" in refused.stderr and "trung tâm “T4”" in refused.stderr
    assert "“quanly2” đã thuộc trung tâm “T2”" in refused.stderr, refused.stderr

    # A refusal only the store can make (an account of a centre outside the file), at
    # the last centre: the centres before it are not written either.
    assert run(tmp_path, "provision", CENTRE, "--database-url", url).returncode == 0
    taken = (
        '[centre]\ncode = "T5"\nname = "Bộ phận Một cửa xã Năm"\n\n'
        '[[staff]]\nusername = "clerk2"\nfull_name = "Người khác"\nrole = "clerk"\n'
    )
    folder = tmp_path / "c"
    (folder / "xa").mkdir(parents=True)
    shutil.copy(COMMUNE, folder / "xa" / "a-commune.toml")  # T2, valid
    (folder / "xa" / "t5.toml").write_text(taken, encoding="utf-8")
    (folder / "p.toml").write_text(
        '[province]\ncode = "TN"\nname = "Tỉnh"\ncentres = ["xa/*.toml"]\n', encoding="utf-8"
    )
    refused = run(tmp_path, "provision", folder / "p.toml", "--database-url", url)
    assert refused.returncode == 2, refused.stdout
    line = taken.splitlines().index('username = "clerk2"') + 1
    assert f"t5.toml:{line}: trung tâm “T5”: tên đăng nhập “clerk2” đã thuộc" in refused.stderr
    assert sorted(r[0] for r in rows(url, "SELECT code FROM centres")) == ["T1"]

    # A glob matching nothing, a key the province table does not have.
    (folder / "p.toml").write_text(
        '[province]\ncode = "TN"\nname = "Tỉnh"\ncentres = ["huyen/*.toml"]\n', encoding="utf-8"
    )
    refused = run(tmp_path, "provision", folder / "p.toml", "--database-url", url)
    assert refused.returncode == 2
    assert "p.toml:4: “huyen/*.toml” không khớp tệp nào" in refused.stderr, refused.stderr


def test_a_province_file_after_the_admin_pages_says_what_it_would_overwrite(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    path = province(tmp_path)
    assert run(tmp_path, "provision", path, "--database-url", url).returncode == 0
    srv = ServerProcess(tmp_path, url).start()
    try:
        token = login(srv.url, "quantri2", COMMUNE_PASSWORDS["quantri2"])
        renamed = {"name": "Hộ tịch (đổi tên)", "agency": "UBND", "prefix": "A"}
        answer = requests.put(
            srv.url + "/api/v1/admin/services/HT?centre=T2",
            json=renamed,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
    finally:
        srv.stop()
    refused = run(tmp_path, "provision", path, "--database-url", url)
    assert refused.returncode == 3, refused.stderr
    assert "~ [T2] service HT (name)  ← API: quantri2, " in refused.stderr
    dry = run(tmp_path, "provision", path, "--database-url", url, "--dry-run")
    assert dry.returncode == 0 and "~ [T2] service HT (name)" in dry.stdout
    name = "SELECT s.name FROM services s JOIN centres c ON c.id = s.centre_id "
    name += "WHERE c.code = 'T2' AND s.code = 'HT'"
    assert rows(url, name) == [("Hộ tịch (đổi tên)",)]
    forced = run(tmp_path, "provision", path, "--database-url", url, "--force")
    assert forced.returncode == 0, forced.stderr
    assert rows(url, name) == [("Hộ tịch",)]


# -- the demo province and its overview ---------------------------------------------------
DEMO_KIOSKS = {"PLX": "demo-plx-kiosk-00001", "XTT": "demo-xtt-kiosk-00001"}


def test_the_demo_province_starts_and_its_overview_shows_every_centre(browser, tmp_path, devices):
    demo = ServerProcess(
        tmp_path, f"sqlite:///{tmp_path / 'demo.sqlite3'}", args=("--demo", "province")
    )
    demo.start(timeout=120)
    try:
        log = demo.log_path.read_text()
        assert "motcua demo province: Tỉnh An Giang (13 centres, one installation)" in log
        assert "Province admin  tinh" in log
        # Some of today's life: tickets at the provincial centre and two communes, one
        # called at phường Long Xuyên.
        kg = devices.kiosk(demo, "demo-kiosk-sanh-a-0001")
        for _ in range(3):
            assert kg.call("issue", {"service": "TP"})["ok"]
        for token in DEMO_KIOSKS.values():
            kiosk = devices.kiosk(demo, token)
            for service in ("HT", "CT", "HT"):
                assert kiosk.call("issue", {"service": service})["ok"]
        plx = devices.counter(demo, token=login(demo.url, "plx.canbo1", "plx-demo-1"))
        plx.wait_event("counter_state")
        assert plx.call("call_next")["ok"]

        tinh = login(demo.url, "tinh", "motcua-demo-tinh")
        answer = requests.get(
            demo.url + "/api/v1/province/overview",
            headers={"Authorization": f"Bearer {tinh}"},
            timeout=10,
        ).json()
        by_code = {c["code"]: c for c in answer["centres"]}
        assert len(by_code) == 13 and "KG" in by_code and "DKPQ" in by_code
        assert by_code["PLX"]["issued"] == 3 and by_code["PLX"]["waiting"] == 2
        assert by_code["PLX"]["at_counter"] == 1 and by_code["PLX"]["counters_open"] == 1
        assert by_code["XTT"]["waiting"] == 3 and by_code["XTT"]["counters_open"] == 0
        assert by_code["KG"]["waiting"] == 3 and by_code["KG"]["counters_open"] == 2

        context = browser.new_context(viewport=CLERK_SCREEN, locale="vi-VN")
        page = context.new_page()
        errors = PageErrors(page)
        page.goto(demo.url + "/manage/province")
        page.fill("input[name=username]", "tinh")
        page.fill("input[name=password]", "motcua-demo-tinh")
        page.get_by_role("button", name="Đăng nhập").click()
        table = page.get_by_test_id("centres")
        expect(table.locator("tbody tr[data-centre]")).to_have_count(13)
        expect(page.get_by_test_id("total")).to_contain_text("Cả tỉnh (13 trung tâm)")
        plx_row = table.locator("tr[data-centre='PLX']")
        expect(plx_row.locator("th")).to_contain_text("Bộ phận Một cửa phường Long Xuyên")
        expect(plx_row.locator("[data-col='issued']")).to_have_text("3")
        expect(plx_row.locator("[data-col='waiting']")).to_have_text("2")
        expect(plx_row.locator("[data-col='at_counter']")).to_have_text("1")
        expect(plx_row.locator("[data-col='open']")).to_have_text("1/4")
        expect(table.locator("tr[data-centre='XTT'] [data-col='open']")).to_have_text("0/3")
        screenshot(page, "province-overview")
        page.get_by_test_id("filter").fill("tri ton")  # without diacritics
        expect(table.locator("tbody tr[data-centre]")).to_have_count(1)
        screenshot(page, "province-overview-filtered")
        # A row opens that centre's monitor.
        table.locator("tr[data-centre='XTT'] th a").click()
        expect(page.locator(".m-centre")).to_have_text("Bộ phận Một cửa xã Tri Tôn")
        expect(page.locator("[data-service='HT'] [data-col='waiting']")).to_have_text("2")
        expect(page.get_by_test_id("province-link")).to_be_visible()
        page.goto(demo.url + "/manage/province?lang=en")
        expect(page.get_by_test_id("total")).to_contain_text("13")
        screenshot(page, "province-overview-en")
        # Logging out ends the session on the server, not only in the page.
        token = page.evaluate("sessionStorage.getItem('motcua.manage.session')")
        page.get_by_role("button", name="Log out").click()
        expect(page.locator("input[name=username]")).to_be_visible()
        ended = requests.get(
            demo.url + "/api/v1/province/overview",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert token and ended.status_code == 401, (token, ended.status_code)
        assert errors.errors == [], errors.errors
        context.close()
    finally:
        demo.stop()


def test_the_overview_shows_a_centres_figures_only_to_those_who_watch_it(any_server, devices):
    any_server.provision_also(COMMUNE)
    kiosk = devices.kiosk(any_server, KIOSK)
    for service in ("TP", "TP", "HT"):
        assert kiosk.call("issue", {"service": service})["ok"]
    commune = devices.kiosk(any_server, "t2-kiosk-token-00001")
    assert commune.call("issue", {"service": "HT"})["ok"]
    clerk = devices.counter(any_server, "clerk1", 1)
    clerk.wait_event("counter_state")
    assert clerk.call("call_next")["ok"]

    def overview(username, query=""):
        return requests.get(
            any_server.url + "/api/v1/province/overview" + query,
            headers={"Authorization": f"Bearer {any_server.login(username)}"},
            timeout=10,
        )

    every = overview("tinh")
    assert every.status_code == 200, every.text
    by_code = {c["code"]: c for c in every.json()["centres"]}
    assert set(by_code) == {"T1", "T2"}
    t1, t2 = by_code["T1"], by_code["T2"]
    assert (t1["issued"], t1["waiting"], t1["at_counter"], t1["counters_open"]) == (3, 2, 1, 1)
    assert t1["counters"] == 3 and t1["longest_wait_s"] >= 0
    assert (t2["issued"], t2["waiting"], t2["at_counter"], t2["counters_open"]) == (1, 1, 0, 0)
    # A manager of one centre sees that centre only; a clerk, nothing.
    mine = overview("quanly2", "?centre=T2")
    assert mine.status_code == 200
    assert [c["code"] for c in mine.json()["centres"]] == ["T2"]
    assert overview("quanly2", "?centre=T1").status_code == 403
    refused = overview("clerk1")
    assert refused.status_code == 403
    assert re.search("không có quyền xem màn hình giám sát", refused.json()["error"]["message"])
    assert requests.get(any_server.url + "/api/v1/province/overview", timeout=5).status_code == 401
