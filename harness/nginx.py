"""Debian's nginx as a child process in front of server processes, with the site that
``server.py deploy-config`` writes (docs/deployment.md section 4), on free ports, with a
self-signed certificate: devices connect over wss through it, as in a centre."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from harness.process import HOST, ROOT, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def require_nginx() -> str:
    """The nginx binary, or the test skips (fails under MOTCUA_REQUIRE_SERVICES=1)."""
    from harness.services import service_missing

    if not os.access(NGINX, os.X_OK):
        service_missing("nginx", f"{NGINX} is missing; scripts/ensure-system-packages installs it")
    if not shutil.which("openssl"):
        service_missing("openssl", "the command is missing; scripts/ensure-system-packages")
    return NGINX


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (openssl): ECDSA P-256, as
    docs/deployment.md advises (and certbot gives by default)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        + ["-nodes", "-days", "2"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def deploy_config(out: Path, *options: str) -> subprocess.CompletedProcess:
    """``server.py deploy-config --out OUT OPTIONS…``, as IT staff run it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "server.py"), "deploy-config", "--out", str(out), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


class TlsTunnel:
    """Plain connections on 127.0.0.1:<port>, each carried over its own TLS connection to
    ``target`` (certificate checked against ``ca_file``), one thread per connection doing
    all its TLS reads and writes.

    Why: python-engineio's client reads its websocket in one thread and writes it in
    another, and Python's ssl sockets are not safe for that (seen here: a test device's
    wss connection through nginx stalls after a few hundred events, at random). Through
    this tunnel the device's traffic still crosses nginx's TLS for real; only the
    client's side of TLS is done here instead of inside the Socket.IO client."""

    def __init__(self, target: tuple[str, int], ca_file: Path):
        self.target = target
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                plain, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._carry, args=(plain,), daemon=True).start()

    def _carry(self, plain: socket.socket) -> None:
        try:
            raw = socket.create_connection(self.target, timeout=10)
            raw.settimeout(None)
            tls = self.context.wrap_socket(raw, server_hostname=self.target[0])
        except OSError:
            plain.close()
            return
        try:
            while True:
                if not tls.pending():
                    readable, _, _ = select.select([plain, tls], [], [])
                else:
                    readable = [tls]
                if plain in readable:
                    data = plain.recv(65536)
                    if not data:
                        return
                    tls.sendall(data)
                if tls in readable:
                    data = tls.recv(65536)
                    if not data:
                        return
                    plain.sendall(data)
        except OSError:
            return
        finally:
            for s in (plain, tls):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


class Nginx:
    """nginx on free ports in front of ``ports``, from the generated site.

    The site and its main-context snippet are ``deploy-config``'s, untouched; a minimal
    main nginx.conf (``nginx.conf`` in ``folder``) includes them as Debian's does, with
    its pid, logs and temporary files in ``folder``. ``url`` is the TLS side
    (https://127.0.0.1:PORT), ``http_url`` the plain side that redirects to it.
    ``workers`` and ``connections`` (each worker's) size it: a benchmark's thousands of
    devices (bench/failover.py) need more than a test's.
    ``ca_file`` is the certificate devices must trust; ``login()`` logs a clerk in through
    it, so this object stands for a server wherever tests take one: devices connect to
    ``socket_url``, a TlsTunnel to the TLS side (see there why)."""

    def __init__(
        self,
        folder: Path,
        ports: list[int],
        database_url: str,
        redis_url: str,
        reload_grace: int = 10,
        workers: int = 1,
        connections: int = 1024,
    ):
        require_nginx()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.tls_port, self.http_port = free_port(), free_port()
        self.url = f"https://{HOST}:{self.tls_port}"
        self.http_url = f"http://{HOST}:{self.http_port}"
        self.ca_file, key = self_signed(folder)
        self.site = folder / "site"
        done = deploy_config(
            self.site,
            "--processes",
            str(len(ports)),
            "--first-port",
            str(ports[0]),
            "--server-name",
            "localhost",
            "--listen",
            f"{HOST}:{self.tls_port}",
            "--http-listen",
            f"{HOST}:{self.http_port}",
            "--tls-cert",
            str(self.ca_file),
            "--tls-key",
            str(key),
            "--database-url",
            database_url,
            "--redis-url",
            redis_url,
            "--reload-grace",
            str(reload_grace),
        )
        assert done.returncode == 0, done.stderr
        self.conf = folder / "nginx.conf"
        self.error_log = folder / "error.log"
        temp = "".join(
            f"    {kind}_temp_path {folder / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.conf.write_text(
            # Workers as the test's user (as root, nginx would switch them to nobody,
            # who cannot write into the test's folder).
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"pid {folder / 'nginx.pid'};\n"
            + f"error_log {self.error_log} info;\n"
            + f"include {self.site / 'nginx-motcua-main.conf'};\n"
            + f"worker_processes {workers};\n"
            # A device holds two connections (the client's and the upstream); the
            # generated main configuration raises the workers' open files for them.
            + f"events {{ worker_connections {connections}; }}\n"
            + "http {\n"
            + f"    access_log {folder / 'access.log'};\n"
            + temp
            + f"    include {self.site / 'nginx-motcua.conf'};\n"
            + "}\n"
        )
        self.proc: subprocess.Popen | None = None

    def settings(self) -> dict[str, str]:
        """The generated settings file (motcua.env) as a dict, as systemd reads it."""
        text = (self.site / "motcua.env").read_text(encoding="utf-8")
        pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
        return {k: v for k, v in pairs if not k.startswith("#")}

    def command(self) -> list[str]:
        return [NGINX, "-p", str(self.folder), "-c", str(self.conf), "-e", str(self.error_log)]

    def check(self) -> subprocess.CompletedProcess:
        """``nginx -t`` on the configuration."""
        return subprocess.run([*self.command(), "-t"], capture_output=True, text=True, timeout=30)

    def start(self, timeout: float = 10) -> Nginx:
        self.tunnel = TlsTunnel((HOST, self.tls_port), self.ca_file)
        self.socket_url = f"http://{HOST}:{self.tunnel.port}"
        # What a page on the public address (self.url) sends in its websocket's handshake.
        self.socket_headers = {"host": f"{HOST}:{self.tls_port}", "origin": self.url}
        self.proc = subprocess.Popen(
            [*self.command(), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection((HOST, self.tls_port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen within {timeout}s:\n{self.log()}")

    def reload(self) -> None:
        """What `systemctl reload nginx` does: SIGHUP to the master process."""
        self.proc.send_signal(signal.SIGHUP)

    def workers(self) -> list[int]:
        """The master's worker processes (old ones included, while they shut down)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in children.read_text().split()]

    def stop(self) -> None:
        if getattr(self, "tunnel", None):
            self.tunnel.close()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, verify=str(self.ca_file), timeout=30, **kw)

    def login(self, username: str) -> str:
        from harness.centre import COMMUNE_PASSWORDS, PASSWORDS

        r = requests.post(
            self.url + "/api/v1/auth/login",
            data=json.dumps(
                {"username": username, "password": {**PASSWORDS, **COMMUNE_PASSWORDS}[username]}
            ),
            headers={"Content-Type": "application/json"},
            verify=str(self.ca_file),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return r.json()["token"]
