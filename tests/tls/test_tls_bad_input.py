"""Bad input on a TLS listener, each with its log line (issue 13): plain HTTP to the TLS
port, a handshake that stalls, handshakes that fail, a client that never answers
close_notify. Never a traceback, an ERROR or a WARNING line; the server keeps serving."""
from __future__ import annotations

import re
import socket
import ssl
import struct
import subprocess
import time
import warnings

import pytest

from conftest import require_tool
from tls.conftest import client_context, client_hello, https_request

ASGI = "tls_clients_apps:asgi_app"
GET_CLOSE = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def _read_until_closed(sock: socket.socket, timeout: float = 15.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    sock.settimeout(timeout)
    started = time.monotonic()
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data, time.monotonic() - started


def _quiet(log: str) -> None:
    assert "Traceback" not in log, log
    assert "[ERROR]" not in log and "[WARNING]" not in log and "[CRITICAL]" not in log, log


def _port_of(sock: socket.socket) -> int:
    return sock.getsockname()[1]


def _still_serves(server, tls_files) -> None:
    response = https_request(server, client_context(tls_files), GET_CLOSE)
    assert response.startswith(b"HTTP/1.1 200 ") and response.endswith(b"hello over tls")


# ------------------------------------------------------------------ plain HTTP
@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc",
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
], ids=["GET", "POST", "CONNECT"])
def test_plain_http_to_the_tls_port_is_closed_with_an_info_line(tls_server, tls_files,
                                                                 request_bytes):
    server = tls_server(ASGI)  # info level: the line is there without --log-level debug
    with server.connect() as sock:
        port = _port_of(sock)
        sock.sendall(request_bytes)
        data, elapsed = _read_until_closed(sock)
    assert data == b""  # nothing in the clear: no response, no TLS alert
    assert elapsed < 3
    server.wait_for_log(rf"\[INFO\] 127\.0\.0\.1:{port} - plain HTTP sent to the TLS port; "
                        r"closed \(use https://\)")
    _still_serves(server, tls_files)
    _quiet(server.log)


def test_curl_plain_http_to_the_tls_port(tls_server, tls_files):
    curl = require_tool("curl")
    server = tls_server(ASGI)
    done = subprocess.run([curl, "-sS", "--max-time", "10", f"http://127.0.0.1:{server.port}/"],
                          capture_output=True, timeout=20)
    assert done.returncode == 52, done  # "Empty reply from server"
    server.wait_for_log(r"plain HTTP sent to the TLS port")
    _quiet(server.log)


# ------------------------------------------------------------------ stalled handshakes
@pytest.mark.parametrize("what", ["nothing", "5 bytes of a ClientHello",
                                  "all but the last byte of a ClientHello"])
def test_stalled_handshake_is_closed_after_header_read_timeout(tls_server, tls_files, what):
    server = tls_server(ASGI, "--header-read-timeout", "1", "--log-level", "debug")
    hello = client_hello()
    sent = {"nothing": b"", "5 bytes of a ClientHello": hello[:5],
            "all but the last byte of a ClientHello": hello[:-1]}[what]
    with server.connect() as sock:
        port = _port_of(sock)
        if sent:
            sock.sendall(sent)
        data, elapsed = _read_until_closed(sock)
    assert data == b""
    assert 0.8 <= elapsed <= 3.0, elapsed  # --header-read-timeout 1 (the sweep's backstop: 2)
    server.wait_for_log(rf"\[DEBUG\] 127\.0\.0\.1:{port} - TLS handshake not done within 1s "
                        r"\(--header-read-timeout\); closed")
    _still_serves(server, tls_files)
    _quiet(server.log)


