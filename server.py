#!/usr/bin/env python3
"""motcua: the queue and kiosk server of a public administrative service centre.

    python server.py serve [--host H] [--port P] [--database-url URL] [--redis-url URL]
                           [--provision FILE] [--demo]
    python server.py provision FILE [--database-url URL] [--dry-run | --force]
    python server.py agent --config FILE
    python server.py deploy-config --out DIR [--processes N] [--server-name NAME] ...

This file is the one place that knows every door: it builds the app, registers each
role's blueprint and Socket.IO namespace, and runs the server. Exit codes: 0 ok, 2 bad
arguments or an invalid provisioning file, 3 a file that would overwrite changes made
through the admin pages or API (not applied: see --dry-run, --force), 1 anything else.
"""

import sys

if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "serve":
    # gevent must patch the standard library before anything else imports it.
    import gevent
    from gevent import monkey

    monkey.patch_all()
    # No spawning stack, parent or tree locals kept on every greenlet (one per
    # connection and per event): they cost a dozen objects each, which outlive their
    # connection in a cycle (gateway/collector.py). Nothing here reads them.
    gevent.config.track_greenlet_tree = False

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
# Every role folder: each brings its pages and doors as one bundle (gateway/bundle.py).
ROLE_FOLDERS = (
    "kiosk",
    "counter",
    "display",
    "rating_terminal",
    "agent_door",
    "manage",
    "booking",
    "admin",
)
DEMO_FILE = HERE / "provisioning" / "demo.toml"
# `--demo province`: demo.toml as the provincial centre, and a dozen commune offices.
DEMO_PROVINCE_FILE = HERE / "provisioning" / "an-giang" / "province.toml"
DEMO_CENTRE = "KG"  # demo.toml's centre
log = logging.getLogger("motcua")


def instance_path() -> Path:
    return Path(os.environ.get("MOTCUA_INSTANCE_PATH") or HERE / "instance")


