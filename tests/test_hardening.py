"""What an outsider or a failing database must not do to the server (first slice of the
hardening issue): unreadable event names, a lost database, stored files, page headers."""

from __future__ import annotations

import stat
import time

import requests
import sqlalchemy as sa

from harness.centre import KIOSK, CentreServer
from harness.devices import connect_refused
from harness.proxy import CuttableProxy


def test_event_names_that_are_not_strings_are_bad_requests(sqlite_server, devices):
    kiosk = devices.kiosk(sqlite_server)
    kiosk.wait_event("services")
    for name in (5, ["issue"], {"a": 1}, None):
        ack = kiosk.sio.call(name, {}, namespace="/kiosk", timeout=10)
        assert ack["ok"] is False and ack["error"]["code"] == "bad_request", (name, ack)
    assert kiosk.call("issue", {"service": "TP"})["ok"]
    assert "Traceback" not in sqlite_server.log()


def test_only_the_role_namespaces_accept_connections(sqlite_server):
    import socketio

    for namespace in ("/", "/admin", "/kiosk2"):
        sio = socketio.Client(reconnection=False)
        try:
            sio.connect(
                sqlite_server.url,
                namespaces=[namespace],
                auth={"token": KIOSK},
                transports=["websocket"],
                wait_timeout=5,
            )
        except socketio.exceptions.ConnectionError:
            pass
        else:
            raise AssertionError(f"{namespace} accepted a connection")
        finally:
            sio.disconnect()


def test_database_files_are_readable_by_their_owner_only(tmp_path, devices):
    db = tmp_path / "data" / "motcua.sqlite3"
    srv = CentreServer(tmp_path, f"sqlite:///{db}").start()
    try:
        assert devices.kiosk(srv).call("issue", {"service": "TP"})["ok"]
        assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
        for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    finally:
        srv.stop()


def test_pages_and_api_answers_carry_security_headers(sqlite_server, devices):
    issued = devices.kiosk(sqlite_server).call("issue", {"service": "TP"})
    for url in (
        issued["status_url"],
        sqlite_server.url + "/t/nothing",
        sqlite_server.url + "/healthz",
    ):
        headers = requests.get(url, timeout=5).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"


def test_a_lost_database_is_unavailable_everywhere_and_service_resumes(tmp_path, pg_url, devices):
    """PostgreSQL behind a proxy the test cuts: logins, operations, `sync` and new
    connections all say `unavailable` (retry), never `internal`; then all works again."""
    url = sa.engine.make_url(pg_url)
    proxy = CuttableProxy((url.host, url.port or 5432))
    srv = CentreServer(tmp_path, url.set(port=proxy.port).render_as_string(False)).start()
    try:
        kiosk = devices.kiosk(srv)
        kiosk.wait_event("services")
        assert kiosk.call("issue", {"service": "TP"})["ok"]
        proxy.cut()

        login = requests.post(
            srv.url + "/api/v1/auth/login",
            json={"username": "clerk1", "password": "clerk1-secret"},
            timeout=30,
        )
        assert login.status_code == 503, login.text
        assert login.json()["error"]["code"] == "unavailable"
        assert kiosk.call("issue", {"service": "TP"}, timeout=30)["error"]["code"] == "unavailable"
        assert kiosk.call("sync", timeout=30)["error"]["code"] == "unavailable"
        refused = connect_refused(srv, "/kiosk", {"token": KIOSK})
        assert refused["data"]["code"] == "unavailable", refused
        assert requests.get(srv.url + "/healthz", timeout=30).status_code == 503

        proxy.restore()
        deadline = time.monotonic() + 20
        while requests.get(srv.url + "/healthz", timeout=30).status_code != 200:
            assert time.monotonic() < deadline, "the server did not come back"
            time.sleep(0.2)
        again = kiosk.call("issue", {"service": "TP"}, timeout=30)
        assert again["ok"] and again["ticket"]["number"] == "A002", again
        assert "báo cán bộ kỹ thuật" not in srv.log()
    finally:
        proxy.cut()
        srv.stop()
