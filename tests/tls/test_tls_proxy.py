"""PROXY protocol in front of TLS (issue 13): ``--proxy-protocol`` with ``--ssl-certfile``,
as behind a layer-4 load balancer (AWS NLB, HAProxy ``mode tcp`` with ``send-proxy``) that
passes the client's TLS through. The header is read on the raw socket, then the TLS
handshake starts on what follows; the header and the ClientHello may come in one segment,
in separate ones, or the ClientHello split after the header. The app sees the client the
header names (and https)."""
from __future__ import annotations

import json
import socket
import ssl
import struct
import time

import pytest

from tls.conftest import client_context

ASGI = "tls_clients_apps:asgi_app"
WSGI = "tls_clients_apps:wsgi_app"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
CLIENT, CLIENT_PORT = "203.0.113.7", 43210


def _v1(port: int) -> bytes:
    return f"PROXY TCP4 {CLIENT} 127.0.0.1 {CLIENT_PORT} {port}\r\n".encode()


def _v2(port: int) -> bytes:
    addresses = (socket.inet_aton(CLIENT) + socket.inet_aton("127.0.0.1")
                 + struct.pack("!HH", CLIENT_PORT, port))
    return V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


# Pacing between sends makes the server read the pieces separately (loopback delivers a
# send at once); the tests pass either way, only the path they exercise would differ.
PACE = 0.05


class _ProxiedTLSClient:
    """A client behind a layer-4 proxy: a PROXY header, then its own TLS, over one socket,
    with a MemoryBIO TLS object so the test decides how the bytes are cut."""

    def __init__(self, server, files, header: bytes, split: str) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = client_context(files).wrap_bio(self.incoming, self.outgoing,
                                                  server_hostname="localhost")
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = self.outgoing.read()
        if split == "one segment":
            self.sock.sendall(header + hello)
        elif split == "header, then ClientHello":
            self.sock.sendall(header)
            time.sleep(PACE)
            self.sock.sendall(hello)
        elif split == "header with part of the ClientHello, then the rest":
            self.sock.sendall(header + hello[:30])
            time.sleep(PACE)
            self.sock.sendall(hello[30:])
        elif split == "byte by byte":
            for i in range(len(header + hello)):
                self.sock.sendall((header + hello)[i:i + 1])
        else:
            raise AssertionError(split)
        while True:
            data = self.sock.recv(65536)
            assert data, "closed during the handshake"
            self.incoming.write(data)
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
        self._flush()

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def request(self, request: bytes) -> bytes:
        self.tls.write(request)
        self._flush()
        response = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return response
            self.incoming.write(data)
            try:
                while chunk := self.tls.read(65536):
                    response += chunk
                else:
                    return response  # close_notify
            except ssl.SSLWantReadError:
                pass

    def close(self) -> None:
        self.sock.close()


def _body(response: bytes) -> dict:
    assert response.startswith(b"HTTP/1.1 200 "), response[:300]
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


SPLITS = ["one segment", "header, then ClientHello",
          "header with part of the ClientHello, then the rest", "byte by byte"]


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("split", SPLITS)
def test_proxy_header_then_tls_asgi_sees_the_proxied_client(tls_server, tls_files, split, version):
    server = tls_server(ASGI, "--proxy-protocol", version)
    header = (_v1 if version == "v1" else _v2)(server.port)
    client = _ProxiedTLSClient(server, tls_files, header, split)
    try:
        assert client.tls.version() in ("TLSv1.2", "TLSv1.3")
        scope = _body(client.request(b"GET /scope HTTP/1.1\r\nHost: localhost\r\n"
                                     b"Connection: close\r\n\r\n"))
    finally:
        client.close()
    assert scope["client"] == [CLIENT, CLIENT_PORT]
    assert scope["scheme"] == "https"
    assert "Traceback" not in server.log and "[ERROR]" not in server.log


