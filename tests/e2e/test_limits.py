"""Limits and timeouts, black-box: each refusal is one response with its status,
``connection: close``, the connection closed, and an info log line saying why."""
from __future__ import annotations

import re
import signal
import socket
import threading
import time

import httpx
import pytest

from corpus.wire import Reader, read_response

from conftest import raw_request

pytestmark = pytest.mark.timeout(30)


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes; fails if it is still open at the deadline."""
    chunks = []
    deadline = time.monotonic() + timeout
    sock.settimeout(0.25)
    while True:
        if time.monotonic() > deadline:
            raise AssertionError(f"connection still open after {timeout}s; got {b''.join(chunks)!r}")
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def assert_refused(server, reply: bytes, status: int, why: str) -> None:
    head = reply.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 %d " % status), reply[:300]
    assert re.search(rb"(?im)^connection: close\r?$", head), head
    assert reply.count(b"HTTP/1.1 ") == 1, reply[:500]
    server.wait_for_log(rf"\[INFO\].*refused request.*{status}.*{why}")


def request(path: str = "/", headers: str = "", body: bytes = b"", method: str = "GET") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").encode() + body


def test_request_line_too_long_414(gannet_server):
    server = gannet_server("cfg_apps:app", "--limit-request-line", "128")
    ok = raw_request(server, request("/" + "a" * 60, "Connection: close\r\n"))
    assert ok.startswith(b"HTTP/1.1 200"), ok
    reply = raw_request(server, request("/" + "a" * 300))
    assert_refused(server, reply, 414, "request line")


def test_request_line_default_limit(gannet_server):
    server = gannet_server("cfg_apps:app")
    reply = raw_request(server, request("/" + "a" * 9000))
    assert_refused(server, reply, 414, "request line")


def test_too_many_fields_431(gannet_server):
    server = gannet_server("cfg_apps:app", "--limit-request-fields", "5")
    ok = raw_request(server, request("/", "".join(f"X-{i}: v\r\n" for i in range(3)) + "Connection: close\r\n"))
    assert ok.startswith(b"HTTP/1.1 200"), ok
    reply = raw_request(server, request("/", "".join(f"X-{i}: v\r\n" for i in range(10))))
    assert_refused(server, reply, 431, "header fields")


def test_too_many_fields_refused_before_the_head_ends(gannet_server):
    """The field count is enforced as fields arrive: a head that never ends but keeps
    sending tiny fields is refused at the limit, not buffered up to the head-size limit."""
    server = gannet_server("cfg_apps:app", "--limit-request-fields", "5",
                           "--header-read-timeout", "30")
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(50)))
        reader = Reader(sock, timeout=10.0)
        response = read_response(reader)  # no end of head was sent: only the limit answers
    assert response.status == 431
    server.wait_for_log(r"\[INFO\].*refused request.*431.*header fields")


def test_field_too_large_431(gannet_server):
    server = gannet_server("cfg_apps:app", "--limit-request-field-size", "100")
    ok = raw_request(server, request("/", "X-Small: " + "v" * 50 + "\r\nConnection: close\r\n"))
    assert ok.startswith(b"HTTP/1.1 200"), ok
    reply = raw_request(server, request("/", "X-Big: " + "v" * 300 + "\r\n"))
    assert_refused(server, reply, 431, "header field longer")


def test_body_content_length_over_limit_413(gannet_server):
    server = gannet_server("cfg_apps:app", "--limit-request-body", "100")
    ok = raw_request(server, request("/echo", "Content-Length: 100\r\nConnection: close\r\n", b"x" * 100,
                                     method="POST"))
    assert ok.startswith(b"HTTP/1.1 200") and ok.endswith(b"x" * 100), ok
    reply = raw_request(server, request("/echo", "Content-Length: 101\r\n", b"x" * 101, method="POST"))
    assert_refused(server, reply, 413, "Content-Length")


def test_expect_continue_over_limit_gets_413_without_100(gannet_server):
    server = gannet_server("cfg_apps:app", "--limit-request-body", "100")
    with server.connect() as sock:
        sock.sendall(request("/echo", "Content-Length: 5000\r\nExpect: 100-continue\r\n", method="POST"))
        reply = read_until_closed(sock, timeout=5)
    assert b"100 Continue" not in reply
    assert_refused(server, reply, 413, "Content-Length")


def test_body_chunked_over_limit_413(gannet_server):
    server = gannet_server("cfg_apps:app", "--limit-request-body", "100")
    chunked = b"".join(b"%x\r\n%s\r\n" % (40, b"y" * 40) for _ in range(4)) + b"0\r\n\r\n"
    reply = raw_request(server, request("/echo", "Transfer-Encoding: chunked\r\n", chunked, method="POST"))
    assert_refused(server, reply, 413, "body")


def test_body_chunked_under_limit_ok(gannet_server):
    server = gannet_server("cfg_apps:app", "--limit-request-body", "100")
    chunked = b"".join(b"%x\r\n%s\r\n" % (40, b"y" * 40) for _ in range(2)) + b"0\r\n\r\n"
    reply = raw_request(server, request("/echo", "Transfer-Encoding: chunked\r\nConnection: close\r\n",
                                        chunked, method="POST"))
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"y" * 80), reply


def test_body_limit_zero_disables(gannet_server):
    server = gannet_server("cfg_apps:app", "--limit-request-body", "0")
    response = httpx.post(server.url + "/echo", content=b"z" * 200_000)
    assert response.status_code == 200
    assert len(response.content) == 200_000


def test_header_read_timeout_408(gannet_server):
    # Default is 10 s; a deadline of 8 s proves the option took effect.
    server = gannet_server("cfg_apps:app", "--header-read-timeout", "1")
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Half")
        reply = read_until_closed(sock, timeout=8)
    assert_refused(server, reply, 408, "in time")


def test_header_read_timeout_spares_idle_keep_alive(gannet_server):
    """The slowloris timer starts at a request's first byte, not when the connection idles."""
    server = gannet_server("cfg_apps:app", "--header-read-timeout", "1", "--timeout-keep-alive", "60")
    with server.connect() as sock:
        sock.sendall(request("/"))
        first = b""
        deadline = time.monotonic() + 5
        while b"cfg ok" not in first and time.monotonic() < deadline:
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        # wait (by the log, not a sleep) until the 1 s header timeout has certainly passed on
        # another connection, then use this idle one again
        with server.connect() as other:
            other.sendall(b"GET / HTTP/1.1\r\n")
            assert read_until_closed(other, timeout=8).startswith(b"HTTP/1.1 408")
        sock.sendall(request("/again", "Connection: close\r\n"))
        reply = read_until_closed(sock, timeout=5)
    assert reply.startswith(b"HTTP/1.1 200"), reply


