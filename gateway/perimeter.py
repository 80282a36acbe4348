"""The HTTP edge every request crosses, Socket.IO's included (docs/security.md):

- **Host.** A request naming a host that is not this server's is refused (400): a
  DNS-rebinding page (Host and Origin both ``evil.example``) would otherwise pass the
  origin check and put its own name into tickets' QR codes. Allowed: an IP address (a
  rebinding attack needs a name), ``localhost``, the host of ``MOTCUA_PUBLIC_URL`` and
  those of ``MOTCUA_ALLOWED_HOSTS`` (``*``: any).
- **Bodies.** One limit for every route, ``MAX_BODY_BYTES``: a larger ``Content-Length``
  is refused before the body is read (gateway/guard.py), a chunked body as soon as it
  grows past it (here); an unread body is never read to its end, the connection is closed
  instead. JSON nested too deep to parse is a bad request.
- **Headers.** Every answer carries the security headers, Socket.IO's and refusals too.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from urllib.parse import urlsplit

from flask import Flask
from flask.json.provider import DefaultJSONProvider

log = logging.getLogger("motcua.http")

# Socket.IO's requests (engine.io's default path).
SOCKETIO_PATH = "/socket.io/"

# One limit for every request body: the integration API's 500 dossiers of a few hundred
# bytes each are the largest a client sends; a login is under 1 KB.
MAX_BODY_BYTES = 512 * 1024

# Pages are served from this server only and never framed; scripts from static files
# (inline styles are allowed: the status page has its stylesheet inline).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
RAW_SECURITY_HEADERS = "".join(f"{k}: {v}\r\n" for k, v in SECURITY_HEADERS.items()).encode()


def _refusal(message_vi: str, message_en: str) -> bytes:
    return json.dumps(
        {"ok": False, "error": {"code": "bad_request", "message": f"{message_vi} ({message_en})"}},
        ensure_ascii=False,
    ).encode()


HOST_REFUSED = _refusal(
    "Địa chỉ máy chủ trong yêu cầu không được phép (MOTCUA_ALLOWED_HOSTS)",
    "this host name is not allowed",
)
TOO_LARGE = _refusal("Nội dung gửi lên quá lớn", "the request body is too large")


def too_large_response() -> bytes:
    """The raw 413 answer, written before the application runs (gateway/guard.py)."""
    return (
        b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\n"
        b"Content-Type: application/json; charset=utf-8\r\n"
        + RAW_SECURITY_HEADERS
        + f"Content-Length: {len(TOO_LARGE)}\r\n\r\n".encode()
        + TOO_LARGE
    )


def host_name(host: str) -> str:
    """``Host`` without its port, lower case, IPv6 without brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_hosts(config) -> frozenset[str]:
    """Host names this server answers to, besides IP addresses."""
    names = {"localhost"}
    if config.get("PUBLIC_URL"):
        names.add(host_name(urlsplit(config["PUBLIC_URL"]).netloc))
    for name in config.get("ALLOWED_HOSTS") or ():
        names.add(host_name(name))
    return frozenset(n for n in names if n)


def host_allowed(host: str | None, names: frozenset[str]) -> bool:
    if not host or "*" in names:
        return True  # no Host (HTTP/1.0): no browser sends that
    name = host_name(host)
    if name in names:
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def refuse(
    start_response,
    status: str,
    body: bytes,
    content_type: str = "application/json; charset=utf-8",
    headers=(),
) -> list[bytes]:
    """Answer a request with ``body`` and close the connection."""
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            *headers,
        ],
    )
    return [body]


class Perimeter:
    """WSGI middleware in front of everything (Flask and engine.io): the Host check, the
    body limit for chunked bodies, and the security headers on every answer."""

    def __init__(self, app, names: frozenset[str], bounded_log, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.names = names
        self.log = bounded_log
        self.max_body = max_body

    def _bounded_chunks(self, environ) -> bool:
        """A chunked body read here, at most ``max_body`` bytes, and handed on as a body
        of known length (werkzeug would cut one past its limit short without a word);
        False when it is longer: the rest is never read, the connection is closed."""
        import io

        data = environ["wsgi.input"].read(self.max_body + 1)
        if len(data) > self.max_body:
            return False
        environ["wsgi.input"] = io.BytesIO(data)
        environ["CONTENT_LENGTH"] = str(len(data))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ.pop("wsgi.input_terminated", None)
        return True

    def __call__(self, environ, start_response):
        def with_headers(status, headers, exc_info=None):
            present = {k.lower() for k, _ in headers}
            headers = list(headers) + [
                (k, v) for k, v in SECURITY_HEADERS.items() if k.lower() not in present
            ]
            return start_response(status, headers, exc_info)

        if not host_allowed(environ.get("HTTP_HOST"), self.names):
            self.log.warning(
                "refused a request from %s for host %r (MOTCUA_ALLOWED_HOSTS)",
                environ.get("REMOTE_ADDR", "?"),
                environ.get("HTTP_HOST", "")[:80],
            )
            return refuse(with_headers, "400 Bad Request", HOST_REFUSED)
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            if not self._bounded_chunks(environ):
                return refuse(with_headers, "413 Content Too Large", TOO_LARGE)
        return self.app(environ, with_headers)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, where text nested deeper than the parser goes is a bad request
    (``ValueError``, as any text that is not JSON) instead of a RecursionError (500)."""

    ensure_ascii = False

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


class App(Flask):
    """The server's Flask app. flask-socketio runs a namespace's connect and disconnect
    handlers (the doors run their other events without one) inside a request context
    built from the connection's first request, whose path, ``/socket.io/``, no route
    answers (engine.io takes those requests before Flask): matching it raised and kept a
    NotFound each time, 17 µs and a reference cycle of 39 objects (traceback, frames,
    request) left for the collector (gateway/collector.py), twice per connection. Those
    contexts are not matched; nothing in a Socket.IO handler builds a URL."""

    def create_url_adapter(self, request):
        if request is not None and request.environ.get("PATH_INFO", "").startswith(SOCKETIO_PATH):
            return None
        return super().create_url_adapter(request)
