"""Gannet behind HAProxy with the PROXY protocol (issue 12): ``send-proxy-v2`` (and
``send-proxy``, v1) to Gannet's ``--proxy-protocol``, ``option httpchk GET /health`` health
checks (HAProxy sends them with a v2 LOCAL header, whose addresses Gannet must not use),
HTTP mode with TLS terminated by HAProxy, and TCP mode (a layer-4 balancer, as AWS NLB and
GCP's TCP/SSL proxy load balancers are; WebSockets pass through it untouched).

The client connects from 127.0.0.2 (and 127.0.0.3); HAProxy reaches Gannet from 127.0.0.1,
inside the default --proxy-allow-from. HAProxy's own state is read on its stats socket.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from frontend_services import (CLIENT_ADDRESS, OTHER_CLIENT_ADDRESS, FrontEnd, connect_from,
                               free_port, gannets, haproxy_server_status, http_client,
                               make_certificate, start_haproxy, wait_haproxy_status, websocket)

HAPROXY_CFG = """
global
    log stdout format raw local0 info
    stats socket {tmp}/haproxy.sock mode 600 level admin
    stats timeout 10s

defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout tunnel 1h                      # idle WebSockets

# HTTP mode, TLS terminated here; PROXY v2 to Gannet (--proxy-protocol).
frontend web
    bind 127.0.0.1:{web_http}
    bind 127.0.0.1:{web_https} ssl crt {pem}
    option forwardfor                      # X-Forwarded-For too, for apps that log it
    default_backend gannet

backend gannet
    option httpchk GET /health
    http-check expect status 200
    # -ssl: the v2 header's SSL TLV tells Gannet the client used TLS (the scheme)
    server gannet1 127.0.0.1:{asgi} check inter 200ms fall 2 rise 1 send-proxy-v2-ssl

# The same with PROXY v1 (send-proxy), to a WSGI app.
frontend web_v1
    bind 127.0.0.1:{v1_http}
    default_backend gannet_v1

backend gannet_v1
    option httpchk GET /health
    http-check expect status 200
    server gannet1 127.0.0.1:{wsgi} check inter 200ms fall 2 rise 1 send-proxy

# Layer 4: HAProxy only relays bytes after the PROXY header, like a cloud NLB.
frontend tcp_in
    mode tcp
    bind 127.0.0.1:{tcp}
    default_backend gannet_tcp

backend gannet_tcp
    mode tcp
    server gannet1 127.0.0.1:{asgi} send-proxy-v2

# A mistake the docs warn about: PROXY protocol on in Gannet, off in HAProxy. Gannet must
# refuse the header-less connections from this allowed peer, so the server goes DOWN.
backend forgot_send_proxy
    option httpchk GET /health
    http-check expect status 200
    server gannet1 127.0.0.1:{asgi} check inter 200ms fall 1 rise 1
