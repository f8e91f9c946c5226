"""Regressions for what the maintainer review of issue 9's change found (each fails on the
commit before its fix): an aborted response's send raising, closes armed with pipelined
requests queued, answers kept in order while output drains, no request started on a
connection that began closing, bytes-like bodies, Upgrade on a 426, a lingering close after
a refused body nobody reads, and the write-timeout clock."""
from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest

from corpus.wire import Reader, small_window_socket, read_response

APP = "followup_asgi:app"


def _req(target: str, method: str = "GET", extra: bytes = b"") -> bytes:
    return b"%b %b HTTP/1.1\r\nHost: test\r\n%b\r\n" % (method.encode(), target.encode(), extra)


def _small_window_socket(server, rcvbuf: int = 4096) -> socket.socket:
    return small_window_socket(server.host, server.port, rcvbuf)


def _get(server, target: str = "/") -> int:
    with server.connect() as sock:
        sock.sendall(_req(target))
        return read_response(Reader(sock), timeout=10).status


def test_write_timeout_abort_makes_send_raise_and_frees_the_slot(gannet_server):
    """An app streaming to a client that stopped reading is aborted by --write-timeout; its
    next send raises (ASGI 2.4: an OSError), so it ends and gives back its
    --limit-concurrency slot (a StreamingResponse never looks at receive())."""
    server = gannet_server(APP, "--write-timeout", "1", "--limit-concurrency", "1")
    token = uuid.uuid4().hex[:10]
    sock = _small_window_socket(server)
    try:
        sock.sendall(_req(f"/trickle?t={token}"))
        server.wait_for_log(rf"followup-trickle-ended {token} ClientDisconnected", timeout=20)
    finally:
        sock.close()
    deadline = time.monotonic() + 10
    status = 0
    while time.monotonic() < deadline:
        status = _get(server)
        if status == 200:
            break
    assert status == 200  # the slot is free: not 503


def test_close_response_with_a_partial_pipelined_request_closes(gannet_server):
    """The app's Connection: close answer while a pipelined request's body is only partly
    in: the connection still closes (it used to stay open for good, holding its socket)."""
    server = gannet_server(APP, "--timeout-keep-alive", "1", "--body-read-timeout", "2")
    with server.connect(timeout=10) as sock:
        sock.sendall(_req("/close-first") +
                     b"POST /x HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789")
        reader = Reader(sock)
        response = read_response(reader, timeout=10)
        assert response.status == 200 and response.body == b"closing"
        assert reader.at_eof(timeout=12), "the connection was never closed"


def test_answers_stay_in_order_while_output_drains(gannet_server):
    """Pipelined requests wait while a big answer drains to a slow reader; a head cut
    short behind them is not answered 408 ahead of them (RFC 9112 §9.3.2)."""
    server = gannet_server(APP, "--header-read-timeout", "1", "--timeout-keep-alive", "1")
    size = 12 * 1024 * 1024  # past what loopback's kernel buffers take, so we wait to drain
    sock = _small_window_socket(server, 16384)
    try:
        sock.sendall(_req(f"/big?n={size}") + _req("/b1") + _req("/b2") + b"GET /b3 HTT")
        reader = Reader(sock, timeout=30)
        head = reader.read_until(b"\r\n\r\n", time.monotonic() + 10)
        assert head.startswith(b"HTTP/1.1 200 ")
        got = 0
        deadline = time.monotonic() + 30
        while got < size:  # a slow reader: about 4 s for 12 MiB, in bounded steps
            want = min(128 * 1024, size - got)
            got += len(reader.read_exact(want, deadline))
            time.sleep(0.04)  # the client's pace is the scenario, not a synchronisation
        first = read_response(reader, timeout=10)
        second = read_response(reader, timeout=10)
        assert (first.status, first.body) == (200, b"/b1")
        assert (second.status, second.body) == (200, b"/b2")
        rest = reader.read_to_eof(time.monotonic() + 10)
        assert rest == b"" or rest.startswith(b"HTTP/1.1 408 ")
    finally:
        sock.close()
    assert _get(server) == 200
    assert "Task exception was never retrieved" not in server.log


