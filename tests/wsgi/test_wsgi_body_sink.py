"""Large Content-Length bodies that the kernel writes straight into one buffer
(src/gannet/http/body_sink.py): the edges of that hand-over between protocols, through a
real server. The plain reads are covered in test_wsgi_spec.py."""
from __future__ import annotations

import os
import socket
import time

import pytest

from wsgi_helpers import request, wsgi_server  # noqa: F401 (fixture)

BODY = os.urandom(700_000)  # well past the 64 KiB at which h1 stops feeding llhttp


def _recv_until_closed(sock: socket.socket, deadline_s: float) -> bytes:
    chunks = []
    deadline = time.monotonic() + deadline_s
    sock.settimeout(0.25)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
    raise AssertionError(f"still open after {deadline_s}s; got {b''.join(chunks)[:200]!r}")


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_buffered_body_then_pipelined_request(wsgi_server, loop):
    """The body and the next request arrive in one send: the buffer takes exactly the body,
    and h1 parses what follows. Both event loops switch protocols the same way."""
    server = wsgi_server("--loop", loop)
    wire = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (len(BODY), BODY))
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(wire)
        reply = _recv_until_closed(sock, 10)
    head, _, rest = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and rest[:len(BODY)] == BODY
    assert rest[len(BODY):].startswith(b"HTTP/1.1 200 ") and rest.endswith(b"hello")


def test_buffered_body_that_stalls_gets_408_and_others_are_served(wsgi_server):
    """A client that stops halfway through a buffered body is answered 408 by the body-read
    timeout (default 60 s: a refusal within the deadline proves the sweep sees it), and the
    server goes on serving."""
    server = wsgi_server("--body-read-timeout", "1")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(BODY))
        sock.sendall(BODY[:300_000])
        reply = _recv_until_closed(sock, 8)
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]
    server.wait_for_log(r"refused request.*408.*body stalled")
    status, _, body = request(server, "POST", "/echo", body=BODY)
    assert (status, body) == (200, BODY)


def test_buffered_body_over_the_limit_is_413_before_it_is_read(wsgi_server):
    server = wsgi_server("--limit-request-body", "500000")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(BODY))
        reply = _recv_until_closed(sock, 8)
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
