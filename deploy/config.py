"""``server.py deploy-config``: the configuration files of an installation of N server
processes behind nginx, sharing PostgreSQL and Redis (docs/deployment.md section 3).

Each file is a Jinja2 template in ``deploy/templates/`` rendered with the options; the
output folder gets one file per template, named as where it goes (``FILES``). Bad options
are refused with a message that says which and why (``server.py`` exits with code 2).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"

# Output file: (where it is installed, its mode in the output folder).
FILES = {
    "motcua@.service": ("/etc/systemd/system/motcua@.service", 0o644),
    "motcua.env": ("/etc/motcua/motcua.env", 0o600),
    "nginx-motcua.conf": ("/etc/nginx/sites-available/motcua", 0o644),
    "nginx-motcua-main.conf": ("/etc/nginx/modules-enabled/90-motcua.conf", 0o644),
    "motcua-backup": ("/usr/local/sbin/motcua-backup", 0o755),
    "motcua-restore": ("/usr/local/sbin/motcua-restore", 0o755),
    "motcua-backup.service": ("/etc/systemd/system/motcua-backup.service", 0o644),
    "motcua-backup.timer": ("/etc/systemd/system/motcua-backup.timer", 0o644),
}

LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_NAME = re.compile(rf"^{LABEL}(\.{LABEL})*$")
USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
LISTEN = re.compile(r"^(?:(?P<addr>[0-9.]+|\[[0-9a-fA-F:]+\]):)?(?P<port>[0-9]{1,5})$")
TIME_OF_DAY = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class ConfigError(ValueError):
    """An option that cannot make a working installation; the message says why."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the files into")
    p.add_argument("--processes", type=int, default=2, help="server processes (default 2)")
    p.add_argument("--first-port", type=int, default=5001, help="the first one's port (5001)")
    p.add_argument("--server-name", default="motcua.lan", help="the public host name")
    p.add_argument("--tls-cert", default="/etc/ssl/motcua/fullchain.pem", metavar="PATH")
    p.add_argument("--tls-key", default="/etc/ssl/motcua/privkey.pem", metavar="PATH")
    p.add_argument("--listen", default="443", help="nginx's TLS listen: PORT or ADDRESS:PORT")
    p.add_argument(
        "--http-listen",
        default="80",
        help="plain HTTP that redirects to TLS: PORT or ADDRESS:PORT, or 'off'",
    )
    p.add_argument(
        "--database-url",
        default="postgresql://motcua@/motcua",
        help="PostgreSQL; the default is the local socket with peer authentication",
    )
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--public-url", help="default: https://SERVER-NAME (with --listen's port)")
    p.add_argument("--user", default="motcua", help="the system user the processes run as")
    p.add_argument("--install-dir", default="/opt/motcua", metavar="DIR")
    p.add_argument("--instance-dir", default="/var/lib/motcua", metavar="DIR")
    p.add_argument("--python", metavar="PATH", help="default: INSTALL-DIR/.venv/bin/python")
    p.add_argument("--backup-dir", default="/var/backups/motcua", metavar="DIR")
    p.add_argument("--backup-at", default="21:00", help="daily backup time, HH:MM (21:00)")
    p.add_argument(
        "--reload-grace",
        type=int,
        default=10,
        metavar="S",
        help="seconds nginx's old workers keep devices after a reload (10)",
    )
    p.add_argument(
        "--secret-key",
        help="default: the one in OUT/motcua.env if there is one, else a new random key",
    )