def test_no_request_starts_after_the_connection_began_closing(gannet_server):
    """More than the discard bound of an unread chunked body, then a request in the same
    read: the connection is closing, so that request never reaches the app."""
    server = gannet_server(APP, "--log-level", "debug")
    chunk = b"x" * 65536
    # Exactly 1 MiB, then a small chunk that crosses the discard bound right before the
    # next request, so both arrive in one read.
    body = b"".join(b"%x\r\n%b\r\n" % (len(chunk), chunk) for _ in range(16)) + b"64\r\n" + b"z" * 100 + b"\r\n"
    with server.connect(timeout=10) as sock:
        sock.sendall(b"POST /reject HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
        reader = Reader(sock)
        response = read_response(reader, timeout=10)
        assert response.status == 413
        try:
            sock.sendall(body + b"0\r\n\r\n" + _req("/next"))
        except (BrokenPipeError, ConnectionResetError):
            pass
        reader.read_to_eof(time.monotonic() + 10)
    assert _get(server) == 200
    assert "followup-next-ran" not in server.log
    assert "[ERROR]" not in server.log


@pytest.mark.parametrize("kind", ["bytearray", "memoryview"])
@pytest.mark.parametrize("how", ["get", "head", "http10", "close", "big", "stream"])
def test_bytes_like_bodies_are_served(gannet_server, kind, how):
    """A bytearray or memoryview body is bytes-like: served on every path (a str is not)."""
    server = gannet_server(APP)
    target = f"/bytes-like?k={kind}" + ("&big=1" if how == "big" else "") + \
        ("&stream=1" if how == "stream" else "")
    expected = b"hello bytes-like" * (5000 if how == "big" else 1)
    if how == "http10":
        request = b"GET %b HTTP/1.0\r\n\r\n" % target.encode()
    elif how == "head":
        request = _req(target, "HEAD")
    elif how == "close":
        request = _req(target, extra=b"Connection: close\r\n")
    else:
        request = _req(target)
    with server.connect() as sock:
        sock.sendall(request)
        response = read_response(Reader(sock), head_request=how == "head", timeout=10)
    assert response.status == 200
    assert response.body == (b"" if how == "head" else expected)
    assert "[ERROR]" not in server.log


def test_426_keeps_its_upgrade_field(gannet_server):
    """RFC 9110 §15.5.22: a 426 must carry Upgrade; it is not stripped as hop-by-hop."""
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req("/upgrade426"))
        response = read_response(Reader(sock), timeout=10)
    assert response.status == 426
    assert response.get(b"upgrade") == b"TLS/1.2, HTTP/1.1"


def test_body_over_the_limit_after_an_early_answer_is_not_refused_twice(gannet_server):
    """The app answered 413 without reading; the rest of the body then passes
    --limit-request-body: no second response and no 'refused' line, and the connection
    lingers instead of resetting under the answer."""
    server = gannet_server(APP, "--limit-request-body", "100000")
    chunk = b"y" * 16384
    with server.connect(timeout=10) as sock:
        sock.sendall(b"POST /reject HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
        reader = Reader(sock)

        def upload() -> None:
            try:
                for _ in range(40):  # 640 KiB, past the 100,000-byte limit
                    sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            except OSError:
                pass

        sender = threading.Thread(target=upload, daemon=True)
        sender.start()
        response = read_response(reader, timeout=10)
        assert response.status == 413 and response.body == b"too large"
        rest = reader.read_to_eof(time.monotonic() + 10)
        sender.join(timeout=10)
    assert rest == b""  # no second (refusal) response
    assert "refused request" not in server.log


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_invalid_app_content_length_is_a_500_also_for_head(gannet_server, method):
    """A Content-Length that is not a number never reaches the wire, HEAD included."""
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req("/bad-cl", method))
        response = read_response(Reader(sock), head_request=method == "HEAD", timeout=10)
    assert response.status == 500
    assert response.get(b"content-length") != b"abc"


def test_half_closed_client_gets_a_whole_slow_stream(gannet_server):
    """A client that sends FIN after its request (nc -N) still gets a streamed answer that
    takes longer than --write-timeout, as long as output flows (it used to be cut)."""
    server = gannet_server(APP, "--write-timeout", "1")
    with server.connect(timeout=15) as sock:
        sock.sendall(_req("/slow-stream?n=8&d=0.4"))
        sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock, timeout=15)
        data = reader.read_to_eof(time.monotonic() + 15)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.count(b"part\n") == 8 and data.endswith(b"0\r\n\r\n")


def test_half_closed_client_of_a_silent_stream_is_cut(gannet_server):
    """A client that sends FIN and goes while the app, having sent its head, stays silent
    (an SSE stream whose tab closed): the socket is freed after --write-timeout without
    progress, not held until the app writes again."""
    server = gannet_server(APP, "--write-timeout", "1", "--log-level", "debug")
    with server.connect(timeout=10) as sock:
        sock.sendall(_req("/silent-stream"))
        reader = Reader(sock)
        assert reader.read_until(b"first\n", time.monotonic() + 10)
        sock.shutdown(socket.SHUT_WR)
        server.wait_for_log(r"half-closed and its answer made no progress", timeout=10)
        reader.read_to_eof(time.monotonic() + 10)
        assert reader.eof  # closed (FIN or reset), not held open


def test_closed_connections_are_freed_without_the_cyclic_gc(gannet_server):
    """A connection whose last request completed is freed by reference counting when it
    closes (a stream kept for reuse must not tie it into a cycle)."""
    server = gannet_server(APP)

    def count(query: str = "") -> int:
        with server.connect() as sock:
            sock.sendall(_req("/h1-count" + query, extra=b"Connection: close\r\n"))
            return int(read_response(Reader(sock), timeout=10).body)

    before = count("?gcoff=1")
    for _ in range(40):
        with server.connect() as sock:
            sock.sendall(_req("/"))
            assert read_response(Reader(sock), timeout=10).status == 200
    deadline = time.monotonic() + 10
    after = count()
    while after > before + 5 and time.monotonic() < deadline:
        after = count()  # closes are processed asynchronously: look again
    assert after <= before + 5, f"{after - before} closed connections still alive"
