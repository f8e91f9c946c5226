"""Big bodies, slow clients, disconnects and shutdown: memory stays bounded, threads are
never held by a client's pace, close() is always called, shutdown waits for running calls."""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import threading
import time

import pytest

from wsgi_helpers import request, wsgi_server  # noqa: F401 (fixture)

MiB = 1024 * 1024


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _rss_mib(server) -> float:
    return _status_kib(server.proc.pid, "VmRSS") / 1024


def _peak_mib(server) -> float:
    return _status_kib(server.proc.pid, "VmHWM") / 1024


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    deadline = time.monotonic() + 10
    while b"\r\n\r\n" not in data:
        assert time.monotonic() < deadline, data
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def server(wsgi_server):
    return wsgi_server()


def test_large_upload_memory_bounded(server):
    size = 256 * MiB
    baseline = _rss_mib(server)
    block = os.urandom(MiB)
    digest = hashlib.sha256()
    with server.connect(timeout=60) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n" % size)
        for _ in range(size // MiB):
            sock.sendall(block)
            digest.update(block)
        reply = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200")
    assert reply.endswith(f"{size} {digest.hexdigest()}".encode())
    # At most the worker-wide --wsgi-body-buffer (64 MiB) stays in memory; the other
    # 192 MiB went to a temporary file.
    assert _peak_mib(server) < baseline + 64 + 32, (baseline, _peak_mib(server))


def test_large_download_memory_bounded(server):
    size = 300 * MiB
    baseline = _rss_mib(server)
    received = 0
    with server.connect(timeout=60) as sock:
        sock.sendall(b"GET /big?size=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % size)
        head, rest = _read_head(sock)
        assert head.startswith(b"HTTP/1.1 200")
        received = len(rest)
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
    assert received == size
    assert _peak_mib(server) < baseline + 64, (baseline, _peak_mib(server))


def test_slow_reader_is_bounded_and_others_are_served(server):
    """A client that stops reading a 200 MiB stream: the server holds at most its write
    buffer for it (the app's thread waits), and other clients are served meanwhile."""
    baseline = _rss_mib(server)
    slow = server.connect(timeout=30)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        slow.sendall(b"GET /big?size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (200 * MiB))
        _read_head(slow)
        for _ in range(20):
            status, _, body = request(server, "GET", "/")
            assert (status, body) == (200, b"hello")
        status, _, body = request(server, "POST", "/echo", body=b"x" * 100_000)
        assert status == 200 and len(body) == 100_000
        # Nothing read beyond the head: the server must not have buffered the 200 MiB.
        assert _rss_mib(server) < baseline + 48, (baseline, _rss_mib(server))
        # ...and it resumes when the client reads again.
        total = 0
        deadline = time.monotonic() + 30
        while total < 8 * MiB and time.monotonic() < deadline:
            total += len(slow.recv(1 << 20))
        assert total >= 8 * MiB
    finally:
        slow.close()


def test_slow_downloader_of_a_file_holds_no_thread(wsgi_server, tmp_path):
    """file_wrapper goes out with sendfile from the event loop: with a single thread, a
    client that does not read its file leaves that thread free for others."""
    server = wsgi_server("--threads", "1")
    path = tmp_path / "big.bin"
    with open(path, "wb") as handle:
        handle.truncate(64 * MiB)
    slow = server.connect(timeout=30)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        slow.sendall(f"GET /file?path={path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head, _ = _read_head(slow)
        assert head.startswith(b"HTTP/1.1 200")
        for _ in range(5):
            assert request(server, "GET", "/")[0] == 200
    finally:
        slow.close()


def test_big_list_response_holds_no_thread(wsgi_server):
    """A one-shot body is handed to the loop whole: the thread is free at once."""
    server = wsgi_server("--threads", "1")
    slow = server.connect(timeout=30)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        slow.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (8 * MiB)
                     + b"e" * (8 * MiB))
        head, _ = _read_head(slow)
        assert head.startswith(b"HTTP/1.1 200")
        for _ in range(5):
            assert request(server, "GET", "/")[0] == 200
    finally:
        slow.close()


def test_slow_uploader_holds_no_thread(wsgi_server):
    """The body is read by the event loop before the app runs: with one thread, a client
    trickling its body does not keep others waiting."""
    server = wsgi_server("--threads", "1")
    slow = server.connect(timeout=30)
    try:
        slow.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10)
        for _ in range(5):
            assert request(server, "GET", "/")[0] == 200
        slow.sendall(b"a" * 990)
        head, rest = _read_head(slow)
        assert head.startswith(b"HTTP/1.1 200")
    finally:
        slow.close()


def test_close_called_when_client_disconnects(server, tmp_path):
    marker = tmp_path / "closed"
    sock = server.connect(timeout=10)
    sock.sendall(f"GET /close?file={marker} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    _read_head(sock)
    sock.recv(65536)
    sock.close()  # halfway through a 1 GiB response
    _wait_until(marker.exists, 20, "close() after the disconnect")
    assert marker.read_text() == "closed"
    assert request(server, "GET", "/")[0] == 200


def test_close_called_after_normal_response(server, tmp_path):
    marker = tmp_path / "closed"
    # HEAD: the iterable is still walked and closed, the body is not sent
    sock = server.connect(timeout=30)
    sock.sendall(f"HEAD /close?file={marker} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head, rest = _read_head(sock)
    sock.close()
    assert head.startswith(b"HTTP/1.1 200") and rest == b""
    _wait_until(marker.exists, 20, "close() after the response")


def test_many_concurrent_clients(server):
    errors: list[Exception] = []

    def client(index: int) -> None:
        try:
            for round_ in range(20):
                body = f"{index}-{round_}".encode() * 50
                status, _, reply = request(server, "POST", "/echo", body=body)
                assert (status, reply) == (200, body)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[:3]


def test_graceful_shutdown_waits_for_running_call(server, tmp_path):
    flag = tmp_path / "go"
    sock = server.connect(timeout=30)
    sock.sendall(f"GET /wait?file={flag} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    # Be sure the call is running in a thread before asking the server to stop: the
    # access log line only comes at the end, so probe with a second request first.
    assert request(server, "GET", "/")[0] == 200
    server.signal(signal.SIGTERM)
    server.wait_for_log(r"Shutting down")
    assert server.proc.poll() is None  # still waiting for the running WSGI call
    flag.write_text("go")
    head, rest = _read_head(sock)
    assert head.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in head.lower()
    sock.close()
    assert server.wait(timeout=20) == 0
