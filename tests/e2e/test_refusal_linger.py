"""A refused request whose body is still coming: the answer must reach a client that
writes the whole request before reading (curl with a big upload, nginx in front). Closing
at once turns the 413 into a reset; Gannet reads and drops the rest for a bounded time
(RFC 9112 §9.6), then closes."""
from __future__ import annotations

import socket
import time


def _send_all_then_read(server, head: bytes, body_size: int) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=20) as sock:
        sock.sendall(head)
        block = b"x" * 65536
        sent = 0
        while sent < body_size:  # the whole body, as nginx writes it, before reading
            sock.sendall(block[:min(len(block), body_size - sent)])
            sent += min(len(block), body_size - sent)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk


def test_a_413_reaches_a_client_that_sends_the_whole_body_first(gannet_server):
    server = gannet_server("basic:app", "--limit-request-body", "1000")
    size = 8 * 1024 * 1024
    answer = _send_all_then_read(
        server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size, size)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_a_chunked_body_refused_midway_still_gets_its_answer(gannet_server):
    server = gannet_server("basic:app", "--limit-request-body", "1000")
    with socket.create_connection((server.host, server.port), timeout=20) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65536, b"y" * 65536)
        for _ in range(64):  # 4 MiB, far past the limit, written before reading
            sock.sendall(chunk)
        sock.sendall(b"0\r\n\r\n")
        data = b""
        while part := sock.recv(65536):
            data += part
    assert data.startswith(b"HTTP/1.1 413 ")


def test_lingering_is_bounded_for_a_client_that_keeps_sending(gannet_server):
    """The refused connection is read and dropped for at most a few seconds, then closed."""
    server = gannet_server("basic:app", "--limit-request-body", "1000")
    with socket.create_connection((server.host, server.port), timeout=20) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 15:
            try:
                sock.sendall(b"z" * 4096)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.01)  # a slow, endless sender: pacing, not synchronisation
        assert closed, "the server kept reading a refused body for 15 s"
