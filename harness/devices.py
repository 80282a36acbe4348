"""A real Socket.IO client for tests: one namespace, blocking calls, every event kept."""

from __future__ import annotations

import threading
import time

import pytest
import socketio

from harness.process import ServerProcess


class Device:
    """A real Socket.IO client on one namespace, recording every event it receives.

    ``server`` is anything with a ``url``: a server process, or nginx in front of some
    (harness/nginx.py), whose ``socket_url`` devices then connect to, with its
    ``socket_headers``. With ``reconnect``
    the client reconnects by itself, as a page does, and takes the snapshot it is sent."""

    def __init__(self, server: ServerProcess, namespace: str, auth: dict, reconnect: bool = False):
        self.namespace = namespace
        self.events: list[tuple[str, object]] = []  # not yet waited for
        self.history: list[tuple[str, object]] = []  # everything received
        self.cond = threading.Condition()
        options = {"reconnection_delay": 0.2, "reconnection_delay_max": 1} if reconnect else {}
        # Behind nginx: the Host and Origin a page on the public address sends.
        options["websocket_extra_options"] = getattr(server, "socket_headers", {})
        self.sio = socketio.Client(reconnection=reconnect, **options)
        self.sio.on("*", self._record, namespace=namespace)
        self.connect_error = None
        self.sio.on("connect_error", self._refused, namespace=namespace)
        self.sio.connect(
            getattr(server, "socket_url", server.url),
            namespaces=[namespace],
            auth=auth,
            transports=["websocket"],
            wait_timeout=10,
        )

    def _record(self, event, data=None):
        entries = [(event, data)]
        if event == "changes" and isinstance(data, dict):
            # Each event of a protocol v2 batch can be waited for on its own as "change".
            entries += [("change", e) for e in data.get("events", ())]
        with self.cond:
            self.events.extend(entries)
            self.history.extend(entries)
            self.cond.notify_all()

    def _refused(self, data=None):
        self.connect_error = data

    def call(self, event: str, data=None, timeout: float = 15):
        if data is None:
            return self.sio.call(event, namespace=self.namespace, timeout=timeout)
        return self.sio.call(event, data, namespace=self.namespace, timeout=timeout)

    def fresh_snapshot(self, event: str) -> dict:
        """The role's snapshot as of now: ask for it (`sync`) and return it. The server
        sends the snapshot before acknowledging the sync."""
        assert self.call("sync")["ok"]
        with self.cond:
            return next(d for n, d in reversed(self.history) if n == event)

    def wait_for(self, predicate, timeout: float = 10, what: str = "event"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, (name, data) in enumerate(self.events):
                    if predicate(name, data):
                        return self.events.pop(i)[1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no {what} on {self.namespace} within {timeout}s; got "
                        f"{[n for n, _ in self.events]}"
                    )
                self.cond.wait(remaining)

    def wait_event(self, name: str, timeout: float = 10, **match):
        def pred(n, d):
            return n == name and all(_dig(d, k) == v for k, v in match.items())

        return self.wait_for(pred, timeout, what=f"{name} {match or ''}")

    def wait_change(self, kind: str, timeout: float = 10, **match):
        """The next batch event of ``kind`` (a call, a finish...) matching ``match``."""
        return self.wait_event("change", timeout, kind=kind, **match)

    def wait_service(self, code: str, timeout: float = 10, **match) -> dict:
        """The next service summary of ``code`` in a batch, matching ``match``."""

        def pred(n, d):
            return n == "changes" and any(
                s["code"] == code and all(s.get(k) == v for k, v in match.items())
                for s in d["services"]
            )

        batch = self.wait_for(pred, timeout, what=f"services {code} {match or ''}")
        return next(s for s in batch["services"] if s["code"] == code)

    def batches(self) -> list[dict]:
        """Every batch received, in seq order (threads may hand them over out of order)."""
        with self.cond:
            return sorted((d for n, d in self.history if n == "changes"), key=lambda b: b["seq"])

    def event_seqs(self) -> list[int]:
        return [e["seq"] for b in self.batches() for e in b["events"]]

    def chain_problem(self) -> str | None:
        """Why the batches received do not follow each other (None: each starts where
        the previous one ended)."""
        batches = self.batches()
        for before, batch in zip(batches, batches[1:], strict=False):
            if batch["after"] != before["seq"]:
                span = f"{batch['after']}..{batch['seq']}"
                return f"batch {span} follows one ending at {before['seq']}"
        return None

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - already gone
            pass


def _dig(data, path: str):
    for part in path.split("__"):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def connect_refused(server: ServerProcess, namespace: str, auth) -> dict:
    """Connect expecting a refusal; returns what the client is told: {"message", "data"}."""
    sio = socketio.Client(reconnection=False)
    refusal = {}
    sio.on("connect_error", lambda data=None: refusal.update(data or {}), namespace=namespace)
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(
            server.url,
            namespaces=[namespace],
            auth=auth,
            transports=["websocket"],
            wait_timeout=10,
        )
    sio.disconnect()
    return refusal
