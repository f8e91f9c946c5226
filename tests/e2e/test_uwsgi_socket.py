"""The uwsgi protocol end to end: ``python -m gannet APP --uwsgi-socket ADDRESS`` and a raw
uwsgi client written here from the protocol spec (what nginx ``uwsgi_pass`` sends: a 4-byte
header, u16 LE-sized vars, then CONTENT_LENGTH bytes of body; the answer is plain HTTP/1.x
ending with our close). The real nginx test lives in tests/frontends/."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import RunningServer, start_server

CLIENT_VARS = [
    (b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/info?q=1&r=%20"), (b"QUERY_STRING", b"q=1&r=%20"),
    (b"PATH_INFO", b"/info"), (b"SERVER_PROTOCOL", b"HTTP/1.1"), (b"REQUEST_SCHEME", b"https"),
    (b"HTTPS", b"on"), (b"REMOTE_ADDR", b"203.0.113.5"), (b"REMOTE_PORT", b"4444"),
    (b"SERVER_NAME", b"www.example.com"), (b"SERVER_PORT", b"443"),
    (b"CONTENT_TYPE", b""), (b"CONTENT_LENGTH", b""),
    (b"HTTP_HOST", b"www.example.com"), (b"HTTP_X_FOO", b"bar"), (b"HTTP_USER_AGENT", b"test/1"),
]


# ---------------------------------------------------------------- a raw uwsgi client
def encode(variables: list[tuple[bytes, bytes]], modifier1: int = 0) -> bytes:
    block = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
                     for k, v in variables)
    return struct.pack("<BHB", modifier1, len(block), 0) + block


def request_vars(method: bytes = b"GET", uri: bytes = b"/", body: bytes | None = None,
                 extra: list[tuple[bytes, bytes]] = ()) -> list[tuple[bytes, bytes]]:
    """What nginx's uwsgi_params send for a plain request from 127.0.0.1."""
    path, _, query = uri.partition(b"?")
    return [(b"QUERY_STRING", query), (b"REQUEST_METHOD", method), (b"CONTENT_TYPE", b""),
            (b"CONTENT_LENGTH", b"%d" % len(body) if body is not None else b""),
            (b"REQUEST_URI", uri), (b"PATH_INFO", path), (b"SERVER_PROTOCOL", b"HTTP/1.1"),
            (b"REQUEST_SCHEME", b"http"), (b"REMOTE_ADDR", b"127.0.0.1"), (b"REMOTE_PORT", b"40000"),
            (b"SERVER_PORT", b"80"), (b"SERVER_NAME", b"localhost"), (b"HTTP_HOST", b"localhost"),
            *extra]


def connect(address: Any, timeout: float = 10.0) -> socket.socket:
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address)
        return sock
    return socket.create_connection(address, timeout=timeout)