def test_dribbling_client_hello_is_bounded_too(tls_server, tls_files):
    # One byte every 0.3 s: each byte is progress, but the handshake as a whole is bounded.
    server = tls_server(ASGI, "--header-read-timeout", "1", "--log-level", "debug")
    hello = client_hello()
    started = time.monotonic()
    closed = False
    with server.connect() as sock:
        for i in range(20):  # would take 6 s
            try:
                sock.sendall(hello[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sock.settimeout(0.3)
            try:
                if sock.recv(1) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
    assert closed and time.monotonic() - started <= 3.0
    server.wait_for_log(r"TLS handshake not done within 1s")
    _quiet(server.log)


# ------------------------------------------------------------------ failed handshakes
def _tls11_hello() -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return client_hello(maximum=ssl.TLSVersion.TLSv1_1, minimum=ssl.TLSVersion.TLSv1)


def test_failed_handshakes_are_debug_lines(tls_server, tls_files):
    server = tls_server(ASGI, "--log-level", "debug")
    expected: list[tuple[int, str]] = []

    def raw(data: bytes, reason: str, rst: bool = False) -> None:
        with server.connect() as sock:
            expected.append((_port_of(sock), reason))
            if data:
                sock.sendall(data)
            if rst:  # close with RST: SO_LINGER 0
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            _read_until_closed(sock)

    raw(b"\x16\x03\x01\x00\x05hello" + b"x" * 100, r"UNEXPECTED_MESSAGE|[A-Z_]+")
    raw(b"\x00" * 64, r"WRONG_VERSION_NUMBER")
    raw(_tls11_hello(), r"UNSUPPORTED_PROTOCOL")
    raw(b"\x16\x03\x01\x00", r".+", rst=True)  # reset mid-record
    raw(client_hello(), r".+", rst=True)  # reset after the ClientHello
    # a client that does not trust the certificate aborts with an unknown_ca alert
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        expected.append((_port_of(sock), r"TLSV1_ALERT_UNKNOWN_CA"))
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(sock, server_hostname="localhost")
    # a client that checks the name and finds the wrong one aborts too
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        expected.append((_port_of(sock), r"TLSV1_ALERT_BAD_CERTIFICATE|SSLV3_ALERT_BAD_CERTIFICATE"))
        with pytest.raises(ssl.SSLCertVerificationError):
            client_context(tls_files).wrap_socket(sock, server_hostname="not-the-name.example")
    for port, reason in expected:
        # A client that resets at once may be gone before its address was looked at.
        who = rf"(?:127\.0\.0\.1:{port}|a client that reset the connection)"
        server.wait_for_log(rf"\[DEBUG\] {who} - TLS handshake failed: (?:{reason})")
    assert "unix socket" not in server.log  # a TCP client is not one
    _still_serves(server, tls_files)
    _quiet(server.log)


def test_connect_and_close_is_a_debug_line(tls_server, tls_files):
    # A port check (connect, close at once): one debug line, nothing louder (none before).
    server = tls_server(ASGI, "--log-level", "debug")
    ports = []
    for _ in range(5):
        with server.connect() as sock:
            ports.append(_port_of(sock))
    for port in ports:
        server.wait_for_log(rf"\[DEBUG\] 127\.0\.0\.1:{port} - TLS handshake failed")
    _still_serves(server, tls_files)
    _quiet(server.log)


# ------------------------------------------------------------------ close_notify
class _MemoryTLSClient:
    """A TLS client over a raw socket (ssl.MemoryBIO) that decides itself whether to answer
    the server's close_notify, and sees when the TCP connection really ends."""

    def __init__(self, server, context: ssl.SSLContext) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=15)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(65536)
                assert data, "closed during the handshake"
                self.incoming.write(data)
        self._flush()

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def exchange(self, request: bytes, answer_close_notify: bool) -> tuple[bytes, float | None, float]:
        """Send ``request``; read the response. Returns it, the seconds from its end to
        the server's close_notify (None: none came) and to the TCP close."""
        self.tls.write(request)
        self._flush()
        response = b""
        response_done = close_notify = None
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                break
            self.incoming.write(data)
            try:
                while True:
                    chunk = self.tls.read(65536)
                    if not chunk:  # close_notify (a read with nothing yet raises instead)
                        close_notify = time.monotonic()
                        if answer_close_notify:
                            try:
                                self.tls.unwrap()
                            except ssl.SSLWantReadError:
                                pass
                            self._flush()
                        break
                    response += chunk
            except ssl.SSLWantReadError:
                pass
            if response_done is None and _complete(response):
                response_done = time.monotonic()
        end = time.monotonic()
        assert response_done is not None, response
        return (response, close_notify - response_done if close_notify else None,
                end - response_done)

    def close(self) -> None:
        self.sock.close()


def _complete(response: bytes) -> bool:
    head, sep, body = response.partition(b"\r\n\r\n")
    match = re.search(rb"content-length: (\d+)", head, re.I)
    return bool(sep and match and len(body) >= int(match.group(1)))


@pytest.mark.parametrize("answer", [True, False], ids=["answers", "never answers"])
def test_close_notify_after_connection_close(tls_server, tls_files, answer):
    server = tls_server(ASGI, "--log-level", "debug")
    client = _MemoryTLSClient(server, client_context(tls_files))
    try:
        response, to_notify, to_close = client.exchange(GET_CLOSE, answer_close_notify=answer)
    finally:
        client.close()
    assert response.startswith(b"HTTP/1.1 200 ") and response.endswith(b"hello over tls")
    assert to_notify is not None and to_notify < 1.0  # the server says close_notify at once
    if answer:
        assert to_close < 1.0, to_close
    else:  # the server waits a bounded time for the answer, then drops the connection
        assert to_close < 7.0, to_close
        server.wait_for_log(r"connection closed: SSL shutdown timed out")
    _still_serves(server, tls_files)
    _quiet(server.log)
