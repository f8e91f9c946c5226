"""Start real front ends (nginx, HAProxy, Apache httpd) and Gannet behind them, without root.

Every front end runs in the foreground from a config written into a temp directory (pid
file, logs, temp and runtime files there too) and listens on a free loopback port; the
process is stopped at the end of the fixture that started it, even when the test fails.
Readiness is polled with a deadline (the listening port accepts), never slept for.

Client side: a test plays the *client* from another loopback address (127.0.0.2; Linux
routes all of 127.0.0.0/8 to lo), so what the front end forwards (127.0.0.2) differs from
the socket peer Gannet sees (127.0.0.1) and a test can tell which one the app was given.

This module is imported by the test modules in this directory (pytest puts the directory
on sys.path, as it does for ``tests/conftest.py``); its name is unique across ``tests/``.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Iterator

import httpx
from websockets.sync.client import ClientConnection, connect as ws_connect

from conftest import RunningServer, require_tool, start_server

CLIENT_ADDRESS = "127.0.0.2"      # the "real client" in every test
OTHER_CLIENT_ADDRESS = "127.0.0.3"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
NGINX_UWSGI_PARAMS = Path("/etc/nginx/uwsgi_params")


_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on, never the same one twice in this process (the
    kernel may offer a just-closed port again, and one config needs several)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise AssertionError("no fresh free port in 100 tries")


def wait_for_port(port: int, proc: subprocess.Popen, what: str, logs: list[Path],
                  timeout: float = 15.0) -> None:
    """Poll until 127.0.0.1:port accepts, or fail with the process's logs."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=5)
                text = "\n".join(f"--- {log}:\n{log.read_text(errors='replace')}"
                                 for log in logs if log.exists())
                raise AssertionError(f"{what} did not start listening on {port} "
                                     f"(exit {proc.returncode}):\n{text}")
            time.sleep(0.05)


class FrontEnd:
    """A front-end process started from a temp-dir config."""

    def __init__(self, name: str, proc: subprocess.Popen, directory: Path, logs: list[Path]) -> None:
        self.name = name
        self.proc = proc
        self.directory = directory
        self.logs = logs

    def log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs if log.exists())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _start(name: str, command: list[str], directory: Path, ports: list[int], logs: list[Path],
           env: dict[str, str] | None = None) -> FrontEnd:
    output = directory / f"{name}.out"
    with open(output, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=directory,
                                env=env, start_new_session=True)
    front = FrontEnd(name, proc, directory, [output, *logs])
    try:
        for port in ports:
            wait_for_port(port, proc, name, front.logs)
    except BaseException:
        front.stop()
        raise
    return front


# ------------------------------------------------------------------------- nginx

NGINX_MAIN = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{http}
}}
"""


def start_nginx(directory: Path, http_block: str, ports: list[int]) -> FrontEnd:
    """nginx with ``http_block`` (upstreams, maps, servers) inside its http{} block."""
    binary = require_tool("nginx")
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_MAIN.format(tmp=directory, http=http_block))
    return _start("nginx", [binary, "-p", str(directory), "-c", str(conf),
                            "-e", str(directory / "error.log")],
                  directory, ports, [directory / "error.log"])


# ------------------------------------------------------------------------- HAProxy

def start_haproxy(directory: Path, config: str, ports: list[int]) -> FrontEnd:
    """HAProxy in the foreground (-db) from ``config``; logs go to its stdout."""
    binary = require_tool("haproxy")
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "haproxy.cfg"
    conf.write_text(config)
    check = subprocess.run([binary, "-c", "-f", str(conf)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, f"haproxy rejected the config:\n{check.stdout}{check.stderr}"
    return _start("haproxy", [binary, "-f", str(conf), "-db"], directory, ports, [])


def haproxy_command(stats_socket: Path, command: str, timeout: float = 5.0) -> str:
    """One command on HAProxy's stats socket (the CLI: ``show stat``, ``show servers state``)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(str(stats_socket))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def haproxy_server_status(stats_socket: Path, backend: str) -> dict[str, dict[str, str]]:
    """``show stat`` as {server name: row} for one backend (status, check_status, ...)."""
    text = haproxy_command(stats_socket, "show stat")
    lines = [line for line in text.splitlines() if line]
    header = lines[0].lstrip("# ").split(",")
    rows = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(",")))
        if row.get("pxname") == backend and row.get("svname") not in ("FRONTEND", "BACKEND"):
            rows[row["svname"]] = row
    return rows


