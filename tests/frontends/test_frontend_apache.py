"""Gannet behind Apache httpd 2.4 with mod_proxy_http (issue 12): ``ProxyPass`` with
``upgrade=websocket`` (2.4.47+; mod_proxy_wstunnel's ``ws://`` form is tested too), TLS
terminated by mod_ssl. mod_proxy_http adds X-Forwarded-For/-Host/-Server by itself;
X-Forwarded-Proto it does not, so each virtual host sets it with mod_headers (in both, or a
client could send its own through the plain one).

Apache runs single-process (-X) from a self-contained config in a temp dir; the client
connects from 127.0.0.2 and the app must report it, and https/wss behind mod_ssl.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from frontend_services import (CLIENT_ADDRESS, FrontEnd, free_port, gannet_listening_on, gannets,
                               http_client, make_certificate, read_stream_in_pieces, start_apache,
                               websocket, websocket_identity)

APACHE_MODULES = ("proxy", "proxy_http", "proxy_wstunnel", "proxy_uwsgi", "headers", "ssl",
                  "socache_shmcb")

APACHE_VHOST = """
<VirtualHost 127.0.0.1:{port}>
    {tls}
    # Gannet sees the client's Host (also sent as X-Forwarded-Host).
    ProxyPreserveHost On
    ProxyRequests Off
    # mod_proxy_wstunnel's form (any 2.4), before the catch-all:
    ProxyPass /tunnel/ws ws://127.0.0.1:{gannet}/ws
    # 2.4.47+: mod_proxy_http upgrades to WebSocket itself.
    ProxyPass / http://127.0.0.1:{gannet}/ upgrade=websocket keepalive=On
    ProxyPassReverse / http://127.0.0.1:{gannet}/
    # Apache sets X-Forwarded-For/-Host/-Server, not -Proto; set it here (overwriting any
    # the client sent).
    RequestHeader set X-Forwarded-Proto "{scheme}"
    # Gannet reads these too and Apache never writes them: drop a client's own.
    RequestHeader unset X-Forwarded-Port
    RequestHeader unset X-Forwarded-Prefix
</VirtualHost>
"""
# mod_proxy_uwsgi to Gannet's --uwsgi-socket: Apache sends the CGI variables itself
# (REMOTE_ADDR, HTTPS=on under mod_ssl, SERVER_NAME/PORT, HTTP_HOST); no X-Forwarded-*.
APACHE_UWSGI_VHOST = """
<VirtualHost 127.0.0.1:{port}>
    {tls}
    ProxyPass / uwsgi://127.0.0.1:{uwsgi}/
