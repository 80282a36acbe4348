"""What the benchmarks share around the load: their server and store arguments, and the
environment they run in (temporary directory, store, provisioning file, server)."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
from pathlib import Path

from centre import Centre

from harness.process import ROOT, ServerProcess
from harness.services import DEFAULT_POSTGRES_URL, scratch_database


def store_arguments(g) -> None:
    """``--database-url`` and ``--postgres`` (a parser or an argument group)."""
    g.add_argument(
        "--database-url",
        help="store URL given to the server (default: a fresh "
        "SQLite file in a temporary directory). A PostgreSQL URL is used as is.",
    )
    g.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_POSTGRES_URL,
        metavar="ADMIN_URL",
        help="create a fresh PostgreSQL database through ADMIN_URL (default "
        f"{DEFAULT_POSTGRES_URL}), run against it, drop it afterwards",
    )


def common_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server and store")
    store_arguments(g)
    g.add_argument("--redis-url", help="also run the server with this Redis URL")
    g.add_argument(
        "--server-script",
        metavar="FILE",
        default=str(ROOT / "server.py"),
        help="run this instead of server.py (same arguments): for A/B experiments "
        "with a patched server, see docs/performance.md",
    )
    g.add_argument(
        "--event-rate",
        type=float,
        default=None,
        help="server's per-connection event rate (MOTCUA_EVENT_RATE; burst is twice "
        "it). Default: the server's own default unless the benchmark says otherwise",
    )
    g = p.add_argument_group("load generator")
    g.add_argument(
        "--client",
        choices=("raw", "socketio"),
        default="raw",
        help="raw: the lean built-in Socket.IO client (default); socketio: "
        "python-socketio AsyncClient over aiohttp",
    )
    g.add_argument(
        "--no-deflate",
        dest="deflate",
        action="store_false",
        help="do not offer permessage-deflate (browsers offer it, so by default the "
        "raw client does too and the server compresses every message per socket)",
    )
    g.add_argument("--seed", type=int, default=1, help="random seed for services and jitter")
    g = p.add_argument_group("output")
    g.add_argument(
        "--profile",
        metavar="FILE",
        help="attach py-spy to the server for the "
        "measured window and write collapsed stacks to FILE (perturbs the figures)",
    )
    g.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    g.add_argument("--keep", action="store_true", help="keep the temporary directory")


def check_store_args(args) -> str | None:
    """The error to print for contradictory store arguments, or None."""
    if args.database_url and args.postgres:
        return "give --database-url or --postgres, not both"
    return None


@contextlib.contextmanager
def scratch_store(args, tmp: Path):
    """The store URL to run on: a fresh PostgreSQL database with ``--postgres`` (dropped
    on exit), else ``--database-url`` as is, else a fresh SQLite file in ``tmp``."""
    if args.postgres:
        with scratch_database(args.postgres, "motcua_bench") as url:
            yield url
    else:
        yield args.database_url or f"sqlite:///{tmp / 'motcua.sqlite3'}"


@contextlib.contextmanager
def bench_environment(args, centre: Centre, gc_stats: bool = False):
    """Temp dir, store (fresh SQLite or PostgreSQL database), provisioning file, server.
    With ``gc_stats`` the server writes its collection pauses to ``MOTCUA_GC_STATS`` (a
    file in the temp dir, ``server.env``); ``args.gc_default`` (if any) turns its
    freezing off."""
    tmp = Path(tempfile.mkdtemp(prefix="motcua-bench-"))
    try:
        provision = tmp / "centre.toml"
        provision.write_text(centre.toml, encoding="utf-8")
        # Benchmarks drive a few device tokens far beyond a real device's budget of work
        # (docs/security.md): measured, not refused.
        env = {
            "MOTCUA_LOG_LEVEL": "WARNING",
            "MOTCUA_DEVICE_RATE": "1000000",
            "MOTCUA_DEVICE_BURST": "1000000",
        }
        if gc_stats:
            env["MOTCUA_GC_STATS"] = str(tmp / "gc-stats.txt")
        if getattr(args, "gc_default", False):
            env["MOTCUA_GC_FREEZE"] = "0"
        if getattr(args, "gc_sizes", False):
            env["MOTCUA_GC_SIZES"] = "1"
        if getattr(args, "gc_garbage", False):
            env["MOTCUA_GC_GARBAGE"] = "1"
        if args.event_rate is not None:
            env["MOTCUA_EVENT_RATE"] = str(args.event_rate)
            env["MOTCUA_EVENT_BURST"] = str(args.event_rate * 2)
        with scratch_store(args, tmp) as url:
            server = ServerProcess(
                tmp,
                url,
                args.redis_url,
                env=env,
                provision=provision,
                script=args.server_script,
            )
            try:
                # Provisioning hashes every clerk's password (scrypt): 100 clerks take ~45 s
                # on a busy 2-core machine.
                yield server.start(timeout=300)
            finally:
                server.stop()
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