def settings(args: argparse.Namespace) -> dict:
    """The templates' values from the options; raises ConfigError on a bad one."""
    if not 1 <= args.processes <= 64:
        raise ConfigError(f"--processes must be 1 to 64, not {args.processes}")
    last_port = args.first_port + args.processes - 1
    if not 1024 <= args.first_port or last_port > 65535:
        raise ConfigError(
            f"--first-port {args.first_port} with {args.processes} processes needs ports "
            f"{args.first_port}..{last_port}: they must lie within 1024..65535"
        )
    if not HOST_NAME.match(args.server_name):
        raise ConfigError(f"--server-name {args.server_name!r} is not a host name")
    listen = _listen("--listen", args.listen)
    http_listen = None if args.http_listen == "off" else _listen("--http-listen", args.http_listen)
    if http_listen and http_listen == listen:
        raise ConfigError("--http-listen and --listen must differ")
    for option, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        _absolute(option, path)
    if not re.match(r"^postgres(ql)?://", args.database_url):
        raise ConfigError(
            "--database-url must be a postgresql:// URL: several processes share one "
            "PostgreSQL database (SQLite serves one process: docs/deployment.md section 2)"
        )
    if not re.match(r"^(rediss?|unix)://", args.redis_url):
        raise ConfigError("--redis-url must be a redis://, rediss:// or unix:// URL")
    if not USER_NAME.match(args.user) or args.user == "root":
        raise ConfigError(f"--user {args.user!r}: a system user's name, not root")
    for option in ("install_dir", "instance_dir", "backup_dir"):
        _absolute("--" + option.replace("_", "-"), getattr(args, option))
    if args.python:
        _absolute("--python", args.python)
    if args.secret_key is not None and not re.match(r"^[!-~]{32,}$", args.secret_key):
        raise ConfigError("--secret-key must be at least 32 printable characters, no spaces")
    if not 1 <= args.reload_grace <= 3600:
        raise ConfigError(f"--reload-grace must be 1 to 3600 seconds, not {args.reload_grace}")
    if not TIME_OF_DAY.match(args.backup_at):
        raise ConfigError(f"--backup-at {args.backup_at!r} is not a time HH:MM")
    port = int(LISTEN.match(listen).group("port"))
    suffix = "" if port == 443 else f":{port}"
    public_url = args.public_url or f"https://{args.server_name}{suffix}"
    if not re.match(r"^https?://[^/\s]+$", public_url):
        raise ConfigError(f"--public-url {public_url!r}: a base URL such as https://host")
    for name, value in (("--database-url", args.database_url), ("--redis-url", args.redis_url)):
        if any(c.isspace() for c in value):
            raise ConfigError(f"{name} must not contain spaces")
    ports = list(range(args.first_port, last_port + 1))
    return {
        "processes": args.processes,
        "ports": ports,
        "units": " ".join(f"motcua@{p}" for p in ports),
        "server_name": args.server_name,
        "listen": listen,
        "http_listen": http_listen,
        "https_port_suffix": suffix,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "database_url": args.database_url,
        "redis_url": args.redis_url,
        "public_url": public_url,
        "user": args.user,
        "install_dir": args.install_dir.rstrip("/"),
        "instance_dir": args.instance_dir.rstrip("/"),
        "python": args.python or f"{args.install_dir.rstrip('/')}/.venv/bin/python",
        "backup_dir": args.backup_dir.rstrip("/"),
        "backup_at": args.backup_at,
        "secret_key": args.secret_key or _kept_secret(Path(args.out)) or secrets.token_hex(32),
        "shutdown_timeout": f"{args.reload_grace}s",
    }


def _listen(option: str, value: str) -> str:
    m = LISTEN.match(value)
    if not m or not 1 <= int(m.group("port")) <= 65535:
        raise ConfigError(f"{option} {value!r}: PORT or ADDRESS:PORT, e.g. 443 or 10.0.0.5:443")
    return value


def _absolute(option: str, path: str) -> None:
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise ConfigError(f"{option} {path!r} must be an absolute path without spaces")


def _kept_secret(out: Path) -> str | None:
    """The secret key of a settings file written before, so that writing the files again
    does not end every session (all processes must share one key)."""
    try:
        text = (out / "motcua.env").read_text(encoding="utf-8")
    except OSError:
        return None
    m = re.search(r"^MOTCUA_SECRET_KEY=(\S+)$", text, re.M)
    return m.group(1) if m else None


def write(out: Path, values: dict) -> list[tuple[Path, str]]:
    """Render every template into ``out``; returns (written file, where it goes)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    header = (
        "Written by `server.py deploy-config` (docs/deployment.md): change its options and "
        "run it again rather than edit this file."
    )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (destination, mode) in FILES.items():
        text = env.get_template(name + ".j2").render(header=header, **values)
        path = out / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, mode)
        written.append((path, destination))
    return written


def main(args: argparse.Namespace) -> int:
    """Write the files and say where each goes; a bad option: its reason, exit code 2."""
    try:
        values = settings(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path, destination in write(Path(args.out), values):
        print(f"{path}  ->  {destination}")
    return 0
