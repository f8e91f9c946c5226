"""A real layer-4 balancer in front of Gannet's TLS (issue 13): HAProxy in ``mode tcp`` with
``send-proxy-v2`` (what an AWS NLB with proxy protocol v2 does), passing the client's TLS
through to ``gannet --proxy-protocol v2 --ssl-certfile ...``. The client connects from
127.0.0.2 (Linux routes all of 127.0.0.0/8 to lo); HAProxy reaches Gannet from 127.0.0.1,
inside the default --proxy-allow-from; the app must see 127.0.0.2, over https and wss."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest
from websockets.sync.client import connect as ws_connect

from conftest import require_tool
from tls.conftest import client_context, wait_until

ASGI = "tls_clients_apps:asgi_app"
CLIENT_ADDRESS = "127.0.0.2"

HAPROXY_CFG = """
global
    log stdout format raw local0 info

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend tls_in
    bind 127.0.0.1:{front}
    default_backend gannet

backend gannet
    server gannet1 127.0.0.1:{gannet} send-proxy-v2
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def haproxy_in_front(tls_server, tmp_path):
    binary = require_tool("haproxy")

    def start(gannet_port: int) -> int:
        front = _free_port()
        config = tmp_path / "haproxy.cfg"
        config.write_text(HAPROXY_CFG.format(front=front, gannet=gannet_port))
        check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True,
                               check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        output = open(tmp_path / "haproxy.out", "wb")
        proc = subprocess.Popen([binary, "-f", str(config), "-db"], stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)
        started.append((proc, output))

        def accepting() -> bool:
            assert proc.poll() is None, (tmp_path / "haproxy.out").read_text(errors="replace")
            try:
                socket.create_connection(("127.0.0.1", front), timeout=1).close()
                return True
            except OSError:
                return False

        wait_until(accepting, timeout=15, what="HAProxy listening")
        return front

    started: list = []
    yield start
    for proc, output in started:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        output.close()


def _tls_get(port: int, context, path: str) -> tuple[bytes, int]:
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind((CLIENT_ADDRESS, 0))
    sock.connect(("127.0.0.1", port))
    local_port = sock.getsockname()[1]
    with context.wrap_socket(sock, server_hostname="localhost") as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                    .encode())
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    return data, local_port


def test_haproxy_tcp_send_proxy_v2_to_gannet_tls(tls_server, tls_files, haproxy_in_front):
    server = tls_server(ASGI, "--proxy-protocol", "v2", "--log-level", "debug")
    front = haproxy_in_front(server.port)
    context = client_context(tls_files)
    for _ in range(3):  # a new connection each time through the balancer
        data, local_port = _tls_get(front, context, "/scope")
        assert data.startswith(b"HTTP/1.1 200 "), data[:300]
        scope = json.loads(data.split(b"\r\n\r\n", 1)[1])
        assert scope["client"] == [CLIENT_ADDRESS, local_port]
        assert scope["scheme"] == "https"
    # WebSockets pass through a layer-4 balancer untouched: wss, and the same client
    with ws_connect(f"wss://localhost:{front}/ws", ssl=context, open_timeout=10,
                    sock=_socket_from(CLIENT_ADDRESS, front)) as ws:
        first = json.loads(ws.recv(timeout=5))
        assert first["scheme"] == "wss" and first["client"][0] == CLIENT_ADDRESS
        ws.send("through haproxy")
        assert ws.recv(timeout=5) == "through haproxy"
    assert "Traceback" not in server.log and "[ERROR]" not in server.log


def test_haproxy_passes_a_plain_http_client_to_the_plain_http_line(tls_server, tls_files,
                                                                    haproxy_in_front):
    # A client that speaks plain HTTP to the balancer's TLS port: Gannet's line names it.
    server = tls_server(ASGI, "--proxy-protocol", "v2")
    front = haproxy_in_front(server.port)
    with _socket_from(CLIENT_ADDRESS, front) as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data == b""
    server.wait_for_log(rf"\[INFO\] 127\.0\.0\.2:{local_port} \(via 127\.0\.0\.1:\d+\) - "
                        r"plain HTTP sent to the TLS port; closed")


def _socket_from(local: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind((local, 0))
    sock.connect(("127.0.0.1", port))
    return sock
