"""The display board (/display/) in headless Chromium on a 1920×1080 TV, against a real
server process, with clerks as real Socket.IO counter clients. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import io
import re
import time
import wave
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from harness.browser import TV_SCREEN, PageErrors, screenshot
from harness.centre import CENTRE, DISPLAY, DISPLAY_C3, CentreServer
from harness.proxy import CuttableProxy

pytestmark = pytest.mark.timeout(120)
CENTRE_NAME = "Trung tâm Phục vụ hành chính công thử nghiệm"


class Board:
    """A board page and the announcement audio it asked the server for."""

    def __init__(self, context):
        self.page = context.new_page()
        self.errors = PageErrors(self.page)
        self.audio: list[dict] = []
        self.page.on("request", self._request)

    def _request(self, request):
        if "/display/announce.wav" in request.url:
            q = parse_qs(urlsplit(request.url).query)
            self.audio.append({k: v[0] for k, v in q.items()})

    def open(self, url: str, token: str = DISPLAY):
        self.page.goto(f"{url}/display/?token={token}")
        expect(self.page.get_by_test_id("centre")).to_have_text(CENTRE_NAME)
        return self

    def counter(self, n: int):
        return self.page.get_by_test_id(f"counter-{n}")

    def played(self) -> list[dict]:
        return self.page.evaluate("motcuaBoard.announcer.log")

    def pending(self) -> list[dict]:
        return self.page.evaluate("motcuaBoard.announcer.pending()")

    def wait_played(self, count: int, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.played()
            done = [e for e in log if e["ended"] is not None or e["error"]]
            if len(done) >= count:
                return log
            self.page.wait_for_timeout(100)
        raise AssertionError(f"{count} announcements not played: {self.played()}")


@pytest.fixture
def tv(browser):
    context = browser.new_context(viewport=TV_SCREEN, locale="vi-VN")
    yield context
    context.close()


def spoken(log) -> list[tuple[str, int, bool]]:
    return [(e["number"], e["counter"], e["recall"]) for e in log]


def assert_no_overlap(log):
    for before, after in zip(log, log[1:], strict=False):
        assert before["ended"] is not None, log
        assert after["started"] >= before["ended"], f"overlap: {before} then {after}"


def test_a_call_shows_at_once_highlighted_and_is_announced(tv, sqlite_server, devices):
    kiosk = devices.kiosk(sqlite_server)
    clerk = devices.counter(sqlite_server, "clerk1", 1)  # counter 1: TP and HT
    board = Board(tv).open(sqlite_server.url)
    page = board.page
    # The token is kept by the page, not left in the address bar.
    assert page.url == f"{sqlite_server.url}/display/"
    assert page.evaluate("localStorage.getItem('motcua.display.token')") == DISPLAY
    # Three counters: the commune office layout, chosen automatically.
    assert page.evaluate("document.body.dataset.layout") == "office"
    expect(page.get_by_test_id("notice")).to_contain_text("Thông báo thử nghiệm")
    expect(page.get_by_test_id("clock")).to_have_text(
        re.compile(r"\d\d:\d\d.*\d\d/\d\d/\d{4}|\d\d/\d\d/\d{4}.*\d\d:\d\d")
    )
    expect(board.counter(1).get_by_test_id("number")).to_have_text("—")
    expect(board.counter(1)).to_contain_text("Sẵn sàng")
    expect(board.counter(2)).to_contain_text("Quầy đóng")

    for _ in range(3):
        assert kiosk.call("issue", {"service": "TP"})["ok"]
    waiting_tp = page.locator("[data-service=TP] [data-testid=waiting-count]")
    expect(waiting_tp).to_have_text("3")

    # Call -> the board: measured from just before the clerk's call to the paint.
    page.evaluate(
        """() => { window.painted = null;
        new MutationObserver(() => {
          const n = document.querySelector('[data-testid=counter-1] [data-testid=number]');
          if (n && n.textContent === 'A001' && window.painted === null) {
            requestAnimationFrame(() => {
              window.painted = performance.timeOrigin + performance.now();
            });
          }
        }).observe(document.body, {subtree: true, childList: true, characterData: true}); }"""
    )
    sent = time.time() * 1000
    ticket = clerk.call("call_next", {})["ticket"]
    page.wait_for_function("() => window.painted !== null", timeout=5000)
    latency_ms = page.evaluate("window.painted") - sent
    print(f"call -> board paint: {latency_ms:.0f} ms")
    assert latency_ms < 1000
    tile = board.counter(1)
    expect(tile.get_by_test_id("number")).to_have_text("A001")
    expect(tile).to_contain_text("Lý lịch tư pháp")
    expect(tile).to_have_class(re.compile(r"\bfresh\b"))
    expect(page.get_by_test_id("latest-number")).to_have_text("A001")
    expect(page.get_by_test_id("latest")).to_contain_text("đến quầy số 1")
    # Shown big, not again in the list of earlier calls below it.
    expect(page.get_by_test_id("calls")).to_have_text("Chưa có số nào khác")
    expect(waiting_tp).to_have_text("2")
    screenshot(page, "board-office-call")

    log = board.wait_played(1)
    assert spoken(log) == [("A001", 1, False)]
    assert board.audio == [
        {
            "d": board.audio[0]["d"],
            "k": board.audio[0]["k"],
            "number": "A001",
            "counter": "1",
            "form": "digits",
        }
    ]
    # The highlight passes; the number stays.
    expect(tile).not_to_have_class(re.compile(r"\bfresh\b"), timeout=12000)
    expect(tile.get_by_test_id("number")).to_have_text("A001")
    # A finished visit clears the counter.
    assert clerk.call("start", {"ticket_id": ticket["id"]})["ok"]
    assert clerk.call("finish", {"ticket_id": ticket["id"]})["ok"]
    expect(tile.get_by_test_id("number")).to_have_text("—")
    assert board.errors.errors == []


def test_announcements_queue_in_order_and_a_recall_is_announced_again(tv, sqlite_server, devices):
    kiosk = devices.kiosk(sqlite_server)
    clerk1 = devices.counter(sqlite_server, "clerk1", 1)
    clerk3 = devices.counter(sqlite_server, "clerk3", 3)
    for service in ("TP", "TP", "DD"):
        assert kiosk.call("issue", {"service": service})["ok"]
    board = Board(tv).open(sqlite_server.url)
    # Three calls within a moment: the second and third wait their turn.
    first = clerk1.call("call_next", {})["ticket"]
    assert clerk3.call("call_next", {})["ok"]
    assert clerk1.call("recall", {"ticket_id": first["id"]})["ok"]
    expect(board.counter(3).get_by_test_id("number")).to_have_text("C001")
    board.page.wait_for_function("() => motcuaBoard.announcer.log.length >= 1")
    assert board.pending() == [
        {"number": "C001", "counter": 3, "recall": False},
        {"number": "A001", "counter": 1, "recall": True},
    ]
    log = board.wait_played(3)
    assert spoken(log) == [("A001", 1, False), ("C001", 3, False), ("A001", 1, True)]
    assert_no_overlap(log)
    assert [a["number"] for a in board.audio] == ["A001", "C001", "A001"]
    assert [a["counter"] for a in board.audio] == ["1", "3", "1"]
    assert board.errors.errors == []


def test_the_announcement_route_is_keyed_and_answers_a_wav(tv, sqlite_server, devices):
    board = Board(tv).open(sqlite_server.url)
    url = board.page.evaluate("motcuaBoard.state.board.board.announce.url")
    base = sqlite_server.url + url
    kiosk = devices.kiosk(sqlite_server)
    assert kiosk.call("issue", {"service": "TP"})["ok"]
    # Only a number called lately at that counter is assembled (issue 20).
    assert requests.get(f"{base}&number=A001&counter=1", timeout=10).status_code == 404
    assert devices.counter(sqlite_server, "clerk1", 1).call("call_next", {})["ok"]
    r = requests.get(f"{base}&number=A001&counter=1&form=number", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "audio/wav"
    assert requests.get(f"{base}&number=A023&counter=1", timeout=10).status_code == 404
    with wave.open(io.BytesIO(r.content)) as w:
        seconds = w.getnframes() / w.getframerate()
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
    assert 3 < seconds < 12, seconds
    # The key is the credential: without it, or with another, nothing is assembled.
    wrong = base.replace("&k=", "&k=0")
    assert requests.get(f"{wrong}&number=A023&counter=1", timeout=10).status_code == 403
    no_key = f"{sqlite_server.url}/display/announce.wav?d=1&number=A001&counter=1"
    assert requests.get(no_key, timeout=10).status_code == 403
    for bad in (
        "number=DROP%20TABLE&counter=1",
        "number=A1&counter=-1",
        "number=A1&counter=x",
        "number=A1&counter=1&form=shout",
        "number=A12345678901&counter=1",
    ):
        assert requests.get(f"{base}&{bad}", timeout=10).status_code == 400, bad


def test_a_bound_board_shows_only_its_counters(tv, sqlite_server, devices):
    kiosk = devices.kiosk(sqlite_server)
    clerk1 = devices.counter(sqlite_server, "clerk1", 1)
    clerk3 = devices.counter(sqlite_server, "clerk3", 3)
    board = Board(tv).open(sqlite_server.url, DISPLAY_C3)  # bound to counter 3
    page = board.page
    expect(page.locator("[data-counter]")).to_have_count(1)
    expect(board.counter(3)).to_be_visible()
    expect(page.locator("#waiting [data-service]")).to_have_count(1)
    expect(page.locator("[data-service=DD]")).to_be_visible()
    assert kiosk.call("issue", {"service": "TP"})["ok"]
    assert kiosk.call("issue", {"service": "DD"})["ok"]
    expect(page.locator("[data-service=DD] [data-testid=waiting-count]")).to_have_text("1")
    assert clerk1.call("call_next", {})["ok"]  # elsewhere: not on this board, not spoken
    assert clerk3.call("call_next", {})["ok"]
    expect(board.counter(3).get_by_test_id("number")).to_have_text("C001")
    expect(page.locator("[data-service=DD] [data-testid=waiting-count]")).to_have_text("0")
    log = board.wait_played(1)
    page.wait_for_timeout(500)
    assert spoken(board.played()) == [("C001", 3, False)]
    assert "A001" not in page.locator("body").inner_text()
    screenshot(page, "board-bound")
    assert log and board.errors.errors == []


def test_the_board_rides_out_a_server_restart(tv, sqlite_server, devices):
    kiosk = devices.kiosk(sqlite_server)
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    board = Board(tv).open(sqlite_server.url)
    page = board.page
    assert kiosk.call("issue", {"service": "TP"})["ok"]
    assert kiosk.call("issue", {"service": "TP"})["ok"]
    first = clerk.call("call_next", {})["ticket"]
    expect(board.counter(1).get_by_test_id("number")).to_have_text("A001")
    board.wait_played(1)
    offline = page.locator("#offline")
    expect(offline).to_be_hidden()

    sqlite_server.stop()
    expect(offline).to_be_visible()
    expect(offline).to_have_text("Đang kết nối lại…")
    # Over the last state, never instead of it.
    expect(board.counter(1).get_by_test_id("number")).to_have_text("A001")
    screenshot(page, "board-offline")

    sqlite_server.restart()
    expect(offline).to_be_hidden(timeout=15000)
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    assert clerk.call("no_show", {"ticket_id": first["id"]})["ok"]
    expect(board.counter(1).get_by_test_id("number")).to_have_text("—")
    assert clerk.call("call_next", {})["ok"]
    expect(board.counter(1).get_by_test_id("number")).to_have_text("A002")
    expect(page.locator("[data-service=TP] [data-testid=waiting-count]")).to_have_text("0")
    log = board.wait_played(2)
    assert spoken(log) == [("A001", 1, False), ("A002", 1, False)]


def test_after_a_cut_only_calls_still_current_are_announced(tv, sqlite_server, devices):
    kiosk = devices.kiosk(sqlite_server)
    clerk1 = devices.counter(sqlite_server, "clerk1", 1)
    clerk3 = devices.counter(sqlite_server, "clerk3", 3)
    for service in ("TP", "TP", "TP", "DD"):
        assert kiosk.call("issue", {"service": service})["ok"]
    proxy = CuttableProxy(("127.0.0.1", sqlite_server.port))
    try:
        board = Board(tv).open(f"http://127.0.0.1:{proxy.port}")
        page = board.page
        proxy.cut()
        expect(page.locator("#offline")).to_be_visible()
        # While the board is away: counter 1 calls three numbers in turn, sending the first
        # two away as no-shows (only A003 is still current); counter 3 calls C001 and
        # sends it away too.
        for _ in range(2):
            ticket = clerk1.call("call_next", {})["ticket"]
            assert clerk1.call("no_show", {"ticket_id": ticket["id"]})["ok"]
        assert clerk1.call("call_next", {})["ticket"]["number"] == "A003"
        gone = clerk3.call("call_next", {})["ticket"]
        assert clerk3.call("no_show", {"ticket_id": gone["id"]})["ok"]
        proxy.restore()
        expect(page.locator("#offline")).to_be_hidden(timeout=15000)
        expect(board.counter(1).get_by_test_id("number")).to_have_text("A003")
        expect(board.counter(3).get_by_test_id("number")).to_have_text("—")
        board.wait_played(1)
        page.wait_for_timeout(1500)
        assert spoken(board.played()) == [("A003", 1, False)]
        assert board.pending() == []
        assert [a["number"] for a in board.audio] == ["A003"]
    finally:
        proxy.cut()


# Chromium's autoplay policy as a browser without --autoplay-policy=no-user-gesture-required
# applies it: play() is refused (NotAllowedError) until someone has touched the page or
# pressed a key. Made here because headless Chromium under Playwright cannot show it: its
# navigations count as a user gesture (navigator.userActivation.hasBeenActive is true
# from the start), so the real policy never refuses.
AUTOPLAY_POLICY = """
let touched = false;
for (const type of ["pointerdown", "keydown"]) {
  addEventListener(type, (e) => { if (e.isTrusted) touched = true; }, true);
}
const realPlay = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  if (!touched) {
    return Promise.reject(new DOMException(
      "play() failed because the user didn't interact with the document first.",
      "NotAllowedError"));
  }
  return realPlay.call(this);
};
"""


def test_a_browser_that_blocks_audio_says_so_then_plays_on_a_touch(browser, sqlite_server, devices):
    kiosk = devices.kiosk(sqlite_server)
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    context = browser.new_context(viewport=TV_SCREEN, locale="vi-VN")
    context.add_init_script(AUTOPLAY_POLICY)
    try:
        board = Board(context).open(sqlite_server.url)
        page = board.page
        notice = page.get_by_test_id("audio-blocked")
        expect(notice).to_be_hidden()
        assert kiosk.call("issue", {"service": "TP"})["ok"]
        assert clerk.call("call_next", {})["ok"]
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("Trình duyệt đang chặn âm thanh")
        assert board.pending() == [{"number": "A001", "counter": 1, "recall": False}]
        assert board.played() == []
        screenshot(page, "board-audio-blocked")
        page.mouse.click(960, 540)  # someone touches the screen
        expect(notice).to_be_hidden()
        assert spoken(board.wait_played(1)) == [("A001", 1, False)]
        assert board.errors.errors == []
    finally:
        context.close()


def test_a_large_hall_gets_the_hall_layout(tv, tmp_path, devices):
    text = CENTRE.read_text(encoding="utf-8")
    extra = "".join(
        f'\n[[counters]]\nnumber = {n}\nname = "Quầy {n}"\nservices = ["TP", "HT"]\n'
        for n in range(4, 17)
    )
    provision = tmp_path / "hall.toml"
    head, devices_part = text.split("[[staff]]", 1)
    provision.write_text(head + extra + "\n[[staff]]" + devices_part, encoding="utf-8")
    server = CentreServer(tmp_path, f"sqlite:///{tmp_path / 'hall.sqlite3'}", provision=provision)
    server.start()
    try:
        kiosk = devices.kiosk(server)
        for service in ("TP", "HT", "TP", "DD", "TP"):
            assert kiosk.call("issue", {"service": service})["ok"]
        clerks = [
            devices.counter(server, "clerk1", 1),
            devices.counter(server, "clerk2", 7),
            devices.counter(server, "clerk3", 3),
        ]
        board = Board(tv).open(server.url)
        page = board.page
        expect(page.locator("[data-counter]")).to_have_count(16)
        assert page.evaluate("document.body.dataset.layout") == "hall"
        for clerk in clerks:
            assert clerk.call("call_next", {})["ok"]
        expect(board.counter(7).get_by_test_id("number")).not_to_have_text("—")
        expect(page.locator("#calls li")).to_have_count(2)  # the newest is shown big
        for li in page.locator("#calls li").all():  # whole, not cut at the panel's edge
            assert li.evaluate("(li) => li.scrollWidth <= li.clientWidth"), li.inner_text()
        screenshot(page, "board-hall")
        assert board.errors.errors == []
    finally:
        server.stop()


def test_the_board_shows_as_called_only_what_is_called_now(tv, sqlite_server, devices):
    """A no-show and a pause end the call on the big panel too, live and after a reload;
    the earlier calls are listed under it, several of them, not the one shown big."""
    kiosk = devices.kiosk(sqlite_server)
    clerk = devices.counter(sqlite_server, "clerk1", 1)
    display = devices.display(sqlite_server)
    for _ in range(7):
        assert kiosk.call("issue", {"service": "HT"})["ok"]
    board = Board(tv).open(sqlite_server.url)
    page = board.page
    latest, calls = page.get_by_test_id("latest-number"), page.locator("#calls li")
    for n in range(1, 7):
        ticket = clerk.call("call_next", {})["ticket"]
        expect(latest).to_have_text(ticket["number"])
        if n < 6:
            assert clerk.call("finish", {"ticket_id": ticket["id"]})["ok"]
    assert ticket["number"] == "B105"  # HT starts at 100 here
    # The five earlier calls, all visible (not clipped by the panel), newest first.
    expect(calls).to_have_count(5)
    expect(calls.first).to_contain_text("B104")
    for i in range(5):
        box, panel = calls.nth(i).bounding_box(), page.locator(".b-recent").bounding_box()
        assert box["y"] + box["height"] <= panel["y"] + panel["height"] + 1, (i, box, panel)
        width = calls.nth(i).evaluate("(li) => [li.scrollWidth, li.clientWidth]")
        assert width[0] <= width[1] and box["x"] + box["width"] <= panel["x"] + panel["width"]
    assert display.fresh_snapshot("snapshot")["calling"]["ticket"]["number"] == "B105"
    screenshot(page, "board-calls")

    assert clerk.call("no_show", {"ticket_id": ticket["id"]})["ok"]
    assert clerk.call("pause", {"reason": "Nghỉ giữa giờ"})["ok"]
    expect(page.get_by_test_id("latest")).to_have_text("Hiện không có số nào đang được mời")
    expect(board.counter(1)).to_contain_text("Tạm dừng")
    expect(calls).to_have_count(6)  # B105 is history now: listed, not shown as called
    expect(calls.first).to_contain_text("B105")
    assert display.fresh_snapshot("snapshot")["calling"] is None
    page.reload()
    expect(page.get_by_test_id("latest")).to_have_text("Hiện không có số nào đang được mời")
    expect(calls).to_have_count(6)
    expect(page.get_by_test_id("latest-number")).to_have_count(0)
    screenshot(page, "board-after-no-show")
    assert board.errors.errors == []


# Where the marks above a capital's ink reach, against what may clip or hide it: the ink
# top of each line must lie inside the header, tile or panel (which clip, or end the
# screen), and inside the element's own box when that clips.
INK = """(selector) => [...document.querySelectorAll(selector)].map((node) => {
  const cs = getComputedStyle(node);
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
  const m = ctx.measureText("ỈỄẪỖ");
  const content = m.fontBoundingBoxAscent + m.fontBoundingBoxDescent;
  const line = cs.lineHeight === "normal" ? content : parseFloat(cs.lineHeight);
  const halfLeading = (line - content) / 2;
  const box = node.getBoundingClientRect();
  const outer = node.closest(".b-tile, .b-head, .b-panel").getBoundingClientRect();
  const text = node.firstElementChild || node;
  return {
    text: node.textContent, size: parseFloat(cs.fontSize),
    inkTop: box.top + parseFloat(cs.paddingTop) + halfLeading + m.fontBoundingBoxAscent
      - m.actualBoundingBoxAscent,
    boxTop: box.top, outerTop: outer.top, bottom: box.bottom, outerBottom: outer.bottom,
    textWidth: text.getBoundingClientRect().width, width: node.clientWidth,
    lines: Math.round(box.height / line), clips: cs.overflowY !== "visible",
  };
})"""


@pytest.mark.parametrize(
    "name",
    [
        "Trung tâm Phục vụ hành chính công tỉnh Thừa Thiên Huế",
        "Trung tâm Phục vụ hành chính công tỉnh An Giang, chi nhánh Rạch Giá và các xã Kiên Hải,"
        " Tiên Hải, Hòn Đất",
    ],
)
def test_capitals_with_marks_show_whole_on_the_board(tv, tmp_path, name):
    """TỈNH must not read TÍNH: the centre's name and the tiles' labels, in capitals, keep
    the marks above them at every size the board uses; a long name fits the header."""
    text = CENTRE.read_text(encoding="utf-8").replace(CENTRE_NAME, name)
    text = text.replace('name = "Quầy 1"', 'name = "Quầy 1 — Tư pháp, Hộ tịch"')
    provision = tmp_path / "centre.toml"
    provision.write_text(text, encoding="utf-8")
    server = CentreServer(tmp_path, f"sqlite:///{tmp_path / 'c.sqlite3'}", provision=provision)
    server.start()
    try:
        page = tv.new_page()
        page.goto(f"{server.url}/display/?token={DISPLAY}")
        expect(page.get_by_test_id("centre")).to_have_text(name)
        page.evaluate("document.fonts.ready")
        for width, height in ((1920, 1080), (1366, 768), (1280, 720), (3840, 2160)):
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(200)
            shown = page.evaluate(INK, ".b-centre, .b-tile-counter, .b-panel h2")
            assert len(shown) == 1 + 3 + 2, shown
            for s in shown:
                # An element that clips (overflow) must hold the ink in its own box.
                assert not s["clips"] or s["inkTop"] >= s["boxTop"] - 0.5, (width, s)
                assert s["inkTop"] >= s["outerTop"] + 1, (width, s)
                assert s["bottom"] <= s["outerBottom"] + 0.5, (width, s)
            centre = shown[0]
            assert centre["textWidth"] <= centre["width"] + 1 or centre["lines"] == 2, centre
            assert centre["lines"] <= 2, centre
            screenshot(page, f"board-name-{len(name)}-{width}")
    finally:
        server.stop()


def test_a_mistyped_token_on_the_board_says_so_and_keeps_the_good_one(tv, sqlite_server):
    board = Board(tv).open(sqlite_server.url)
    page = board.page
    page.goto(f"{sqlite_server.url}/display/?token=typo-{DISPLAY}")
    expect(page.get_by_test_id("message")).to_contain_text("Mã thiết bị không đúng.")
    expect(page.get_by_test_id("message")).to_contain_text("mã đã lưu trước đó vẫn được giữ")
    assert page.evaluate("localStorage.getItem('motcua.display.token')") == DISPLAY
    page.reload()
    expect(page.get_by_test_id("centre")).to_have_text(CENTRE_NAME)
