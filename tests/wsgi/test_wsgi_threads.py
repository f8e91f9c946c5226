"""Nothing holds a WSGI thread: clients that never read, the write timeout, shutdown with
stuck app threads (issue 9, defects 1 and 22). App: tests/apps/wsgi_flow_app.py."""
from __future__ import annotations

import signal
import socket
import struct
import time

import pytest

from wsgi_helpers import request, stalled_client

APP = "wsgi_flow_app:app"
MiB = 1024 * 1024


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0): the server learns at once that the client left."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _served(server, timeout: float = 10.0) -> None:
    status, _, body = request(server, "GET", "/", timeout=timeout)
    assert (status, body) == (200, b"hello")


def test_clients_that_never_read_hold_no_thread(gannet_server):
    """--threads 2 and four clients that request an endless stream and never read: other
    requests are still answered (before the fix every thread waited for its client, and
    the fifth request waited forever), and a stalled response resumes once its client
    reads again."""
    server = gannet_server(APP, "--interface", "wsgi", "--threads", "2")
    stalled = [stalled_client(server, f"/infinite?tag=s{i}") for i in range(4)]
    try:
        for _ in range(5):
            _served(server)
        # The parked iteration resumes (on whichever thread) when its client reads.
        sock = stalled[0]
        total = 0
        deadline = time.monotonic() + 20
        while total < 4 * MiB and time.monotonic() < deadline:
            chunk = sock.recv(1 << 20)
            assert chunk, "the server closed a response that should have resumed"
            total += len(chunk)
        assert total >= 4 * MiB
        _served(server)
    finally:
        for sock in stalled:
            _reset(sock)
    for i in range(4):
        server.wait_for_log(rf"app: closed s{i}\b", timeout=15)
    _served(server)


def test_parked_response_closed_once_when_client_leaves(gannet_server):
    """A response parked for a client that then disconnects: its iterable's close() runs,
    the request counts as done (a graceful shutdown does not wait for it), and the one
    thread keeps serving."""
    server = gannet_server(APP, "--interface", "wsgi", "--threads", "1")
    sock = stalled_client(server, "/infinite?tag=parked")
    _served(server)  # the only thread is free: the stalled response is parked
    _reset(sock)
    server.wait_for_log(r"app: closed parked\b", timeout=15)
    _served(server)
    assert server.log.count("app: closed parked") == 1
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=15) == 0
    assert "Graceful shutdown timed out" not in server.log


def test_write_callable_waits_bounded_by_disconnect(gannet_server):
    """write() cannot be parked: it holds its thread while the client is slow, and is
    woken with ClientGone when the client goes, freeing the thread."""
    server = gannet_server(APP, "--interface", "wsgi", "--threads", "1")
    sock = stalled_client(server, "/write?tag=w")
    server.wait_for_log(r"app: writing w\b")
    _reset(sock)
    server.wait_for_log(r"app: write raised w ClientGone", timeout=15)
    _served(server)


def test_write_timeout_aborts_and_closes_the_iterable(gannet_server):
    """--write-timeout 1: a response whose client accepts no bytes is aborted, with a log
    line naming the timeout, and the app's iterable is closed."""
    server = gannet_server(APP, "--interface", "wsgi", "--threads", "1", "--write-timeout", "1")
    sock = stalled_client(server, "/infinite?tag=timeout")
    try:
        server.wait_for_log(r"(?i)write[- _]timeout|no progress|accepts? no bytes", timeout=15)
        server.wait_for_log(r"app: closed timeout\b", timeout=15)
        _served(server)
    finally:
        sock.close()


def test_write_timeout_wakes_a_waiting_write(gannet_server):
    """--write-timeout 1 with the write() callable: the thread waiting in write() is freed."""
    server = gannet_server(APP, "--interface", "wsgi", "--threads", "1", "--write-timeout", "1")
    sock = stalled_client(server, "/write?tag=wt")
    try:
        server.wait_for_log(r"app: write raised wt ClientGone", timeout=15)
        _served(server)
    finally:
        sock.close()


def test_shutdown_with_stuck_threads_is_bounded(gannet_server):
    """Eight threads stuck in the app and --timeout-graceful-shutdown 1: the process exits
    within the grace period plus a short bound (before the fix: about 1 s more per stuck
    thread), and says how many threads it abandoned."""
    server = gannet_server(APP, "--interface", "wsgi", "--threads", "8",
                           "--timeout-graceful-shutdown", "1")
    socks = []
    try:
        for i in range(8):
            sock = server.connect(timeout=10)
            sock.sendall(f"GET /sleep?tag=t{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            socks.append(sock)
        for i in range(8):
            server.wait_for_log(rf"app: sleeping t{i}\b", timeout=10)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        server.wait(timeout=30)
        elapsed = time.monotonic() - started
        # grace (1 s) + the bounded close (1 s) + process exit, generously
        assert elapsed < 4.5, f"shutdown took {elapsed:.1f}s"
        assert "8 WSGI thread(s) still running the app at exit were abandoned" in server.log
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize("name", ["Connection", "keep-alive", "Proxy-Authenticate",
                                  "Proxy-Authorization", "TE", "Trailers",
                                  "Transfer-Encoding", "UPGRADE"])
def test_hop_by_hop_header_is_a_500(gannet_server, name):
    """PEP 3333 "Hop-by-hop features": a WSGI app must not send them; a 500 and an ERROR
    line naming the field, as gunicorn does. The next request is served normally."""
    server = gannet_server(APP, "--interface", "wsgi")
    status, headers, body = request(server, "GET", f"/hop?name={name}")
    assert status == 500 and body != b"hop-by-hop field sent"
    server.wait_for_log(rf"\[ERROR\].*hop-by-hop.*{name}")
    _served(server)


def test_str_block_is_a_500(gannet_server):
    server = gannet_server(APP, "--interface", "wsgi")
    status, _, body = request(server, "GET", "/str")
    assert status == 500 and b"text, not bytes" not in body
    server.wait_for_log(r"must be bytes, not str")
    _served(server)