</VirtualHost>
"""
TLS = """SSLEngine on
    SSLCertificateFile {cert}
    SSLCertificateKeyFile {key}"""

HOST = "app.example"


@dataclass
class Deployment:
    apache: FrontEnd
    cert: Path
    ports: dict[str, int]      # asgi_http, asgi_https, wsgi_http, wsgi_https, uwsgi_http, uwsgi_https
    servers: dict[str, object]

    def client(self, interface: str, scheme: str, **kwargs):
        port = self.ports[f"{interface}_{scheme}"]
        return http_client(f"{scheme}://127.0.0.1:{port}", cert=self.cert,
                           headers={"host": f"{HOST}:{port}", **kwargs.pop("headers", {})}, **kwargs)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    directory = tmp_path_factory.mktemp("apache-front")
    cert, key = make_certificate(directory / "tls")
    specs = [("proxy_identity:asgi_app", ("--port", "0"), {"IDENTITY_INSTANCE": "asgi"}),
             ("proxy_identity:wsgi_app", ("--port", "0"), {"IDENTITY_INSTANCE": "wsgi"})]
    uwsgi_port = free_port()
    with gannets(*specs) as (asgi, wsgi), \
            gannet_listening_on("proxy_identity:flask_app", ("--uwsgi-socket", f"127.0.0.1:{uwsgi_port}"),
                                tcp_ports=(uwsgi_port,)) as flask:
        servers = {"asgi": asgi, "wsgi": wsgi, "uwsgi": flask}
        ports = {f"{interface}_{scheme}": free_port()
                 for interface in servers for scheme in ("http", "https")}
        body = [f"Listen 127.0.0.1:{port}" for port in ports.values()]
        body.append("SSLSessionCache shmcb:" + str(directory / "ssl_scache") + "(512000)")
        for name, port in ports.items():
            interface, scheme = name.split("_")
            tls = TLS.format(cert=cert, key=key) if scheme == "https" else ""
            if interface == "uwsgi":
                body.append(APACHE_UWSGI_VHOST.format(port=port, tls=tls, uwsgi=uwsgi_port))
            else:
                body.append(APACHE_VHOST.format(port=port, tls=tls, scheme=scheme,
                                                gannet=servers[interface].port))
        apache = start_apache(directory / "apache", "\n".join(body), list(ports.values()),
                              APACHE_MODULES)
        try:
            yield Deployment(apache, cert, ports, servers)
        finally:
            apache.stop()


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_apache_app_sees_the_real_client_scheme_and_host(deployment, interface, scheme):
    port = deployment.ports[f"{interface}_{scheme}"]
    with deployment.client(interface, scheme) as client:
        response = client.get("/who")
    assert response.status_code == 200, response.text
    identity = response.json()
    # What Apache sent: its own X-Forwarded-For, -Host (the client's Host) and our -Proto.
    assert identity["forwarding"]["x-forwarded-for"] == [CLIENT_ADDRESS], identity
    assert identity["forwarding"]["x-forwarded-proto"] == [scheme], identity
    if interface == "asgi":
        assert identity["client"][0] == CLIENT_ADDRESS, identity
        assert identity["scheme"] == scheme, identity
        assert identity["server"] == [HOST, port], identity
        assert identity["host"] == f"{HOST}:{port}", identity
    else:
        assert identity["REMOTE_ADDR"] == CLIENT_ADDRESS, identity
        assert identity["wsgi.url_scheme"] == scheme, identity
        assert identity["HTTP_HOST"] == f"{HOST}:{port}", identity
        assert identity["SERVER_NAME"] == HOST and identity["SERVER_PORT"] == str(port), identity


@pytest.mark.parametrize("path", ["/ws", "/tunnel/ws"])
@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_apache_websocket_sees_the_real_client_and_scheme(deployment, scheme, path):
    port = deployment.ports["asgi_https" if scheme == "wss" else "asgi_http"]
    identity = websocket_identity(f"{scheme}://{HOST}:{port}{path}", cert=deployment.cert,
                                  address=("127.0.0.1", port))
    assert identity["type"] == "websocket"
    assert identity["client"][0] == CLIENT_ADDRESS, identity
    assert identity["scheme"] == scheme, identity
    assert identity["server"] == [HOST, port], identity


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_apache_client_sent_forwarding_headers_do_not_win(deployment, interface):
    """Apache appends the real address to a client's X-Forwarded-For and its Host to a
    client's X-Forwarded-Host; our RequestHeader replaces X-Forwarded-Proto; a client's
    Forwarded passes untouched. None of it may change what the app sees."""
    spoof = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example",
             "X-Forwarded-Proto": "https", "X-Forwarded-Port": "1", "X-Forwarded-Prefix": "/evil",
             "Forwarded": "for=6.6.6.6;proto=https;host=evil.example"}
    port = deployment.ports[f"{interface}_http"]
    with deployment.client(interface, "http", headers=spoof) as client:
        identity = client.get("/who").json()
    assert identity["forwarding"]["x-forwarded-for"] == [f"6.6.6.6, {CLIENT_ADDRESS}"], identity
    assert identity["forwarding"]["x-forwarded-host"] == [f"evil.example, {HOST}:{port}"], identity
    if interface == "asgi":
        assert identity["client"][0] == CLIENT_ADDRESS, identity
        assert identity["scheme"] == "http", identity
        assert identity["server"] == [HOST, port], identity
        assert identity["root_path"] == "", identity
    else:
        assert identity["REMOTE_ADDR"] == CLIENT_ADDRESS, identity
        assert identity["wsgi.url_scheme"] == "http", identity
        assert identity["SERVER_NAME"] == HOST, identity
        assert identity["SERVER_PORT"] == str(port), identity
        assert identity["HTTP_HOST"] == f"{HOST}:{port}", identity
        assert identity["SCRIPT_NAME"] == "", identity


def test_apache_websocket_echoes_binary_and_closes_cleanly(deployment):
    port = deployment.ports["asgi_http"]
    with websocket(f"ws://{HOST}:{port}/ws", address=("127.0.0.1", port)) as ws:
        json.loads(ws.recv(timeout=10))
        for size in (0, 1, 125, 126, 65535, 65536, 300_000):
            payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
            ws.send(payload)
            assert ws.recv(timeout=10) == payload
    assert ws.close_code == 1000


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_apache_mod_proxy_uwsgi_flask_sees_the_real_client_and_scheme(deployment, scheme):
    port = deployment.ports[f"uwsgi_{scheme}"]
    with deployment.client("uwsgi", scheme) as client:
        response = client.get("/who?x=1")
    assert response.status_code == 200, response.text
    who = response.json()
    assert who["remote_addr"] == CLIENT_ADDRESS, who
    assert who["scheme"] == scheme and who["is_secure"] is (scheme == "https"), who
    assert who["host"] == f"{HOST}:{port}", who
    assert who["url"] == f"{scheme}://{HOST}:{port}/who?x=1", who
    assert who["environ"]["PATH_INFO"] == "/who", who


def test_apache_mod_proxy_uwsgi_upload(deployment):
    data = os.urandom(10 * 1024 * 1024)
    with deployment.client("uwsgi", "https", timeout=60) as client:
        response = client.post("/upload", files={"file": ("blob.bin", data)}, data={"field": "f"})
        assert response.status_code == 200, response.text[:2000]
        assert response.json() == {"framework": "flask", "name": "blob.bin", "size": len(data),
                                   "sha256": hashlib.sha256(data).hexdigest(), "field": "f"}


def test_apache_mod_proxy_uwsgi_streams_in_pieces(deployment):
    token = uuid.uuid4().hex
    with deployment.client("uwsgi", "https") as client, deployment.client("uwsgi", "https") as other:
        def release(part: str) -> None:
            assert other.get(f"/release?token={token}").json()["released"] is True

        parts = read_stream_in_pieces(client, f"/stream?token={token}&parts=3", release, parts=3)
    assert parts == [f"part {index} from flask" for index in range(3)]


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_apache_streams_in_pieces(deployment, interface):
    token = uuid.uuid4().hex
    with deployment.client(interface, "https") as client, deployment.client(interface, "https") as other:
        def release(part: str) -> None:
            assert other.get(f"/release?token={token}").json()["released"] is True

        parts = read_stream_in_pieces(client, f"/stream?token={token}&parts=3", release, parts=3)
    assert parts == [f"part {index} from {interface}" for index in range(3)]
