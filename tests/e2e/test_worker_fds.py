"""File descriptors run out: accept failures get a clear, rate-limited warning and the
worker keeps serving (server/fd_limit.py). The app module lowers its own process's
RLIMIT_NOFILE at import (tests/apps/proc_fd_limit.py), so a few dozen loopback
connections exhaust it; on both loops (asyncio reports accept errors to the loop's
exception handler, uvloop/libuv resets the extra connections silently)."""
from __future__ import annotations

import re
import socket
import time

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)

EXTRA = 40  # connections beyond what the lowered limit allows


def get(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"ok") and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_out_of_file_descriptors_is_logged_and_serving_goes_on(gannet_server, loop):
    server = gannet_server("proc_fd_limit:app", "--loop", loop)
    limit = int(server.wait_for_log(r"proc fd limit (\d+)").group(1))
    first = server.connect()
    assert get(first).startswith(b"HTTP/1.1 200"), "the first connection is served"
    others: list[socket.socket] = []
    try:
        for _ in range(EXTRA):
            try:
                others.append(socket.create_connection((server.host, server.port), timeout=5))
            except OSError:
                break  # the backlog is full: exhausted enough
        match = server.wait_for_log(
            r"Cannot accept new connections: Too many open files \(EMFILE; open file limit (\d+)", timeout=10)
        assert int(match.group(1)) == limit
        # A connection accepted before the limit was hit is still served.
        assert get(first).startswith(b"HTTP/1.1 200"), server.log
        # Rate-limited: far fewer warnings than refused connections.
        assert len(re.findall(r"Cannot accept new connections", server.log)) <= 5
    finally:
        for sock in others:
            sock.close()
        first.close()
    # Once the extra connections are gone, new ones are served again.
    deadline = time.monotonic() + 15
    while True:
        try:
            response = httpx.get(server.url + "/", timeout=5)
            break
        except httpx.TransportError:
            # uvloop may still reset a connection or two while the closes land
            assert time.monotonic() < deadline, server.log
            time.sleep(0.1)  # pacing a retry, not synchronising
    assert response.status_code == 200
    assert response.text == "ok"
    assert server.proc.poll() is None
