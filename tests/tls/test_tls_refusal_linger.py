"""A refused upload over TLS: the 413 reaches a client that writes its whole body first.
TLS cannot half-close, so Gannet lingers without it: it reads and drops the rest for a
bounded time (the refusal carries its length, so the client needs no close to read it)."""
from __future__ import annotations

import socket
import ssl

from tls.conftest import client_context


def test_a_413_over_tls_reaches_a_client_that_sends_the_whole_body_first(tls_server, tls_files):
    server = tls_server("basic:app", "--limit-request-body", "1000")
    size = 8 * 1024 * 1024
    context = client_context(tls_files)
    with socket.create_connection((server.host, server.port), timeout=20) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        block = b"x" * 65536
        for _ in range(size // len(block)):
            sock.sendall(block)
        data = b""
        try:
            while not data.endswith(b"\r\n\r\n") and b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ssl.SSLError, ConnectionResetError) as exc:
            raise AssertionError(f"the connection broke before the answer: {exc!r}; got {data[:80]!r}")
    assert data.startswith(b"HTTP/1.1 413 "), data[:80]
