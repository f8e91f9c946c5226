"""Gannet behind nginx as docs/deployment.md shows it (issue 12): one nginx, two Gannet
instances per interface in an ``upstream`` with keep-alive, WebSockets passed through, TLS
terminated by nginx, X-Forwarded-For/-Proto/-Host/-Port set (and -Prefix on a sub-path
mount). The client connects from 127.0.0.2; nginx reaches Gannet from 127.0.0.1 (the
default --forwarded-allow-ips), so the app must report 127.0.0.2 and nginx's scheme.

One nginx and four Gannets (ASGI a/b, WSGI a/b) serve the whole module.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from frontend_services import (CLIENT_ADDRESS, FrontEnd, free_port, gannets, http_client,
                               make_certificate, read_stream_in_pieces, start_nginx,
                               websocket_identity)

# The proxy settings every location needs (nginx does not inherit proxy_set_header into a
# location that sets any of its own, so each location repeats them).
PROXY_SETTINGS = """
            proxy_http_version 1.1;               # keep-alive and chunked to Gannet
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;  # WebSockets
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_buffering off;                  # stream responses as the app sends them
            proxy_request_buffering off;          # and uploads as the client sends them
            proxy_read_timeout 1h;                # idle WebSockets and long polls
"""

NGINX_HTTP = """
    # "upgrade" when the client asks for it; otherwise an empty Connection header, which
    # keeps the upstream connection reusable ('close' here would defeat keepalive).
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}

    upstream gannet_asgi {{
        server 127.0.0.1:{asgi_a};
        server 127.0.0.1:{asgi_b};
        keepalive 16;
    }}
    upstream gannet_wsgi {{
        server 127.0.0.1:{wsgi_a};
        server 127.0.0.1:{wsgi_b};
        keepalive 16;
    }}

    server {{
        listen 127.0.0.1:{asgi_http};
        listen 127.0.0.1:{asgi_https} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        client_max_body_size 0;                   # Gannet's --limit-request-body decides

        location / {{
            proxy_pass http://gannet_asgi;
{proxy}
            proxy_set_header X-Forwarded-Prefix "";  # not mounted: drop a client's own
        }}
        location /app/ {{
            proxy_pass http://gannet_asgi/;       # strips /app
{proxy}
            proxy_set_header X-Forwarded-Prefix /app;
        }}
    }}
    server {{
        listen 127.0.0.1:{wsgi_http};
        listen 127.0.0.1:{wsgi_https} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        client_max_body_size 0;

        location / {{
            proxy_pass http://gannet_wsgi;
{proxy}
            proxy_set_header X-Forwarded-Prefix "";  # not mounted: drop a client's own
        }}
        location /app/ {{
            proxy_pass http://gannet_wsgi/;
{proxy}
            proxy_set_header X-Forwarded-Prefix /app;
        }}
    }}
