"""HTTP/1.1 wire behaviour (RFC 9110 / RFC 9112), black-box against a real server."""
from __future__ import annotations

import json
import re
import socket
import time
from email.utils import parsedate_to_datetime

import httpx
import pytest

from conftest import raw_request
from corpus.wire import Reader, read_response

APP = "h1_apps:app"


def _get(path: str, extra: bytes = b"", version: bytes = b"1.1", method: bytes = b"GET") -> bytes:
    return b"%b %b HTTP/%b\r\nHost: test\r\n%b\r\n" % (method, path.encode(), version, extra)


# ---------------------------------------------------------------- keep-alive and pipelining
def test_keep_alive_serves_several_requests_on_one_socket(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        reader = Reader(sock)
        ports = set()
        for i in range(4):
            sock.sendall(_get(f"/scope/{i}"))
            response = read_response(reader)
            assert response.status == 200
            assert response.get(b"connection") != b"close"
            scope = json.loads(response.body)
            assert scope["path"] == f"/scope/{i}"
            ports.add(scope["client"][1])
        assert ports == {sock.getsockname()[1]}  # all on this one connection


def test_pipelined_requests_answered_in_order(gannet_server):
    server = gannet_server(APP)
    requests = (
        _get("/scope/first")
        + b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\n\r\nsecond"
        + _get("/stream")
        + _get("/scope/fourth")
    )
    with server.connect() as sock:
        sock.sendall(requests)  # one write
        reader = Reader(sock)
        first = read_response(reader)
        second = read_response(reader)
        third = read_response(reader)
        fourth = read_response(reader)
    assert first.status == 200 and json.loads(first.body)["path"] == "/scope/first"
    assert second.status == 200 and second.body == b"second"
    assert third.status == 200 and third.framing == "chunked" and third.body == b"one,two,three"
    assert fourth.status == 200 and json.loads(fourth.body)["path"] == "/scope/fourth"


def test_pipelined_requests_then_half_close_all_answered(gannet_server):
    """A client may send its pipelined requests and then shut down its write side
    (printf ... | nc). Every request already received is still owed a response."""
    server = gannet_server(APP)
    reply = raw_request(server, _get("/scope/a") + _get("/scope/b") + _get("/scope/c"))
    paths = re.findall(rb'"path": "([^"]*)"', reply)
    assert reply.count(b"HTTP/1.1 200 ") == 3, reply[:600]
    assert paths == [b"/scope/a", b"/scope/b", b"/scope/c"]


# ---------------------------------------------------------------- request bodies
def test_chunked_request_body_with_extensions_and_trailers(gannet_server):
    server = gannet_server(APP)
    body = (b"5;name=value\r\nhello\r\n"
            b"1;ext\r\n \r\n"
            b"5\r\nworld\r\n"
            b"0\r\nX-Trailer: ignored\r\n\r\n")
    request = (b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
               + body + _get("/scope/after"))
    with server.connect() as sock:
        sock.sendall(request)
        reader = Reader(sock)
        echoed = read_response(reader)
        after = read_response(reader)
    assert echoed.status == 200
    assert echoed.body == b"hello world"
    # the trailer field is not part of the body and did not break the framing
    assert after.status == 200
    scope = json.loads(after.body)
    assert scope["path"] == "/scope/after"
    assert all(name != "x-trailer" for name, _ in scope["headers"])


def test_chunked_request_trailer_not_visible_in_scope(gannet_server):
    server = gannet_server(APP)
    request = (b"POST /scope/t HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n0\r\nX-Trailer: nope\r\n\r\n")
    with server.connect() as sock:
        sock.sendall(request)
        response = read_response(Reader(sock))
    assert response.status == 200
    names = [name for name, _ in json.loads(response.body)["headers"]]
    assert "x-trailer" not in names
    assert "transfer-encoding" in names


# ---------------------------------------------------------------- response framing
def test_streamed_response_without_length_is_chunked(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_get("/stream"))
        response = read_response(Reader(sock))
    assert response.status == 200
    assert response.framing == "chunked"
    assert response.get(b"content-length") is None
    assert response.body == b"one,two,three"


def test_content_length_responses(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        reader = Reader(sock)
        sock.sendall(_get("/"))
        one_shot = read_response(reader)
        sock.sendall(_get("/cl"))
        app_length = read_response(reader)
    assert one_shot.framing == "length" and one_shot.get(b"content-length") == b"5"
    assert one_shot.body == b"hello"
    assert app_length.framing == "length" and app_length.get(b"content-length") == b"13"
    assert app_length.get(b"transfer-encoding") is None
    assert app_length.body == b"one,two,three"


@pytest.mark.parametrize("path", ["/", "/stream", "/cl"])
def test_head_sends_headers_without_body(gannet_server, path):
    server = gannet_server(APP)
    with server.connect() as sock:
        reader = Reader(sock)
        sock.sendall(_get(path, method=b"HEAD"))
        head = read_response(reader, head_request=True)
        # the next response must start right after the head: no body bytes in between
        sock.sendall(_get("/scope/next"))
        following = read_response(reader)
    assert head.status == 200
    assert head.get(b"content-type") == b"text/plain"
    assert following.status == 200
    assert json.loads(following.body)["path"] == "/scope/next"


def test_head_then_eof_has_no_body(gannet_server):
    server = gannet_server(APP)
    reply = raw_request(server, _get("/", extra=b"Connection: close\r\n", method=b"HEAD"))
    assert reply.startswith(b"HTTP/1.1 200 ")
    head, _, rest = reply.partition(b"\r\n\r\n")
    assert rest == b""
    assert b"hello" not in reply


# ---------------------------------------------------------------- 100-continue
def test_expect_continue_sent_only_when_app_reads(gannet_server, tmp_path):
    server = gannet_server(APP)
    gate = tmp_path / "gate"
    with server.connect() as sock:
        sock.sendall(b"POST /expect-gated?f=%b HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n" % str(gate).encode())
        server.wait_for_log(r"h1-expect-gated waiting")
        # The app has started but not called receive(): nothing may be on the wire yet.
        sock.settimeout(0.3)
        try:
            early = sock.recv(1024)
        except socket.timeout:
            early = None
        assert early is None, f"server wrote {early!r} before the app called receive()"
        gate.write_bytes(b"")
        reader = Reader(sock)
        continue_line = reader.read_until(b"\r\n\r\n", time.monotonic() + 10)
        assert continue_line == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        response = read_response(reader)
    assert response.status == 200
    assert response.body == b"hello"


def test_expect_continue_not_sent_when_app_answers_without_reading(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(b"POST /expect-deny HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        reader = Reader(sock)
        response = read_response(reader)
    assert response.interim == []
    assert b"100 Continue" not in response.head_raw
    assert response.status == 401
    assert response.body == b"denied"


def test_expect_continue_with_httpx_upload(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(b"PUT /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        reader = Reader(sock)
        assert reader.read_until(b"\r\n\r\n", time.monotonic() + 10) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello world")
        response = read_response(reader)
        assert response.status == 200 and response.body == b"hello world"
        # still usable for another request
        sock.sendall(_get("/"))
        again = read_response(reader)
    assert again.status == 200 and again.body == b"hello"


# ---------------------------------------------------------------- HTTP/1.0 and Connection
def test_http10_closes_by_default(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(b"GET /scope/ten HTTP/1.0\r\n\r\n")
        reader = Reader(sock)
        response = read_response(reader)
        assert response.status == 200
        assert json.loads(response.body)["http_version"] == "1.0"
        assert response.get(b"connection") != b"keep-alive"
        assert reader.at_eof(), "server kept an HTTP/1.0 connection open without keep-alive"


def test_http10_keep_alive_is_echoed_and_honoured(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        reader = Reader(sock)
        sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = read_response(reader)
        assert first.status == 200 and first.body == b"hello"
        assert first.get(b"connection").lower() == b"keep-alive"
        assert first.version == b"HTTP/1.1"  # RFC 9110 §6.2: our own version
        sock.sendall(b"GET /scope/again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        second = read_response(reader)
    assert second.status == 200
    assert json.loads(second.body)["path"] == "/scope/again"
    assert json.loads(second.body)["http_version"] == "1.0"  # kept alive, still 1.0


def test_http10_streamed_response_is_close_delimited(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        reader = Reader(sock)
        response = read_response(reader)
    assert response.get(b"transfer-encoding") is None  # HTTP/1.0 has no chunked
    assert response.get(b"content-length") is None
    assert response.framing == "close"
    assert response.body == b"one,two,three"
    assert reader.eof


def test_connection_close_from_client(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_get("/", extra=b"Connection: close\r\n"))
        reader = Reader(sock)
        response = read_response(reader)
        assert response.status == 200 and response.body == b"hello"
        assert response.get(b"connection") == b"close"
        assert reader.at_eof(), "server did not close after Connection: close"


# ---------------------------------------------------------------- request target
def test_absolute_form_target(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(b"GET http://example.com/p?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        response = read_response(Reader(sock))
    scope = json.loads(response.body)
    assert scope["path"] == "/p"
    assert scope["raw_path"] == "/p"
    assert scope["query_string"] == "q=1"


# ---------------------------------------------------------------- default headers
def test_date_and_server_headers(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_get("/"))
        response = read_response(Reader(sock))
    assert response.get_all(b"server") == [b"gannet"]
    dates = response.get_all(b"date")
    assert len(dates) == 1
    # IMF-fixdate, RFC 9110 §5.6.7: e.g. "Sun, 06 Nov 1994 08:49:37 GMT"
    assert re.fullmatch(rb"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep"
                        rb"|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT", dates[0]), dates[0]
    when = parsedate_to_datetime(dates[0].decode()).timestamp()
    assert abs(when - time.time()) < 300


def test_no_server_header_flag(gannet_server):
    server = gannet_server(APP, "--no-server-header")
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    assert "server" not in response.headers
    assert "date" in response.headers


def test_no_date_header_flag(gannet_server):
    server = gannet_server(APP, "--no-date-header")
    with httpx.Client(base_url=server.url) as client:
        for _ in range(2):
            response = client.get("/")
            assert "date" not in response.headers
            assert response.headers["server"] == "gannet"


def test_no_date_header_survives_refresh(gannet_server):
    """The Date cache is rebuilt every second; the flag must hold across refreshes."""
    server = gannet_server(APP, "--no-date-header", "--no-server-header")
    with server.connect() as sock:
        reader = Reader(sock)
        deadline = time.monotonic() + 2.5
        seen = 0
        while time.monotonic() < deadline:
            sock.sendall(_get("/"))
            response = read_response(reader)
            assert response.get(b"date") is None and response.get(b"server") is None
            seen += 1
    assert seen > 1


def test_app_server_header_not_duplicated(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        reader = Reader(sock)
        sock.sendall(_get("/own-server"))
        own = read_response(reader)
        sock.sendall(_get("/"))
        plain = read_response(reader)
    assert own.get_all(b"server") == [b"custom-server/1.0"]
    assert len(own.get_all(b"date")) == 1
    assert own.body == b"custom"
    assert plain.get_all(b"server") == [b"gannet"]


def test_unread_body_is_skipped_for_next_pipelined_request(gannet_server):
    """The app answers without reading a small body; the server discards the body and
    parses the next request after it (not the body as a request)."""
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(b"POST /expect-deny HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\n"
                     b"hello" + _get("/scope/next"))
        reader = Reader(sock)
        denied = read_response(reader)
        following = read_response(reader)
    assert denied.status == 401
    assert following.status == 200
    assert json.loads(following.body)["path"] == "/scope/next"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_send_no_body(gannet_server, status):
    """RFC 9110 §15.3.5/§15.4.5: 204 and 304 end at the head, whatever the app sends."""
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_get(f"/status?s={status}") + _get("/scope/after"))
        reader = Reader(sock)
        first = read_response(reader)
        following = read_response(reader)
    assert first.status == status
    assert first.get(b"transfer-encoding") is None
    assert following.status == 200, following.head_raw
    assert json.loads(following.body)["path"] == "/scope/after"


def _read_exact_responses(sock, count, deadline):
    """Read ``count`` Content-Length responses; returns [(head, body)]."""
    data = b""
    responses = []
    while len(responses) < count:
        while b"\r\n\r\n" not in data:
            assert time.monotonic() < deadline, data[:200]
            chunk = sock.recv(1 << 20)
            assert chunk, data[:200]
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1))
        while len(data) < length:
            assert time.monotonic() < deadline
            chunk = sock.recv(1 << 20)
            assert chunk
            data += chunk
        responses.append((head, data[:length]))
        data = data[length:]
    return responses


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_large_bodies_between_pipelined_requests_in_random_pieces(gannet_server, seed):
    """Large Content-Length bodies take a path that bypasses the parser: the bytes around
    them (the next request's head, in the same read or split anywhere) must still parse."""
    import random

    server = gannet_server("basic:app")
    rng = random.Random(seed)
    first = bytes(rng.randrange(256) for _ in range(300_001))
    second = b"y" * 70_000
    wire = (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(first) + first
            + b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
            + b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(second) + second
            + b"GET /again HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    with server.connect(timeout=20) as sock:
        position = 0
        while position < len(wire):
            size = rng.choice([1, 7, 100, 4096, 65536, 200_000])
            sock.sendall(wire[position:position + size])
            position += size
        responses = _read_exact_responses(sock, 4, time.monotonic() + 20)
    assert [head.split(b"\r\n", 1)[0] for head, _ in responses] == [b"HTTP/1.1 200 OK"] * 4
    assert responses[0][1] == first
    assert responses[1][1] == b"hello"
    assert responses[2][1] == second
    assert responses[3][1] == b"hello"
