"""Gannet behind nginx's ``uwsgi_pass`` (issue 12): a Flask and a Django app, each on one
Gannet with two ``--uwsgi-socket`` listeners (TCP and a Unix socket), nginx using the stock
``uwsgi_params`` it ships (included by path, unchanged). nginx terminates TLS; the client
connects from 127.0.0.2, and the app must see REMOTE_ADDR 127.0.0.2 and the right scheme.
Uploads (10 MiB multipart and a raw chunked body) and a streamed response go through.

uwsgi has no header of its own for trust: Gannet believes the variables nginx sends
(REMOTE_ADDR, HTTPS, ...) from peers in --uwsgi-allow-from (default loopback) and any Unix
peer; another peer is disconnected (tested at the end, with a hand-made uwsgi packet).
"""
from __future__ import annotations

import hashlib
import os
import socket
import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from frontend_services import (CLIENT_ADDRESS, NGINX_UWSGI_PARAMS, FrontEnd, connect_from,
                               free_port, gannet_listening_on, http_client, make_certificate,
                               read_stream_in_pieces, start_nginx)

HOST = "app.example"

# One server block per (app, transport): uwsgi has no URL prefix stripping of its own, so
# each app gets its own listen ports rather than a sub-path.
NGINX_UWSGI_SERVER = """
    server {{
        listen 127.0.0.1:{http};
        listen 127.0.0.1:{https} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        client_max_body_size 0;               # Gannet's --limit-request-body decides

        location / {{
            include {uwsgi_params};           # the file nginx ships, unchanged
            uwsgi_pass {upstream};
            uwsgi_buffering off;              # stream responses as the app sends them
            uwsgi_request_buffering off;      # and uploads as the client sends them
            uwsgi_read_timeout 1h;
        }}
    }}
"""


@dataclass
class Route:
    app: str          # flask / django
    transport: str    # tcp / unix
    http: int
    https: int


@dataclass
class Deployment:
    nginx: FrontEnd
    cert: Path
    routes: dict[tuple[str, str], Route]
    gannets: dict[str, object]        # app -> RunningServer
    tcp_ports: dict[str, int]         # app -> its uwsgi TCP port

    def client(self, app: str, transport: str, scheme: str, **kwargs):
        route = self.routes[(app, transport)]
        port = route.https if scheme == "https" else route.http
        return http_client(f"{scheme}://127.0.0.1:{port}", cert=self.cert,
                           headers={"host": HOST}, **kwargs)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    uwsgi_params = NGINX_UWSGI_PARAMS
    if not uwsgi_params.exists():
        pytest.skip(f"{uwsgi_params} (shipped with nginx) is missing")
    directory = tmp_path_factory.mktemp("uwsgi-front")
    cert, key = make_certificate(directory / "tls")
    apps = {"flask": ("proxy_identity:flask_app", ()),
            "django": ("proxy_identity:make_django", ("--factory",))}
    tcp_ports = {name: free_port() for name in apps}
    sockets = {name: directory / f"{name}.sock" for name in apps}
    servers = {}
    stack = []
    try:
        for name, (target, extra) in apps.items():
            context = gannet_listening_on(
                target, (*extra, "--uwsgi-socket", f"127.0.0.1:{tcp_ports[name]}",
                         "--uwsgi-socket", f"unix:{sockets[name]}"),
                tcp_ports=(tcp_ports[name],), unix_paths=(sockets[name],))
            servers[name] = context.__enter__()
            stack.append(context)
        routes = {}
        blocks = []
        for name in apps:
            for transport, upstream in (("tcp", f"127.0.0.1:{tcp_ports[name]}"),
                                        ("unix", f"unix:{sockets[name]}")):
                route = Route(name, transport, free_port(), free_port())
                routes[(name, transport)] = route
                blocks.append(NGINX_UWSGI_SERVER.format(
                    http=route.http, https=route.https, cert=cert, key=key,
                    uwsgi_params=uwsgi_params, upstream=upstream))
        ports = [port for route in routes.values() for port in (route.http, route.https)]
        nginx = start_nginx(directory / "nginx", "".join(blocks), ports)
        try:
            yield Deployment(nginx, cert, routes, servers, tcp_ports)
        finally:
            nginx.stop()
    finally:
        for context in reversed(stack):
            context.__exit__(None, None, None)


