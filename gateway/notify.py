"""Sending the citizens' messages (core/notices.py's outbox) through SMS and Zalo.

One :class:`Notifier` interface, two real channels:

- :class:`SmsGateway`, a Vietnamese brandname SMS gateway's HTTP API in the form eSMS
  publishes (``SendMultipleMessage_V4_post_json``: ``ApiKey``, ``SecretKey``, ``Phone``,
  ``Content``, ``Brandname``, ``SmsType`` 2 for customer care; ``CodeResult`` "100"
  is accepted), the URL and credentials from the configuration;
- :class:`ZaloZns`, Zalo Notification Service (``POST …/message/template`` with the
  Official Account's ``access_token`` header, ``phone`` as 84…, ``template_id`` and
  ``template_data``; ``error`` 0 is accepted), a template id per kind of message.

Each server process runs one :class:`Sender`: it claims due messages (a lease, so two
processes never send one together; on PostgreSQL ``FOR UPDATE SKIP LOCKED``), sends each
through the channels in order (ZNS first when configured, its failure for a recipient
falls to SMS), and retries a failure that may pass (the gateway down, slow or busy)
after a back-off: 15 s, doubling, at most 10 minutes, until the message expires. The
sender is a greenlet of its own and writes through the store's writer like everyone
else, so no queue operation ever waits for a gateway. A message may go twice only if a
process dies between the gateway's acceptance and its own record of it.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Protocol

import sqlalchemy as sa

from core import models as m
from core import notices
from core.store import Store, Tx

log = logging.getLogger("motcua.notify")

LEASE = timedelta(seconds=60)
BATCH = 20
TIMEOUT = (3, 10)  # seconds to connect, to answer


class SendError(Exception):
    """A channel did not take a message. ``lasting``: it will not for this recipient
    (try the next channel); otherwise it may later (try again after a back-off)."""

    def __init__(self, why: str, lasting: bool):
        super().__init__(why)
        self.lasting = lasting


class Notifier(Protocol):
    name: str

    def send(self, phone: str, kind: str, params: dict, ref: str) -> None:
        """Send one message (raise SendError when it was not taken)."""


def _post(url: str, body: dict, headers: dict | None = None) -> dict:
    import requests

    try:
        r = requests.post(url, json=body, headers=headers or {}, timeout=TIMEOUT)
    except requests.RequestException as e:
        raise SendError(f"{type(e).__name__}: {e}", lasting=False) from None
    if r.status_code >= 500 or r.status_code == 429:
        raise SendError(f"HTTP {r.status_code}", lasting=False)
    try:
        return r.json()
    except ValueError:
        raise SendError(f"HTTP {r.status_code}, not JSON", lasting=r.status_code < 500) from None


class SmsGateway:
    name = "sms"

    def __init__(self, url: str, api_key: str, secret_key: str, brandname: str, sandbox=False):
        self.url, self.api_key, self.secret_key = url, api_key, secret_key
        self.brandname, self.sandbox = brandname, sandbox

    def send(self, phone: str, kind: str, params: dict, ref: str) -> None:
        body = {
            "ApiKey": self.api_key,
            "SecretKey": self.secret_key,
            "Phone": phone,
            "Content": notices.text(kind, params),
            "Brandname": self.brandname,
            "SmsType": "2",  # customer care
            "IsUnicode": "1",  # Vietnamese with its diacritics
            "Sandbox": "1" if self.sandbox else "0",
            "RequestId": ref,
        }
        answer = _post(self.url, body)
        code = str(answer.get("CodeResult"))
        if code != "100":
            # 99: the gateway's own trouble, try again; others (credentials, brandname,
            # the number) will not pass by waiting.
            raise SendError(f"CodeResult {code}: {answer.get('ErrorMessage', '')}", code != "99")


class ZaloZns:
    name = "zns"
    TOKEN_EXPIRED = -124  # renewed by the OA's admin: the messages wait for it

    def __init__(self, url: str, access_token: str, templates: dict[str, str]):
        self.url, self.access_token, self.templates = url, access_token, templates

    def send(self, phone: str, kind: str, params: dict, ref: str) -> None:
        template = self.templates.get(kind)
        if not template:
            raise SendError(f"no ZNS template for {kind}", lasting=True)
        body = {
            "phone": "84" + phone[1:],
            "template_id": template,
            "template_data": {k: str(v) for k, v in params.items() if k != "lang"},
            "tracking_id": ref,
        }
        answer = _post(self.url, body, {"access_token": self.access_token})
        error = answer.get("error")
        if error != 0:
            raise SendError(
                f"ZNS error {error}: {answer.get('message', '')}", error != self.TOKEN_EXPIRED
            )


class LogNotifier:
    """The demo's channel when no gateway is configured: the message in the log."""

    name = "log"

    def send(self, phone: str, kind: str, params: dict, ref: str) -> None:
        log.info("message to …%s (%s): %s", phone[-3:], kind, notices.text(kind, params))


