"""A slow reader of a big response over TLS gets all of it.

The event loop's TLS layer encrypts what the app writes at once and hands it to the
socket's transport, whose buffer then holds it (the TLS transport's own buffer stays
empty). Closing the TLS transport starts its shutdown timer (server/tls.py's
SHUTDOWN_TIMEOUT): when it fires, the socket's transport is aborted and whatever it still
buffers is lost. So a response that is whole from the app's side, closed after
(``Connection: close``, a keep-alive idle timeout, a drain), must not start that timer
until the socket's transport has handed everything to the kernel; until then the
--write-timeout (progress of the client reading) is what bounds the connection.
"""
from __future__ import annotations

import socket
import ssl
import time

import pytest

from gannet.server.tls import SHUTDOWN_TIMEOUT
from tls.conftest import client_context

BIG = 24 * 1024 * 1024


def _slow_read(server, files, request: bytes, stall: float) -> bytes:
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    raw.settimeout(15)
    raw.connect((server.host, server.port))
    sock = client_context(files).wrap_socket(raw, server_hostname="localhost")
    with sock:
        sock.sendall(request)
        # The client stalls (it is the slow reader under test), longer than the TLS
        # shutdown timeout, while most of the response is still in Gannet's buffers.
        time.sleep(stall)
        chunks = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(1 << 20)
            except (ssl.SSLError, ConnectionResetError, socket.timeout) as exc:
                chunks.append(f"<{type(exc).__name__}>".encode())
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def _body(response: bytes) -> bytes:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return body


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_connection_close_response_is_not_cut_by_the_shutdown_timeout(tls_server, tls_files, loop):
    server = tls_server("tls_clients_apps:asgi_app", "--loop", loop)
    response = _slow_read(server, tls_files, b"GET /big?n=%d HTTP/1.1\r\nHost: localhost\r\n"
                          b"Connection: close\r\n\r\n" % BIG, SHUTDOWN_TIMEOUT + 1.5)
    assert len(_body(response)) == BIG


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_keep_alive_response_is_not_cut_at_the_idle_timeout(tls_server, tls_files, loop):
    server = tls_server("tls_clients_apps:asgi_app", "--loop", loop, "--timeout-keep-alive", "1")
    response = _slow_read(server, tls_files, b"GET /big?n=%d HTTP/1.1\r\nHost: localhost\r\n\r\n"
                          % BIG, SHUTDOWN_TIMEOUT + 3.0)
    body = _body(response)
    assert len(body) == BIG, len(body)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_client_that_reads_nothing_is_cut_at_the_write_timeout(tls_server, tls_files, loop):
    """The whole response went to the socket's transport in one write: the TLS transport's
    buffer is empty, but the output is waiting all the same, so --write-timeout applies
    (before, nothing saw it: the idle keep-alive timeout closed the connection and the TLS
    shutdown timer dropped it, with no line saying why)."""
    server = tls_server("tls_clients_apps:asgi_app", "--loop", loop, "--write-timeout", "1",
                        "--timeout-keep-alive", "30")
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    raw.settimeout(15)
    raw.connect((server.host, server.port))
    with client_context(tls_files).wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % BIG)
        server.wait_for_log(r"closing the connection from 127\.0\.0\.1:\d+: client accepted "
                            r"no bytes for 1 s \(--write-timeout\)", timeout=10)