APPS = ["flask", "django"]
TRANSPORTS = ["tcp", "unix"]


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("app", APPS)
def test_uwsgi_app_sees_the_real_client_and_scheme(deployment, app, transport, scheme):
    route = deployment.routes[(app, transport)]
    port = route.https if scheme == "https" else route.http
    with deployment.client(app, transport, scheme) as client:
        response = client.get("/who?x=1")
    assert response.status_code == 200, response.text
    who = response.json()
    assert who["framework"] == app
    assert who["remote_addr"] == CLIENT_ADDRESS, who
    assert who["scheme"] == scheme and who["is_secure"] is (scheme == "https"), who
    environ = who["environ"]
    assert environ["REMOTE_ADDR"] == CLIENT_ADDRESS and environ["wsgi.url_scheme"] == scheme, environ
    # Debian's uwsgi_params sends HTTP_HOST $host (no port); SERVER_PORT is nginx's port.
    assert environ["HTTP_HOST"] == HOST and who["host"] == HOST, who
    assert environ["SERVER_PORT"] == str(port), environ
    assert environ["PATH_INFO"] == "/who" and environ["SCRIPT_NAME"] == "", environ
    assert who["url"] == f"{scheme}://{HOST}/who?x=1", who
    assert environ["REMOTE_PORT"] and environ["REMOTE_PORT"].isdigit() and environ["REMOTE_PORT"] != "0"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("app", APPS)