@pytest.mark.parametrize("split", ["one segment", "header with part of the ClientHello, then the rest"])
def test_proxy_header_then_tls_wsgi_sees_the_proxied_client(tls_server, tls_files, split):
    server = tls_server(WSGI, "--proxy-protocol", "auto")
    client = _ProxiedTLSClient(server, tls_files, _v2(server.port), split)
    try:
        environ = _body(client.request(b"POST /x HTTP/1.1\r\nHost: localhost\r\n"
                                       b"Content-Length: 5\r\nConnection: close\r\n\r\nhello"))
    finally:
        client.close()
    assert environ["REMOTE_ADDR"] == CLIENT and environ["REMOTE_PORT"] == str(CLIENT_PORT)
    assert environ["wsgi.url_scheme"] == "https" and environ["body_length"] == 5


def test_keep_alive_behind_the_proxy_header(tls_server, tls_files):
    # Several requests on the proxied TLS connection: the client stays the proxied one.
    server = tls_server(ASGI, "--proxy-protocol", "v2")
    client = _ProxiedTLSClient(server, tls_files, _v2(server.port), "one segment")
    try:
        client.tls.write(b"GET /scope HTTP/1.1\r\nHost: localhost\r\n\r\n" * 3)
        client._flush()
        response = b""
        while response.count(b"HTTP/1.1 200 ") < 3 or not response.endswith(b"}"):
            client.incoming.write(client.sock.recv(65536))
            try:
                while chunk := client.tls.read(65536):
                    response += chunk
            except ssl.SSLWantReadError:
                pass
    finally:
        client.close()
    bodies = [json.loads(part.split(b"\r\n\r\n", 1)[1]) for part in
              response.split(b"HTTP/1.1 ")[1:]]
    assert [b["client"] for b in bodies] == [[CLIENT, CLIENT_PORT]] * 3


def test_proxy_header_then_plain_http_is_the_plain_http_line(tls_server, tls_files):
    # A client behind the balancer sends plain HTTP: the PROXY header is read, then the
    # plain-HTTP line names the client the header named, and the balancer it came through.
    server = tls_server(ASGI, "--proxy-protocol", "v1")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        balancer = sock.getsockname()[1]
        sock.sendall(_v1(server.port) + b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data == b""
    server.wait_for_log(rf"\[INFO\] {CLIENT}:{CLIENT_PORT} \(via 127\.0\.0\.1:{balancer}\) - "
                        r"plain HTTP sent to the TLS port; closed")
    assert "Traceback" not in server.log and "[ERROR]" not in server.log


def test_peer_outside_the_allow_list_speaks_tls_directly(tls_server, tls_files):
    # --proxy-protocol on, but this peer is not the balancer: no header expected; its own
    # TLS is served, with its own address.
    server = tls_server(ASGI, "--proxy-protocol", "auto", "--proxy-allow-from", "192.0.2.1")
    context = client_context(tls_files)
    with context.wrap_socket(socket.create_connection((server.host, server.port), timeout=10),
                             server_hostname="localhost") as sock:
        sock.sendall(b"GET /scope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ssl.SSLEOFError:
            pass
    scope = _body(data)
    assert scope["client"][0] == "127.0.0.1" and scope["scheme"] == "https"


def test_stalled_tls_after_the_proxy_header_is_bounded(tls_server, tls_files):
    # The header arrives, the ClientHello never does: closed after --header-read-timeout.
    server = tls_server(ASGI, "--proxy-protocol", "v2", "--header-read-timeout", "1",
                        "--log-level", "debug")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(_v2(server.port))
        started = time.monotonic()
        assert sock.recv(65536) == b""
        elapsed = time.monotonic() - started
    assert elapsed <= 3.5, elapsed
    server.wait_for_log(r"TLS handshake not done within 1s \(--header-read-timeout\)")
    assert "Traceback" not in server.log and "[ERROR]" not in server.log
