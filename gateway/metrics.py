"""Prometheus metrics of one server process: ``GET /metrics`` (docs/metrics.md).

Every process has its own registry and answers for itself: N processes behind nginx are N
scrape targets, each on its own port (no multiprocess mode, nothing shared).

- What **happens** is counted where it happens, by :class:`Metrics`: device events,
  operations through the store's writer (a latency histogram), changes committed and
  delivered, batches sent, the delay from a change's commit to its batches, changes read
  back from the store, Redis failures. Each costs a dictionary look-up and an addition per
  event, operation, change or batch (a batch goes to a whole room), never per device.
- What **is** (devices connected, tickets waiting, the writer's queue, the database's and
  Redis's health, garbage collection pauses) is read only when Prometheus scrapes, by
  :class:`ServerState`.

Labels are bounded sets: ``role`` (core/roles.py), ``centre`` (a centre's code, of the
centres this process serves), ``operation`` (the engine's operations and a few others),
``event`` (the events a role's door declares; anything else counts as ``unknown``).

Who may scrape (:func:`scrape_refusal`): loopback, and the addresses or networks of
``MOTCUA_METRICS_ALLOW``; never a request that came through a reverse proxy (it carries
``X-Forwarded-For``, ``Forwarded`` or ``X-Real-IP``): Prometheus scrapes each process
directly on its own port.
"""

from __future__ import annotations

import ipaddress
import logging
import time

from flask import Blueprint, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from core import estimates, models
from core.errors import QueueError, Refused

from .api import access, error_response, request_lang

log = logging.getLogger("motcua.metrics")

# No ``*_created`` series beside each counter and histogram: nobody graphs them, and they
# double the series.
disable_created_metrics()

# Operations take ~1-10 ms through the writer (a group commit); a clerk's call should stay
# well under 100 ms, and one past a second is a stall.
OPERATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Changes reach devices in ms through this process and Redis; the sweep (1 s) and the gap
# wait (0.2 s) deliver the rest a second or two late.
DELIVERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# A request that came through a reverse proxy: refused whatever its address (with one
# process behind nginx on the same box, every proxied request comes from 127.0.0.1).
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def allowed_networks(setting: str | None) -> tuple:
    """Loopback and the comma-separated addresses or networks of ``setting``
    (MOTCUA_METRICS_ALLOW: ``10.0.5.20, 192.168.10.0/24, fd00::/8``); a wrong entry raises
    ValueError naming it."""
    networks = list(LOOPBACK)
    for entry in (setting or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"MOTCUA_METRICS_ALLOW: {entry!r} is neither an IP address nor a network "
                "(write addresses or networks separated by commas: 10.0.5.20,192.168.1.0/24)"
            ) from None
    return tuple(networks)


def scrape_refusal(environ: dict, networks) -> QueueError | None:
    """Why this request may not read /metrics, or None when it may."""
    if any(environ.get(h) for h in PROXY_HEADERS):
        return QueueError("forbidden", "metrics_proxied")
    address = environ.get("REMOTE_ADDR") or ""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return QueueError("forbidden", "metrics_address", address=address[:64])
    if ip.version == 6 and ip.ipv4_mapped is not None:  # a dual-stack socket's IPv4 client
        ip = ip.ipv4_mapped
    if not any(ip in n for n in networks if n.version == ip.version):
        return QueueError("forbidden", "metrics_address", address=str(ip))
    return None