def test_uwsgi_multipart_upload_of_10_mib(deployment, app, transport):
    data = os.urandom(10 * 1024 * 1024)
    with deployment.client(app, transport, "https", timeout=60) as client:
        response = client.post("/upload", files={"file": ("blob.bin", data, "application/octet-stream")},
                               data={"field": "value é"})
    assert response.status_code == 200, response.text[:2000]
    result = response.json()
    assert result == {"framework": app, "name": "blob.bin", "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest(), "field": "value é"}


@pytest.mark.parametrize("app", APPS)
def test_uwsgi_raw_chunked_upload_of_10_mib(deployment, app):
    """A chunked request body: nginx buffers it (uwsgi needs a length) and passes it on."""
    data = os.urandom(10 * 1024 * 1024)

    def pieces():
        for offset in range(0, len(data), 300_000):
            yield data[offset:offset + 300_000]

    with deployment.client(app, "tcp", "http", timeout=60) as client:
        response = client.post("/upload-raw", content=pieces())
    assert response.status_code == 200, response.text[:2000]
    assert response.json() == {"framework": app, "size": len(data),
                               "sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("app", APPS)
def test_uwsgi_streams_in_pieces(deployment, app, transport):
    token = uuid.uuid4().hex
    with deployment.client(app, transport, "https") as client, \
            deployment.client(app, transport, "https") as releaser:
        def release(part: str) -> None:
            response = releaser.get(f"/release?token={token}")
            assert response.status_code == 200 and response.json()["released"] is True

        parts = read_stream_in_pieces(client, f"/stream?token={token}&parts=3", release, parts=3)
    assert parts == [f"part {index} from {app}" for index in range(3)]


# ------------------------------------------------------------------------- trust


def _uwsgi_packet(variables: dict[str, str], body: bytes = b"") -> bytes:
    """A uwsgi request (modifier1 0): a 4-byte header, then the vars block, then the body."""
    block = b""
    for key, value in variables.items():
        key_bytes, value_bytes = key.encode("latin-1"), value.encode("latin-1")
        block += struct.pack("<H", len(key_bytes)) + key_bytes + struct.pack("<H", len(value_bytes)) + value_bytes
    return struct.pack("<BHB", 0, len(block), 0) + block + body


SPOOFED = {"REQUEST_METHOD": "GET", "REQUEST_URI": "/who", "PATH_INFO": "/who", "QUERY_STRING": "",
           "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_SCHEME": "https", "HTTPS": "on",
           "REMOTE_ADDR": "6.6.6.6", "REMOTE_PORT": "4242", "SERVER_NAME": HOST,
           "SERVER_PORT": "443", "HTTP_HOST": HOST, "CONTENT_LENGTH": ""}


def _exchange(sock: socket.socket, data: bytes, timeout: float = 10.0) -> bytes:
    sock.sendall(data)
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        received += chunk
    else:
        raise AssertionError(f"connection neither answered nor closed: {received!r}")
    return received


def test_uwsgi_socket_believes_allowed_peers_only(deployment):
    port = deployment.tcp_ports["flask"]
    packet = _uwsgi_packet(SPOOFED)
    # Control: from 127.0.0.1 (in the default --uwsgi-allow-from) the same packet is served,
    # and the variables are believed: the packet is a valid request.
    with connect_from("127.0.0.1", port, local_address="127.0.0.1") as sock:
        answer = _exchange(sock, packet)
    assert answer.split(b"\r\n", 1)[0].endswith(b"200 OK"), answer[:300]
    assert b'"remote_addr":"6.6.6.6"' in answer.replace(b" ", b""), answer[-600:]
    # From 127.0.0.2 (not allowed): no answer, the connection is closed, a log line says why.
    server = deployment.gannets["flask"]
    before = server.log
    with connect_from("127.0.0.1", port, local_address=CLIENT_ADDRESS) as sock:
        answer = _exchange(sock, packet)
    assert answer == b"", answer[:300]
    deadline = time.monotonic() + 10
    while CLIENT_ADDRESS not in server.log[len(before):]:
        assert time.monotonic() < deadline, f"no log line about {CLIENT_ADDRESS}:\n{server.log[len(before):]}"
        time.sleep(0.05)


# ------------------------------------------------------------------------- mount point, scheme

NGINX_MOUNTED_SERVER = """
    server {{
        listen 127.0.0.1:{http};
        # An ASGI app mounted below /app/ (Gannet runs with --root-path /app): nginx passes
        # the client's whole URI as REQUEST_URI, prefix included.
        location /app/ {{
            include {uwsgi_params};
            uwsgi_pass 127.0.0.1:{asgi};
        }}
        # TLS ended by a balancer in front of nginx: nginx speaks http itself (its stock
        # uwsgi_params send REQUEST_SCHEME http) and tells the app with HTTPS on, as uWSGI
        # sites do.
        location /behind-tls/ {{
            include {uwsgi_params};
            uwsgi_param HTTPS on;
            uwsgi_pass 127.0.0.1:{wsgi};
        }}
    }}
"""


@pytest.fixture(scope="module")
def mounted(tmp_path_factory):
    if not NGINX_UWSGI_PARAMS.exists():
        pytest.skip(f"{NGINX_UWSGI_PARAMS} (shipped with nginx) is missing")
    directory = tmp_path_factory.mktemp("uwsgi-mounted")
    asgi, wsgi, http = free_port(), free_port(), free_port()
    with gannet_listening_on("uwsgi_apps:asgi_facts", ("--uwsgi-socket", f"127.0.0.1:{asgi}",
                                                       "--root-path", "/app"), tcp_ports=(asgi,)), \
            gannet_listening_on("uwsgi_apps:wsgi_facts", ("--uwsgi-socket", f"127.0.0.1:{wsgi}"),
                                tcp_ports=(wsgi,)):
        nginx = start_nginx(directory / "nginx", NGINX_MOUNTED_SERVER.format(
            http=http, uwsgi_params=NGINX_UWSGI_PARAMS, asgi=asgi, wsgi=wsgi), [http])
        try:
            yield f"http://127.0.0.1:{http}"
        finally:
            nginx.stop()


@pytest.mark.parametrize("target, path", [("/app/info?x=1", "/app/info"), ("/app/", "/app/"),
                                          ("/app/app/x", "/app/app/x")])
def test_uwsgi_asgi_app_below_a_prefix_sees_its_path_once(mounted, target, path):
    with http_client(mounted, headers={"host": HOST}) as client:
        response = client.get(target)
    assert response.status_code == 200, response.text
    facts = response.json()
    assert (facts["path"], facts["raw_path"], facts["root_path"]) == (path, path, "/app"), facts


def test_uwsgi_param_https_on_behind_a_tls_balancer_is_https(mounted):
    with http_client(mounted, headers={"host": HOST}) as client:
        environ = client.get("/behind-tls/x").json()
    assert environ["wsgi.url_scheme"] == "https", environ
    assert environ["PATH_INFO"] == "/behind-tls/x", environ
