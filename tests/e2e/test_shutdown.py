"""Graceful shutdown, black-box: SIGTERM/SIGINT stop accepting, close idle keep-alive
connections, let in-flight requests finish with ``connection: close``, and exit 0;
--timeout-graceful-shutdown cancels what never finishes; a second SIGINT forces exit.

The slow request is the app's /wait?file=PATH, which answers once PATH exists: the test
creates the file after the signal, so the order of events is fixed without sleeps."""
from __future__ import annotations

import signal
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.timeout(40)


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    chunks = []
    deadline = time.monotonic() + timeout
    sock.settimeout(0.25)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    else:
        raise AssertionError(f"connection still open after {timeout}s; got {b''.join(chunks)!r}")
    return b"".join(chunks)


def read_response(sock: socket.socket, marker: bytes, timeout: float = 5.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    sock.settimeout(0.25)
    while marker not in data:
        if time.monotonic() > deadline:
            raise AssertionError(f"no complete response; got {data!r}")
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        data += chunk
    return data


class BackgroundRequest:
    """Sends one raw request on its own connection and reads until the server closes it."""

    def __init__(self, server, target: str) -> None:
        self.sock = server.connect()
        self.response: bytes | None = None
        self.error: BaseException | None = None
        self.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.response = read_until_closed(self.sock, timeout=25)
        except BaseException as exc:  # noqa: BLE001
            self.error = exc
        finally:
            self.sock.close()

    def result(self, timeout: float = 15.0) -> bytes:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the request never finished"
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


def idle_keep_alive_connection(server) -> socket.socket:
    sock = server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    data = read_response(sock, b"cfg ok")
    assert data.startswith(b"HTTP/1.1 200"), data
    assert b"connection: close" not in data.lower()
    return sock


def wait_refused(server, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            sock = socket.create_connection((server.host, server.port), timeout=1)
        except ConnectionRefusedError:
            return
        sock.close()
        time.sleep(0.05)  # pacing a poll, not synchronising
    raise AssertionError("the server still accepts connections after the shutdown signal")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown(gannet_server, tmp_path, sig):
    release = tmp_path / "release"
    server = gannet_server("cfg_apps:app")
    idle = idle_keep_alive_connection(server)
    slow = BackgroundRequest(server, f"/wait?file={release}")
    server.wait_for_log(r"cfg waiting")

    server.signal(sig)
    server.wait_for_log(r"Shutting down")
    # idle keep-alive connections are closed by the server
    with idle:
        assert read_until_closed(idle, timeout=5) == b""
    # no new connections are accepted
    wait_refused(server)
    # the server is still running: it waits for the in-flight request
    assert server.proc.poll() is None

    release.touch()
    reply = slow.result()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply
    assert b"connection: close" in head.lower(), reply
    assert body == b"released"
    assert server.wait(timeout=15) == 0, server.log
    assert "cfg shutdown ran" in server.log
    server.wait_for_log(r"Finished server process")


def test_sigterm_idle_server_exits_0(gannet_server):
    server = gannet_server("cfg_apps:app")
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0
    assert "Traceback" not in server.log


def test_second_request_on_draining_keep_alive_connection_gets_close(gannet_server, tmp_path):
    """A keep-alive connection whose request is in flight gets `connection: close` and no more."""
    release = tmp_path / "release"
    server = gannet_server("cfg_apps:app")
    with server.connect() as sock:
        sock.sendall(f"GET /wait?file={release} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        server.wait_for_log(r"cfg waiting")
        server.signal(signal.SIGTERM)
        server.wait_for_log(r"Shutting down")
        release.touch()
        reply = read_until_closed(sock, timeout=10)
    assert reply.startswith(b"HTTP/1.1 200"), reply
    assert b"connection: close" in reply.lower()
    assert server.wait(timeout=15) == 0


def test_graceful_timeout_cancels_hung_request(gannet_server):
    server = gannet_server("cfg_apps:app", "--timeout-graceful-shutdown", "1")
    hung = BackgroundRequest(server, "/hang")
    server.wait_for_log(r"cfg hanging")
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0, server.log
    server.wait_for_log(r"Graceful shutdown timed out")
    server.wait_for_log(r"cfg cancelled")
    reply = hung.result()
    assert b"HTTP/1.1 200" not in reply


def test_second_sigint_forces_exit(gannet_server):
    # With the default 30 s graceful timeout, only the second SIGINT can end this quickly.
    server = gannet_server("cfg_apps:app")
    hung = BackgroundRequest(server, "/hang")
    server.wait_for_log(r"cfg hanging")
    server.signal(signal.SIGINT)
    server.wait_for_log(r"Shutting down")
    assert server.proc.poll() is None
    server.signal(signal.SIGINT)
    server.wait(timeout=10)
    server.wait_for_log(r"[Ss]econd interrupt|forc")
    hung.result()


def test_shutdown_with_pending_connection_that_never_sent(gannet_server):
    """A client that connected but never sent a byte must not hold shutdown up."""
    server = gannet_server("cfg_apps:app")
    with server.connect() as sock:
        # make sure the server has accepted it: a request on another connection round-trips
        idle_keep_alive_connection(server).close()
        server.signal(signal.SIGTERM)
        assert read_until_closed(sock, timeout=5) == b""
    assert server.wait(timeout=10) == 0


def test_shutdown_with_partial_request_head(gannet_server):
    """A client stalled half-way through a request head does not hold up shutdown for the
    whole graceful timeout (it gets closed, or a 408/503, promptly)."""
    server = gannet_server("cfg_apps:app", "--header-read-timeout", "60")
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
        idle_keep_alive_connection(server).close()
        server.signal(signal.SIGTERM)
        started = time.monotonic()
        reply = read_until_closed(sock, timeout=8)  # default graceful timeout: 30 s
        assert b" 200 " not in reply
    assert server.wait(timeout=8) == 0
    assert time.monotonic() - started < 16


def test_second_sigint_forces_exit_during_hung_lifespan_shutdown(gannet_server):
    server = gannet_server("cfg_lifespan:shutdown_hangs")
    server.signal(signal.SIGINT)
    server.wait_for_log(r"cfg shutdown hanging")
    assert server.proc.poll() is None
    server.signal(signal.SIGINT)
    assert server.wait(timeout=10) is not None


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_request_that_ignores_cancellation_does_not_hang_the_exit(gannet_server, loop):
    """Every wait of the drain is bounded: graceful timeout, cancel, then one more second
    for what was cancelled -- also in the event loop's own clean-up (asyncio.run would
    wait for a task that swallows cancellation forever)."""
    server = gannet_server("proc_apps:request_stubborn", "--loop", loop, "--timeout-graceful-shutdown", "1")
    hung = BackgroundRequest(server, "/")
    server.wait_for_log(r"proc request hanging")
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0, server.log
    server.wait_for_log(r"Graceful shutdown timed out")
    server.wait_for_log(r"proc request ignoring cancellation")
    assert b"HTTP/1.1 200" not in hung.result()


def test_hung_lifespan_shutdown_is_bounded_by_the_graceful_timeout(gannet_server):
    server = gannet_server("cfg_lifespan:shutdown_hangs", "--timeout-graceful-shutdown", "1")
    server.signal(signal.SIGTERM)
    server.wait_for_log(r"cfg shutdown hanging")
    assert server.wait(timeout=10) == 0, server.log
    assert "Lifespan shutdown did not finish" in server.log