"""


@dataclass
class Deployment:
    haproxy: FrontEnd
    stats: Path
    cert: Path
    ports: dict[str, int]
    asgi: object
    wsgi: object


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    directory = tmp_path_factory.mktemp("haproxy-front")
    cert, key = make_certificate(directory / "tls")
    pem = directory / "tls" / "haproxy.pem"       # HAProxy wants certificate + key in one file
    pem.write_text(cert.read_text() + key.read_text())
    specs = [("proxy_identity:asgi_app", ("--port", "0", "--proxy-protocol"), {"IDENTITY_INSTANCE": "asgi"}),
             ("proxy_identity:wsgi_app", ("--port", "0", "--proxy-protocol", "v1"),
              {"IDENTITY_INSTANCE": "wsgi"})]
    with gannets(*specs) as (asgi, wsgi):
        ports = {name: free_port() for name in ("web_http", "web_https", "v1_http", "tcp")}
        haproxy_dir = directory / "haproxy"
        haproxy_dir.mkdir()
        config = HAPROXY_CFG.format(tmp=haproxy_dir, pem=pem, asgi=asgi.port, wsgi=wsgi.port, **ports)
        haproxy = start_haproxy(haproxy_dir, config, list(ports.values()))
        try:
            yield Deployment(haproxy, haproxy_dir / "haproxy.sock", cert, ports, asgi, wsgi)
        finally:
            haproxy.stop()


def _get_who(port: int, local_address: str) -> tuple[dict, int]:
    """GET /who over a fresh socket from ``local_address``; (JSON, the client's port)."""
    with connect_from("127.0.0.1", port, local_address) as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(b"GET /who HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n")
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data[:500]
    return json.loads(body), local_port


def test_haproxy_health_checks_pass_through_proxy_protocol(deployment):
    """httpchk with send-proxy-v2 (v2 LOCAL header) and send-proxy (v1) both reach /health."""
    for backend in ("gannet", "gannet_v1"):
        row = wait_haproxy_status(deployment.stats, backend, "gannet1", "UP")
        assert row["check_status"] == "L7OK", row
    # The checks reached the app; a LOCAL header keeps the socket's own address (HAProxy's).
    line = deployment.asgi.wait_for_log(r".*GET /health.*").group(0)
    assert "127.0.0.1" in line, line
    deployment.wsgi.wait_for_log(r"GET /health")


def test_haproxy_without_send_proxy_is_refused(deployment):
    """An allowed peer that sends no PROXY header is disconnected: HAProxy marks it DOWN."""
    row = wait_haproxy_status(deployment.stats, "forgot_send_proxy", "gannet1", "DOWN")
    assert row["check_status"] in ("L7RSP", "L4CON", "SOCKERR", "L7TOUT", "L6RSP"), row
    # Gannet says why in its log, naming the peer.
    deployment.asgi.wait_for_log(r"Connection from 127\.0\.0\.1:\d+ closed: .*PROXY protocol header")


@pytest.mark.parametrize("frontend", ["web_http", "v1_http", "tcp"])
def test_haproxy_app_sees_the_real_client_address_and_port(deployment, frontend):
    port = deployment.ports[frontend]
    for local_address in (CLIENT_ADDRESS, OTHER_CLIENT_ADDRESS, CLIENT_ADDRESS):
        identity, local_port = _get_who(port, local_address)
        if identity["interface"] == "asgi":
            # Behind a PROXY header the headers count as the named client's (not trusted),
            # so 'option forwardfor' changes nothing: the PROXY source and port stand.
            assert identity["client"] == [local_address, local_port], identity
            if frontend == "web_http":
                assert identity["forwarding"]["x-forwarded-for"] == [local_address], identity
            assert identity["scheme"] == "http", identity
        else:
            assert identity["REMOTE_ADDR"] == local_address, identity
            assert identity["REMOTE_PORT"] == str(local_port), identity
            assert identity["wsgi.url_scheme"] == "http", identity


def test_haproxy_keeps_clients_apart_on_reused_connections(deployment):
    """HTTP mode: two clients with keep-alive, interleaved; each sees only itself (HAProxy
    must not hand one client's PROXY'd server connection to another)."""
    base = f"http://127.0.0.1:{deployment.ports['web_http']}"
    with http_client(base, local_address=CLIENT_ADDRESS) as first, \
            http_client(base, local_address=OTHER_CLIENT_ADDRESS) as second:
        for _ in range(5):
            for client, address in ((first, CLIENT_ADDRESS), (second, OTHER_CLIENT_ADDRESS)):
                response = client.get("/who")
                assert response.status_code == 200
                assert response.json()["client"][0] == address, response.json()


def test_haproxy_tls_termination_gives_https(deployment):
    base = f"https://127.0.0.1:{deployment.ports['web_https']}"
    with http_client(base, cert=deployment.cert) as client:
        identity = client.get("/who").json()
    assert identity["client"][0] == CLIENT_ADDRESS, identity
    assert identity["scheme"] == "https", identity


def test_haproxy_tcp_mode_carries_websockets(deployment):
    port = deployment.ports["tcp"]
    with websocket(f"ws://127.0.0.1:{port}/ws") as ws:
        identity = json.loads(ws.recv(timeout=10))
        local_port = ws.socket.getsockname()[1]
        ws.send("through haproxy")
        assert ws.recv(timeout=10) == "through haproxy"
    assert identity["type"] == "websocket"
    assert identity["client"] == [CLIENT_ADDRESS, local_port], identity
    assert identity["scheme"] == "ws", identity


def test_haproxy_stats_show_no_failed_checks_on_the_good_backends(deployment):
    rows = haproxy_server_status(deployment.stats, "gannet")
    assert rows["gannet1"]["status"] == "UP", rows
    assert rows["gannet1"]["chkfail"] in ("0", ""), rows