def test_body_read_timeout_408(gannet_server):
    """A body that stops arriving (slow POST) is abandoned with 408; the default is 60 s,
    so a refusal within the 8 s deadline proves the option took effect."""
    server = gannet_server("cfg_apps:app", "--body-read-timeout", "1")
    with server.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        reply = read_until_closed(sock, timeout=8)
    assert_refused(server, reply, 408, "body stalled")


def test_keep_alive_timeout_closes_idle_connection(gannet_server):
    # GANNET_TIMEOUT_KEEP_ALIVE=60 is overridden by the flag; a close before the 8 s
    # deadline proves the 1 s value is what the server used.
    server = gannet_server("cfg_apps:app", "--timeout-keep-alive", "1",
                           env={"GANNET_TIMEOUT_KEEP_ALIVE": "60"})
    with server.connect() as sock:
        sock.sendall(request("/"))
        data = b""
        deadline = time.monotonic() + 5
        while b"cfg ok" not in data and time.monotonic() < deadline:
            data += sock.recv(65536)
        assert data.startswith(b"HTTP/1.1 200") and b"connection: close" not in data.lower()
        rest = read_until_closed(sock, timeout=8)
    assert rest == b""


def test_limit_concurrency_503(gannet_server, tmp_path):
    release = tmp_path / "release"
    server = gannet_server("cfg_apps:app", "--limit-concurrency", "1")
    slow_sock = server.connect()
    slow_sock.sendall(request(f"/wait?file={release}", "Connection: close\r\n"))
    result: dict[str, bytes] = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", read_until_closed(slow_sock, 15)),
                              daemon=True)
    thread.start()
    try:
        server.wait_for_log(r"cfg waiting")
        reply = raw_request(server, request("/"))
        assert_refused(server, reply, 503, "limit-concurrency")
    finally:
        release.touch()
        thread.join(15)
        slow_sock.close()
    assert result["r"].startswith(b"HTTP/1.1 200"), result
    # capacity is back once the slow one is done
    assert httpx.get(server.url + "/").status_code == 200


def test_limit_max_requests_exits_0(gannet_server):
    server = gannet_server("cfg_apps:app", "--limit-max-requests", "3")
    with httpx.Client(base_url=server.url) as client:
        for i in range(3):
            response = client.get(f"/n{i}")
            assert response.status_code == 200
            assert response.text == f"/n{i}"
    assert server.wait(timeout=10) == 0, server.log
    server.wait_for_log(r"Maximum request limit of 3 reached")
    assert server.log.count("/n") >= 3


def test_limit_max_requests_not_before(gannet_server):
    server = gannet_server("cfg_apps:app", "--limit-max-requests", "3")
    for _ in range(2):
        assert httpx.get(server.url + "/").status_code == 200
    # after two requests it still serves (and is still running)
    assert server.proc.poll() is None
    assert "Maximum request limit" not in server.log
    server.signal(signal.SIGTERM)
    assert server.wait() == 0


def test_refusal_does_not_stop_server(gannet_server):
    server = gannet_server("cfg_apps:app", "--limit-request-line", "64")
    for _ in range(3):
        assert raw_request(server, request("/" + "a" * 200)).startswith(b"HTTP/1.1 414")
    assert httpx.get(server.url + "/").text == "cfg ok"
