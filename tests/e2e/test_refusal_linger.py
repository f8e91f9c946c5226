"""A refused request whose body is still coming: the answer must reach a client that
writes the whole request before reading (curl with a big upload, nginx in front). Closing
at once turns the 413 into a reset; Gannet reads and drops the rest for a bounded time
(RFC 9112 §9.6), then closes."""
from __future__ import annotations

import asyncio
import socket
import threading
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


def test_a_refusal_on_a_reused_connection_lingers_as_on_a_fresh_one(gannet_server):
    """A keep-alive connection (nginx's upstream keepalive) that carried a larger body
    before: the refused request's own body is still coming, whatever the last one's size
    (the linger once compared this request's Content-Length with the previous body's
    byte count, so it closed at once and the client got a reset)."""
    server = gannet_server("basic:app")
    size = 8 * 1024 * 1024
    with socket.create_connection((server.host, server.port), timeout=20) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        sender = threading.Thread(target=sock.sendall, args=(b"b" * size,))
        sender.start()
        head, _, echoed = _read_until(sock, b"\r\n\r\n").partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        while len(echoed) < size:
            echoed += sock.recv(1 << 20)
        sender.join()
        # The next request is refused at its head (a field over the limit), its body
        # written in full before reading, as nginx does.
        refused = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nX-Big: %s\r\n\r\n" % (
            size // 2, b"c" * 9000)
        answer = _write_all_then_read(sock, refused, size // 2)
    assert answer.startswith(b"HTTP/1.1 431 ")


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        part = sock.recv(65536)
        assert part, f"closed before {marker!r}: {data[:200]!r}"
        data += part
    return data


def _write_all_then_read(sock: socket.socket, head: bytes, body_size: int) -> bytes:
    sock.sendall(head)
    block = b"x" * 65536
    sent = 0
    while sent < body_size:
        sock.sendall(block[:min(len(block), body_size - sent)])
        sent += min(len(block), body_size - sent)
    data = b""
    while part := sock.recv(65536):
        data += part
    return data


# ---------------------------------------------------------------- in process
class _Transport:
    """Just enough of an asyncio transport to watch h1 close or linger."""

    def __init__(self) -> None:
        self.protocol = None
        self.written = b""
        self.reading = True
        self.eof_written = self.closed = False

    def get_extra_info(self, name):
        return {"peername": ("127.0.0.1", 5), "sockname": ("127.0.0.1", 80)}.get(name)

    def get_protocol(self):
        return self.protocol

    def set_protocol(self, protocol) -> None:
        self.protocol = protocol

    def write(self, data: bytes) -> None:
        self.written += data

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def test_a_refusal_in_the_read_that_paused_reading_still_reads_the_rest():
    """One read carries body chunks past the 64 KiB an app may have buffered (reading
    pauses) and past --limit-request-body (413): the linger must read on, or the client,
    still writing the body, never reads its 413 and gets a reset 5 s later. (The refused
    request's buffered body kept reading paused, and stayed held for the linger.)"""
    from gannet.config import Config
    from gannet.http.h1 import HIGH_WATER, H1Protocol
    from gannet.server.state import ServerState

    async def app(scope, receive, send):  # never runs: the loop is not run, as a busy app
        raise AssertionError

    loop = asyncio.new_event_loop()
    try:
        limit = HIGH_WATER + 32 * 1024
        state = ServerState(Config(app="x:y", access_log=False, limit_request_body=limit), app, loop)
        conn = H1Protocol(state)
        transport = _Transport()
        transport.set_protocol(conn)
        conn.connection_made(transport)
        chunk = b"%x\r\n%s\r\n" % (16384, b"y" * 16384)
        conn.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           + chunk * (limit // 16384 + 2))
        assert transport.written.startswith(b"HTTP/1.1 413 ")
        assert transport.eof_written and not transport.closed  # lingering
        assert transport.reading, "lingering with reading paused: the rest is never read"
        assert conn.parsing is None  # the refused request (and its buffered body) is let go
    finally:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:  # the app's task, never started: cancelled before its first step
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()
