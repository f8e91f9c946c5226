"""Gannet behind a real nginx, as docs/deployment.md recommends: over TCP and over a Unix socket.

nginx runs from a config written into a temp dir (daemon off, master_process off, pid,
logs and temp files there, loopback port), so it needs no root and touches nothing else.
The config is the one docs/deployment.md shows, reduced to what a test needs.
"""
from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import require_tool

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    upstream gannet {{
        server {upstream};
        keepalive 8;                        # reuse connections to Gannet
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;             # let Gannet's --limit-request-body decide
        location / {{
            proxy_pass http://gannet;
            proxy_http_version 1.1;         # needed for keep-alive and chunked upstream
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;            # stream responses as the app sends them
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def nginx(tmp_path: Path):
    """Factory: nginx(upstream) -> base URL of an nginx proxying to ``upstream``."""
    binary = require_tool("nginx")
    started: list[subprocess.Popen] = []

    def start(upstream: str) -> str:
        directory = tmp_path / f"nginx{len(started)}"
        directory.mkdir()
        port = _free_port()
        conf = directory / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=directory, port=port, upstream=upstream))
        proc = subprocess.Popen([binary, "-p", str(directory), "-c", str(conf),
                                 "-e", str(directory / "error.log")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started.append(proc)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (directory / "error.log").read_text(errors="replace") \
                        if (directory / "error.log").exists() else ""
                    output = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
                    proc.kill()
                    raise AssertionError(f"nginx did not start:\n{output}\n{log}")
                time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _exercise(base: str) -> list[dict]:
    """The requests every deployment must get right; returns the scopes the app saw."""
    scopes = []
    with httpx.Client(base_url=base, timeout=10) as client:
        response = client.get("/")
        assert response.status_code == 200 and response.text == "hello"
        # A request body arrives whole, whichever framing nginx chose.
        body = b"x" * 100_000
        response = client.post("/echo", content=body)
        assert response.status_code == 200 and response.content == body
        # A streamed (chunked) response passes through.
        response = client.get("/stream")
        assert response.status_code == 200 and response.text == "one,two,three"
        for _ in range(3):
            response = client.get("/scope?x=1")
            assert response.status_code == 200
            scopes.append(response.json())
    return scopes


def test_nginx_over_tcp(gannet_server, nginx):
    server = gannet_server("basic:app")
    base = nginx(f"127.0.0.1:{server.port}")
    scopes = _exercise(base)
    headers = dict(scopes[0]["headers"])
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert scopes[0]["query_string"] == "x=1"
    # nginx's upstream keep-alive: the same connection to Gannet served all three requests.
    assert len({tuple(scope["client"]) for scope in scopes}) == 1


def test_nginx_over_unix_socket(gannet_server, nginx, tmp_path):
    path = tmp_path / "gannet.sock"
    server = gannet_server("basic:app", port_args=("--uds", str(path)), wait=False)
    server.wait_for_log(r"Listening on http://unix:")
    base = nginx(f"unix:{path}")
    scopes = _exercise(base)
    assert scopes[0]["server"] is None or "gannet.sock" in json.dumps(scopes[0]["server"])
    assert server.stop() == 0


def test_unix_socket_restart_replaces_stale_file(gannet_server, tmp_path):
    """A socket file left by a killed run does not stop the next start (systemd restarts)."""
    path = tmp_path / "gannet.sock"
    first = gannet_server("basic:app", port_args=("--uds", str(path)), wait=False)
    first.wait_for_log(r"Listening on http://unix:")
    first.proc.kill()
    first.proc.wait(timeout=5)
    assert path.exists()
    second = gannet_server("basic:app", port_args=("--uds", str(path)), wait=False)
    second.wait_for_log(r"Listening on http://unix:")
    transport = httpx.HTTPTransport(uds=str(path))
    with httpx.Client(transport=transport, base_url="http://gannet") as client:
        assert client.get("/").text == "hello"


def test_limits_answer_through_nginx(gannet_server, nginx):
    """Gannet's refusals reach the client through the proxy with their status."""
    server = gannet_server("basic:app", "--limit-request-body", "1000")
    base = nginx(f"127.0.0.1:{server.port}")
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.post("/echo", content=b"y" * 2000).status_code == 413
        assert client.post("/echo", content=b"y" * 10).status_code == 200
