#!/usr/bin/env python3
"""motcua: the queue and kiosk server of a public administrative service centre.

    python server.py serve [--host H] [--port P] [--database-url URL] [--redis-url URL]
                           [--provision FILE] [--demo]
    python server.py provision FILE [--database-url URL]
    python server.py agent --config FILE

This file is the one place that knows every door: it builds the app, registers each
role's blueprint and Socket.IO namespace, and runs the server. Exit codes: 0 ok, 2 bad
arguments or an invalid provisioning file, 1 anything else.
"""

import sys

if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "serve":
    # gevent must patch the standard library before anything else imports it.
    from gevent import monkey

    monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
DEMO_FILE = HERE / "provisioning" / "demo.toml"
log = logging.getLogger("motcua")


def instance_path() -> Path:
    return Path(os.environ.get("MOTCUA_INSTANCE_PATH") or HERE / "instance")


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
        "RATING_WINDOW_S": int(env("MOTCUA_RATING_WINDOW_S", 600)),
        "PRINT_DEADLINE_S": float(env("MOTCUA_PRINT_DEADLINE_S", 20)),
        "EVENT_RATE": float(env("MOTCUA_EVENT_RATE", 20)),
        "EVENT_BURST": float(env("MOTCUA_EVENT_BURST", 40)),
        "CORS_ORIGINS": [o for o in env("MOTCUA_CORS_ORIGINS", "").split(",") if o],
        "TRUSTED_PROXIES": env("MOTCUA_TRUSTED_PROXIES"),
        "ASYNC_MODE": "gevent",
        # Frame each batch once and write it to idle websockets directly (gateway/frames.py).
        "DIRECT_FRAMES": env("MOTCUA_DIRECT_FRAMES", "1") != "0",
        "OFFLOAD": None,
    }


def create_app(overrides: dict | None = None):
    """Build the Flask app and its Socket.IO server; returns (app, socketio, context).

    Settings are :func:`default_config`'s, with ``overrides`` on top (tests pass theirs):
    DATABASE_URL, REDIS_URL (or None), SECRET_KEY, PUBLIC_URL (or None),
    RATING_WINDOW_S, PRINT_DEADLINE_S, EVENT_RATE, EVENT_BURST, OFFLOAD (run a blocking
    call in a thread), CORS_ORIGINS (browser origins allowed besides the server's own),
    TRUSTED_PROXIES (how many reverse proxies' X-Forwarded-* headers to believe),
    ASYNC_MODE, DIRECT_FRAMES.
    """
    from flask import Flask
    from flask_socketio import SocketIO

    import agent
    import counter
    import display
    import kiosk
    import rating_terminal
    from core.engine import QueueEngine
    from core.roles import ROLES
    from core.store import Store
    from gateway import api, guard, web
    from gateway.context import ServerContext
    from gateway.frames import FrameSender
    from gateway.hub import ChangeHub
    from gateway.transport import RedisTransport

    config = {**default_config(), **(overrides or {})}
    # No app-wide static folder: shared files are the web blueprint's (gateway/static).
    app = Flask(__name__, instance_path=str(instance_path()), static_folder=None)
    app.config.update(config)
    app.config["SECRET_KEY"] = config["SECRET_KEY"] or secret_key()
    app.json.ensure_ascii = False
    socketio = SocketIO(
        app,
        async_mode=config["ASYNC_MODE"],
        cors_allowed_origins=config["CORS_ORIGINS"] or None,
        manage_session=False,  # doors keep their own per-connection state
        # Only the role namespaces accept connections (the default one would accept any
        # client without credentials and hold whatever it sends).
        namespaces=[role.namespace for role in ROLES.values()],
        # Text packets only, no attachments, small messages (gateway/guard.py).
        **guard.socketio_options(),
    )
    # Bad packets, idle connections and logins bounded (gateway/guard.py, docs/security.md).
    guard.install(app, socketio.server)
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
    redis_url = config["REDIS_URL"]
    # The channel is named after the installation, known once the store is migrated.
    hub = ChangeHub(
        send,
        store,
        (lambda: RedisTransport(redis_url, store.installation_id())) if redis_url else None,
    )
    store.on_commit = hub.committed
    ctx = ServerContext(
        store=store,
        engine=QueueEngine(
            store,
            rating_window_s=int(config["RATING_WINDOW_S"]),
            print_deadline_s=float(config["PRINT_DEADLINE_S"]),
        ),
        hub=hub,
        public_url=config["PUBLIC_URL"],
        event_rate=float(config["EVENT_RATE"]),
        event_burst=float(config["EVENT_BURST"]),
        offload=offload,
    )
    app.extensions["motcua"] = ctx

    # Every door of the system: HTTP blueprints, then one Socket.IO namespace per role.
    app.register_blueprint(api.bp)
    web.init_app(app)
    app.register_blueprint(kiosk.bp)
    app.register_blueprint(counter.bp)
    app.register_blueprint(rating_terminal.bp)
    for door in (
        kiosk.KioskDoor,
        kiosk.TicketDoor,
        counter.CounterDoor,
        display.DisplayDoor,
        rating_terminal.RatingDoor,
        agent.AgentDoor,
    ):
        socketio.on_namespace(door(ctx))
    return app, socketio, ctx


