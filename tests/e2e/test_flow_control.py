"""Back-pressure in both directions: the server must not buffer without bound, neither a
request body the app does not read nor a response the client does not read.

Memory is read from /proc/PID/status (VmRSS) of the server process. The bounds are
generous (tens of MiB) against transfers of 200 and 128 MiB, so a server that buffers
everything fails by a wide margin while kernel socket buffers never do."""
from __future__ import annotations

import socket
import sys
import time

import pytest

from corpus.wire import Reader, read_response

APP = "h1_apps:app"
MIB = 1024 * 1024
RSS_GROWTH_LIMIT_KIB = 48 * 1024

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def _warm_up(server) -> int:
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        assert read_response(Reader(sock)).status == 200
    return rss_kib(server.proc.pid)


def test_unread_upload_is_not_buffered(gannet_server):
    server = gannet_server(APP)
    baseline = _warm_up(server)
    total = 200 * MIB
    block = b"u" * (256 * 1024)
    with server.connect() as sock:
        sock.sendall(b"POST /never-read HTTP/1.1\r\nHost: test\r\n"
                     b"Content-Length: %d\r\n\r\n" % total)
        server.wait_for_log(r"h1-never-read started")
        sock.settimeout(1.0)
        sent = 0
        blocked = False
        peak = baseline
        deadline = time.monotonic() + 12
        while sent < total and time.monotonic() < deadline:
            try:
                sent += sock.send(block[: min(len(block), total - sent)])
            except socket.timeout:
                blocked = True  # the server stopped reading: back-pressure reached us
                break
            peak = max(peak, rss_kib(server.proc.pid))
            if peak - baseline > RSS_GROWTH_LIMIT_KIB:
                break
        peak = max(peak, rss_kib(server.proc.pid))
    assert peak - baseline <= RSS_GROWTH_LIMIT_KIB, \
        f"server RSS grew by {(peak - baseline) // 1024} MiB while the app read nothing"
    assert blocked, f"client sent {sent // MIB} MiB without ever being blocked"
    assert sent < 64 * MIB


def test_slow_reader_does_not_make_server_buffer_the_response(gannet_server):
    server = gannet_server(APP)
    baseline = _warm_up(server)
    mib = 128
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # before connect: small window
    try:
        sock.settimeout(10)
        sock.connect((server.host, server.port))
        sock.sendall(b"GET /big?mib=%d HTTP/1.1\r\nHost: test\r\n\r\n" % mib)
        reader = Reader(sock)
        head = reader.read_until(b"\r\n\r\n", time.monotonic() + 10)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"content-length: %d\r\n" % (mib * MIB) in head.lower()
        got = len(reader.buffer)
        reader.buffer = b""

        # Stop reading for a bounded observation window: the app must be held back.
        peak = baseline
        window_end = time.monotonic() + 2.0
        while time.monotonic() < window_end:
            peak = max(peak, rss_kib(server.proc.pid))
            if peak - baseline > RSS_GROWTH_LIMIT_KIB or "h1-big done" in server.log:
                break
            time.sleep(0.05)  # sampling interval, not synchronisation
        finished_early = "h1-big done" in server.log
        assert peak - baseline <= RSS_GROWTH_LIMIT_KIB, \
            f"server RSS grew by {(peak - baseline) // 1024} MiB for a client that is not reading"
        assert not finished_early, "the app sent all 128 MiB while the client read nothing"

        # Now read everything: the response is complete and exact.
        buffer = bytearray(MIB)
        deadline = time.monotonic() + 15
        while got < mib * MIB and time.monotonic() < deadline:
            n = sock.recv_into(buffer)
            if n == 0:
                break
            got += n
        assert got == mib * MIB
    finally:
        sock.close()
    server.wait_for_log(r"h1-big done")
