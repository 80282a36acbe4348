"""A loopback HTTP server standing in for an SMS brandname gateway (eSMS's JSON API) and
for Zalo's ZNS, answering as their public documentation says, recording every request;
it can be made to fail, be slow, or go away and come back (tests, and the demo's log)."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("motcua.gateway-stand-in")

SMS_PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"
ZNS_PATH = "/message/template"
ZNS_TOKEN = "stand-in-zns-token"


class StandIn:
    """``url`` + SMS_PATH / ZNS_PATH. ``received``: (channel, body) in arrival order.
    ``sms_answer`` / ``zns_answer``: what to answer (JSON), ``status``: the HTTP status,
    ``delay_s``: how long to take."""

    def __init__(self, port: int = 0):
        self.received: list[tuple[str, dict]] = []
        self.sms_answer = {"CodeResult": "100", "SMSID": "stand-in"}
        self.zns_answer = {"error": 0, "message": "Success", "data": {"msg_id": "stand-in"}}
        self.status = 200
        self.delay_s = 0.0
        self.cond = threading.Condition()
        self._port = port
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> StandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if stand_in.delay_s:
                    time.sleep(stand_in.delay_s)
                if self.path == SMS_PATH:
                    channel, answer = "sms", stand_in.sms_answer
                elif self.path == ZNS_PATH:
                    channel, answer = "zns", stand_in.zns_answer
                    if self.headers.get("access_token") != ZNS_TOKEN:
                        answer = {"error": -124, "message": "Access token is invalid"}
                else:
                    self.send_error(404)
                    return
                if stand_in.status == 200:
                    with stand_in.cond:
                        stand_in.received.append((channel, body))
                        stand_in.cond.notify_all()
                    log.info(
                        "stand-in %s gateway got: %s",
                        channel,
                        body.get("Content") or body.get("template_data"),
                    )
                data = json.dumps(answer).encode()
                self.send_response(stand_in.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Go away (connections refused) until ``start`` again on the same port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def env(self) -> dict:
        """The server's settings for both channels (ZNS tried first, then SMS)."""
        return {
            "MOTCUA_SMS_URL": self.url + SMS_PATH,
            "MOTCUA_SMS_API_KEY": "stand-in-key",
            "MOTCUA_SMS_SECRET_KEY": "stand-in-secret",
            "MOTCUA_SMS_BRANDNAME": "TTHCC",
        }

    def wait(self, predicate, timeout: float = 10) -> list[tuple[str, dict]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the stand-in gateway got only {self.received}")
                self.cond.wait(left)
            return list(self.received)