def private_folder(path: Path) -> Path:
    """``path`` created if missing and made 0700, however it came to exist (``make`` builds
    the voice pack inside it first, with the default umask): it holds the secret key, the
    database and the demo agent's token."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def default_database_url() -> str:
    return (
        os.environ.get("MOTCUA_DATABASE_URL") or f"sqlite:///{instance_path() / 'motcua.sqlite3'}"
    )


def secret_key() -> str:
    """MOTCUA_SECRET_KEY, or one generated once into the instance folder."""
    if os.environ.get("MOTCUA_SECRET_KEY"):
        return os.environ["MOTCUA_SECRET_KEY"]
    path = instance_path() / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def default_config() -> dict:
    """Settings from the environment (MOTCUA_*), with the embedded defaults."""
    env = os.environ.get
    return {
        "DATABASE_URL": default_database_url(),
        "REDIS_URL": env("MOTCUA_REDIS_URL") or None,
        "SECRET_KEY": None,  # read or generated in the instance folder when needed
        "PUBLIC_URL": env("MOTCUA_PUBLIC_URL"),
        # How often each process checks that its clerks' sockets' sessions still hold.
        "SESSION_CHECK_S": float(env("MOTCUA_SESSION_CHECK_S", 5)),
        # How often each process renews its devices' presence (core/presence.py); a device
        # not renewed for three of these is offline.
        "PRESENCE_S": float(env("MOTCUA_PRESENCE_S", 15)),
        "RATING_WINDOW_S": int(env("MOTCUA_RATING_WINDOW_S", 600)),
        "PRINT_DEADLINE_S": float(env("MOTCUA_PRINT_DEADLINE_S", 20)),
        # How long after a call a clerk may mark the citizen absent (core/lifecycle.py).
        "NO_SHOW_AFTER_S": float(env("MOTCUA_NO_SHOW_AFTER_S", 60)),
        "EVENT_RATE": float(env("MOTCUA_EVENT_RATE", 20)),
        "EVENT_BURST": float(env("MOTCUA_EVENT_BURST", 40)),
        "CORS_ORIGINS": [o for o in env("MOTCUA_CORS_ORIGINS", "").split(",") if o],
        # Host names the server answers to besides IP addresses, localhost and PUBLIC_URL's
        # (gateway/perimeter.py); "*" for any.
        "ALLOWED_HOSTS": [h for h in env("MOTCUA_ALLOWED_HOSTS", "").split(",") if h.strip()],
        "TRUSTED_PROXIES": env("MOTCUA_TRUSTED_PROXIES"),
        "ASYNC_MODE": "gevent",
        # Frame each batch once and write it to idle websockets directly (gateway/frames.py).
        "DIRECT_FRAMES": env("MOTCUA_DIRECT_FRAMES", "1") != "0",
        "OFFLOAD": None,
        # The voice pack announcements are assembled from (docs/voice.md); default
        # instance/voice/vi beside this file, generated by `make`.
        "VOICE_PACK": env("MOTCUA_VOICE_PACK") or None,
        # Addresses or networks besides loopback that may read /metrics (gateway/metrics.py).
        "METRICS_ALLOW": env("MOTCUA_METRICS_ALLOW", ""),
    }


def create_app(overrides: dict | None = None):
    """Build the Flask app and its Socket.IO server; returns (app, socketio, context).

    Settings are :func:`default_config`'s, with ``overrides`` on top (tests pass theirs):
    DATABASE_URL, REDIS_URL (or None), SECRET_KEY, PUBLIC_URL (or None),
    RATING_WINDOW_S, PRINT_DEADLINE_S, NO_SHOW_AFTER_S, EVENT_RATE, EVENT_BURST,
    OFFLOAD (run a blocking call in a thread), CORS_ORIGINS (browser origins allowed
    besides the server's own), TRUSTED_PROXIES (how many reverse proxies' X-Forwarded-*
    headers to believe), ALLOWED_HOSTS (host names answered besides IP addresses,
    localhost and PUBLIC_URL's), SESSION_CHECK_S, PRESENCE_S, ASYNC_MODE, DIRECT_FRAMES,
    VOICE_PACK, METRICS_ALLOW (who may read /metrics besides loopback).
    """
    import importlib

    from flask_socketio import SocketIO

    from core.engine import QueueEngine
    from core.roles import ROLES
    from core.store import Store
    from gateway import (
        api,
        dossier_api,
        guard,
        limits,
        metrics,
        perimeter,
        presence,
        sessions,
        web,
    )
    from gateway.context import ServerContext
    from gateway.frames import FrameSender
    from gateway.hub import ChangeHub
    from gateway.rooms import IndexedManager
    from gateway.transport import RedisTransport

    config = {**default_config(), **(overrides or {})}
    # This process's metrics (GET /metrics); a wrong MOTCUA_METRICS_ALLOW stops it here.
    counted = metrics.Metrics(metrics.allowed_networks(config["METRICS_ALLOW"]))
    private_folder(instance_path())
    # No app-wide static folder: shared files are the web blueprint's (gateway/static).
    app = perimeter.App(__name__, instance_path=str(instance_path()), static_folder=None)
    app.config.update(config)
    app.config["SECRET_KEY"] = config["SECRET_KEY"] or secret_key()
    socketio = SocketIO(
        app,
        async_mode=config["ASYNC_MODE"],
        cors_allowed_origins=config["CORS_ORIGINS"] or None,
        manage_session=False,  # doors keep their own per-connection state
        # Only the role namespaces accept connections (the default one would accept any
        # client without credentials and hold whatever it sends).
        namespaces=[role.namespace for role in ROLES.values()],
        # Disconnects that cost the client's own rooms, not the namespace's (gateway/rooms.py).
        client_manager=IndexedManager(),
        # Text packets only, no attachments, small messages (gateway/guard.py).
        **guard.socketio_options(config),
    )
    # Every request, Socket.IO's included: the Host check and the security headers; one
    # limit on bodies (gateway/perimeter.py); bounded error lines.
    max_body = guard.settings(config)["MAX_BODY_BYTES"]
    app.wsgi_app = perimeter.Perimeter(
        app.wsgi_app, perimeter.allowed_hosts(config), guard.BoundedLog(app.logger), max_body
    )
    app.config["MAX_CONTENT_LENGTH"] = max_body
    app.json = perimeter.JSONProvider(app)
    app.log_exception = guard.bounded_exception_log(app)
    if config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    if config["DIRECT_FRAMES"]:
        send = FrameSender(socketio.server)
    else:

        def send(namespace, room, batch):
            socketio.emit("changes", batch, namespace=namespace, to=room)

    offload = config["OFFLOAD"]
    store = Store(config["DATABASE_URL"], offload=offload)
    store.observe = counted.operation
    # Bad packets, idle connections and logins bounded (gateway/guard.py, docs/security.md);
    # the limits in Redis when there is one, shared by the processes (gateway/limits.py).
    entries = guard.settings(config)["LOGIN_THROTTLE_ENTRIES"]
    guard.install(app, socketio.server, limits.counts_for(config, store.installation_id, entries))
    counts = limits.counts_for(config, store.installation_id, entries)
    redis_url = config["REDIS_URL"]
    # The channel is named after the installation, known once the store is migrated.
    hub = ChangeHub(
        send,
        store,
        (lambda: RedisTransport(redis_url, store.installation_id())) if redis_url else None,
        metrics=counted,
    )
    store.on_commit = hub.committed
    ctx = ServerContext(
        store=store,
        engine=QueueEngine(
            store,
            rating_window_s=int(config["RATING_WINDOW_S"]),
            print_deadline_s=float(config["PRINT_DEADLINE_S"]),
            no_show_after_s=float(config["NO_SHOW_AFTER_S"]),
        ),
        hub=hub,
        public_url=config["PUBLIC_URL"],
        event_rate=float(config["EVENT_RATE"]),
        event_burst=float(config["EVENT_BURST"]),
        offload=offload,
        secret_key=app.config["SECRET_KEY"],
        limits=counts,
        budget=limits.Budget(counts, *guard.budget_settings(app.config)),
        metrics=counted,
    )
    app.extensions["motcua"] = ctx

    # Every door of the system: the shared HTTP blueprints, then each role folder's pages
    # and its Socket.IO namespaces.
    app.register_blueprint(api.bp)
    app.register_blueprint(dossier_api.bp)
    app.register_blueprint(metrics.bp)
    web.init_app(app)
    pages = {}
    doors = []
    for name in ROLE_FOLDERS:
        bundle = importlib.import_module(name).bundle
        if bundle.blueprint is not None:
            app.register_blueprint(bundle.blueprint)
        for door_class in bundle.doors:
            door = door_class(ctx)
            socketio.on_namespace(door)
            doors.append(door)
        pages.update(bundle.pages)
    app.extensions["motcua.pages"] = pages
    # Sockets closed when their credential ends (gateway/sessions.py): a logout, an ended
    # or expired session, a revoked device; at once in every process after such a change.
    watch = sessions.SessionWatch(socketio, store, doors, float(config["SESSION_CHECK_S"]))
    app.extensions["motcua.sessions"] = watch
    hub.listeners.append(watch.changed)
    # Devices' presence renewed in the store, for the monitor (gateway/presence.py).
    ctx.presence_s = float(config["PRESENCE_S"])
    ctx.presence = presence.PresenceLoop(socketio, store, hub, doors, ctx.presence_s)
    # What is read at each scrape: connections, queues, health (gateway/metrics.py).
    counted.watch(store, hub, doors)
    return app, socketio, ctx


def demo_banner(host: str, port: int, province: bool = False) -> str:
    import tomllib

    data = tomllib.loads(DEMO_FILE.read_text(encoding="utf-8"))
    base = f"http://{host}:{port}"
    lines = [
        f"motcua demo centre: {data['centre']['name']}",
        f"  Server ........ {base}",
        f"  Health ........ {base}/healthz",
        f"  Login API ..... POST {base}/api/v1/auth/login",
        f"  Start page .... {base}/  (opens each device page)",
        f"  Book a time ... {base}/hen/  (a citizen's phone; messages go to this log)",
        f"  Admin pages ... {base}/admin/  (log in as the admin below; audit: /admin/audit)",
        f"  Printed tickets {instance_path() / DEMO_PRINTED}/  (PNG files: the demo printer)",
        "  Devices connect over Socket.IO (docs/protocol.md) with these credentials:",
    ]
    for st in data.get("staff", []):
        lines.append(
            f"  Staff  {st['username']:<10} password {st['password']:<14} {st['role']}, "
            f"counters {st.get('counters') or 'any'}"
        )
    for d in data.get("devices", []):
        where = f" (counter {d['counter']})" if "counter" in d else ""
        lines.append(f"  Device {d['kind']:<8} token {d['token']}  {d['name']}{where}")
    if province:
        lines += province_banner(base)
    return "\n".join(lines)


def province_banner(base: str) -> list[str]:
    """The demo province's part of the banner: the province admin, the overview, and
    each commune office with its manager's login."""
    from core import province

    batch = province.load(DEMO_PROVINCE_FILE)
    p = batch.province
    admins = [
        st
        for data in batch.centres
        for st in data.get("staff", [])
        if st["role"] == "installation_admin"
    ]
    lines = [
        f"motcua demo province: {p['name']} ({len(batch.centres)} centres, one installation)",
        f"  Province view . {base}/manage/province  (every centre's figures today)",
    ]
    for st in admins:
        lines.append(
            f"  Province admin  {st['username']:<10} password {st['password']:<14} "
            "installation_admin: every centre's monitor, reports and admin pages"
        )
    for data in batch.centres:
        if data["centre"]["code"] == DEMO_CENTRE:
            continue
        managers = [s for s in data.get("staff", []) if s["role"] == "manager"]
        who = ", ".join(f"{s['username']} / {s['password']}" for s in managers if "password" in s)
        lines.append(f"  {data['centre']['code']:<6} {data['centre']['name']}  (manager {who})")
    return lines


# The demo starts with clerks at these counters, so its kiosk offers open services (and
# shows the others closed) before anyone logs in.
DEMO_CLERKS = (("canbo1", 1), ("canbo2", 3))


def open_demo_counters(ctx) -> None:
    from core import auth
    from core.engine import Actor

    for username, number in DEMO_CLERKS:

        def clerk_at(conn, username=username, number=number):
            principal = auth.principal_for_username(conn, username)
            return principal, *auth.take_counter(conn, principal, number)

        ctx.engine.open_counter(Actor.staff(*ctx.store.read(clerk_at)))


DEMO_PRINTED = "printed"  # in the instance folder: the demo kiosk's tickets, as PNG files
DEMO_KEYPAD = "keypad"  # in the instance folder: where the demo agent looks for a keypad


def start_demo_agent(host: str, port: int):
    """The demo's hardware agent, a process of its own as on a kiosk PC, printing the
    demo kiosk's tickets to PNG files in instance/printed/ (a virtual printer) and
    reading a line keypad at instance/keypad (a pty: hardware.keypad --simulate)."""
    import subprocess

    printed = instance_path() / DEMO_PRINTED
    config = instance_path() / "demo-agent.toml"
    server = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    # The file holds the agent's token: readable by its owner only.
    os.close(os.open(config, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(config, 0o600)
    config.write_text(
        f'server = "{server}"\n'
        'token = "demo-agent-sanh-00001"\n'
        f'[printers."Kiosk sảnh A"]\nurl = "png://{printed}"\n'
        # A call keypad for a pty made by `python -m hardware.keypad --simulate` (docs/
        # hardware.md); the agent waits for it to appear.
        f'[[keypads]]\nurl = "{instance_path() / DEMO_KEYPAD}"\nprotocol = "line"\n',
        encoding="utf-8",
    )
    return subprocess.Popen(
        [sys.executable, str(HERE / "server.py"), "agent", "--config", str(config)],
        preexec_fn=_die_with_parent,
    )


def _die_with_parent() -> None:
    """In a child process: be sent SIGTERM when the parent dies, even by SIGKILL (Linux),
    so the demo's agent never outlives its server."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _captured(fn, *args):
    try:
        return True, fn(*args)
    except BaseException as e:  # noqa: BLE001 - handed back to the calling greenlet
        return False, e


def erase_phone_numbers(store, sleep, every_s: float = 600) -> None:
    """Bookings' phone numbers are kept until their day ends (core/appointments.py): every
    ten minutes, erase those whose day has ended (any process may; it is idempotent)."""
    from core import appointments, models

    while True:
        try:
            erased = appointments.purge_phones(store, models.utcnow())
            if erased:
                log.info("erased the phone numbers of %d past appointments", erased)
        except Exception as e:  # noqa: BLE001 - try again next time
            log.warning("cannot erase past appointments' phone numbers: %s", e)
        sleep(every_s)


def cmd_serve(args) -> int:
    import gevent
    import gevent.event
    import gevent.queue

    from core.provisioning import ProvisioningError
    from gateway import collector, notify, web

    def offload(fn, *a):
        """Run a blocking call in gevent's thread pool; its exception is raised here, in
        the caller, rather than printed by the pool as an unhandled error."""
        ok, value = gevent.get_hub().threadpool.apply(_captured, (fn, *a))
        if ok:
            return value
        raise value

    overrides = {"OFFLOAD": offload}
    if args.database_url:
        overrides["DATABASE_URL"] = args.database_url
    if args.redis_url:
        overrides["REDIS_URL"] = args.redis_url
    problem = port_problem(args.host, args.port)
    if problem:
        print(f"error: {problem}", file=sys.stderr, flush=True)
        return 1
    app, socketio, ctx = create_app(overrides)
    warn_without_voice_pack(app.config["VOICE_PACK"])
    ctx.store.migrate()
    demo_files = {"centre": [DEMO_FILE], "province": [DEMO_PROVINCE_FILE]}.get(args.demo, [])
    for path in demo_files + ([args.provision] if args.provision else []):
        try:
            applied = provision_file(
                ctx.store,
                path,
                app.config["SECRET_KEY"],
                serving=True,
                say=lambda line, name=Path(path).name: log.info("provision %s: %s", name, line),
            )
        except ProvisioningError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if not applied:
            continue
    if args.demo:  # a past month, for the reports and the staffing advice (once)
        from core import demo_history

        written = demo_history.seed_past(ctx.store, DEMO_CENTRE)
        if written:
            log.info("demo: wrote %d tickets of the past month", written)
    ctx.store.start_writer(gevent.queue.Queue, gevent.spawn, gevent.event.Event)
    ctx.hub.start()
    app.extensions["motcua.sessions"].start()
    ctx.presence.start()
    # Collections timed, start-up's objects and each burst's connections frozen, so no
    # full collection stalls every connection (gateway/collector.py).
    ctx.metrics.state.gc = collector.install(
        lambda: len(socketio.server.eio.sockets), gevent.spawn, gevent.sleep
    )
    gevent.spawn(erase_phone_numbers, ctx.store, gevent.sleep)
    # Messages to citizens (SMS, Zalo): the outbox's sender (gateway/notify.py).
    gevent.spawn(
        notify.run,
        ctx.store,
        notify.notifiers_from_env(demo=bool(args.demo)),
        ctx.public_url or "",
        gevent.sleep,
        float(os.environ.get("MOTCUA_NOTIFY_EVERY_S", 2)),
    )
    demo_agent = None
    if args.demo:
        app.config["DEMO_DEVICES"] = web.demo_devices(DEMO_FILE, app.extensions["motcua.pages"])
        open_demo_counters(ctx)
        demo_agent = start_demo_agent(args.host, args.port)
        print(demo_banner(args.host, args.port, args.demo == "province"), flush=True)
    open_files = raise_open_files_limit()
    log.info(
        "serving on http://%s:%s (database %s, redis %s, %d open files)",
        args.host,
        args.port,
        ctx.store.engine.url.render_as_string(hide_password=True),
        app.config["REDIS_URL"] or "off",
        open_files,
    )
    if open_files < FEW_OPEN_FILES:
        log.warning(
            "only %d open files: each device's websocket takes one, so this process cannot "
            "hold more devices than that (LimitNOFILE, docs/deployment.md)",
            open_files,
        )
    try:
        serve_forever(app, args.host, args.port, access_log=args.access_log)
    except OSError as e:  # the port was taken between the check and now
        print(f"error: {port_problem(args.host, args.port, e)}", file=sys.stderr, flush=True)
        return 1
    finally:
        if demo_agent is not None:
            stop_child(demo_agent)
    return 0


def warn_without_voice_pack(configured: str | None) -> None:
    """Say at start, not at the first call, that boards will announce nothing."""
    from display import voicepack

    pack = Path(configured or voicepack.DEFAULT_PACK)
    if not pack.is_dir() or not any(pack.glob("*.wav")):
        log.warning(
            "voice pack %s is missing: display boards will announce nothing. Generate it: "
            "python -m display.voicepack build %s --voice vi (and MOTCUA_VOICE_PACK=%s; "
            "docs/deployment.md)",
            pack,
            pack,
            pack,
        )


def port_problem(host: str, port: int, error: OSError | None = None) -> str | None:
    """Why the server cannot listen on ``host:port``, saying what to do; None if it can.
    Bound as gevent binds (SO_REUSEADDR), then released."""
    import errno
    import socket

    if error is None:
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, port))
                s.listen()
            return None
        except OSError as e:
            error = e
    where = f"{host}:{port}"
    other = 5057 if port != 5057 else 5058
    if error.errno == errno.EADDRINUSE:
        return (
            f"port {port} is already in use on {host} (another motcua, or another program, "
            f"listens there: `ss -ltnp 'sport = :{port}'` names it). Stop it, or choose "
            f"another port: make run PORT={other}, or server.py serve --port {other}."
        )
    if error.errno == errno.EACCES:
        return (
            f"not allowed to listen on {where}: ports below 1024 need privileges. Use a port "
            f"above 1023 (make run PORT={other}) behind a reverse proxy (docs/deployment.md)."
        )
    if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine: use one of its own, or 0.0.0.0."
    return f"cannot listen on {where}: {error.strerror or error}"


def stop_child(proc, grace_s: float = 3.0) -> None:
    """SIGTERM a child process (the demo's agent), SIGKILL if it is still there after
    ``grace_s``; it stops within a second on SIGTERM, so this is for a broken one."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log.warning("the demo's agent did not stop on SIGTERM within %ss; killed", grace_s)
        proc.kill()
        proc.wait()


# Below this many open files a process holds too few devices for a centre's hall.
FEW_OPEN_FILES = 4096


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit and return it: a
    device's websocket is a file, and systemd gives services a soft limit of 1,024 (the
    unit asks for more: deploy/templates/motcua@.service.j2)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def serve_forever(app, host: str, port: int, access_log: bool = False) -> None:
    """gevent's WSGI server, guarded; SIGTERM and SIGINT stop it after current requests."""
    import signal
    import socket

    import gevent

    from gateway import guard

    class Handler(guard.GuardedHandler):
        def handle(self):
            # Events are small writes in quick succession (an event, then an ack): with
            # Nagle's algorithm each second write waits for the peer's delayed ACK (~40 ms).
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().handle()

        def run_application(self):
            # Device messages are small JSON on a LAN: compressing each frame separately
            # for every socket cost a third of the server's CPU in the fan-out benchmark.
            self.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
            super().run_application()
            # A finished websocket must not be read again as a keep-alive HTTP request.
            if self.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
                self.close_connection = True

    # Header deadline, connections per address (gateway/guard.py).
    server = guard.wsgi_server(
        app, host, port, handler_class=Handler, log="default" if access_log else None
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, server.stop, 2)
    server.serve_forever()


def digest_key(secret: str) -> bytes:
    """The key of the provisioning files' digests (core/provisioning.py file_digest): from
    the server's secret key, which the database does not hold."""
    import hashlib

    return hashlib.sha256(b"motcua provisioned digest\0" + secret.encode()).digest()


def native_thread_map(fn, items):
    """``[fn(x) for x in items]`` on native threads, one a core, from a gevent server
    (monkey-patched threads would run scrypt one after another on the event loop)."""
    from gevent.threadpool import ThreadPool

    pool = ThreadPool(min(len(items), os.cpu_count() or 1) or 1)
    try:
        return list(pool.imap(fn, items))
    finally:
        pool.kill()


def provision_file(
    store,
    path,
    secret: str,
    serving: bool = False,
    dry_run: bool = False,
    force: bool = False,
    say=print,
    warn=None,
) -> bool:
    """Apply a centre or province file (core/province.py): read and check every file,
    prepare the passwords on every core, plan everything in a transaction rolled back,
    then write each centre. False when nothing was written: a dry run, or a file that
    would overwrite the admin API's changes (said through ``warn``; raised as
    :class:`Overwrites` by the command line)."""
    import time

    from core import province

    started = time.monotonic()
    name = Path(path).name
    key = digest_key(secret)
    batch = province.load(path)
    mapper = native_thread_map if serving else None
    passwords = province.prepare_passwords(store, batch, key, mapper)
    done = province.apply(store, batch, key, write=not dry_run, force=force)
    if dry_run:
        say("Thử, chưa ghi gì (dry run, nothing written):")
        for line in done.lines or ["Không có thay đổi (no changes)."]:
            say(line)
        if done.overwritten:
            say(f"\n{OVERWRITES}")
            for line in done.overwritten:
                say(line)
        return False
    if not done.written:
        if serving:
            # A file applied at every start must not undo the admin pages' changes: it is
            # left unapplied, saying why (`server.py provision FILE --force` applies it).
            log.error("provision %s: not applied: %s", name, OVERWRITES)
            for line in done.overwritten:
                log.error("provision %s: %s", name, line)
            log.error("provision %s: %s", name, NOT_APPLIED)
            return False
        raise Overwrites(done.overwritten)
    for line in done.lines or ["Không có thay đổi (no changes)."]:
        say(line)
    if batch.is_province:
        say(province.totals(batch, done.changed, passwords, time.monotonic() - started))
    return True


class Overwrites(Exception):
    def __init__(self, lines):
        super().__init__("overwrites")
        self.lines = lines


def cmd_provision(args) -> int:
    from core.provisioning import ProvisioningError
    from core.store import Store

    store = Store(args.database_url or default_database_url())
    store.migrate()
    try:
        # The admin pages and API edit the same data: a file applied after them would
        # undo their changes, so it says which first (docs/admin.md).
        provision_file(
            store,
            args.file,
            os.environ.get("MOTCUA_SECRET_KEY") or secret_key(),
            dry_run=args.dry_run,
            force=args.force,
            say=lambda line: print(line, flush=True),
        )
    except Overwrites as e:
        print(f"error: {OVERWRITES}", file=sys.stderr)
        for line in e.lines:
            print(line, file=sys.stderr)
        print(NOT_APPLIED, file=sys.stderr)
        return 3
    except ProvisioningError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


OVERWRITES = (
    "tệp này sẽ ghi đè những thay đổi đã làm qua trang quản trị / API kể từ lần áp dụng tệp "
    "trước (this file would overwrite changes made through the admin pages or API since "
    "the last file was applied):"
)
NOT_APPLIED = (
    "Chưa áp dụng gì. Lấy cấu hình hiện tại (GET /api/v1/admin/export) để gộp vào tệp, hoặc "
    "chạy lại với --force để ghi đè. (Nothing applied. Merge the current configuration, "
    "from the export, into the file, or run again with --force to overwrite.)"
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="server.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=5000)
    s.add_argument("--database-url", help="default: MOTCUA_DATABASE_URL or SQLite in instance/")
    s.add_argument("--redis-url", help="share changes with other processes (MOTCUA_REDIS_URL)")
    s.add_argument("--provision", metavar="FILE", help="apply a provisioning file first")
    s.add_argument(
        "--demo",
        nargs="?",
        const="centre",
        choices=("centre", "province"),
        help="provision and print the demo centre (--demo), or the demo province: its "
        "provincial centre and a dozen commune offices (--demo province)",
    )
    s.add_argument("--access-log", action="store_true", help="log every HTTP request")
    s.set_defaults(func=cmd_serve)
    pr = sub.add_parser("provision", help="create or update a centre from a TOML file")
    pr.add_argument("file")
    pr.add_argument("--database-url")
    how = pr.add_mutually_exclusive_group()
    how.add_argument(
        "--dry-run", action="store_true", help="print what would change, write nothing"
    )
    how.add_argument(
        "--force",
        action="store_true",
        help="apply even where it overwrites changes made through the admin pages or API",
    )
    pr.set_defaults(func=cmd_provision)
    ag = sub.add_parser("agent", help="run the hardware agent (printers) on a device's PC")
    ag.add_argument("--config", required=True, metavar="FILE", help="the agent's TOML file")
    ag.set_defaults(func=cmd_agent)
    dc = sub.add_parser(
        "deploy-config",
        help="write the systemd units, settings, nginx site and backup scripts of N "
        "processes behind nginx (docs/deployment.md)",
    )
    from deploy import config as deploy_config

    deploy_config.add_arguments(dc)
    dc.set_defaults(func=deploy_config.main)
    return p


def cmd_agent(args) -> int:
    """The hardware agent (hardware/agent.py): a separate process, a client of a server."""
    from hardware import agent

    return agent.main(args.config)


def main(argv=None) -> int:
    logging.basicConfig(
        level=os.environ.get("MOTCUA_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 0
    except Exception:
        log.exception("motcua stopped on an error")
        return 1


if __name__ == "__main__":
    sys.exit(main())
