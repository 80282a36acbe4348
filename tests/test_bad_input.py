"""Bad input to every door of a real server process.

Every Socket.IO event of every namespace, every connection handshake and the login API
get malformed, mistyped, out-of-range, unknown and wrong-state input. Each must get a
clear error (the protocol's code and a Vietnamese message saying what is wrong), must
change nothing (the centre's ``seq`` does not move, displays receive nothing), and the
server must keep serving afterwards.

Most cases share one server (``world``, built once for this module, with tickets in
each state); the cases that need a queue in a particular state get their own server.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from dataclasses import dataclass

import pytest
import requests
import socketio

from harness.centre import AGENT, DISPLAY, KIOSK, KIOSK_B, RATING_1, RATING_2, CentreServer
from harness.devices import Device

VIETNAMESE = re.compile(
    "[àáảãạăắằẳẵặâấầẩẫậđèéẻẽẹêếềểễệìíỉĩịòóỏõọôốồổỗộơớờởỡợùúủũụưứừửữựỳýỷỹỵ]", re.I
)


# -- expectations ------------------------------------------------------------------------


def E(code, *words):
    """An expected error: its code (or a tuple of acceptable codes) and words its
    message must contain."""
    return code, tuple(w for w in words if w)


INT, STR, LIST = "một số nguyên", "một chuỗi ký tự", "một danh sách"
BAD_PAYLOAD = E("bad_request", "Dữ liệu gửi lên phải là một đối tượng JSON")
NO_TICKET = E("not_found", "Không tìm thấy phiếu")
NOT_RATABLE = E("forbidden", "chưa được phục vụ xong")
# Out of the 64-bit (or PostgreSQL's 32-bit) range: no such ticket, or a bad value.
TOO_BIG = E(("not_found", "bad_request"))


def missing(name):
    return E("bad_request", f"Thiếu trường bắt buộc “{name}”")


def unknown_field(name):
    return E("bad_request", f"Trường “{name}” không được hỗ trợ")


def wrong_type(name, expected):
    return E("bad_request", f"Trường “{name}” phải là {expected}")


def bad_value(name, why=""):
    return E("bad_request", f"Giá trị của “{name}” không hợp lệ", why)


def unknown_event(name):
    return E("bad_request", f"Sự kiện “{name}” không được hỗ trợ")


def error_problem(err, code, words, vi=True) -> str | None:
    """What is wrong with an error ``{"code", "message"}`` (None: it is as expected)."""
    codes = code if isinstance(code, tuple) else (code,)
    if not isinstance(err, dict) or set(err) != {"code", "message"}:
        return f"expected an error {{code, message}} with code {codes}, got {err!r}"[:800]
    if err["code"] not in codes:
        return f"expected code {'/'.join(codes)}, got {err!r}"[:800]
    msg = err["message"]
    if not isinstance(msg, str) or (vi and not VIETNAMESE.search(msg)):
        return f"message is not in Vietnamese: {msg!r}"[:800]
    lacking = [w for w in words if w not in msg]
    if lacking:
        return f"message {msg!r} does not say {lacking}"[:800]
    return None


def ack_problem(ack, code, words, vi=True) -> str | None:
    if not isinstance(ack, dict) or ack.get("ok") is not False or set(ack) != {"ok", "error"}:
        return f"expected {{ok: false, error}} with code {code}, got {ack!r}"[:800]
    return error_problem(ack["error"], code, words, vi)


def assert_refused(ack, code, *words, vi=True):
    problem = ack_problem(ack, code, words, vi)
    assert problem is None, problem


# -- talking to the server ------------------------------------------------------------------


def send(device: Device, event, args: tuple, timeout: float = 5.0):
    """Emit ``event`` with exactly these positional arguments; the ack, or a marker."""
    try:
        return device.sio.call(event, tuple(args), namespace=device.namespace, timeout=timeout)
    except socketio.exceptions.TimeoutError:
        return f"<no ack within {timeout}s>"


CONNECTED = "<the connection was accepted>"


def refusal(server: CentreServer, namespace: str, auth, wait: float = 2.0):
    """Connect expecting a refusal; returns what the refusal carried (None: no answer)."""
    sio = socketio.Client(reconnection=False)
    got = []
    sio.on("connect_error", lambda data=None: got.append(data), namespace=namespace)
    try:
        sio.connect(
            server.url,
            namespaces=[namespace],
            auth=auth,
            transports=["websocket"],
            wait_timeout=wait,
        )
    except socketio.exceptions.ConnectionError:
        return got[0] if got else None
    finally:
        sio.disconnect()
    return CONNECTED


def refusal_problem(data, code, words, vi=True) -> str | None:
    """A refusal must reach the client's connect_error as ``{"message": <sentence>,
    "data": {"code", "message"}}`` (gateway/doors.py ``refusal``)."""
    if data is None:
        return "the server did not answer the connection request"
    if data == CONNECTED:
        return "the connection was accepted"
    if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
        return f"refusal {data!r} carries no {{code, message}} in 'data'"
    problem = error_problem(data["data"], code, words, vi)
    if problem is None and data.get("message") != data["data"]["message"]:
        problem = "the refusal's sentence differs from its data's message"
    return None if problem is None else f"refusal {data!r}: {problem}"


def short(value) -> str:
    text = repr(value)
    return text if len(text) < 90 else text[:86] + "...}"


class Expect:
    """Sends requests that must be refused, noting every wrong answer and every change
    one of them made (the centre's seq, read through ``watcher``, must not move)."""

    def __init__(self, watcher: Device):
        self.watcher = watcher
        self.problems: list[str] = []

    def seq(self) -> int:
        return self.watcher.call("sync")["seq"]

    def refused(self, device, event, payload, code, *words):
        before = self.seq()
        ack = send(device, event, (payload,))
        after = self.seq()
        where = f"{device.namespace} {event} {short(payload)}"
        problem = ack_problem(ack, code, words)
        if problem:
            self.problems.append(f"{where}: {problem}")
        if after != before:
            self.problems.append(
                f"{where}: refused, yet it changed the queue (seq {before} -> {after})"
            )
        return ack

    def ok(self, device, event, payload):
        ack = send(device, event, (payload,))
        if not (isinstance(ack, dict) and ack.get("ok") is True):
            self.problems.append(
                f"{device.namespace} {event} {short(payload)}: expected ok, got {ack!r}"
            )
        return ack if isinstance(ack, dict) else {}

    def connect_refused(self, server, namespace, auth, code, *words):
        before = self.seq()
        problem = refusal_problem(refusal(server, namespace, auth, wait=2), code, words)
        if problem:
            self.problems.append(f"connect {namespace} {short(auth)}: {problem}")
        if self.seq() != before:
            self.problems.append(
                f"connect {namespace} {short(auth)}: refused, yet changed the queue"
            )

    def check(self):
        assert not self.problems, "\n".join(["", *self.problems])


# -- the shared world ------------------------------------------------------------------------


class Ref:
    """A value known only once the world is built (a ticket id, a staff token)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self):
        return self.name


WAITING, DONE, RATED, NO_SHOW, OTHER = (
    Ref(n) for n in ("waiting", "done", "rated", "no_show", "other_service")
)
CLERK1_TOKEN, EXPIRED_TOKEN = Ref("clerk1_token"), Ref("expired_token")


def resolve(value, refs: dict):
    if isinstance(value, Ref):
        return refs[value.name]
    if isinstance(value, dict):
        return {k: resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v, refs) for v in value)
    return value


@dataclass
class World:
    server: CentreServer
    dev: dict[str, Device]
    refs: dict
    baseline: int  # the centre's seq once the world was built
    seq: int  # the seq last seen (moves only if a refused request changed something)

    def seq_now(self) -> int:
        return self.dev["kiosk"].call("sync")["seq"]

    def unchanged(self, what: str) -> str | None:
        """A refused request changes nothing: the centre's seq has not moved."""
        now = self.seq_now()
        if now == self.seq:
            return None
        moved, self.seq = (self.seq, now), now
        return f"{what} was refused, yet the centre's seq moved {moved[0]} -> {moved[1]}"


def expire_session(db_path, token: str) -> None:
    """Make a staff session expired, as twelve hours later."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    with sqlite3.connect(db_path, timeout=10) as conn:
        n = conn.execute(
            "UPDATE staff_sessions SET expires_at = '2000-01-01 00:00:00.000000' "
            "WHERE token_hash = ?",
            (digest,),
        ).rowcount
    assert n == 1


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One server with every kind of client connected and tickets in each state:
    done and rated, done (not rated), no-show, waiting (TP), waiting (DD, not served
    at counter 1). Counter 1 is open with no current ticket."""
    tmp = tmp_path_factory.mktemp("bad_input")
    db = tmp / "motcua.sqlite3"
    server = CentreServer(tmp, f"sqlite:///{db}").start()
    opened: list[Device] = []

    def open_(namespace, auth, snapshot):
        device = Device(server, namespace, auth)
        opened.append(device)
        device.wait_event(snapshot)
        return device

    try:
        display = open_("/display", {"token": DISPLAY}, "snapshot")
        kiosk = open_("/kiosk", {"token": KIOSK}, "services")
        counter = open_(
            "/counter", {"token": server.login("clerk1"), "counter": 1}, "counter_state"
        )
        display.wait_change("counter_opened")
        dev = {
            "kiosk": kiosk,
            "counter": counter,
            "display": display,
            "rating": open_("/rating", {"token": RATING_1}, "rating_state"),
            "rating2": open_("/rating", {"token": RATING_2}, "rating_state"),
            "agent": open_("/agent", {"token": AGENT}, "agent_state"),
        }

        def issue(service):
            ack = kiosk.call("issue", {"service": service})
            assert ack["ok"], ack
            return ack["ticket"]["id"]

        def act(event, **data):
            ack = counter.call(event, data)
            assert ack["ok"], (event, ack)
            return ack

        refs = {}
        for name in ("rated", "done"):
            refs[name] = issue("TP")
            assert act("call_next")["ticket"]["id"] == refs[name]
            act("start", ticket_id=refs[name])
            act("finish", ticket_id=refs[name], outcome="received")
        assert dev["rating"].call("rate", {"ticket_id": refs["rated"], "score": 3})["ok"]
        refs["no_show"] = issue("TP")
        act("call_next")
        act("no_show", ticket_id=refs["no_show"])
        refs["waiting"] = issue("TP")  # A004
        refs["other_service"] = issue("DD")  # C001
        refs["clerk1_token"] = server.login("clerk1")
        refs["expired_token"] = server.login("clerk3")
        expire_session(db, refs["expired_token"])
        seq = kiosk.call("sync")["seq"]
        display.wait_for(
            lambda n, d: isinstance(d, dict) and d.get("seq") == seq,
            what="the last change of the setup",
        )
        yield World(server, dev, refs, seq, seq)
    finally:
        for device in opened:
            device.close()
        server.stop()


# -- every event, malformed ---------------------------------------------------------------

# A payload each event accepts (the engine may still refuse it for the ticket's state):
# bad cases are built from these, so a server that ignored the bad part would act.
VALID = {
    ("kiosk", "issue"): {"service": "TP"},
    ("counter", "call_next"): {},
    ("counter", "call"): {"ticket_id": WAITING},
    ("counter", "recall"): {"ticket_id": WAITING},
    ("counter", "start"): {"ticket_id": WAITING},
    ("counter", "no_show"): {"ticket_id": WAITING},
    ("counter", "finish"): {"ticket_id": WAITING, "dossiers": [], "outcome": "received"},
    ("counter", "transfer"): {"ticket_id": WAITING, "service": "HT"},
    ("counter", "pause"): {"reason": "Nghỉ trưa"},
    ("counter", "resume"): {},
    ("counter", "close"): {},
    ("rating", "rate"): {"ticket_id": DONE, "score": 3},
}
NAMESPACES = ("kiosk", "counter", "display", "rating", "agent")
SYNC = {(ns, "sync"): {} for ns in NAMESPACES}
TICKET_EVENTS = [k for k, v in VALID.items() if "ticket_id" in v]


def _shape_cases():
    """Payloads that are not one object, unknown fields, bad request ids: every event."""
    for (ns, event), valid in {**VALID, **SYNC}.items():
        shapes = {
            "string": ("issue",),
            "list": ([valid],),
            "number": (5,),
            "bool": (True,),
            "two-args": (valid, valid),
            "extra-arg": (valid, "x"),
        }
        for label, args in shapes.items():
            yield ns, event, label, args, BAD_PAYLOAD
        yield ns, event, "unknown-field", ({**valid, "bogus": 1},), unknown_field("bogus")
        if event == "sync":
            yield ns, event, "sync-request-id", ({"request_id": "r1"},), unknown_field("request_id")
            continue
        yield (
            ns,
            event,
            "request-id-int",
            ({**valid, "request_id": 7},),
            wrong_type("request_id", STR),
        )
        yield (
            ns,
            event,
            "request-id-long",
            ({**valid, "request_id": "r" * 65},),
            bad_value("request_id", "dài quá 64 ký tự"),
        )


def _ticket_id_cases():
    for ns, event in TICKET_EVENTS:
        valid = VALID[(ns, event)]
        base = {k: v for k, v in valid.items() if k != "ticket_id"}
        cases = {
            "missing": (base, missing("ticket_id")),
            "null": ({**base, "ticket_id": None}, wrong_type("ticket_id", INT)),
            "string": ({**base, "ticket_id": "1"}, wrong_type("ticket_id", INT)),
            "bool": ({**base, "ticket_id": True}, wrong_type("ticket_id", INT)),
            "float": ({**base, "ticket_id": 1.0}, wrong_type("ticket_id", INT)),
            "list": ({**base, "ticket_id": [1]}, wrong_type("ticket_id", INT)),
            "object": ({**base, "ticket_id": {"id": 1}}, wrong_type("ticket_id", INT)),
            "zero": ({**base, "ticket_id": 0}, bad_value("ticket_id", "nhỏ hơn 1")),
            "negative": ({**base, "ticket_id": -1}, bad_value("ticket_id", "nhỏ hơn 1")),
            "very-negative": ({**base, "ticket_id": -(2**63)}, bad_value("ticket_id")),
            "unknown": ({**base, "ticket_id": 999_999}, NO_TICKET),
            "int32-overflow": ({**base, "ticket_id": 2**31}, TOO_BIG),
            "int64-overflow": ({**base, "ticket_id": 2**63}, TOO_BIG),
            "huge": ({**base, "ticket_id": 10**30}, TOO_BIG),
        }
        for label, (payload, expected) in cases.items():
            yield ns, event, f"ticket-{label}", (payload,), expected
        yield ns, event, "payload-null", (None,), missing("ticket_id")
        yield ns, event, "payload-empty", ({},), missing("ticket_id")


def _field_cases():
    """Each event's own fields: types, ranges, lengths, unknown codes."""
    k, c, r = "kiosk", "counter", "rating"
    W = WAITING
    cases = [
        # kiosk: issue
        (k, "issue", "no-service", {}, missing("service")),
        (k, "issue", "payload-null", None, missing("service")),
        (k, "issue", "service-empty", {"service": ""}, bad_value("service", "rỗng")),
        (k, "issue", "service-blank", {"service": "   "}, bad_value("service", "rỗng")),
        (k, "issue", "service-long", {"service": "T" * 33}, bad_value("service", "dài quá 32")),
        (k, "issue", "service-int", {"service": 1}, wrong_type("service", STR)),
        (k, "issue", "service-null", {"service": None}, wrong_type("service", STR)),
        (k, "issue", "service-list", {"service": ["TP"]}, wrong_type("service", STR)),
        (k, "issue", "service-bool", {"service": True}, wrong_type("service", STR)),
        (
            k,
            "issue",
            "service-unknown",
            {"service": "XX"},
            E("not_found", "Không có lĩnh vực “XX” tại trung tâm này"),
        ),
        (k, "issue", "service-lowercase", {"service": "tp"}, E("not_found", "“tp”")),
        (k, "issue", "service-prefix", {"service": "A"}, E("not_found", "“A”")),
        (k, "issue", "service-nul", {"service": "T\x00P"}, E(("bad_request", "not_found"))),
        (k, "issue", "service-surrogate", {"service": "\ud800"}, E(("bad_request", "not_found"))),
        (
            k,
            "issue",
            "priority-unknown",
            {"service": "TP", "priority": "vip"},
            E("bad_request", "Đối tượng ưu tiên “vip” không hợp lệ", "elderly"),
        ),
        (
            k,
            "issue",
            "priority-empty",
            {"service": "TP", "priority": ""},
            E("bad_request", "Đối tượng ưu tiên"),
        ),
        (k, "issue", "priority-int", {"service": "TP", "priority": 1}, wrong_type("priority", STR)),
        (
            k,
            "issue",
            "priority-list",
            {"service": "TP", "priority": ["elderly"]},
            wrong_type("priority", STR),
        ),
        (
            k,
            "issue",
            "priority-long",
            {"service": "TP", "priority": "e" * 33},
            bad_value("priority", "dài quá 32"),
        ),
        # counter: finish
        (
            c,
            "finish",
            "dossiers-string",
            {"ticket_id": W, "dossiers": "H15.1"},
            wrong_type("dossiers", LIST),
        ),
        (
            c,
            "finish",
            "dossiers-null",
            {"ticket_id": W, "dossiers": None},
            wrong_type("dossiers", LIST),
        ),
        (
            c,
            "finish",
            "dossiers-int-item",
            {"ticket_id": W, "dossiers": [1]},
            bad_value("dossiers", "mỗi phần tử phải là một chuỗi ký tự"),
        ),
        (
            c,
            "finish",
            "dossiers-list-item",
            {"ticket_id": W, "dossiers": [["H15.1"]]},
            bad_value("dossiers", "mỗi phần tử"),
        ),
        (
            c,
            "finish",
            "dossiers-too-many",
            {"ticket_id": W, "dossiers": [f"H15.{i:03d}" for i in range(21)]},
            bad_value("dossiers", "nhiều hơn 20 phần tử"),
        ),
        (
            c,
            "finish",
            "dossier-long",
            {"ticket_id": W, "dossiers": ["H" * 65]},
            bad_value("dossiers", "dài quá 64"),
        ),
        (
            c,
            "finish",
            "dossier-bad-code",
            {"ticket_id": W, "dossiers": ["hồ sơ 1"]},
            bad_value("dossiers", "mã hồ sơ “hồ sơ 1”"),
        ),
        (
            c,
            "finish",
            "dossier-short",
            {"ticket_id": W, "dossiers": ["H1"]},
            bad_value("dossiers", "mã hồ sơ"),
        ),
        (
            c,
            "finish",
            "outcome-unknown",
            {"ticket_id": W, "outcome": "won"},
            bad_value("outcome", "received"),
        ),
        (c, "finish", "outcome-int", {"ticket_id": W, "outcome": 1}, wrong_type("outcome", STR)),
        (
            c,
            "finish",
            "outcome-long",
            {"ticket_id": W, "outcome": "o" * 33},
            bad_value("outcome", "dài quá 32"),
        ),
        # counter: transfer
        (c, "transfer", "no-target", {"ticket_id": W}, E("bad_request", "đúng một trong hai")),
        (
            c,
            "transfer",
            "both-targets",
            {"ticket_id": W, "service": "HT", "counter": 2},
            E("bad_request", "đúng một trong hai"),
        ),
        (c, "transfer", "service-int", {"ticket_id": W, "service": 5}, wrong_type("service", STR)),
        (
            c,
            "transfer",
            "service-null",
            {"ticket_id": W, "service": None},
            wrong_type("service", STR),
        ),
        (
            c,
            "transfer",
            "service-long",
            {"ticket_id": W, "service": "S" * 33},
            bad_value("service", "dài quá 32"),
        ),
        (
            c,
            "transfer",
            "counter-string",
            {"ticket_id": W, "counter": "2"},
            wrong_type("counter", INT),
        ),
        (
            c,
            "transfer",
            "counter-bool",
            {"ticket_id": W, "counter": True},
            wrong_type("counter", INT),
        ),
        (
            c,
            "transfer",
            "counter-float",
            {"ticket_id": W, "counter": 2.0},
            wrong_type("counter", INT),
        ),
        (
            c,
            "transfer",
            "counter-zero",
            {"ticket_id": W, "counter": 0},
            bad_value("counter", "nhỏ hơn 1"),
        ),
        (
            c,
            "transfer",
            "counter-negative",
            {"ticket_id": W, "counter": -2},
            bad_value("counter", "nhỏ hơn 1"),
        ),
        # counter: pause
        (c, "pause", "no-reason", {}, missing("reason")),
        (c, "pause", "payload-null", None, missing("reason")),
        (c, "pause", "reason-empty", {"reason": ""}, bad_value("reason", "rỗng")),
        (c, "pause", "reason-blank", {"reason": " \t "}, bad_value("reason", "rỗng")),
        (c, "pause", "reason-long", {"reason": "r" * 201}, bad_value("reason", "dài quá 200")),
        (c, "pause", "reason-int", {"reason": 5}, wrong_type("reason", STR)),
        (c, "pause", "reason-null", {"reason": None}, wrong_type("reason", STR)),
        (c, "pause", "reason-list", {"reason": ["Họp"]}, wrong_type("reason", STR)),
        # rating: rate (DONE is rateable at rating 1: only the bad part may stop it)
        (r, "rate", "no-score", {"ticket_id": DONE}, missing("score")),
        (r, "rate", "score-0", {"ticket_id": DONE, "score": 0}, bad_value("score", "nhỏ hơn 1")),
        (r, "rate", "score-4", {"ticket_id": DONE, "score": 4}, bad_value("score", "lớn hơn 3")),
        (
            r,
            "rate",
            "score-negative",
            {"ticket_id": DONE, "score": -1},
            bad_value("score", "nhỏ hơn 1"),
        ),
        (r, "rate", "score-huge", {"ticket_id": DONE, "score": 10**30}, bad_value("score")),
        (r, "rate", "score-string", {"ticket_id": DONE, "score": "3"}, wrong_type("score", INT)),
        (r, "rate", "score-bool", {"ticket_id": DONE, "score": True}, wrong_type("score", INT)),
        (r, "rate", "score-float", {"ticket_id": DONE, "score": 2.5}, wrong_type("score", INT)),
        (r, "rate", "score-null", {"ticket_id": DONE, "score": None}, wrong_type("score", INT)),
        (r, "rate", "score-list", {"ticket_id": DONE, "score": [3]}, wrong_type("score", INT)),
        (
            r,
            "rate",
            "reasons-string",
            {"ticket_id": DONE, "score": 1, "reasons": "chậm"},
            wrong_type("reasons", LIST),
        ),
        (
            r,
            "rate",
            "reasons-int-item",
            {"ticket_id": DONE, "score": 1, "reasons": [1]},
            bad_value("reasons", "mỗi phần tử phải là một chuỗi ký tự"),
        ),
        (
            r,
            "rate",
            "reasons-too-many",
            {"ticket_id": DONE, "score": 1, "reasons": ["x"] * 11},
            bad_value("reasons", "nhiều hơn 10 phần tử"),
        ),
        (
            r,
            "rate",
            "reason-long",
            {"ticket_id": DONE, "score": 1, "reasons": ["x" * 101]},
            bad_value("reasons", "dài quá 100"),
        ),
        (
            r,
            "rate",
            "comment-int",
            {"ticket_id": DONE, "score": 1, "comment": 5},
            wrong_type("comment", STR),
        ),
        (
            r,
            "rate",
            "comment-long",
            {"ticket_id": DONE, "score": 1, "comment": "c" * 201},
            bad_value("comment", "dài quá 200"),
        ),
        (
            r,
            "rate",
            "comment-200k",
            {"ticket_id": DONE, "score": 1, "comment": "c" * 200_000},
            bad_value("comment", "dài quá 200"),
        ),
    ]
    for ns, event, label, payload, expected in cases:
        yield ns, event, label, (payload,), expected


def _state_cases():
    """Real tickets in a state the event cannot act on."""
    c = "counter"
    yield (
        c,
        "call",
        "done-ticket",
        ({"ticket_id": DONE},),
        E("conflict", "không còn trong hàng chờ", "done"),
    )
    yield (
        c,
        "call",
        "rated-ticket",
        ({"ticket_id": RATED},),
        E("conflict", "không còn trong hàng chờ"),
    )
    yield c, "call", "no-show-ticket", ({"ticket_id": NO_SHOW},), E("conflict", "no_show")
    yield (
        c,
        "call",
        "other-service",
        ({"ticket_id": OTHER},),
        E("conflict", "Quầy này không phục vụ lĩnh vực của số C001"),
    )
    for event in ("recall", "start", "no_show", "finish", "transfer"):
        valid = VALID[(c, event)]
        for label, ref, number in (
            ("waiting", WAITING, "A004"),
            ("done", DONE, "A002"),
            ("no-show", NO_SHOW, "A003"),
            ("other-service", OTHER, "C001"),
        ):
            yield (
                c,
                event,
                f"{label}-ticket",
                ({**valid, "ticket_id": ref},),
                E("conflict", f"Số {number} không ở quầy này"),
            )
    r = "rating"
    yield r, "rate", "waiting-ticket", ({"ticket_id": WAITING, "score": 3},), NOT_RATABLE
    yield r, "rate", "no-show-ticket", ({"ticket_id": NO_SHOW, "score": 3},), NOT_RATABLE
    yield r, "rate", "other-service-ticket", ({"ticket_id": OTHER, "score": 3},), NOT_RATABLE
    yield (
        r,
        "rate",
        "already-rated",
        ({"ticket_id": RATED, "score": 1},),
        E("already_rated", "đã được đánh giá"),
    )
    yield (
        "rating2",
        "rate",
        "other-counter",
        ({"ticket_id": DONE, "score": 3},),
        E("forbidden", "Chỉ đánh giá được tại quầy đã phục vụ số A002"),
    )
    yield (
        "rating2",
        "rate",
        "already-rated",
        ({"ticket_id": RATED, "score": 3},),
        E("already_rated", "đã được đánh giá"),
    )


LISTENERS = ("display",)  # it only listens (docs/protocol.md, sections 1 and 15)


def read_only(event):
    """A listen-only device sending anything but sync: forbidden, saying it cannot send."""
    return E("forbidden", "không gửi được", f"“{event[:40]}”")


def _role_cases():
    """Events a namespace does not have: displays send nothing but sync; every other role
    only has its own events (an agent: print_result); unknown names everywhere."""
    for (_ns, event), valid in VALID.items():
        for ns in LISTENERS:
            yield ns, event, "read-only", (valid,), read_only(event)
    for ns, event, payload in (
        ("kiosk", "call_next", {}),
        ("kiosk", "pause", {"reason": "x"}),
        ("kiosk", "rate", {"ticket_id": DONE, "score": 3}),
        ("counter", "issue", {"service": "TP"}),
        ("counter", "rate", {"ticket_id": DONE, "score": 3}),
        ("rating", "issue", {"service": "TP"}),
        ("rating", "call_next", {}),
        ("rating", "finish", {"ticket_id": DONE}),
        ("agent", "issue", {"service": "TP"}),
        ("agent", "call_next", {}),
        ("agent", "rate", {"ticket_id": DONE, "score": 3}),
        ("kiosk", "print_result", {"job": 1, "printed": True}),
        ("counter", "print_result", {"job": 1, "printed": True}),
    ):
        yield ns, event, "not-this-role", (payload,), unknown_event(event)
    for ns in NAMESPACES:
        for label, name in (
            ("made-up", "hack"),
            ("empty", ""),
            ("case", "Sync"),
            ("snapshot-name", "snapshot"),
            ("handler-name", "on_connect"),
            ("method-name", "authenticate"),
        ):
            expected = read_only(name) if ns in LISTENERS else unknown_event(name)
            yield ns, name, f"unknown-{label}", ({},), expected
        expected = read_only("x" * 40) if ns in LISTENERS else unknown_event("x" * 40)
        yield ns, "x" * 300, "unknown-long", ({},), expected


EVENT_CASES = [
    pytest.param(ns, event, args, expected, id=f"{ns}-{event[:20] or 'empty'}-{label}")
    for gen in (_shape_cases, _ticket_id_cases, _field_cases, _state_cases, _role_cases)
    for ns, event, label, args, expected in gen()
]


@pytest.mark.parametrize("ns, event, args, expected", EVENT_CASES)
def test_bad_event_gets_an_error_and_changes_nothing(world, ns, event, args, expected):
    ack = send(world.dev[ns], event, resolve(args, world.refs))
    problems = [ack_problem(ack, *expected), world.unchanged(f"{event} {short(args)}")]
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("ns", NAMESPACES)
@pytest.mark.parametrize("args", [(), (None,), ({},)], ids=["no-arg", "null", "empty"])
def test_sync_answers_on_every_namespace(world, ns, args):
    ack = send(world.dev[ns], "sync", args)
    assert ack == {"ok": True, "seq": world.seq_now()}


def test_undecodable_packets_close_only_their_connection(world):
    """Garbage Socket.IO packets cannot be answered (no ack id can be read): the
    connection that sent one is closed (docs/security.md), even a device's with a valid
    token; nothing changes and the server goes on serving everyone else."""
    for raw in (
        '2/kiosk,7["issue",',
        '2/kiosk,8["issue",' + "[" * 100_000 + "]" * 100_000 + "]",
        '2/kiosk,10{"service":"TP"}',
        "2/kiosk,11[]",
    ):
        device = Device(world.server, "/kiosk", {"token": KIOSK_B})
        try:
            device.sio.eio.send(raw)
            deadline = time.monotonic() + 5
            while device.sio.connected and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not device.sio.connected, raw[:30]
        finally:
            device.close()
    other = Device(world.server, "/kiosk", {"token": KIOSK_B})
    try:
        assert other.call("sync", {}, timeout=5) == {"ok": True, "seq": world.seq_now()}
    finally:
        other.close()
    assert world.unchanged("garbage packets") is None


@pytest.mark.parametrize("name", ["connect", "disconnect"])
def test_reserved_event_names_sent_as_events_are_refused(world, name):
    """A client emitting "connect" or "disconnect" as an ordinary event must get an error
    ack; it must neither re-run the handshake nor drop the connection's identity."""
    device = Device(world.server, "/kiosk", {"token": KIOSK_B})
    try:
        ack = send(device, name, ({"token": KIOSK_B},), timeout=2)
        after = send(device, "sync", ({},))
        problems = [
            ack_problem(ack, *unknown_event(name)),
            None
            if isinstance(after, dict) and after.get("ok") is True
            else f"after {name!r} the connection no longer works: sync answered {after!r}",
            world.unchanged(name),
        ]
        problems = [p for p in problems if p]
        assert not problems, "\n".join(problems)
    finally:
        device.close()


def test_english_clients_get_english_errors(world):
    device = Device(world.server, "/kiosk", {"token": KIOSK_B, "lang": "en"})
    try:
        assert_refused(
            device.call("issue", {}),
            "bad_request",
            "Required field 'service' is missing.",
            vi=False,
        )
        assert_refused(device.call("hack", {}), "bad_request", "Unknown event 'hack'.", vi=False)
    finally:
        device.close()


# -- connections ---------------------------------------------------------------------------

NO_TOKEN = E("unauthorized", "Thiếu thông tin xác thực", "“token”")
WRONG_TOKEN = E("unauthorized", "Mã xác thực không đúng hoặc đã bị thu hồi")
NO_COUNTER = E("bad_request", "Hãy cho biết số quầy", "“counter”")
COUNTER_NOT_INT = E("bad_request", "Trường “counter” phải là một số nguyên")


def wrong_role(kind, wanted):
    """A token of another kind is refused as unknown, telling nothing about it."""
    return WRONG_TOKEN


def _refusal_cases():
    devices = {"kiosk": KIOSK, "display": DISPLAY, "rating": RATING_1, "agent": AGENT}
    for ns in NAMESPACES:
        extra = {"counter": 1} if ns == "counter" else {}
        yield ns, "no-auth", None, NO_TOKEN
        yield ns, "auth-string", "token", BAD_PAYLOAD
        yield ns, "auth-list", [KIOSK], BAD_PAYLOAD
        yield ns, "auth-empty", {**extra}, NO_TOKEN
        yield ns, "token-empty", {"token": "", **extra}, NO_TOKEN
        yield ns, "token-int", {"token": 12345, **extra}, NO_TOKEN
        yield ns, "token-null", {"token": None, **extra}, NO_TOKEN
        yield ns, "token-wrong", {"token": "khong-dung-0001", **extra}, WRONG_TOKEN
        yield ns, "token-long", {"token": "t" * 100_000, **extra}, WRONG_TOKEN
        if ns in ("kiosk", "counter"):  # the device lookup, the staff lookup
            yield ns, "token-surrogate", {"token": "\ud800", **extra}, WRONG_TOKEN
            yield ns, "token-nul", {"token": "test-kiosk-token-0001\x00", **extra}, WRONG_TOKEN
        for kind, token in devices.items():
            if kind != ns:
                yield ns, f"{kind}-token", {"token": token, **extra}, wrong_role(kind, ns)
        if ns != "counter":
            yield ns, "staff-token", {"token": CLERK1_TOKEN}, wrong_role("staff", ns)
    counter = "counter"
    yield counter, "no-counter", {"token": CLERK1_TOKEN}, NO_COUNTER
    yield counter, "counter-string", {"token": CLERK1_TOKEN, "counter": "1"}, COUNTER_NOT_INT
    yield counter, "counter-bool", {"token": CLERK1_TOKEN, "counter": True}, COUNTER_NOT_INT
    yield counter, "counter-float", {"token": CLERK1_TOKEN, "counter": 1.0}, COUNTER_NOT_INT
    yield counter, "counter-null", {"token": CLERK1_TOKEN, "counter": None}, COUNTER_NOT_INT
    yield (
        counter,
        "not-assigned",
        {"token": CLERK1_TOKEN, "counter": 2},
        E("forbidden", "Tài khoản clerk1 không được phân công làm việc tại quầy 2"),
    )
    yield (
        counter,
        "unknown-counter",
        {"token": CLERK1_TOKEN, "counter": 99},
        E("not_found", "Không có quầy số 99"),
    )
    yield (
        counter,
        "counter-zero",
        {"token": CLERK1_TOKEN, "counter": 0},
        E(("not_found", "bad_request"), "quầy"),
    )
    yield (
        counter,
        "counter-negative",
        {"token": CLERK1_TOKEN, "counter": -1},
        E(("not_found", "bad_request"), "quầy"),
    )
    yield (
        counter,
        "counter-huge",
        {"token": CLERK1_TOKEN, "counter": 2**70},
        E(("not_found", "bad_request"), "quầy"),
    )
    yield (
        counter,
        "session-expired",
        {"token": EXPIRED_TOKEN, "counter": 3},
        E("unauthorized", "Phiên đăng nhập đã hết hạn"),
    )


REFUSALS = [
    pytest.param(ns, auth, expected, id=f"{ns}-{label}")
    for ns, label, auth, expected in _refusal_cases()
]


@pytest.mark.parametrize("ns, auth, expected", REFUSALS)
def test_connection_is_refused_saying_why(world, ns, auth, expected):
    data = refusal(world.server, "/" + ns, resolve(auth, world.refs))
    problems = [refusal_problem(data, *expected), world.unchanged(f"connecting to /{ns}")]
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


def test_refusal_in_english_when_asked(world):
    data = refusal(world.server, "/kiosk", {"token": "khong-dung", "lang": "en"})
    problem = refusal_problem(data, "unauthorized", ("The token is wrong",), vi=False)
    assert problem is None, problem


# -- HTTP ------------------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}
LOGIN_BODIES = {
    "form": {
        "data": "username=clerk1&password=clerk1-secret",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    },
    "text": {"data": "clerk1 clerk1-secret", "headers": {"Content-Type": "text/plain"}},
    "no-body": {},
    "broken-json": {"data": '{"username": "clerk1", ', "headers": JSON},
    "json-list": {"json": ["clerk1", "clerk1-secret"]},
    "json-string": {"json": "clerk1"},
    "json-null": {"data": "null", "headers": JSON},
    "missing-password": {"json": {"username": "clerk1"}},
    "missing-username": {"json": {"password": "clerk1-secret"}},
    "extra-field": {"json": {"username": "clerk1", "password": "clerk1-secret", "counter": 1}},
    "username-int": {"json": {"username": 1, "password": "clerk1-secret"}},
    "password-list": {"json": {"username": "clerk1", "password": ["clerk1-secret"]}},
    "password-empty": {"json": {"username": "clerk1", "password": ""}},
    "username-surrogate": {"data": '{"username": "\\ud800", "password": "x"}', "headers": JSON},
}


@pytest.mark.parametrize("body", LOGIN_BODIES.values(), ids=LOGIN_BODIES.keys())
def test_login_refuses_malformed_requests(world, body):
    r = requests.post(world.server.url + "/api/v1/auth/login", timeout=10, **body)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json")
    data = r.json()
    assert data["ok"] is False
    problem = error_problem(data["error"], "bad_request", ())
    assert problem is None, problem


def test_login_failures_are_throttled_and_the_server_keeps_serving(sqlite_server, devices):
    url = sqlite_server.url + "/api/v1/auth/login"

    def login(username, password="mat-khau-sai", lang=""):
        return requests.post(
            url + lang, json={"username": username, "password": password}, timeout=10
        )

    first = login("clerk2")
    assert first.status_code == 401, first.text
    assert first.json()["ok"] is False
    assert (
        error_problem(
            first.json()["error"], "unauthorized", ("Tên đăng nhập hoặc mật khẩu không đúng",)
        )
        is None
    ), first.text
    stranger = login("khong-co-ai")  # the same answer: no hint which part was wrong
    assert (stranger.status_code, stranger.json()) == (401, first.json())
    english = login("clerk2", lang="?lang=en")
    assert english.status_code == 401
    assert english.json()["error"] == {
        "code": "unauthorized",
        "message": "Wrong username or password.",
    }
    for _ in range(2):
        assert login("clerk2").status_code == 401
    # Five failures: the next try, even with the right password, is throttled.
    for password in ("mat-khau-sai", "clerk2-secret"):
        r = login("clerk2", password)
        assert r.status_code == 429, (r.status_code, r.text)
        err = r.json()["error"]
        assert error_problem(err, "rate_limited", ("Đăng nhập sai quá nhiều lần",)) is None, err
        assert re.search(r"thử lại sau \d+ giây", err["message"]), err
    # Malformed requests are still told what is wrong, and nothing else stopped working.
    assert requests.post(url, data="x", timeout=10).status_code in (400, 429)
    health = requests.get(sqlite_server.url + "/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "redis": "off"}
    display = devices.display(sqlite_server)
    display.wait_event("snapshot")
    ack = devices.kiosk(sqlite_server).call("issue", {"service": "TP"})
    assert ack["ok"] and ack["ticket"]["number"] == "A001", ack
    display.wait_service("TP", waiting=1)


def test_public_status_page_refuses_bad_keys(world):
    for key in ("x", "k" * 65, "k" * 5000, "%00", "..%2f..%2fetc", "' OR 1=1 --"):
        r = requests.get(f"{world.server.url}/t/{key}", timeout=10)
        assert r.status_code == 404, (key, r.status_code)
    assert world.unchanged("status page lookups") is None


# -- queues in a particular state (each on its own server) ------------------------------------


def test_refused_actions_leave_the_current_ticket_untouched(sqlite_server, devices):
    srv = sqlite_server
    display = devices.display(srv)
    display.wait_event("snapshot")
    kiosk = devices.kiosk(srv)
    counter = devices.counter(srv, "clerk1", 1)
    counter.wait_event("counter_state")
    x = Expect(kiosk)
    a = kiosk.call("issue", {"service": "TP"})["ticket"]
    dd = kiosk.call("issue", {"service": "DD"})["ticket"]
    A, C = a["id"], dd["id"]

    x.ok(counter, "call_next", {})  # A001 is called
    x.refused(counter, "call_next", {}, "conflict", "Số A001 đang được gọi")
    x.refused(counter, "call", {"ticket_id": A}, "conflict", "A001 không còn trong hàng chờ")
    x.refused(counter, "call", {"ticket_id": C}, "conflict", "không phục vụ lĩnh vực của số C001")
    x.refused(counter, "pause", {"reason": "Nghỉ trưa"}, "conflict", "đang phục vụ số A001")
    x.refused(counter, "close", {}, "conflict", "đang phục vụ số A001")
    x.refused(counter, "start", {"ticket_id": C}, "conflict", "Số C001 không ở quầy này")
    x.ok(counter, "start", {"ticket_id": A})  # A001 is being served
    served_seq = x.seq()
    for event in ("start", "recall", "no_show"):
        x.refused(counter, event, {"ticket_id": A}, "conflict", "A001", "“serving”")
    transfer = {"ticket_id": A}
    x.refused(
        counter, "transfer", {**transfer, "service": "XX"}, "not_found", "Không có lĩnh vực “XX”"
    )
    x.refused(
        counter, "transfer", {**transfer, "service": "TP"}, "conflict", "Số A001 đã ở đúng nơi"
    )
    x.refused(counter, "transfer", {**transfer, "counter": 1}, "conflict", "Số A001 đã ở đúng nơi")
    x.refused(counter, "transfer", {**transfer, "counter": 99}, "not_found", "Không có quầy số 99")
    x.refused(counter, "transfer", {**transfer, "counter": 2**63}, ("not_found", "bad_request"))
    x.refused(counter, "finish", {**transfer, "outcome": "won"}, "bad_request", "“outcome”")
    x.refused(
        counter,
        "finish",
        {**transfer, "dossiers": ["H15.50.05.13-261008-0975", "mã sai"]},
        "bad_request",
        "“dossiers”",
        "mã sai",
    )
    # call_next finishes a served ticket before calling: with nobody waiting for this
    # counter (C001 is for counter 3) that finish must be undone with the refusal.
    x.refused(counter, "call_next", {}, "queue_empty", "Không còn công dân nào đang chờ")
    x.refused(counter, "call", {"ticket_id": C}, "conflict", "không phục vụ lĩnh vực")
    x.refused(counter, "call", {"ticket_id": 999_999}, "not_found", "Không tìm thấy phiếu")
    x.refused(counter, "pause", {"reason": "Họp"}, "conflict", "A001")

    time.sleep(0.3)  # anything wrongly broadcast has arrived by now
    late = [b for b in display.batches() if b["seq"] > served_seq]
    if late:
        x.problems.append(f"the display received changes from refused requests: {late}")
    with counter.cond:
        counter.events.clear()
    counter.call("sync")
    current = counter.wait_event("counter_state")["current"]
    if not (current and current["id"] == A and current["status"] == "serving"):
        x.problems.append(f"A001 should still be served at counter 1, the counter shows {current}")
    done = x.ok(
        counter,
        "finish",
        {"ticket_id": A, "dossiers": ["H15.50.05.13-261008-0975"], "outcome": "received"},
    )
    if done.get("ok") and done["ticket"]["status"] != "done":
        x.problems.append(f"finish answered {done}")
    x.refused(counter, "finish", {"ticket_id": A}, "conflict", "Số A001 không ở quầy này")
    x.check()
    display.wait_change("finished", ticket__number="A001")
    assert display.chain_problem() is None


def test_counter_status_changes_in_the_wrong_state_are_refused(sqlite_server, devices):
    srv = sqlite_server
    kiosk = devices.kiosk(srv)
    counter = devices.counter(srv, "clerk1", 1)
    counter.wait_event("counter_state")
    x = Expect(kiosk)
    waiting = kiosk.call("issue", {"service": "TP"})["ticket"]["id"]

    x.refused(counter, "resume", {}, "conflict", "Quầy không ở trạng thái tạm dừng")
    x.ok(counter, "pause", {"reason": "Nghỉ trưa"})
    x.refused(counter, "pause", {"reason": "Họp"}, "conflict", "Quầy đã tạm dừng rồi")
    x.refused(counter, "call_next", {}, "conflict", "Quầy đang tạm dừng")
    x.refused(counter, "call", {"ticket_id": waiting}, "conflict", "Quầy đang tạm dừng")
    x.ok(counter, "resume", {})
    x.refused(counter, "resume", {}, "conflict", "Quầy không ở trạng thái tạm dừng")
    x.ok(counter, "close", {})
    x.refused(counter, "close", {}, "conflict", "Quầy đang đóng")
    x.refused(counter, "call_next", {}, "conflict", "Quầy đang đóng")
    x.refused(counter, "call", {"ticket_id": waiting}, "conflict", "Quầy đang đóng")
    x.refused(counter, "resume", {}, "conflict")
    x.refused(counter, "pause", {"reason": "Họp"}, "conflict", "Quầy đang đóng")
    x.check()


def test_socket_events_over_the_rate_limit_are_refused(tmp_path, devices):
    srv = CentreServer(
        tmp_path,
        f"sqlite:///{tmp_path / 'motcua.sqlite3'}",
        env={"MOTCUA_EVENT_RATE": "2", "MOTCUA_EVENT_BURST": "3"},
    ).start()
    try:
        kiosk = devices.kiosk(srv)
        other = devices.kiosk(srv, KIOSK_B)
        seq = other.call("sync")["seq"]
        # Every event counts, invalid ones too (they are answered in about a millisecond,
        # so the bucket, 3 events refilled at 2 a second, does not refill in between).
        acks = [kiosk.call("hack") for _ in range(6)]
        for ack in acks[:3]:
            assert_refused(ack, "bad_request", "Sự kiện “hack” không được hỗ trợ")
        for ack in acks[3:]:
            assert_refused(ack, "rate_limited", "Thao tác quá nhanh")
        assert_refused(kiosk.call("issue", {"service": "TP"}), "rate_limited", "Thao tác quá nhanh")
        assert other.call("sync") == {"ok": True, "seq": seq}  # its own allowance; no ticket
        time.sleep(1.2)
        issued = kiosk.call("issue", {"service": "TP"})
        assert issued["ok"] and issued["ticket"]["number"] == "A001", issued
    finally:
        srv.stop()


def test_values_the_database_cannot_store_are_refused_cleanly(any_server, devices):
    """NUL characters, lone surrogates and integers out of the database's range get the
    same clear answer on SQLite and PostgreSQL, never "internal" or "unavailable"."""
    srv = any_server
    kiosk = devices.kiosk(srv)
    counter = devices.counter(srv, "clerk1", 1)
    rating = devices.rating(srv)
    counter.wait_event("counter_state")
    x = Expect(kiosk)
    a = kiosk.call("issue", {"service": "TP"})["ticket"]["id"]
    x.ok(counter, "call_next", {})
    either = ("bad_request", "not_found")
    x.refused(kiosk, "issue", {"service": "T\x00P"}, either)
    x.refused(kiosk, "issue", {"service": "\ud800"}, either)
    for big in (2**31, 2**63):
        x.refused(counter, "call", {"ticket_id": big}, either)
        x.refused(counter, "recall", {"ticket_id": big}, either)
        x.refused(counter, "transfer", {"ticket_id": a, "counter": big}, either)
        x.refused(rating, "rate", {"ticket_id": big, "score": 3}, either)
    x.connect_refused(srv, "/counter", {"token": srv.login("clerk1"), "counter": 2**31}, either)
    x.connect_refused(srv, "/kiosk", {"token": "test-kiosk-token-0001\x00"}, "unauthorized")
    # Free text with a NUL is either kept or refused as a bad request, on every store.
    ack = send(counter, "recall", ({"ticket_id": a, "request_id": "r\x00"},))
    if not (isinstance(ack, dict) and ack.get("ok")) and ack_problem(ack, "bad_request", ()):
        x.problems.append(f"recall with a NUL in request_id: {ack}")
    # The called ticket is still there and the visit completes.
    x.ok(counter, "start", {"ticket_id": a})
    x.ok(counter, "finish", {"ticket_id": a, "outcome": "guided"})
    x.check()
    assert requests.get(srv.url + "/healthz", timeout=10).status_code == 200


# -- afterwards -------------------------------------------------------------------------------


def test_after_all_that_nothing_changed_and_a_visit_still_works(world):
    """Runs after the module's other world tests: the seq never moved, the display never
    heard of any of it, and a normal visit goes through."""
    dev = world.dev
    time.sleep(0.3)
    assert world.seq_now() == world.baseline
    display = dev["display"]
    assert [b for b in display.batches() if b["seq"] > world.baseline] == []
    counter = dev["counter"]
    with counter.cond:
        counter.events.clear()
    counter.call("sync")
    state = counter.wait_event("counter_state")
    assert state["counter"]["status"] == "open" and state["current"] is None, state
    assert state["waiting"] == {"TP": 1, "HT": 0}, state
    rating = dev["rating"]
    with rating.cond:
        rating.events.clear()
    rating.call("sync")
    assert rating.wait_event("rating_state")["current"] is None

    issued = dev["kiosk"].call("issue", {"service": "TP"})
    assert issued["ok"] and issued["ticket"]["number"] == "A005", issued
    display.wait_service("TP", waiting=2)
    called = counter.call("call_next", {})
    assert called["ok"] and called["ticket"]["id"] == world.refs["waiting"], called
    display.wait_change("called", ticket__number="A004")
    batches = [b for b in display.batches() if b["seq"] > world.baseline]
    assert display.chain_problem() is None
    assert batches[0]["after"] == world.baseline and batches[-1]["seq"] == world.baseline + 2
    assert requests.get(world.server.url + "/healthz", timeout=10).status_code == 200
