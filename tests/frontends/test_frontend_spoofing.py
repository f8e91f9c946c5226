"""Clients that lie about who they are, straight to Gannet (issue 12). Forwarding headers
(X-Forwarded-*, Forwarded) and PROXY protocol headers are only believed from the peers
Gannet is told to trust; from anyone else they change nothing the app sees, and a PROXY
header from an untrusted peer closes the connection (with a log line). Each lie is paired
with a control: the same bytes from a trusted peer *do* change what the app sees, so the
assertions can fail. (Lies through nginx and Apache: test_frontend_nginx.py and
test_frontend_apache.py, ``*_client_sent_forwarding_headers_do_not_win``.)
"""
from __future__ import annotations

import ipaddress
import json
import re
import struct
import time

import pytest

from frontend_services import CLIENT_ADDRESS, connect_from, gannets, http_client, websocket

SPOOF_HEADERS = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Port": "8443",
    "X-Forwarded-Prefix": "/evil",
    "Forwarded": 'for=198.51.100.9;proto=https;host="evil.example"',
}
# Forwarded alone (no X-Forwarded-*), which a trusted peer would have believed.
SPOOF_FORWARDED = {"Forwarded": 'for=198.51.100.9;proto=https;host="evil.example"'}

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1(source: str = "198.51.100.9", port: int = 4242) -> bytes:
    return f"PROXY TCP4 {source} 127.0.0.1 {port} 80\r\n".encode()


def proxy_v2(source: str = "198.51.100.9", port: int = 4242, local: bool = False) -> bytes:
    command = 0x20 if local else 0x21               # version 2, LOCAL / PROXY
    addresses = (ipaddress.IPv4Address(source).packed + ipaddress.IPv4Address("127.0.0.1").packed
                 + struct.pack("!HH", port, 80))
    return V2_SIGNATURE + bytes([command, 0x11]) + struct.pack("!H", len(addresses)) + addresses


@pytest.fixture(scope="module")
def servers():
    specs = {
        # Default trust (127.0.0.1, unix); no PROXY protocol.
        "asgi": ("proxy_identity:asgi_app", ("--port", "0"), {}),
        "wsgi": ("proxy_identity:wsgi_app", ("--port", "0"), {}),
        # Trusts only some other address, so not 127.0.0.1 either.
        "elsewhere": ("proxy_identity:asgi_app", ("--port", "0", "--forwarded-allow-ips", "10.9.9.9"), {}),
        # Forwarding headers switched off altogether (from 127.0.0.1, normally trusted).
        "off": ("proxy_identity:asgi_app", ("--port", "0", "--no-proxy-headers"), {}),
        # The environment variable uvicorn and gunicorn read, trusting a network with 127.0.0.2.
        "env": ("proxy_identity:asgi_app", ("--port", "0"), {"FORWARDED_ALLOW_IPS": "127.0.0.0/30"}),
        # PROXY protocol from the default --proxy-allow-from (127.0.0.1, ::1, unix).
        "pp": ("proxy_identity:asgi_app", ("--port", "0", "--proxy-protocol"), {}),
    }
    with gannets(*specs.values()) as started:
        yield dict(zip(specs, started))