def notifiers_from_env(demo: bool = False) -> list:
    """The channels the environment configures, in the order tried (docs/deployment.md):
    MOTCUA_ZNS_ACCESS_TOKEN (+ MOTCUA_ZNS_TEMPLATES "booked=…,reminder=…,near=…,called=…",
    MOTCUA_ZNS_URL), MOTCUA_SMS_URL (+ MOTCUA_SMS_API_KEY, MOTCUA_SMS_SECRET_KEY,
    MOTCUA_SMS_BRANDNAME, MOTCUA_SMS_SANDBOX=1). None configured: the demo logs them,
    a real server keeps them pending (sent once a channel is configured, until they
    expire)."""
    env = os.environ.get
    out: list = []
    if env("MOTCUA_ZNS_ACCESS_TOKEN"):
        templates = dict(
            pair.split("=", 1) for pair in env("MOTCUA_ZNS_TEMPLATES", "").split(",") if "=" in pair
        )
        out.append(
            ZaloZns(
                env("MOTCUA_ZNS_URL", "https://business.openapi.zalo.me/message/template"),
                env("MOTCUA_ZNS_ACCESS_TOKEN"),
                templates,
            )
        )
    if env("MOTCUA_SMS_URL"):
        out.append(
            SmsGateway(
                env("MOTCUA_SMS_URL"),
                env("MOTCUA_SMS_API_KEY", ""),
                env("MOTCUA_SMS_SECRET_KEY", ""),
                env("MOTCUA_SMS_BRANDNAME", ""),
                env("MOTCUA_SMS_SANDBOX", "0") == "1",
            )
        )
    if not out and demo:
        out.append(LogNotifier())
    return out


def backoff(attempts: int, first_s: float = 15) -> timedelta:
    """15 s, 30 s, 60 s… at most 10 minutes (``first_s``: the first wait)."""
    return timedelta(seconds=min(600, first_s * 2 ** max(0, attempts - 1)))


class Sender:
    """Sends the outbox's due messages (see the module's docstring)."""

    def __init__(self, store: Store, notifiers: list, clock=m.utcnow, first_wait_s: float = 15):
        self.store = store
        self.notifiers = notifiers
        self.clock = clock
        self.first_wait_s = first_wait_s

    def send_due(self) -> int:
        """Claim and send what is due now; returns how many were claimed."""
        if not self.notifiers or not self.store.read(self._anything_due):
            return 0  # a read, not a write transaction, every round with nothing to send
        claimed = self.store.write(self._claim, centre_id=0, actor="system:notify")
        for row in claimed:
            self._send(row)
        return len(claimed)

    def _anything_due(self, conn) -> bool:
        n = m.notifications
        q = sa.select(n.c.id).where(n.c.status == "pending", n.c.next_at <= self.clock()).limit(1)
        return conn.execute(q).first() is not None

    def _claim(self, tx: Tx) -> list[dict]:
        n = m.notifications
        q = (
            sa.select(n)
            .where(n.c.status == "pending", n.c.next_at <= tx.now)
            .order_by(n.c.next_at)
            .limit(BATCH)
        )
        if tx.is_postgres:
            q = q.with_for_update(skip_locked=True)
        rows = [dict(r._mapping) for r in tx.conn.execute(q)]
        out = []
        for row in rows:
            if row["expires_at"] <= tx.now:
                tx.conn.execute(
                    sa.update(n).where(n.c.id == row["id"]).values(status="expired", phone=None)
                )
                continue
            tx.conn.execute(
                sa.update(n)
                .where(n.c.id == row["id"])
                .values(next_at=tx.now + LEASE, attempts=row["attempts"] + 1)
            )
            row["attempts"] += 1
            out.append(row)
        return out

    def _send(self, row: dict) -> None:
        passing = None
        lasting = []
        for notifier in self.notifiers:
            try:
                notifier.send(row["phone"], row["kind"], row["params"], f"motcua-{row['id']}")
            except SendError as e:
                if e.lasting:
                    lasting.append(f"{notifier.name}: {e}")
                else:
                    passing = f"{notifier.name}: {e}"
                continue
            except Exception as e:  # noqa: BLE001 - a channel's bug must not stop the others
                log.exception("sending message %s through %s failed", row["id"], notifier.name)
                passing = f"{notifier.name}: {e}"
                continue
            self._record(
                row, status="sent", channel=notifier.name, sent_at=self.clock(), phone=None
            )
            return
        why = "; ".join([*lasting, *([passing] if passing else [])])[:200]
        if passing is not None:
            log.warning("message %s not sent yet (%s); trying again later", row["id"], why)
            wait = backoff(row["attempts"], self.first_wait_s)
            self._record(row, next_at=self.clock() + wait, error=why)
        else:
            log.error("message %s cannot be sent (%s)", row["id"], why)
            self._record(row, status="failed", error=why, phone=None)

    def _record(self, row: dict, **values) -> None:
        n = m.notifications

        def op(tx: Tx) -> None:
            tx.conn.execute(sa.update(n).where(n.c.id == row["id"]).values(**values))

        self.store.write(op, centre_id=0, actor="system:notify")


def run(store: Store, notifiers: list, public_url: str, sleep, every_s: float = 2.0) -> None:
    """The process's sender and the notices' check (gevent greenlet): forever, every
    ``every_s`` (MOTCUA_NOTIFY_EVERY_S; MOTCUA_NOTIFY_RETRY_S the first retry's wait)."""
    sender = Sender(
        store, notifiers, first_wait_s=float(os.environ.get("MOTCUA_NOTIFY_RETRY_S", 15))
    )
    while True:
        try:
            notices.due(store, m.utcnow(), public_url)
            busy = sender.send_due()
        except Exception as e:  # noqa: BLE001 - keep going, say what failed
            log.warning("messages to citizens: %s", e)
            busy = 0
        sleep(0.2 if busy >= BATCH else every_s)
