"""Issue 9, flow and resources: clients that never read, apps that never read, clients
that leave while an app works (defects 17, 18, 22, and the ASGI write timeout).

Memory is VmRSS and descriptors are the entries of /proc/PID/fd of the server process.
Bounds are generous (tens of MiB, a few descriptors) against what a server that buffers
or leaks would reach (hundreds of MiB, one descriptor per client), and every wait polls
with a deadline.
"""
from __future__ import annotations

import os
import signal
import socket
import struct
import sys
import threading
import time
import uuid

import pytest

from corpus.wire import Reader, small_window_socket, WireError, read_response

APP = "review_asgi:app"
MIB = 1024 * 1024
RSS_GROWTH_LIMIT_KIB = 64 * 1024

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _req(target: str, extra: bytes = b"") -> bytes:
    return b"GET %b HTTP/1.1\r\nHost: test\r\n%b\r\n" % (target.encode(), extra)


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _wait_fds_at_most(pid: int, limit: int, timeout: float) -> int:
    """Poll the server's descriptor count until it is at most ``limit`` (or the deadline)."""
    deadline = time.monotonic() + timeout
    count = _fds(pid)
    while count > limit and time.monotonic() < deadline:
        time.sleep(0.05)  # polling interval, not synchronisation
        count = _fds(pid)
    return count


def _small_window_socket(server, rcvbuf: int = 16 * 1024) -> socket.socket:
    return small_window_socket(server.host, server.port, rcvbuf)


def _warm_up(server, target: str = "/") -> None:
    with server.connect() as sock:
        sock.sendall(_req(target))
        assert read_response(Reader(sock), timeout=10).status == 200


# ---------------------------------------------------------------- defect 17
@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_pipelining_client_that_never_reads_does_not_make_the_server_buffer(gannet_server, interface):
    """issue 9 defect 17: 500 pipelined GETs of a 1 MiB response from a client with a tiny
    receive window that reads nothing: the server keeps reading paused while the
    connection's unsent output is high, so its memory stays bounded (today: +470 MiB)."""
    if interface == "asgi":
        server = gannet_server(APP)
    else:
        server = gannet_server("review_wsgi:app", "--interface", "wsgi")
    _warm_up(server, "/blob")
    baseline = _rss_kib(server.proc.pid)
    sock = _small_window_socket(server)
    try:
        data = _req("/blob") * 500
        sock.settimeout(0.5)
        sent = 0
        deadline = time.monotonic() + 10
        while sent < len(data) and time.monotonic() < deadline:
            try:
                sent += sock.send(data[sent:sent + 65536])
            except socket.timeout:
                continue  # the server is not reading: back-pressure, as it should be
        peak = _rss_kib(server.proc.pid)
        window_end = time.monotonic() + 4.0
        while time.monotonic() < window_end and peak - baseline <= RSS_GROWTH_LIMIT_KIB:
            time.sleep(0.05)  # sampling interval, not synchronisation
            peak = max(peak, _rss_kib(server.proc.pid))
        assert peak - baseline <= RSS_GROWTH_LIMIT_KIB, \
            f"server RSS grew by {(peak - baseline) // 1024} MiB for a client that reads nothing"
        # The responses that did go out are intact, in order.
        reader = Reader(sock, timeout=20)
        for _ in range(3):
            response = read_response(reader)
            assert response.status == 200 and len(response.body) == MIB
    finally:
        sock.close()
    _warm_up(server)


# ---------------------------------------------------------------- defect 18
def test_unread_upload_then_next_request_is_answered_or_closed(gannet_server):
    """issue 9 defect 18: the app answers 401 without reading a 256 KiB body; the next
    request on that keep-alive connection is answered (the server discarded the unread
    body) or the connection is closed cleanly, never frozen; the client's send of the
    whole body and the next request does not hang."""
    server = gannet_server(APP)
    body = b"x" * (256 * 1024)
    data = (b"POST /reject HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % len(body)
            + body + _req("/"))
    sock = server.connect(timeout=10)
    outcome: list[str] = []

    def send_all() -> None:
        try:
            sock.sendall(data)
            outcome.append("sent")
        except socket.timeout:
            outcome.append("send hung")
        except OSError as exc:  # the server closed instead: allowed
            outcome.append(f"closed: {exc!r}")

    sender = threading.Thread(target=send_all, daemon=True)
    sender.start()
    try:
        reader = Reader(sock, timeout=10)
        first = read_response(reader)
        assert first.status == 401
        try:
            second = read_response(reader)
        except WireError:
            if not (reader.eof and reader.buffer == b""):
                raise  # neither answered nor closed: frozen
            second = None  # closed after the 401 instead: allowed
        if second is not None:
            assert second.status == 200 and second.body == b"ok"
        sender.join(10)
        assert not sender.is_alive() and outcome and outcome[0] != "send hung", outcome
    finally:
        sock.close()
    _warm_up(server)