def wait_haproxy_status(stats_socket: Path, backend: str, server: str, status: str,
                        timeout: float = 15.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    row: dict[str, str] = {}
    while time.monotonic() < deadline:
        row = haproxy_server_status(stats_socket, backend).get(server, {})
        if row.get("status") == status:
            return row
        time.sleep(0.05)
    raise AssertionError(f"HAProxy server {backend}/{server} never became {status}; last row: {row}")


# ------------------------------------------------------------------------- Apache httpd

APACHE_MAIN = """
ServerRoot "{tmp}"
ServerName 127.0.0.1
PidFile "{tmp}/httpd.pid"
DefaultRuntimeDir "{tmp}"
Mutex file:{tmp} default
ErrorLog "{tmp}/error.log"
LogLevel warn
{modules}
LogFormat "%h %a \\"%r\\" %>s %b" front
CustomLog "{tmp}/access.log" front
{body}
"""
APACHE_BASE_MODULES = ("mpm_event", "authz_core", "log_config", "unixd")


def start_apache(directory: Path, body: str, ports: list[int], modules: tuple[str, ...]) -> FrontEnd:
    """Apache httpd in the foreground, single process (-X), from a self-contained config:
    its own ServerRoot, pid file, mutexes, runtime dir and logs; modules loaded by path, so
    nothing of /etc/apache2 is read (Debian's apache2 binary then needs no APACHE_* env)."""
    binary = shutil.which("apache2") or shutil.which("httpd") or require_tool("apache2")
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for module in (*APACHE_BASE_MODULES, *modules):
        path = APACHE_MODULES / f"mod_{module}.so"
        if module == "log_config" and not path.exists():
            continue  # compiled in on Debian
        if module == "unixd" and not path.exists():
            continue
        lines.append(f"LoadModule {module}_module {path}")
    conf = directory / "httpd.conf"
    conf.write_text(APACHE_MAIN.format(tmp=directory, modules="\n".join(lines), body=body))
    check = subprocess.run([binary, "-d", str(directory), "-f", str(conf), "-t"],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, f"apache rejected the config:\n{check.stdout}{check.stderr}"
    return _start("apache", [binary, "-d", str(directory), "-f", str(conf), "-X"],
                  directory, ports, [directory / "error.log"])


# ------------------------------------------------------------------------- TLS

def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1, localhost and app.example (the
    name tests put in Host), made with the openssl CLI."""
    openssl = require_tool("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,DNS:app.example,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def client_tls_context(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    return context


# ------------------------------------------------------------------------- clients

def http_client(base_url: str, *, local_address: str = CLIENT_ADDRESS, cert: Path | None = None,
                timeout: float = 15.0, **kwargs) -> httpx.Client:
    """An httpx client whose connections come from ``local_address``."""
    verify: ssl.SSLContext | bool = client_tls_context(cert) if cert else True
    transport = httpx.HTTPTransport(local_address=local_address, verify=verify)
    return httpx.Client(base_url=base_url, transport=transport, timeout=timeout, **kwargs)


def connect_from(host: str, port: int, local_address: str = CLIENT_ADDRESS,
                 timeout: float = 10.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((local_address, 0))
    sock.connect((host, port))
    return sock


def websocket(url: str, *, local_address: str = CLIENT_ADDRESS, cert: Path | None = None,
              address: tuple[str, int] | None = None, headers: dict[str, str] | None = None
              ) -> ClientConnection:
    """A websockets (sync) client connection from ``local_address``. The URL's host is the
    Host header and TLS server name; ``address`` (default: the URL's) is where to connect,
    so ``wss://app.example:PORT/ws`` with ``address=("127.0.0.1", PORT)`` works offline."""
    scheme, rest = url.split("://", 1)
    hostport = rest.split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    sock = connect_from(*(address or (host, int(port))), local_address)
    kwargs = {}
    if scheme == "wss":
        kwargs["ssl"] = client_tls_context(cert)
        kwargs["server_hostname"] = host
    try:
        return ws_connect(url, sock=sock, additional_headers=headers, proxy=None,
                          open_timeout=10, close_timeout=5, **kwargs)
    except BaseException:
        sock.close()
        raise


def websocket_identity(url: str, **kwargs) -> dict:
    """Open a WebSocket, read the identity the app sends first, check the echo, close."""
    with websocket(url, **kwargs) as ws:
        identity = json.loads(ws.recv(timeout=10))
        ws.send("ping through the front end")
        assert ws.recv(timeout=10) == "ping through the front end"
        payload = os.urandom(70_000)  # more than one 64 KiB read on the way
        ws.send(payload)
        assert ws.recv(timeout=10) == payload
    return identity


def read_stream_in_pieces(client: httpx.Client, url: str, release, parts: int = 3,
                          timeout: float = 15.0) -> list[str]:
    """GET a /stream of ``parts`` parts; read each part *before* releasing the next, so the
    parts provably arrive one at a time (a buffering hop would make the read time out).
    ``release(first_part_text)`` must wake the app (GET /release on the right instance)."""
    received: list[str] = []
    with client.stream("GET", url, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert "content-length" not in response.headers
        buffer = ""
        iterator = response.iter_text()
        deadline = time.monotonic() + timeout
        while len(received) < parts:
            assert time.monotonic() < deadline, f"stream stalled after {received!r}"
            try:
                buffer += next(iterator)
            except StopIteration:
                break
            while "\n" in buffer:
                line, buffer = buffer.split("\n", 1)
                received.append(line)
                if len(received) < parts:
                    release(line)
        rest = "".join(iterator)
    assert buffer + rest == "", f"unexpected trailing data {buffer + rest!r}"
    return received


# ------------------------------------------------------------------------- Gannet

@contextlib.contextmanager
def gannets(*specs: tuple[str, tuple[str, ...], dict[str, str]], timeout: float = 30.0
            ) -> Iterator[list[RunningServer]]:
    """Start several Gannet processes at once ((app, args, env) each) and stop them all."""
    servers: list[RunningServer] = []
    try:
        for app, args, env in specs:
            servers.append(start_server(app, *args, env=env, wait=False, port_args=()))
        for server in servers:
            match = server.wait_for_log(r"Listening on ((?:http|uwsgi)://\S+)", timeout=timeout)
            server.url = match.group(1)
            hostport = server.url.split("//", 1)[1]
            if not hostport.startswith("unix:"):
                host, _, port = hostport.rpartition(":")
                server.host, server.port = host.strip("[]"), int(port)
            else:
                server.uds = hostport[len("unix:"):]
        yield servers
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.proc.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(timeout=5)


@contextlib.contextmanager
def gannet_listening_on(app: str, args: tuple[str, ...], env: dict[str, str] | None = None, *,
                        tcp_ports: tuple[int, ...] = (), unix_paths: tuple[Path, ...] = (),
                        timeout: float = 30.0) -> Iterator[RunningServer]:
    """Start one Gannet with exactly ``args`` (its listen options included) and wait, with a
    deadline, until every given TCP port on 127.0.0.1 and Unix socket path accepts; for
    listeners whose log line tests should not depend on (--uwsgi-socket)."""
    server = start_server(app, *args, env=env, wait=False, port_args=())
    try:
        deadline = time.monotonic() + timeout
        pending: list[object] = [*tcp_ports, *unix_paths]
        while pending:
            target = pending[0]
            try:
                if isinstance(target, int):
                    socket.create_connection(("127.0.0.1", target), timeout=1).close()
                else:
                    with socket.socket(socket.AF_UNIX) as sock:
                        sock.settimeout(1)
                        sock.connect(str(target))
                pending.pop(0)
                continue
            except OSError:
                pass
            if server.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Gannet never listened on {target} "
                                     f"(exit {server.proc.poll()}):\n{server.log}")
            time.sleep(0.05)
        yield server
    finally:
        server.stop()