"""

HOST = "app.example"  # the Host the client asks for; nginx forwards it as X-Forwarded-Host


@dataclass
class Deployment:
    nginx: FrontEnd
    cert: Path
    ports: dict[str, int]           # asgi_http, asgi_https, wsgi_http, wsgi_https
    instances: dict[str, dict]      # "asgi" -> {"a": server, "b": server}, "wsgi" -> ...

    def base(self, interface: str, scheme: str) -> str:
        return f"{scheme}://127.0.0.1:{self.ports[f'{interface}_{scheme}']}"

    def client(self, interface: str, scheme: str, **kwargs) -> httpx.Client:
        return http_client(self.base(interface, scheme), cert=self.cert,
                           headers={"host": HOST, **kwargs.pop("headers", {})}, **kwargs)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Deployment:
    directory = tmp_path_factory.mktemp("nginx-front")
    cert, key = make_certificate(directory / "tls")
    specs = []
    for interface in ("asgi", "wsgi"):
        for name in ("a", "b"):
            specs.append((f"proxy_identity:{interface}_app", ("--port", "0"),
                          {"IDENTITY_INSTANCE": f"{interface}-{name}"}))
    with gannets(*specs) as servers:
        instances = {"asgi": {"a": servers[0], "b": servers[1]},
                     "wsgi": {"a": servers[2], "b": servers[3]}}
        ports = {key_: free_port() for key_ in ("asgi_http", "asgi_https", "wsgi_http", "wsgi_https")}
        http = NGINX_HTTP.format(proxy=PROXY_SETTINGS.rstrip("\n"), cert=cert, key=key,
                                 asgi_a=servers[0].port, asgi_b=servers[1].port,
                                 wsgi_a=servers[2].port, wsgi_b=servers[3].port, **ports)
        nginx = start_nginx(directory / "nginx", http, list(ports.values()))
        try:
            yield Deployment(nginx, cert, ports, instances)
        finally:
            nginx.stop()


def _instance(deployment: Deployment, interface: str, name: str):
    return deployment.instances[interface][name.split("-", 1)[1]]


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_nginx_spreads_requests_over_both_gannets(deployment, interface):
    seen: dict[str, int] = {}
    with deployment.client(interface, "http") as client:
        for _ in range(12):
            response = client.get("/who")
            assert response.status_code == 200
            identity = response.json()
            seen[identity["instance"]] = seen.get(identity["instance"], 0) + 1
            client_host = identity["client"][0] if interface == "asgi" else identity["REMOTE_ADDR"]
            assert client_host == CLIENT_ADDRESS
    assert set(seen) == {f"{interface}-a", f"{interface}-b"}, seen


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_nginx_asgi_scope_has_the_real_client_scheme_and_host(deployment, scheme):
    port = deployment.ports[f"asgi_{scheme}"]
    probe = uuid.uuid4().hex
    with deployment.client("asgi", scheme) as client:
        response = client.get(f"/who?probe={probe}")
    assert response.status_code == 200
    identity = response.json()
    assert identity["client"][0] == CLIENT_ADDRESS, identity
    assert identity["scheme"] == scheme, identity
    assert identity["server"] == [HOST, port], identity
    assert identity["root_path"] == "" and identity["path"] == "/who", identity
    # What nginx sent, to show the app saw it through (and what the scope was made from).
    assert identity["forwarding"]["x-forwarded-for"] == [CLIENT_ADDRESS]
    assert identity["forwarding"]["x-forwarded-proto"] == [scheme]
    # The access log names the client too, not nginx's 127.0.0.1.
    server = _instance(deployment, "asgi", identity["instance"])
    line = server.wait_for_log(rf".*GET /who\?probe={probe}.*").group(0)
    assert CLIENT_ADDRESS in line and "127.0.0.1" not in line, line


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_nginx_wsgi_environ_has_the_real_client_scheme_and_host(deployment, scheme):
    port = deployment.ports[f"wsgi_{scheme}"]
    probe = uuid.uuid4().hex
    with deployment.client("wsgi", scheme) as client:
        response = client.get(f"/who?probe={probe}")
    assert response.status_code == 200
    environ = response.json()
    assert environ["REMOTE_ADDR"] == CLIENT_ADDRESS, environ
    assert environ["wsgi.url_scheme"] == scheme, environ
    assert environ["SERVER_NAME"] == HOST and environ["SERVER_PORT"] == str(port), environ
    assert environ["SCRIPT_NAME"] == "" and environ["PATH_INFO"] == "/who", environ
    server = _instance(deployment, "wsgi", environ["instance"])
    line = server.wait_for_log(rf".*GET /who\?probe={probe}.*").group(0)
    assert CLIENT_ADDRESS in line and "127.0.0.1" not in line, line


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_nginx_host_header_carries_x_forwarded_port(deployment, interface, scheme):
    """nginx sends X-Forwarded-Host $host (no port) and X-Forwarded-Port $server_port. The
    server tuple / SERVER_PORT get the port; the Host header the app reads must get it too,
    or URLs the app builds point at the wrong port: PEP 3333's URL reconstruction and
    Flask/Django use HTTP_HOST first, Starlette's request.url the host header (werkzeug's
    ProxyFix appends X-Forwarded-Port to HTTP_HOST for this reason)."""
    port = deployment.ports[f"{interface}_{scheme}"]
    with deployment.client(interface, scheme) as client:
        identity = client.get("/who").json()
    host = identity["host"] if interface == "asgi" else identity["HTTP_HOST"]
    assert host == f"{HOST}:{port}", identity


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_nginx_prefix_mount_sets_root_path_and_script_name(deployment, interface):
    with deployment.client(interface, "https") as client:
        response = client.get("/app/who")
    assert response.status_code == 200
    identity = response.json()
    if interface == "asgi":
        assert identity["root_path"] == "/app", identity
        assert identity["path"] == "/app/who", identity   # ASGI: path includes root_path
        assert identity["scheme"] == "https" and identity["client"][0] == CLIENT_ADDRESS
    else:
        assert identity["SCRIPT_NAME"] == "/app" and identity["PATH_INFO"] == "/who", identity
        assert identity["wsgi.url_scheme"] == "https" and identity["REMOTE_ADDR"] == CLIENT_ADDRESS


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_nginx_websocket_sees_the_real_client_and_scheme(deployment, scheme):
    port = deployment.ports["asgi_https" if scheme == "wss" else "asgi_http"]
    seen = set()
    for _ in range(4):  # both instances, over fresh upgraded connections
        identity = websocket_identity(f"{scheme}://{HOST}:{port}/ws", cert=deployment.cert,
                                      address=("127.0.0.1", port))
        assert identity["type"] == "websocket"
        assert identity["client"][0] == CLIENT_ADDRESS, identity
        assert identity["scheme"] == scheme, identity
        assert identity["server"] == [HOST, port], identity
        seen.add(identity["instance"])
    assert seen == {"asgi-a", "asgi-b"}


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_nginx_streams_chunked_responses_in_pieces(deployment, interface):
    token = uuid.uuid4().hex

    def release(part: str) -> None:
        # The part names the instance nginx chose; wake that one directly (not via nginx,
        # whose round robin could pick the other).
        name = part.rsplit(" ", 1)[1]
        server = _instance(deployment, interface, name)
        response = httpx.get(f"http://127.0.0.1:{server.port}/release?token={token}", timeout=10)
        assert response.status_code == 200 and response.json()["released"] is True

    with deployment.client(interface, "https") as client:
        parts = read_stream_in_pieces(client, f"/stream?token={token}&parts=4", release, parts=4)
    assert [part.split(" from ")[0] for part in parts] == ["part 0", "part 1", "part 2", "part 3"]
    assert len({part.split(" from ")[1] for part in parts}) == 1


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_nginx_passes_a_10_mib_upload_intact(deployment, interface, framing):
    body = os.urandom(10 * 1024 * 1024)
    expected = hashlib.sha256(body).hexdigest()

    def pieces():
        for offset in range(0, len(body), 256 * 1024):
            yield body[offset:offset + 256 * 1024]

    content = body if framing == "content-length" else pieces()
    with deployment.client(interface, "https", timeout=60) as client:
        response = client.post("/upload", content=content)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["size"] == len(body) and result["sha256"] == expected


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_nginx_client_sent_forwarding_headers_do_not_win(deployment, interface):
    """A client's own X-Forwarded-For is kept by nginx ($proxy_add_x_forwarded_for appends
    the real address to it): the rightmost untrusted address, not the leftmost, is the
    client. A client's Forwarded header passes nginx untouched: it must not win over the
    X-Forwarded-* nginx wrote. nginx overwrites X-Forwarded-Proto/-Host itself."""
    spoof = {"X-Forwarded-For": "6.6.6.6, 10.0.0.1", "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": "evil.example", "X-Forwarded-Port": "1",
             "X-Forwarded-Prefix": "/evil",
             "Forwarded": 'for=6.6.6.6;proto=https;host="evil.example"'}
    with deployment.client(interface, "http", headers=spoof) as client:
        response = client.get("/who")
    assert response.status_code == 200
    identity = response.json()
    # nginx really did pass the client's addresses on, left of the real one.
    assert identity["forwarding"]["x-forwarded-for"] == [f"6.6.6.6, 10.0.0.1, {CLIENT_ADDRESS}"]
    if interface == "asgi":
        assert identity["client"][0] == CLIENT_ADDRESS, identity
        assert identity["scheme"] == "http", identity
        assert identity["server"] == [HOST, deployment.ports["asgi_http"]], identity
        assert identity["root_path"] == "", identity
    else:
        assert identity["REMOTE_ADDR"] == CLIENT_ADDRESS, identity
        assert identity["wsgi.url_scheme"] == "http", identity
        assert identity["SERVER_NAME"] == HOST, identity
        assert identity["SERVER_PORT"] == str(deployment.ports["wsgi_http"]), identity
        assert identity["SCRIPT_NAME"] == "", identity