def test_client_sending_a_large_unread_upload_first_does_not_hang(gannet_server):
    """issue 9 defect 18: a client that sends an 8 MiB body (more than the socket buffers
    hold) before reading, to an app that answers 401 without reading it: the send completes
    (the server discards the body) or fails because the server closed; it never hangs."""
    server = gannet_server(APP)
    body = b"y" * (8 * MIB)
    with server.connect(timeout=10) as sock:
        try:
            sock.sendall(b"POST /reject HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n"
                         % len(body) + body)
            finished = "sent"
        except socket.timeout:
            finished = "hung"
        except OSError:
            finished = "closed by the server"
        assert finished != "hung", "the client hung in send: nobody reads the body"
        if finished == "sent":
            assert read_response(Reader(sock, timeout=10)).status == 401
    _warm_up(server)


def test_clients_leaving_after_an_unread_upload_free_their_sockets(gannet_server):
    """issue 9 defect 18: 20 clients each send part of a 1 MiB upload, read the app's 401
    (the app never reads the body) and close: the server notices every one of them, so its
    descriptor count returns to where it was (today one descriptor leaks per client)."""
    server = gannet_server(APP)
    _warm_up(server)
    baseline = _fds(server.proc.pid)
    head = b"POST /reject HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % MIB
    for _ in range(20):
        with server.connect(timeout=10) as sock:
            sock.sendall(head + b"z" * (200 * 1024))
            assert read_response(Reader(sock, timeout=10)).status == 401
    count = _wait_fds_at_most(server.proc.pid, baseline + 2, timeout=10)
    assert count <= baseline + 2, f"{count - baseline} descriptors still open after the clients left"
    _warm_up(server)


def test_graceful_shutdown_does_not_wait_for_a_connection_with_an_unread_upload(gannet_server):
    """issue 9 defect 18: after the 401 to an unread upload, a connection whose client is
    still there does not hold graceful shutdown for the whole grace period."""
    server = gannet_server(APP, "--timeout-graceful-shutdown", "30")
    head = b"POST /reject HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % MIB
    with server.connect(timeout=10) as sock:
        sock.sendall(head + b"z" * (200 * 1024))
        assert read_response(Reader(sock, timeout=10)).status == 401
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=10)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: report it plainly
            code = None
        elapsed = time.monotonic() - started
    assert code is not None, "graceful shutdown waited for an idle connection (grace is 30 s)"
    assert code == 0, code
    assert elapsed < 10


# ---------------------------------------------------------------- defect 22 (FIN, then gone)
@pytest.mark.parametrize("watcher", [True, False])
def test_client_fin_then_reset_frees_the_socket_while_app_runs(gannet_server, watcher):
    """issue 9 defect 22: clients half-close (FIN) while a long-running app (15 s) holds
    their requests, stay half-closed a moment, then reset the connection: the server frees
    the sockets promptly instead of holding them until the app finishes; an app watching
    receive() has seen http.disconnect."""
    server = gannet_server(APP)
    _warm_up(server)
    baseline = _fds(server.proc.pid)
    tokens = [uuid.uuid4().hex[:12] for _ in range(4)]  # four clients: one would be a coin toss
    socks = []
    for token in tokens:
        sock = server.connect(timeout=10)
        socks.append(sock)
        sock.sendall(_req(f"/slow?t={token}&s=15&w={int(watcher)}"))
        server.wait_for_log(rf"review-slow started {token}")
        sock.shutdown(socket.SHUT_WR)
        if watcher:
            server.wait_for_log(rf"review-slow {token} disconnect", timeout=5)
    time.sleep(1.0)  # part of the scenario (the clients linger half-closed), not a sync
    for sock in socks:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST: the client is gone for good
    count = _wait_fds_at_most(server.proc.pid, baseline, timeout=6)
    assert count <= baseline, f"the server kept {count - baseline} sockets of clients that reset"
    assert "review-slow finished" not in server.log  # freed before the apps ended
    _warm_up(server)


# ---------------------------------------------------------------- write timeout (ASGI)
def test_asgi_stream_to_a_client_that_stops_reading_hits_the_write_timeout(gannet_server):
    """issue 9 (defect 1's ASGI half, --write-timeout): a streaming ASGI response whose
    client stops reading is aborted after --write-timeout 1 with a log line naming the
    timeout, and the app's send() raises (or returns) so the app task ends."""
    server = gannet_server(APP, "--write-timeout", "1", "--log-level", "debug")
    token = uuid.uuid4().hex[:12]
    sock = _small_window_socket(server)
    try:
        sock.sendall(_req(f"/stream-forever?t={token}"))
        reader = Reader(sock)
        head = reader.read_until(b"\r\n\r\n", time.monotonic() + 10)
        assert head.startswith(b"HTTP/1.1 200 ")
        # From here on the client reads nothing, and stays connected.
        server.wait_for_log(r"(?i)\[(error|warning|info|debug)\][^\n]*"
                            r"(write.{0,20}time.?out|time.?out[^\n]{0,40}writ)", timeout=15)
        server.wait_for_log(rf"review-stream-ended {token} ", timeout=10)
    finally:
        sock.close()
    _warm_up(server)
