"""The raw-request corpus (tests/corpus/) against a real server running corpus_echo:app.

Every case is sent three ways: in one write, one byte per write, and in random chunk
sizes seeded by the case name (so a failure replays the same split). Valid requests must
reach the app exactly as expected and leave the connection usable; invalid ones must be
answered with the expected status and ``connection: close``, the connection must close,
the app must never have been called, and the server must still answer afterwards.
"""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest

from conftest import start_server
from corpus import build
from corpus.wire import (Reader, WireError, app_calls, app_counts, chunks, connect, load, read_response,
                         send_chunks)

MODES = ["whole", "bytewise", "random"]
VALID = load("valid")
INVALID = load("invalid")


@pytest.fixture(scope="module")
def server():
    srv = start_server("corpus_echo:app", "--timeout-graceful-shutdown", "1")
    yield srv
    if srv.proc.poll() is None:
        srv.proc.send_signal(signal.SIGTERM)
        try:
            srv.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            srv.proc.wait(timeout=5)


def test_corpus_files_match_their_source():
    assert build.check() == [], "run: python tests/corpus/build.py"
    assert len(VALID) >= 25 and len(INVALID) >= 40


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", VALID, ids=lambda c: c.name)
def test_valid(server, case, mode):
    expected = case.expect["requests"]
    before = app_calls(server.host, server.port)
    with connect(server.host, server.port) as sock:
        assert send_chunks(sock, chunks(case.data, mode, case.name)), "server closed while sending"
        reader = Reader(sock, timeout=5.0)
        calls = []
        for want in expected:
            response = read_response(reader)
            assert response.status == 200, (response, reader.buffer[:200])
            got = json.loads(response.body)
            calls.append(got.pop("call"))
            assert got == want
        assert calls == list(range(before + 1, before + 1 + len(expected))), \
            "the app saw other requests than those sent"
        if case.expect.get("close"):
            assert response.get_all(b"connection") == [b"close"]
            assert reader.at_eof(), "server kept the connection open"
        else:
            # The connection must still be in sync: the next request is parsed from a
            # clean boundary (nothing left over from bodies, chunks or trailers).
            assert response.get_all(b"connection") != [b"close"]
            sock.sendall(b"GET /__calls HTTP/1.1\r\nHost: corpus\r\n\r\n")
            follow = read_response(reader)
            assert follow.status == 200
            assert json.loads(follow.body)["calls"] == before + len(expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.name)
def test_invalid(server, case, mode):
    status = case.expect["status"]
    answered_before = case.expect.get("answered_before", 0)
    before = app_counts(server.host, server.port)
    with connect(server.host, server.port) as sock:
        send_chunks(sock, chunks(case.data, mode, case.name))
        reader = Reader(sock, timeout=5.0)
        for _ in range(answered_before):
            assert read_response(reader).status == 200
        try:
            response = read_response(reader)
        except WireError as exc:
            pytest.fail(f"expected {status}, got no well-formed response: {exc}")
        assert response.status == status, (response.status, response.body[:200])
        assert response.get_all(b"connection") == [b"close"]
        assert reader.at_eof(), "server kept the connection open after refusing"
    # The app never received the refused request, and the server still answers a good one.
    after = app_counts(server.host, server.port)
    assert after["calls"] == before["calls"] + answered_before, "the app received the bad request"
    started = after["started"] - before["started"] - answered_before
    if case.expect.get("in_body"):
        assert started in (0, 1)  # called for the head, then saw http.disconnect
    else:
        assert started == 0, "the app was called for a request refused in its head"


@pytest.mark.parametrize("body", [
    b"Content-Length: 10\r\n\r\nabc",
    b"Transfer-Encoding: chunked\r\n\r\n5\r\nab",
    b"Transfer-Encoding: ch",
], ids=["content-length", "chunked", "inside-head"])
def test_incomplete_request_then_half_close_is_not_left_hanging(gannet_server, body):
    """A client that half-closes mid-request will never finish it. The server must not
    wait forever: it answers (e.g. 400) or closes, and the app sees http.disconnect."""
    srv = gannet_server("corpus_echo:app", "--timeout-graceful-shutdown", "1")
    with connect(srv.host, srv.port, timeout=5) as sock:
        sock.sendall(b"POST /partial HTTP/1.1\r\nHost: corpus\r\n" + body)
        sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock)
        received = reader.read_to_eof(time.monotonic() + 4)
        assert reader.eof, (
            f"server neither answered nor closed within 4 s of the client's half-close "
            f"(received {received[:200]!r})")
    if received:  # answering is optional; if it does, it is a 400 (RFC 9112 8)
        assert received.startswith(b"HTTP/1.1 400 "), received[:200]
    app_calls(srv.host, srv.port)  # and the server still answers