def read_to_eof(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes (bounded by a deadline)."""
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # a close with our bytes unread: the end all the same
            chunk = b""
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
    raise AssertionError(f"no EOF within {timeout}s; got {b''.join(chunks)[:200]!r}")


def exchange(address: Any, data: bytes, timeout: float = 10.0) -> bytes:
    with connect(address, timeout) as sock:
        sock.sendall(data)
        return read_to_eof(sock, timeout)


class Response:
    def __init__(self, raw: bytes) -> None:
        head, separator, self.body = raw.partition(b"\r\n\r\n")
        assert separator, f"no complete response head in {raw[:200]!r}"
        lines = head.split(b"\r\n")
        self.status_line = lines[0]
        version, status, _ = lines[0].split(b" ", 2)
        assert version == b"HTTP/1.1", lines[0]
        self.status = int(status)
        self.headers = [tuple(line.split(b": ", 1)) for line in lines[1:]]

    def header(self, name: bytes) -> bytes | None:
        values = [v for k, v in self.headers if k.lower() == name]
        assert len(values) <= 1, f"repeated {name!r}"
        return values[0] if values else None


def call(address: Any, variables: list[tuple[bytes, bytes]], body: bytes = b"") -> Response:
    return Response(exchange(address, encode(variables) + body))


# ---------------------------------------------------------------- servers
def start_uwsgi(app: str, *args: str, address: str = "127.0.0.1:0") -> tuple[RunningServer, Any]:
    """Gannet listening for uwsgi only; returns the server and its address."""
    server = start_server(app, "--uwsgi-socket", address, *args, port_args=(), wait=False)
    try:
        match = server.wait_for_log(r"Listening on uwsgi://(\S+)", timeout=20)
    except AssertionError:
        server.proc.kill()
        raise
    where = match.group(1)
    if where.startswith("unix:"):
        return server, where[len("unix:"):]
    host, _, port = where.rpartition(":")
    return server, (host.strip("[]"), int(port))


@pytest.fixture
def uwsgi_server() -> Iterator:
    started: list[RunningServer] = []

    def factory(app: str, *args: str, **kwargs: Any) -> tuple[RunningServer, Any]:
        server, address = start_uwsgi(app, *args, **kwargs)
        started.append(server)
        return server, address

    yield factory
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=5)


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def served(request) -> Iterator[tuple[str, RunningServer, Any]]:
    """One WSGI and one ASGI server for the tests that need no special option."""
    server, address = start_uwsgi(f"uwsgi_apps:{request.param}")
    yield request.param, server, address
    server.stop()


# ---------------------------------------------------------------- requests
def test_get_reaches_the_app_with_the_vars_identity(served):
    kind, server, address = served
    response = call(address, CLIENT_VARS)
    assert response.status == 200
    facts = json.loads(response.body)
    if kind == "wsgi":
        assert facts["REMOTE_ADDR"] == "203.0.113.5" and facts["REMOTE_PORT"] == "4444"
        assert facts["SERVER_NAME"] == "www.example.com" and facts["SERVER_PORT"] == "443"
        assert facts["wsgi.url_scheme"] == "https"
        assert facts["SERVER_PROTOCOL"] == "HTTP/1.1"
        assert facts["REQUEST_METHOD"] == "GET" and facts["PATH_INFO"] == "/info"
        assert facts["QUERY_STRING"] == "q=1&r=%20"
        assert facts["HTTP_X_FOO"] == "bar" and facts["HTTP_HOST"] == "www.example.com"
        assert "CONTENT_LENGTH" not in facts or facts["CONTENT_LENGTH"] in ("", "0")
    else:
        assert facts["client"] == ["203.0.113.5", 4444]
        assert facts["server"] == ["www.example.com", 443]
        assert facts["scheme"] == "https" and facts["http_version"] == "1.1"
        assert facts["path"] == "/info" and facts["query_string"] == "q=1&r=%20"
        assert ["x-foo", "bar"] in facts["headers"] and ["host", "www.example.com"] in facts["headers"]
        assert not any(name in ("content-length", "content-type") for name, _ in facts["headers"])
    # The access line names the client the vars gave, with the client's protocol version.
    server.wait_for_log(r'203\.0\.113\.5:4444 - "GET /info\?q=1&r=%20 HTTP/1\.1" 200')


def test_post_body_is_echoed(served):
    _, _, address = served
    body = b"name=value&x=" + b"y" * 5000
    response = call(address, request_vars(b"POST", b"/echo", body), body)
    assert response.status == 200
    assert response.body == body
    assert response.header(b"content-length") == b"%d" % len(body)


def test_ten_mib_upload(served):
    _, _, address = served
    body = os.urandom(10 * 1024 * 1024)
    response = call(address, request_vars(b"POST", b"/upload", body), body)
    assert response.status == 200
    assert response.body == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()


def test_streamed_response_is_close_delimited_never_chunked(served):
    _, _, address = served
    response = call(address, request_vars(uri=b"/stream"))
    assert response.status == 200
    assert response.header(b"content-length") is None
    assert response.header(b"transfer-encoding") is None
    assert response.body == b"one,two,three"  # read to our close: the close ended the body


def test_head_has_the_length_and_no_body(served):
    _, _, address = served
    response = call(address, request_vars(b"HEAD", b"/head"))
    assert response.status == 200
    assert response.header(b"content-length") == b"5"
    assert response.body == b""


def test_every_response_ends_with_the_close(served):
    # uwsgi has no keep-alive: a second request on the connection is never read.
    _, _, address = served
    with connect(address) as sock:
        sock.sendall(encode(request_vars()) + encode(request_vars(uri=b"/head")))
        raw = read_to_eof(sock)
    assert raw.count(b"HTTP/1.1 ") == 1
    assert Response(raw).header(b"connection") == b"close"


@pytest.mark.parametrize("remote_addr, client, scheme", [
    # A client's own X-Forwarded-* fields reach us among the vars (nginx adds none): they
    # must not make it someone else, or https.
    (b"203.0.113.5", ["203.0.113.5", 4444], "http"),
    # A client that is itself a trusted proxy (--forwarded-allow-ips) is believed.
    (b"127.0.0.1", ["198.51.100.20", 0], "https"),
])
def test_forwarding_fields_count_only_from_a_trusted_remote_addr(served, remote_addr, client, scheme):
    kind, _, address = served
    variables = request_vars(uri=b"/info", extra=[
        (b"REMOTE_ADDR", remote_addr), (b"REMOTE_PORT", b"4444"),
        (b"HTTP_X_FORWARDED_FOR", b"198.51.100.20"), (b"HTTP_X_FORWARDED_PROTO", b"https")])
    facts = json.loads(call(address, variables).body)
    if kind == "wsgi":
        assert [facts["REMOTE_ADDR"], int(facts["REMOTE_PORT"])] == client
        assert facts["wsgi.url_scheme"] == scheme
    else:
        assert facts["client"] == client and facts["scheme"] == scheme


# ---------------------------------------------------------------- refusals
def test_body_over_the_limit_is_413(uwsgi_server):
    _server, address = uwsgi_server("uwsgi_apps:wsgi", "--limit-request-body", "1000")
    body = b"x" * 2000
    response = call(address, request_vars(b"POST", b"/echo", body), body)
    assert response.status == 413
    small = call(address, request_vars(b"POST", b"/echo", b"x" * 1000), b"x" * 1000)
    assert small.status == 200 and small.body == b"x" * 1000


@pytest.mark.parametrize("data, reason", [
    (struct.pack("<BHB", 0, 5, 0) + b"\x05\x00KEY", "truncated uwsgi var"),
    (struct.pack("<BHB", 0, 6, 0) + b"\x01\x00A\x09\x00x", "truncated uwsgi var"),
    (encode([(b"REQUEST_URI", b"/")]), "without REQUEST_METHOD"),
    (encode(request_vars(extra=[(b"HTTP_X_BAD", b"a\r\nb")])), "control character"),
    (encode(request_vars(), modifier1=7), "modifier1 7"),
])
def test_malformed_packets_get_400_and_the_close(served, data, reason):
    _, server, address = served
    raw = exchange(address, data)
    response = Response(raw)
    assert response.status == 400
    assert response.header(b"connection") == b"close"
    server.wait_for_log(r"refused request from .*: 400 .*" + reason.replace("(", r"\("))


def test_partial_packet_is_timed_out(uwsgi_server):
    server, address = uwsgi_server("uwsgi_apps:asgi", "--header-read-timeout", "1")
    data = encode(request_vars())
    with connect(address, timeout=15) as sock:
        sock.sendall(data[: len(data) // 2])  # half a packet, then nothing
        started = time.monotonic()
        raw = read_to_eof(sock, timeout=15)
    assert Response(raw).status == 408
    assert time.monotonic() - started < 10
    server.wait_for_log("408 request head not received in time")


def test_disallowed_peer_is_closed_and_unix_peers_are_served(uwsgi_server):
    path = os.path.join(tempfile.mkdtemp(prefix="gannet-uwsgi-"), "s.sock")
    server, address = uwsgi_server("uwsgi_apps:asgi", "--uwsgi-allow-from", "10.0.0.1",
                                   "--uwsgi-socket", f"unix:{path}")
    with connect(address) as sock:
        try:
            sock.sendall(encode(request_vars()))
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert read_to_eof(sock) == b""
    server.wait_for_log(r"closing the uwsgi connection from 127\.0\.0\.1: not in --uwsgi-allow-from")
    server.wait_for_log(r"Listening on uwsgi://unix:")
    response = call(path, request_vars())
    assert response.status == 200 and response.body == b"hello"


def test_allowed_peer_is_served(uwsgi_server):
    _server, address = uwsgi_server("uwsgi_apps:asgi", "--uwsgi-allow-from", "10.0.0.1,127.0.0.0/8")
    assert call(address, request_vars()).status == 200


# ---------------------------------------------------------------- WebSockets
def test_websocket_over_uwsgi(served):
    """nginx's uwsgi module tunnels a 101 to a client that asked for an Upgrade."""
    kind, _, address = served
    key = base64.b64encode(os.urandom(16))
    variables = request_vars(uri=b"/ws", extra=[
        (b"REMOTE_ADDR", b"198.51.100.7"), (b"HTTP_UPGRADE", b"websocket"), (b"HTTP_CONNECTION", b"Upgrade"),
        (b"HTTP_SEC_WEBSOCKET_KEY", key), (b"HTTP_SEC_WEBSOCKET_VERSION", b"13")])
    if kind == "wsgi":
        # A WSGI app has no WebSockets: the Upgrade is ignored (RFC 9110 §7.8), the app answers.
        response = call(address, variables)
        assert response.status == 200 and response.body == b"hello"
        return
    with connect(address) as sock:
        sock.sendall(encode(variables))
        head = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in head and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            assert chunk, f"closed after {head!r}"
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        response = Response(head + b"\r\n\r\n")
        assert response.status == 101
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        assert response.header(b"sec-websocket-accept") == accept
        mask = os.urandom(4)
        payload = b"hi"
        sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask
                     + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        while len(rest) < 2 or len(rest) < 2 + (rest[1] & 0x7F):
            chunk = sock.recv(4096)
            assert chunk, f"closed before the echo; got {rest!r}"
            rest += chunk
        assert rest[0] == 0x81
        # the REMOTE_ADDR var is the client, and the scope says HTTP/1.1
        assert rest[2:2 + (rest[1] & 0x7F)] == b"198.51.100.7 1.1: hi"


def test_behind_a_proxy_header(uwsgi_server):
    """--proxy-protocol in front of a uwsgi socket: the gate hands over to the uwsgi
    protocol (with the scheme argument it passes); the PROXY-named peer is the one that
    speaks uwsgi, so it must be allowed; the vars still say who the client is."""
    _server, address = uwsgi_server("uwsgi_apps:asgi", "--proxy-protocol")
    variables = request_vars(uri=b"/info", extra=[])
    variables = [(k, b"203.0.113.50" if k == b"REMOTE_ADDR" else v) for k, v in variables]
    response = Response(exchange(address, b"PROXY TCP4 127.0.0.1 10.0.0.1 5555 3031\r\n"
                                 + encode(variables)))
    assert response.status == 200
    assert b"203.0.113.50" in response.body
    assert exchange(address, b"PROXY TCP4 10.9.8.7 10.0.0.1 5555 3031\r\n"
                    + encode(variables)) == b""  # the named peer is not in --uwsgi-allow-from


def test_bytes_after_a_large_body_are_not_parsed_as_http(uwsgi_server):
    """A body big enough to bypass the parser (h1's raw path), then junk: the request is
    answered, the junk is never taken for an HTTP request (no 400 after the 200)."""
    _server, address = uwsgi_server("uwsgi_apps:asgi")
    body = b"x" * (256 * 1024)
    raw = exchange(address, encode(request_vars(b"POST", b"/echo", body)) + body
                   + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    response = Response(raw)
    assert response.status == 200
    assert raw.count(b"HTTP/1.1 ") == 1
    assert response.body == body


# ---------------------------------------------------------------- the scheme, as uWSGI reads it
@pytest.mark.parametrize("request_scheme, extra, scheme", [
    # nginx behind a load balancer that terminates TLS: the stock uwsgi_params send nginx's
    # own REQUEST_SCHEME (http) and the site adds "uwsgi_param HTTPS on;". uWSGI takes the
    # scheme from UWSGI_SCHEME, else from HTTPS, and never reads REQUEST_SCHEME.
    (b"http", [(b"HTTPS", b"on")], "https"),
    (b"https", [(b"HTTPS", b"off")], "http"),
    (b"http", [(b"UWSGI_SCHEME", b"https"), (b"HTTPS", b"off")], "https"),
    # An empty HTTPS is no HTTPS at all (uWSGI: https_len > 0): REQUEST_SCHEME decides.
    (b"https", [(b"HTTPS", b"")], "https"),
])
def test_scheme_is_uwsgi_scheme_then_https_then_request_scheme(served, request_scheme, extra, scheme):
    kind, _, address = served
    variables = [(k, request_scheme if k == b"REQUEST_SCHEME" else v)
                 for k, v in request_vars(uri=b"/info")] + extra
    facts = json.loads(call(address, variables).body)
    assert (facts["wsgi.url_scheme"] if kind == "wsgi" else facts["scheme"]) == scheme


# ---------------------------------------------------------------- mounted below --root-path
@pytest.mark.parametrize("uri, path, script_name, path_info", [
    # REQUEST_URI is what the client sent: nginx's $request_uri and Apache's original URI
    # carry the mount point (no front end strips it on this hop), so the app sees it once.
    (b"/app/info?x=1", "/app/info", "/app", "/info"),
    (b"/app", "/app", "/app", ""),
    (b"/app/app/x", "/app/app/x", "/app", "/app/x"),  # a path that repeats the mount's name
    (b"http://www.example.com/app/info", "/app/info", "/app", "/info"),  # absolute-form (Apache)
    # A target without the prefix (a custom REQUEST_URI) is under the mount, as over HTTP.
    (b"/info", "/app/info", "/app", "/info"),
])
@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_root_path_appears_once_in_the_path(uwsgi_server, kind, uri, path, script_name, path_info):
    _server, address = uwsgi_server(f"uwsgi_apps:{kind}_facts", "--root-path", "/app")
    extra = [(b"SCRIPT_NAME", b"/app")]  # what Apache's mod_proxy_uwsgi sends for ProxyPass /app/
    variables = [(k, uri if k == b"REQUEST_URI" else v) for k, v in request_vars(extra=extra)]
    facts = json.loads(call(address, variables).body)
    if kind == "asgi":
        assert (facts["path"], facts["raw_path"], facts["root_path"]) == (path, path, "/app")
    else:
        assert (facts["SCRIPT_NAME"], facts["PATH_INFO"]) == (script_name, path_info)


# ---------------------------------------------------------------- who speaks uwsgi behind a PROXY header
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def _proxy_v2_unix(source: bytes = b"/run/haproxy/client.sock") -> bytes:
    addresses = source.ljust(108, b"\x00") + b"/run/gannet/uwsgi.sock".ljust(108, b"\x00")
    return PROXY_V2_SIGNATURE + bytes([0x21, 0x31]) + struct.pack("!H", len(addresses)) + addresses


@pytest.mark.parametrize("header", [
    b"PROXY UNKNOWN\r\n",                 # v1: a relayed client the proxy does not name
    _proxy_v2_unix(),                     # v2: a client on the proxy's own Unix socket
], ids=["v1-unknown", "v2-unix"])
def test_a_relayed_client_without_an_address_may_not_speak_uwsgi(uwsgi_server, header):
    """The uwsgi vars say who the client is, so only --uwsgi-allow-from peers may send them.
    Behind a PROXY header the peer that speaks uwsgi is the relayed client: when the header
    gives it no address, nothing in the allow-list can be checked (the proxy's own address
    is not the speaker's), so the connection is refused, as an unlisted address is."""
    server, address = uwsgi_server("uwsgi_apps:asgi", "--proxy-protocol")
    assert exchange(address, header + encode(request_vars(uri=b"/info"))) == b""
    server.wait_for_log(r"closing the uwsgi connection relayed by 127\.0\.0\.1: its PROXY header "
                        r"names no client address")
    # The proxy's own connection (v2 LOCAL: a health check) is the proxy speaking: allowed.
    local = PROXY_V2_SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    assert Response(exchange(address, local + encode(request_vars()))).status == 200


def test_any_relayed_client_may_speak_uwsgi_with_allow_from_star(uwsgi_server):
    _server, address = uwsgi_server("uwsgi_apps:asgi", "--proxy-protocol", "--uwsgi-allow-from", "*")
    assert Response(exchange(address, b"PROXY UNKNOWN\r\n" + encode(request_vars()))).status == 200


def test_on_a_unix_listener_the_relayed_client_must_be_allowed_too(uwsgi_server):
    """A Unix listener's permissions vouch for the proxy that connects, not for the clients
    it relays: the named client is checked as on a TCP listener."""
    path = os.path.join(tempfile.mkdtemp(prefix="gannet-uwsgi-"), "s.sock")
    server, address = uwsgi_server("uwsgi_apps:asgi", "--proxy-protocol", address=f"unix:{path}")
    assert exchange(address, b"PROXY TCP4 10.9.8.7 10.0.0.1 5555 3031\r\n"
                    + encode(request_vars())) == b""
    server.wait_for_log(r"closing the uwsgi connection from 10\.9\.8\.7: not in --uwsgi-allow-from")
    allowed = Response(exchange(address, b"PROXY TCP4 127.0.0.1 10.0.0.1 5555 3031\r\n"
                                + encode(request_vars())))
    assert allowed.status == 200


def test_a_uwsgi_socket_beside_tls_listeners_is_http_without_scheme_vars(uwsgi_server, tmp_path):
    """--ssl-certfile makes the HTTP listeners https; the uwsgi socket stays plain, so a
    request whose vars name no scheme is http, not the TLS listeners' https."""
    trustme = pytest.importorskip("trustme")
    cert = tmp_path / "server.pem"
    trustme.CA().issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(cert))
    _server, address = uwsgi_server("uwsgi_apps:asgi", "--port", "0", "--ssl-certfile", str(cert))
    variables = [(k, v) for k, v in request_vars(uri=b"/info") if k != b"REQUEST_SCHEME"]
    response = call(address, variables)
    assert response.status == 200
    assert json.loads(response.body)["scheme"] == "http"
