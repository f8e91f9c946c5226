"""What the server does when the ASGI app misbehaves: 500 or abort, a log line, and a
worker that keeps serving."""
from __future__ import annotations

import re
import time

import httpx
import pytest

from conftest import raw_request
from corpus.wire import Reader, read_response

APP = "h1_apps:app"


def _req(target: str, extra: bytes = b"") -> bytes:
    return b"GET %b HTTP/1.1\r\nHost: test\r\n%b\r\n" % (target.encode(), extra)


def _still_serving(server) -> None:
    """A fresh request on a new connection gets 200: the worker survived."""
    with server.connect() as sock:
        sock.sendall(_req("/"))
        response = read_response(Reader(sock))
    assert response.status == 200 and response.body == b"hello"
    assert server.proc.poll() is None


def test_exception_before_start_gives_500_and_traceback(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req("/error-before"))
        reader = Reader(sock)
        response = read_response(reader)
        assert response.status == 500
        assert response.framing == "length"
        assert b"h1 boom" not in response.body  # no internals leak to the client
        # the connection survives an app error answered cleanly
        sock.sendall(_req("/"))
        assert read_response(reader).status == 200
    server.wait_for_log(r"Traceback \(most recent call last\)")
    server.wait_for_log(r"RuntimeError: h1 boom before start")
    _still_serving(server)


def test_exception_before_start_with_httpx(gannet_server):
    server = gannet_server(APP)
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/error-before").status_code == 500
        assert client.get("/").status_code == 200


@pytest.mark.parametrize("path", ["/error-after", "/error-after-cl"])
def test_exception_after_start_aborts_the_response(gannet_server, path):
    server = gannet_server(APP)
    reply = raw_request(server, _req(path))
    # whatever arrived, it is not a complete response
    if reply:
        assert reply.startswith(b"HTTP/1.1 200 ")
        head, _, body = reply.partition(b"\r\n\r\n")
        if b"transfer-encoding: chunked" in head.lower():
            assert not body.endswith(b"0\r\n\r\n"), reply
        else:
            assert b"content-length: 100" in head.lower()
            assert len(body) < 100
        assert b"HTTP/1.1 500" not in reply
    server.wait_for_log(r"RuntimeError: h1 boom after start")
    _still_serving(server)


def test_exception_after_start_httpx_sees_incomplete_body(gannet_server):
    server = gannet_server(APP)
    with httpx.Client(base_url=server.url) as client:
        with pytest.raises(httpx.HTTPError):
            client.get("/error-after")
    _still_serving(server)


def test_return_without_response_gives_500(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req("/noresponse"))
        response = read_response(Reader(sock))
    assert response.status == 500
    server.wait_for_log(r"ASGI app returned without starting the response")
    _still_serving(server)


@pytest.mark.parametrize("path", ["/body-before-start", "/start-twice"])
def test_invalid_message_order_logged_and_connection_closed(gannet_server, path):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req(path))
        reader = Reader(sock)
        data = reader.read_to_eof(time.monotonic() + 10)
    assert reader.eof  # the server closed the connection
    assert b"too early" not in data and b"twice" not in data
    assert not data.startswith(b"HTTP/1.1 200 ")
    server.wait_for_log(r"ASGI protocol error")
    _still_serving(server)


@pytest.mark.parametrize("kind", ["crlf", "lf", "cr", "nul"])
def test_header_value_with_control_chars_never_reaches_the_wire(gannet_server, kind):
    server = gannet_server(APP)
    reply = raw_request(server, _req(f"/crlf-value?k={kind}", b"Connection: close\r\n"))
    assert reply.startswith(b"HTTP/1.1 500 "), reply[:200]
    assert b"x-injected" not in reply.lower()
    assert b"x-bad" not in reply.lower()
    assert b"should not be sent" not in reply
    _still_serving(server)


def test_header_name_with_crlf_never_reaches_the_wire(gannet_server):
    server = gannet_server(APP)
    reply = raw_request(server, _req("/crlf-name", b"Connection: close\r\n"))
    assert reply.startswith(b"HTTP/1.1 500 "), reply[:200]
    assert b"x-injected" not in reply.lower()
    _still_serving(server)


def test_early_hint_link_with_crlf_never_reaches_the_wire(gannet_server):
    server = gannet_server(APP)
    reply = raw_request(server, _req("/early-hint-bad", b"Connection: close\r\n"))
    assert b"x-injected" not in reply.lower()
    assert b"103 Early Hints" not in reply
    assert reply.startswith(b"HTTP/1.1 500 "), reply[:200]
    _still_serving(server)


def test_trailer_value_with_crlf_never_reaches_the_wire(gannet_server):
    server = gannet_server(APP)
    reply = raw_request(server, _req("/trailers-bad", b"TE: trailers\r\nConnection: close\r\n"))
    assert b"x-injected" not in reply.lower()
    # no complete response: the last chunk and a trailer section never went out
    assert not re.search(rb"\r\n0\r\n(.*\r\n)?\r\n$", reply, re.S), reply
    _still_serving(server)


@pytest.mark.parametrize("path", ["/cl-short", "/cl-long"])
def test_body_not_matching_app_content_length_gives_500(gannet_server, path):
    """A one-shot body that contradicts the app's own Content-Length is caught before
    the head goes out: a clean 500, never a mis-framed 200."""
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req(path))
        reader = Reader(sock)
        response = read_response(reader)
    assert response.status == 500
    assert b"12345" not in response.body
    server.wait_for_log(r"does not match Content-Length")
    _still_serving(server)


def test_conflicting_content_lengths_give_500(gannet_server):
    """Two different Content-Length values would let a proxy and the client read the
    body two ways: the head never goes out."""
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req("/head-shape?k=conflict-cl"))
        response = read_response(Reader(sock))
    assert response.status == 500
    assert b"shape" not in response.body
    server.wait_for_log(r"conflicting Content-Length")
    _still_serving(server)