class Metrics:
    """The counters and histograms of one process, in its own registry, with
    :class:`ServerState` read at each scrape once ``watch`` has been called."""

    def __init__(self, networks=LOOPBACK):
        self.networks = networks  # who may scrape (allowed_networks)
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.state: ServerState | None = None
        self._events = Counter(
            "motcua_events",
            "Events received from devices and staff pages, by role and event name.",
            ["role", "event"],
            registry=r,
        )
        self._operations = Histogram(
            "motcua_operation_seconds",
            "Operations through the store's writer: seconds from the call to the answer "
            "(waiting for the writer, the transaction and its commit), by operation.",
            ["operation"],
            buckets=OPERATION_BUCKETS,
            registry=r,
        )
        self._refusals = Counter(
            "motcua_operation_refusals",
            "Operations refused or failed, by operation and error code (docs/protocol.md; "
            "refused: a provisioning file's refusal or dry run).",
            ["operation", "code"],
            registry=r,
        )
        self.changes_committed = Counter(
            "motcua_changes_committed",
            "Changes committed by this process's writer (every centre's).",
            registry=r,
        )
        self.changes_delivered = Counter(
            "motcua_changes_delivered",
            "Changes released to this process's devices in seq order (whichever process "
            "committed them).",
            registry=r,
        )
        self._batches = Counter(
            "motcua_batches_sent",
            "Change batches sent, one per audience room (not per device), by role.",
            ["role"],
            registry=r,
        )
        self.delivery = Histogram(
            "motcua_delivery_delay_seconds",
            "Seconds from a change's commit to its batches having been handed to every "
            "socket of this process.",
            buckets=DELIVERY_BUCKETS,
            registry=r,
        )
        self._read_back = Counter(
            "motcua_changes_read_back",
            "Changes read back from the store's audit log: gap (a change arrived ahead of an "
            "earlier one that did not come) or sweep (the 1 s comparison with the store).",
            ["reason"],
            registry=r,
        )
        self.redis_publish_failures = Counter(
            "motcua_redis_publish_failures",
            "Messages of changes that could not be published to Redis.",
            registry=r,
        )
        self.redis_receive_failures = Counter(
            "motcua_redis_receive_failures",
            "Times the Redis subscription failed or ended (it is made again after a back-off).",
            registry=r,
        )
        self._children: dict = {}

    def _child(self, metric, *labels):
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- what happens --------------------------------------------------------------------
    def event(self, role: str, name: str) -> None:
        self._child(self._events, role, name).inc()

    def operation(self, name: str, seconds: float, error: BaseException | None) -> None:
        """The store's ``observe`` (core/store.py)."""
        self._child(self._operations, name).observe(seconds)
        if error is not None:
            # A provisioning file's refusal (or its dry run, undone on purpose) is "refused".
            code = getattr(error, "code", None) or (
                "refused" if isinstance(error, Refused) else "internal"
            )
            self._child(self._refusals, name, code).inc()

    def batch(self, role: str) -> None:
        self._child(self._batches, role).inc()

    def delivered(self, changes: list[dict]) -> None:
        """These changes' batches went out now; each change that says when it was
        committed (``committed``, a Unix time) is measured."""
        self.changes_delivered.inc(len(changes))
        now = time.time()
        for c in changes:
            committed = c.get("committed")
            if committed is not None:
                # Clocks of other machines may be a little ahead.
                self.delivery.observe(max(0.0, now - committed))

    def read_back(self, reason: str, n: int) -> None:
        if n:
            self._child(self._read_back, reason).inc(n)

    # -- what is -------------------------------------------------------------------------
    def watch(self, store, hub, doors) -> ServerState:
        self.state = ServerState(store, hub, doors)
        self.registry.register(self.state)
        return self.state

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class ServerState(Collector):
    """Gauges read at each scrape: connections by role and centre, tickets waiting by
    centre (of the centres this process serves), the writer's queue, the database's and
    Redis's health (as /healthz says them), garbage collection pauses (``gc``: a
    gateway.collector.PauseRecorder, once installed)."""

    def __init__(self, store, hub, doors):
        self.store = store
        self.hub = hub
        self.doors = doors
        self.gc = None
        self._codes: dict[int, str] = {}  # centre codes last read, for when the store is down

    def describe(self):
        return list(self._families())

    def _families(self) -> list:
        return [
            GaugeMetricFamily(
                "motcua_connections",
                "Sockets connected to this process, by role (devices, staff pages, citizens' "
                "phones) and centre code.",
                labels=["role", "centre"],
            ),
            GaugeMetricFamily(
                "motcua_centres_followed",
                "Centres with a device or staff page connected to this process.",
            ),
            GaugeMetricFamily(
                "motcua_tickets_waiting",
                "Tickets waiting in all services of a centre today, for the centres this "
                "process follows (the same figure on every process following it).",
                labels=["centre"],
            ),
            GaugeMetricFamily(
                "motcua_writer_queue_length",
                "Operations waiting for the store's writer (not yet in a transaction).",
            ),
            GaugeMetricFamily(
                "motcua_database_up", "1 when the store answers a query, else 0 (/healthz)."
            ),
            GaugeMetricFamily(
                "motcua_redis_up",
                "1 when this process is subscribed to Redis, else 0 (/healthz); absent "
                "without Redis (one process).",
            ),
            CounterMetricFamily(
                "motcua_gc_collections",
                "Garbage collections by generation (timed ones: none switched greenlets).",
                labels=["generation"],
            ),
            CounterMetricFamily(
                "motcua_gc_pause_seconds",
                "Seconds the process was paused by garbage collections, by generation.",
                labels=["generation"],
            ),
            GaugeMetricFamily(
                "motcua_gc_pause_max_seconds",
                "The longest garbage collection pause since start, by generation.",
                labels=["generation"],
            ),
        ]

    def collect(self):
        (
            connections,
            followed_g,
            waiting_g,
            queue,
            database,
            redis,
            collections,
            paused,
            longest,
        ) = self._families()
        by_role: dict[tuple[str, int], int] = {}
        for door in self.doors:
            for client in list(door.clients.values()):
                key = (door.role_name, client.actor.centre_id)
                by_role[key] = by_role.get(key, 0) + 1
        followed = self.hub.following()
        up = self.store.ping()
        waiting = {}
        if up:
            centres = set(followed) | {centre_id for _, centre_id in by_role}
            try:
                waiting = self.store.read(
                    lambda conn: estimates.waiting_by_centre(conn, centres, models.utcnow())
                )
            except Exception as e:  # noqa: BLE001 - a scrape reports, never fails
                log.warning("cannot read the waiting counts for the metrics: %s", e)
            self._codes.update((centre_id, code) for centre_id, (code, _) in waiting.items())
        for (role, centre_id), n in sorted(by_role.items()):
            connections.add_metric([role, self._code(centre_id)], n)
        followed_g.add_metric([], len(followed))
        for centre_id in followed:
            if centre_id in waiting:
                waiting_g.add_metric([waiting[centre_id][0]], waiting[centre_id][1])
        queue.add_metric([], self.store.pending())
        database.add_metric([], 1 if up else 0)
        families = [connections, followed_g, waiting_g, queue, database]
        state = self.hub.transport_state()
        if state != "off":
            redis.add_metric([], 1 if state == "ok" else 0)
            families.append(redis)
        if self.gc is not None:
            for g in range(3):
                collections.add_metric([str(g)], self.gc.count[g])
                paused.add_metric([str(g)], self.gc.total_s[g])
                longest.add_metric([str(g)], self.gc.max_s[g])
            families += [collections, paused, longest]
        return families

    def _code(self, centre_id: int) -> str:
        return self._codes.get(centre_id) or str(centre_id)


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@access("address", "MOTCUA_METRICS_ALLOW")
def metrics():
    """The process's metrics in Prometheus's text format, for loopback and the addresses
    of MOTCUA_METRICS_ALLOW only, never through a proxy (403 with a JSON error else)."""
    found: Metrics = current_app.extensions["motcua"].metrics
    refusal = scrape_refusal(request.environ, found.networks)
    if refusal is not None:
        return error_response(refusal, request_lang())
    return Response(found.exposition(), mimetype=None, content_type=CONTENT_TYPE_LATEST)