def _who(server, local_address: str, headers: dict[str, str] | None = None) -> dict:
    with http_client(f"http://127.0.0.1:{server.port}", local_address=local_address,
                     headers={"host": "real.example"}) as client:
        response = client.get("/who", headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def _view(identity: dict) -> dict:
    """What must not change: everything but the client's port and the headers themselves."""
    view = {key: value for key, value in identity.items() if key not in ("forwarding", "REMOTE_PORT")}
    if view.get("client"):
        view["client"] = view["client"][0]
    return view


@pytest.mark.parametrize("headers", [SPOOF_HEADERS, SPOOF_FORWARDED], ids=["x-forwarded", "forwarded"])
@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_untrusted_client_cannot_choose_its_identity(servers, interface, headers):
    server = servers[interface]
    honest = _who(server, CLIENT_ADDRESS)
    lying = _who(server, CLIENT_ADDRESS, headers)
    assert lying["forwarding"], "the headers were not even sent"
    assert _view(lying) == _view(honest)
    if interface == "asgi":
        assert lying["client"][0] == CLIENT_ADDRESS and lying["scheme"] == "http"
        assert lying["host"] == "real.example" and lying["root_path"] == ""
    else:
        assert lying["REMOTE_ADDR"] == CLIENT_ADDRESS and lying["wsgi.url_scheme"] == "http"
        assert lying["HTTP_HOST"] == "real.example" and lying["SCRIPT_NAME"] == ""


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_control_the_same_headers_from_a_trusted_peer_are_believed(servers, interface):
    lying = _who(servers[interface], "127.0.0.1", SPOOF_HEADERS)
    if interface == "asgi":
        assert lying["client"][0] == "203.0.113.7" and lying["scheme"] == "https", lying
        assert lying["server"] == ["evil.example", 8443] and lying["root_path"] == "/evil", lying
    else:
        assert lying["REMOTE_ADDR"] == "203.0.113.7" and lying["wsgi.url_scheme"] == "https", lying
        assert lying["SERVER_NAME"] == "evil.example" and lying["SCRIPT_NAME"] == "/evil", lying
    only_forwarded = _who(servers[interface], "127.0.0.1", SPOOF_FORWARDED)
    client = only_forwarded["client"][0] if interface == "asgi" else only_forwarded["REMOTE_ADDR"]
    assert client == "198.51.100.9", only_forwarded


@pytest.mark.parametrize("name", ["elsewhere", "off"])
def test_headers_from_a_peer_outside_forwarded_allow_ips_change_nothing(servers, name):
    identity = _who(servers[name], "127.0.0.1", SPOOF_HEADERS)
    assert identity["client"][0] == "127.0.0.1" and identity["scheme"] == "http", identity
    assert identity["host"] == "real.example" and identity["root_path"] == "", identity


def test_forwarded_allow_ips_environment_variable(servers):
    """FORWARDED_ALLOW_IPS=127.0.0.0/30 trusts 127.0.0.2 (network form, uvicorn's variable)."""
    identity = _who(servers["env"], CLIENT_ADDRESS, SPOOF_HEADERS)
    assert identity["client"][0] == "203.0.113.7" and identity["scheme"] == "https", identity
    identity = _who(servers["env"], "127.0.0.5", SPOOF_HEADERS)   # outside 127.0.0.0/30
    assert identity["client"][0] == "127.0.0.5" and identity["scheme"] == "http", identity


def test_untrusted_websocket_cannot_choose_its_identity(servers):
    port = servers["asgi"].port
    with websocket(f"ws://real.example:{port}/ws", address=("127.0.0.1", port),
                   headers=SPOOF_HEADERS) as ws:
        identity = json.loads(ws.recv(timeout=10))
    assert identity["client"][0] == CLIENT_ADDRESS and identity["scheme"] == "ws", identity
    assert identity["host"] == f"real.example:{port}" and identity["root_path"] == "", identity
    # Control: from 127.0.0.1 the same headers are believed, and the scheme becomes wss.
    with websocket(f"ws://real.example:{port}/ws", address=("127.0.0.1", port),
                   local_address="127.0.0.1", headers=SPOOF_HEADERS) as ws:
        identity = json.loads(ws.recv(timeout=10))
    assert identity["client"][0] == "203.0.113.7" and identity["scheme"] == "wss", identity


# ------------------------------------------------------------------------- PROXY protocol

REQUEST = b"GET /who HTTP/1.1\r\nHost: real.example\r\nConnection: close\r\n\r\n"


def _send(port: int, local_address: str, data: bytes, timeout: float = 10.0) -> tuple[bytes, int]:
    """Send ``data``; return (everything received until the server closed, our port)."""
    with connect_from("127.0.0.1", port, local_address) as sock:
        local_port = sock.getsockname()[1]
        try:
            sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            return b"", local_port
        received = b""
        deadline = time.monotonic() + timeout
        while True:
            assert time.monotonic() < deadline, f"neither answered nor closed: {received!r}"
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                continue
            if not chunk:
                break
            received += chunk
    return received, local_port


def _identity(answer: bytes) -> dict:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer[:300]
    return json.loads(body)


def _closed_with_log(server, local_port: int, local_address: str, reason: str) -> str:
    pattern = rf"Connection from {re.escape(local_address)}:{local_port} closed: [^\n]*{reason}"
    return server.wait_for_log(pattern).group(0)


@pytest.mark.parametrize("header", [proxy_v1(), proxy_v2()], ids=["v1", "v2"])
def test_proxy_header_from_a_peer_not_allowed_closes_the_connection(servers, header):
    server = servers["pp"]
    answer, local_port = _send(server.port, CLIENT_ADDRESS, header + REQUEST)
    assert answer == b"", answer[:300]
    _closed_with_log(server, local_port, CLIENT_ADDRESS, "not in --proxy-allow-from")
    # The same peer without a header is served, as itself.
    identity = _identity(_send(server.port, CLIENT_ADDRESS, REQUEST)[0])
    assert identity["client"][0] == CLIENT_ADDRESS, identity


@pytest.mark.parametrize("header", [proxy_v1(), proxy_v2()], ids=["v1", "v2"])
def test_control_proxy_header_from_an_allowed_peer_names_the_client(servers, header):
    identity = _identity(_send(servers["pp"].port, "127.0.0.1", header + REQUEST)[0])
    assert identity["client"] == ["198.51.100.9", 4242], identity


def test_proxy_v2_local_keeps_the_socket_address(servers):
    answer, local_port = _send(servers["pp"].port, "127.0.0.1", proxy_v2(local=True) + REQUEST)
    identity = _identity(answer)
    assert identity["client"] == ["127.0.0.1", local_port], identity


@pytest.mark.parametrize("data, reason", [
    (REQUEST, "PROXY protocol header"),                                     # none at all
    (b"PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n" + REQUEST, "invalid PROXY protocol header"),
    (V2_SIGNATURE + b"\x99\x11\x00\x0c" + bytes(12) + REQUEST, "invalid PROXY protocol header"),
], ids=["missing", "garbled-v1", "garbled-v2"])
def test_allowed_peer_without_a_valid_proxy_header_is_closed(servers, data, reason):
    server = servers["pp"]
    answer, local_port = _send(server.port, "127.0.0.1", data)
    assert answer == b"", answer[:300]
    _closed_with_log(server, local_port, "127.0.0.1", reason)