def demo_banner(host: str, port: int) -> str:
    import tomllib

    data = tomllib.loads(DEMO_FILE.read_text(encoding="utf-8"))
    base = f"http://{host}:{port}"
    lines = [
        f"motcua demo centre: {data['centre']['name']}",
        f"  Server ........ {base}",
        f"  Health ........ {base}/healthz",
        f"  Login API ..... POST {base}/api/v1/auth/login",
        f"  Start page .... {base}/  (opens each device page)",
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
    return "\n".join(lines)


# The demo starts with clerks at these counters, so its kiosk offers open services (and
# shows the others closed) before anyone logs in.
DEMO_CLERKS = (("canbo1", 1), ("canbo2", 3))


def open_demo_counters(ctx) -> None:
    import sqlalchemy as sa

    from core import auth
    from core import models as m
    from core.engine import Actor

    for username, number in DEMO_CLERKS:

        def clerk_at(conn, username=username, number=number):
            st = conn.execute(sa.select(m.staff).where(m.staff.c.username == username)).one()
            return st, auth.counter_by_number(conn, st.centre_id, number)

        st, counter = ctx.store.read(clerk_at)
        ctx.engine.open_counter(
            Actor("staff", st.id, st.centre_id, st.role, counter.id, st.full_name)
        )


DEMO_PRINTED = "printed"  # in the instance folder: the demo kiosk's tickets, as PNG files


def start_demo_agent(host: str, port: int):
    """The demo's hardware agent, a process of its own as on a kiosk PC, printing the
    demo kiosk's tickets to PNG files in instance/printed/ (a virtual printer)."""
    import subprocess

    printed = instance_path() / DEMO_PRINTED
    config = instance_path() / "demo-agent.toml"
    server = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    config.write_text(
        f'server = "{server}"\n'
        'token = "demo-agent-sanh-00001"\n'
        f'[printers."Kiosk sảnh A"]\nurl = "png://{printed}"\n',
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


def cmd_serve(args) -> int:
    import gevent
    import gevent.event
    import gevent.queue

    from core import provisioning
    from core.provisioning import ProvisioningError
    from gateway import web

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
    app, socketio, ctx = create_app(overrides)
    ctx.store.migrate()
    for path in ([DEMO_FILE] if args.demo else []) + ([args.provision] if args.provision else []):
        try:
            for line in provisioning.provision(ctx.store, path):
                log.info("provision %s: %s", Path(path).name, line)
        except ProvisioningError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    ctx.store.start_writer(gevent.queue.Queue, gevent.spawn, gevent.event.Event)
    ctx.hub.start()
    demo_agent = None
    if args.demo:
        app.config["DEMO_DEVICES"] = web.demo_devices(DEMO_FILE)
        open_demo_counters(ctx)
        demo_agent = start_demo_agent(args.host, args.port)
        print(demo_banner(args.host, args.port), flush=True)
    log.info(
        "serving on http://%s:%s (database %s, redis %s)",
        args.host,
        args.port,
        ctx.store.engine.url.render_as_string(hide_password=True),
        app.config["REDIS_URL"] or "off",
    )
    try:
        serve_forever(app, args.host, args.port, access_log=args.access_log)
    finally:
        if demo_agent is not None:
            demo_agent.terminate()
            demo_agent.wait(timeout=10)
    return 0


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


def cmd_provision(args) -> int:
    from core import provisioning
    from core.provisioning import ProvisioningError
    from core.store import Store

    store = Store(args.database_url or default_database_url())
    store.migrate()
    try:
        for line in provisioning.provision(store, args.file):
            print(line)
    except ProvisioningError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="server.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=5000)
    s.add_argument("--database-url", help="default: MOTCUA_DATABASE_URL or SQLite in instance/")
    s.add_argument("--redis-url", help="share changes with other processes (MOTCUA_REDIS_URL)")
    s.add_argument("--provision", metavar="FILE", help="apply a provisioning file first")
    s.add_argument("--demo", action="store_true", help="provision and print the demo centre")
    s.add_argument("--access-log", action="store_true", help="log every HTTP request")
    s.set_defaults(func=cmd_serve)
    pr = sub.add_parser("provision", help="create or update a centre from a TOML file")
    pr.add_argument("file")
    pr.add_argument("--database-url")
    pr.set_defaults(func=cmd_provision)
    ag = sub.add_parser("agent", help="run the hardware agent (printers) on a device's PC")
    ag.add_argument("--config", required=True, metavar="FILE", help="the agent's TOML file")
    ag.set_defaults(func=cmd_agent)
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
