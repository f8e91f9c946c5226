"""--proxy-protocol / --proxy-allow-from, black-box with raw sockets: v1 and v2 headers
from an allowed peer name the client; a missing, garbled, wrong-version or stalled header
closes the connection with a log line; a peer outside the list is served as itself unless
it sends a header. (HAProxy's real send-proxy-v2 is in tests/frontends/.)
"""
from __future__ import annotations

import json
import socket
import struct
import time

import pytest

from conftest import start_server

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(command: int, family: int, addresses: bytes) -> bytes:
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(addresses)) + addresses


def v2_tcp4(src: str, dst: str, sport: int, dport: int) -> bytes:
    return v2(0x1, 0x11, socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport))


def v2_tcp6(src: str, dst: str, sport: int, dport: int) -> bytes:
    return v2(0x1, 0x21, socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
              + struct.pack("!HH", sport, dport))


REQUEST = b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"


def exchange(server, data: bytes, *, local: str | None = None, pieces: int = 1,
             half_close: bool = False) -> bytes:
    """Send ``data`` (in ``pieces``), read until the server closes; b'' if it closed at once."""
    sock = socket.socket()
    sock.settimeout(10)
    if local:
        sock.bind((local, 0))
    sock.connect((server.host, server.port))
    with sock:
        step = max(1, len(data) // pieces)
        try:
            for at in range(0, len(data), step):
                sock.sendall(data[at:at + step])
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            out = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return out
                out += chunk
        except ConnectionResetError:
            return b""


def seen(response: bytes) -> dict:
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


@pytest.fixture
def server(gannet_server):
    return gannet_server("forwarded_apps:asgi", "--proxy-protocol", "--header-read-timeout", "1")


def test_v1_tcp4_names_the_client_and_server(server):
    got = seen(exchange(server, b"PROXY TCP4 198.51.100.7 203.0.113.1 5555 443\r\n" + REQUEST))
    assert got["client"] == ["198.51.100.7", 5555]
    assert got["server"] == ["203.0.113.1", 443]


def test_v1_tcp6(server):
    got = seen(exchange(server, b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 8443\r\n" + REQUEST))
    assert got["client"] == ["2001:db8::1", 40000]


def test_v2_tcp4_and_tcp6_byte_by_byte(server):
    got = seen(exchange(server, v2_tcp4("192.0.2.9", "10.0.0.2", 4444, 80) + REQUEST, pieces=10 ** 6))
    assert got["client"] == ["192.0.2.9", 4444]
    got = seen(exchange(server, v2_tcp6("2001:db8::9", "2001:db8::1", 1234, 443) + REQUEST))
    assert got["client"] == ["2001:db8::9", 1234]


def test_v2_local_and_v1_unknown_keep_the_socket_endpoints(server):
    got = seen(exchange(server, v2(0x0, 0x00, b"") + REQUEST))  # HAProxy's health checks
    assert got["client"][0] == "127.0.0.1" and got["server"][1] == server.port
    got = seen(exchange(server, b"PROXY UNKNOWN\r\n" + REQUEST))
    assert got["client"][0] == "127.0.0.1"


def test_v2_unix_family_means_no_client_address(server):
    block = b"/tmp/a".ljust(108, b"\0") + b"/tmp/b".ljust(108, b"\0")
    got = seen(exchange(server, v2(0x1, 0x31, block) + REQUEST))
    assert got["client"] is None


@pytest.mark.parametrize("data, why", [
    (REQUEST, "not a PROXY protocol header"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".replace(b"TCP4", b"TCP9") + REQUEST, "invalid PROXY protocol header"),
    (b"PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n" + REQUEST, "invalid PROXY protocol header"),
    (V2_SIGNATURE + b"\x21\x11\xff\xff" + b"x" * 64, "invalid PROXY protocol header"),
])
def test_missing_or_garbled_header_from_an_allowed_peer_closes(server, data, why):
    assert exchange(server, data) == b""
    server.wait_for_log(rf"Connection from 127\.0\.0\.1:\d+ closed: .*{why}")
    assert seen(exchange(server, b"PROXY UNKNOWN\r\n" + REQUEST))  # still serving


def test_a_stalled_header_is_cut_off_by_the_header_read_timeout(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"PROXY TCP4 198.51")
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server, not by our timeout
        assert time.monotonic() - started < 8
    server.wait_for_log(r"no PROXY protocol header within 1s")


def test_eof_inside_the_header_is_logged(server):
    assert exchange(server, b"PROXY TCP4 198.51.100.7 ", half_close=True) == b""
    server.wait_for_log(r"closed before its PROXY protocol header was complete")


def test_a_peer_outside_the_allow_list_is_served_as_itself(server):
    got = seen(exchange(server, REQUEST, local="127.0.0.2"))
    assert got["client"][0] == "127.0.0.2"
    got = seen(exchange(server, b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        local="127.0.0.2", pieces=10 ** 6))  # 'P' alone decides nothing yet
    assert got["client"][0] == "127.0.0.2"


@pytest.mark.parametrize("header", [b"PROXY TCP4 6.6.6.6 1.1.1.1 1 2\r\n", v2_tcp4("6.6.6.6", "1.1.1.1", 1, 2)])
def test_a_peer_outside_the_allow_list_sending_a_header_is_disconnected(server, header):
    assert exchange(server, header + REQUEST, local="127.0.0.2") == b""
    server.wait_for_log(r"Connection from 127\.0\.0\.2:\d+ closed: sent a PROXY protocol header "
                        r"but is not in --proxy-allow-from")


def test_mode_v1_refuses_v2_and_v2_refuses_v1(gannet_server):
    one = gannet_server("forwarded_apps:asgi", "--proxy-protocol", "v1")
    assert exchange(one, v2_tcp4("192.0.2.9", "10.0.0.2", 4444, 80) + REQUEST) == b""
    one.wait_for_log(r"PROXY protocol v2 header where --proxy-protocol v1 expects v1")
    assert seen(exchange(one, b"PROXY TCP4 198.51.100.7 203.0.113.1 5555 443\r\n" + REQUEST))
    two = gannet_server("forwarded_apps:asgi", "--proxy-protocol", "v2")
    assert exchange(two, b"PROXY TCP4 198.51.100.7 203.0.113.1 5555 443\r\n" + REQUEST) == b""
    assert seen(exchange(two, v2_tcp4("192.0.2.9", "10.0.0.2", 4444, 80) + REQUEST))


def test_headers_behind_a_proxy_header_are_the_named_clients(server):
    """A layer-4 proxy (AWS NLB, HAProxy mode tcp) passes the client's own X-Forwarded-*
    through: the PROXY-named client, not the trusted proxy, decides whether they count."""
    request = REQUEST.replace(b"Host: h\r\n", b"Host: h\r\nX-Forwarded-Proto: https\r\n"
                              b"X-Forwarded-For: 1.2.3.4\r\n")
    got = seen(exchange(server, b"PROXY TCP4 198.51.100.7 203.0.113.1 5555 443\r\n" + request))
    assert got["client"] == ["198.51.100.7", 5555] and got["scheme"] == "http"
    # A named client that is itself trusted (127.0.0.1 by default) is believed.
    got = seen(exchange(server, b"PROXY TCP4 127.0.0.1 203.0.113.1 5555 443\r\n" + request))
    assert got["client"] == ["1.2.3.4", 0] and got["scheme"] == "https"


def _ssl_tlv(client_flags: int) -> bytes:
    value = bytes([client_flags]) + bytes(4)  # client flags, verify (0: ok)
    return bytes([0x20]) + struct.pack("!H", len(value)) + value


@pytest.mark.parametrize("flags, scheme", [(0x01, "https"), (0x00, "http")])
def test_v2_ssl_tlv_sets_the_scheme(server, flags, scheme):
    """HAProxy send-proxy-v2-ssl: the SSL TLV's PP2_CLIENT_SSL bit says the client used TLS."""
    block = (socket.inet_aton("192.0.2.9") + socket.inet_aton("10.0.0.2") + struct.pack("!HH", 4444, 443)
             + _ssl_tlv(flags))
    got = seen(exchange(server, v2(0x1, 0x11, block) + REQUEST))
    assert got["client"] == ["192.0.2.9", 4444] and got["scheme"] == scheme


def test_unix_socket_peers_are_allowed_by_default(tmp_path):
    path = str(tmp_path / "g.sock")
    server = start_server("forwarded_apps:asgi", "--uds", path, "--proxy-protocol", port_args=())
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(path)
            sock.sendall(b"PROXY TCP4 198.51.100.8 203.0.113.1 5556 443\r\n" + REQUEST)
            out = b""
            while chunk := sock.recv(65536):
                out += chunk
        assert seen(out)["client"] == ["198.51.100.8", 5556]
    finally:
        server.stop()


def test_keep_alive_after_the_header_serves_several_requests(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"PROXY TCP4 198.51.100.7 203.0.113.1 5555 443\r\n")
        for _ in range(3):
            sock.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
            data = b""
            while not data.endswith(b"}"):
                data += sock.recv(65536)
            assert seen(data)["client"] == ["198.51.100.7", 5555]


def test_hundreds_of_bad_headers_leave_the_server_serving(server):
    for index in range(300):
        exchange(server, b"PROXY TCP4 bad\r\n" if index % 2 else b"\r\n\r\n\x00\r\nQUIT\n\x99")
    assert seen(exchange(server, b"PROXY TCP4 198.51.100.7 203.0.113.1 5555 443\r\n" + REQUEST))
    assert server.proc.poll() is None


def test_a_gate_waiting_for_a_header_does_not_hold_up_shutdown(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"PRO")
        server.wait_for_log(r"Listening on")
        server.signal(15)
        assert server.wait(timeout=10) == 0


_UNIX_BLOCK = b"/tmp/a".ljust(108, b"\0") + b"/tmp/b".ljust(108, b"\0")


@pytest.mark.parametrize("header", [
    b"PROXY UNKNOWN\r\n",                   # v1: a relayed connection of an unknown family
    v2(0x1, 0x00, b""),                     # v2 PROXY over UNSPEC: likewise
    v2(0x1, 0x31, _UNIX_BLOCK),             # v2 PROXY: a client on the proxy's Unix socket
], ids=["v1-unknown", "v2-unspec", "v2-unix"])
def test_headers_behind_a_proxy_header_naming_no_client_are_not_believed(server, header):
    """A PROXY header that relays a connection without naming its client leaves nobody
    to vouch for the X-Forwarded-* in it: they are the relayed client's own bytes. The
    proxy's trust (the socket peer) or the 'unix' entry (Gannet's own Unix-socket peers)
    must not make them count."""
    request = REQUEST.replace(b"Host: h\r\n", b"Host: h\r\nX-Forwarded-Proto: https\r\n"
                              b"X-Forwarded-For: 6.6.6.6\r\n")
    got = seen(exchange(server, header + request))
    assert got["scheme"] == "http"
    assert got["client"] is None or got["client"][0] == "127.0.0.1"
    # Control: LOCAL is the proxy's own connection (a health check), not a relayed one.
    got = seen(exchange(server, v2(0x0, 0x00, b"") + request))
    assert got["client"] == ["6.6.6.6", 0] and got["scheme"] == "https"
