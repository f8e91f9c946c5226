"""Issue 9, HTTP/1.1 heads on the wire: hop-by-hop fields from the app, trailers, bytes
after a closing request, 204 framing, absolute-form targets, odd targets and the
request-line limit (defects 7, 8, 9, 10, 13, 16, 22).

Black-box: a real server, raw sockets read by the strict reader in corpus/wire.py.
"""
from __future__ import annotations

import json
import time

import pytest

from corpus.wire import Reader, read_response

APP = "review_asgi:app"


def _req(target: str, extra: bytes = b"", version: bytes = b"1.1", method: bytes = b"GET",
         host: bytes | None = b"test") -> bytes:
    host_line = b"Host: %b\r\n" % host if host is not None else b""
    return b"%b %b HTTP/%b\r\n%b%b\r\n" % (method, target.encode(), version, host_line, extra)


def _exchange(server, data: bytes) -> tuple:
    """Send ``data`` on a fresh connection; return (sock, reader) for reading."""
    sock = server.connect()
    sock.sendall(data)
    return sock, Reader(sock)


def _still_serving(server) -> None:
    with server.connect() as sock:
        sock.sendall(_req("/"))
        response = read_response(Reader(sock))
    assert response.status == 200 and response.body == b"ok"
    assert server.proc.poll() is None


# ---------------------------------------------------------------- defect 7 (ASGI side)
@pytest.mark.parametrize("route", ["hop", "hop-stream"])
def test_app_connection_close_is_honoured_with_one_connection_field(gannet_server, route):
    """issue 9 defect 7: the app's `Connection: close` is a request to close: exactly one
    Connection field on the wire, saying close, and the server closes after the response."""
    server = gannet_server(APP)
    sock, reader = _exchange(server, _req(f"/{route}?h=connection:close"))
    with sock:
        response = read_response(reader)
        assert response.status == 200 and response.body == b"hop"
        assert [v.lower() for v in response.get_all(b"connection")] == [b"close"]
        assert reader.at_eof(timeout=5), "the server kept the connection the app asked to close"


def test_app_keep_alive_with_client_close_gives_one_connection_field(gannet_server):
    """issue 9 defect 7: the app says `Connection: keep-alive`, the client said close:
    one Connection field (close), never both keep-alive and close."""
    server = gannet_server(APP)
    sock, reader = _exchange(server, _req("/hop?h=connection:keep-alive", b"Connection: close\r\n"))
    with sock:
        response = read_response(reader)
        assert [v.lower() for v in response.get_all(b"connection")] == [b"close"]
        assert reader.at_eof(timeout=5)


def test_http10_keep_alive_with_app_keep_alive_gives_one_connection_field(gannet_server):
    """issue 9 defect 7: an HTTP/1.0 keep-alive request whose app also says
    `Connection: keep-alive` gets exactly one Connection field, and the connection is kept."""
    server = gannet_server(APP)
    request = _req("/hop?h=connection:keep-alive", b"Connection: keep-alive\r\n", version=b"1.0")
    sock, reader = _exchange(server, request)
    with sock:
        response = read_response(reader)
        assert response.status == 200 and response.body == b"hop"
        assert [v.lower() for v in response.get_all(b"connection")] == [b"keep-alive"]
        sock.sendall(_req("/", b"Connection: keep-alive\r\n", version=b"1.0"))
        again = read_response(reader)
        assert again.status == 200 and again.body == b"ok"


@pytest.mark.parametrize("route", ["hop", "hop-stream"])
def test_app_hop_by_hop_fields_are_dropped(gannet_server, route):
    """issue 9 defect 7: hop-by-hop fields from the app (RFC 9110 §7.6.1: Keep-Alive,
    Proxy-Connection, TE, Transfer-Encoding) do not reach the wire as the app sent them;
    the response is framed by the server alone and the connection stays usable."""
    server = gannet_server(APP)
    fields = "keep-alive:timeout=999,proxy-connection:keep-alive,te:trailers,transfer-encoding:gzip"
    sock, reader = _exchange(server, _req(f"/{route}?h={fields}"))
    with sock:
        response = read_response(reader)  # strict: one framing, a body that parses
        assert response.status == 200 and response.body == b"hop"
        assert response.get(b"keep-alive") is None
        assert response.get(b"proxy-connection") is None
        assert response.get(b"te") is None
        assert all(b"gzip" not in v.lower() for v in response.get_all(b"transfer-encoding"))
        sock.sendall(_req("/"))
        assert read_response(reader).body == b"ok"


def test_app_transfer_encoding_chunked_does_not_break_framing(gannet_server):
    """issue 9 defect 7: the app's own `Transfer-Encoding: chunked` next to a body with a
    known length: one framing on the wire (never Transfer-Encoding and Content-Length
    together), the body exact, the next request answered."""
    server = gannet_server(APP)
    sock, reader = _exchange(server, _req("/hop?h=transfer-encoding:chunked") + _req("/"))
    with sock:
        response = read_response(reader)
        assert response.status == 200 and response.body == b"hop"
        assert not (response.get_all(b"transfer-encoding") and response.get_all(b"content-length"))
        assert read_response(reader).body == b"ok"


# ---------------------------------------------------------------- defect 8
def test_trailers_dropped_without_te_trailers(gannet_server):
    """issue 9 defect 8: the app sends trailers but the client did not say `TE: trailers`:
    the body is complete, no trailer fields on the wire, the connection reusable."""
    server = gannet_server(APP)
    sock, reader = _exchange(server, _req("/trailers"))
    with sock:
        response = read_response(reader)
        assert response.status == 200 and response.body == b"part1-part2"
        assert response.trailers == []
        sock.sendall(_req("/"))
        assert read_response(reader).body == b"ok"
        assert reader.buffer == b""


def test_trailers_sent_with_te_trailers(gannet_server):
    """issue 9 defect 8 (the other side): with `TE: trailers` the app's trailer arrives."""
    server = gannet_server(APP)
    sock, reader = _exchange(server, _req("/trailers", b"TE: trailers\r\n"))
    with sock:
        response = read_response(reader)
        assert response.body == b"part1-part2"
        assert response.trailers == [(b"x-checksum", b"abc123")]
        sock.sendall(_req("/"))
        assert read_response(reader).body == b"ok"


def test_prohibited_trailer_fields_are_filtered(gannet_server):
    """issue 9 defect 8: RFC 9110 §6.5.1 — fields for framing (Content-Length,
    Transfer-Encoding, Trailer), routing (Host), authentication (Authorization), response
    controls (Cache-Control) and content format (Content-Type, Content-Encoding) never go
    out as trailers; the allowed one does; the response stays well-formed."""
    server = gannet_server(APP)
    sock, reader = _exchange(server, _req("/trailers?bad=1", b"TE: trailers\r\n"))
    with sock:
        response = read_response(reader)
        assert response.status == 200 and response.body == b"part1-part2"
        names = [name for name, _ in response.trailers]
        assert b"x-checksum" in names
        for name in (b"content-length", b"transfer-encoding", b"host", b"authorization",
                     b"content-type", b"content-encoding", b"cache-control", b"trailer"):
            assert name not in names, response.trailers
        sock.sendall(_req("/"))
        assert read_response(reader).body == b"ok"


# ---------------------------------------------------------------- defect 9
@pytest.mark.parametrize("follow", [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"])
@pytest.mark.parametrize("closing", ["close", "http10"])
def test_bytes_after_a_closing_request_get_no_answer(gannet_server, follow, closing):
    """issue 9 defect 9: after a `Connection: close` (or HTTP/1.0 non-keep-alive) request,
    RFC 9112 §9.6: the server sends that one response and closes; whatever follows (bytes
    that do not parse, or another request) gets no unsolicited 400 and no answer."""
    server = gannet_server(APP)
    if closing == "close":
        first = _req("/", b"Connection: close\r\n")
    else:
        first = _req("/", version=b"1.0", host=None)
    sock, reader = _exchange(server, first + follow)
    with sock:
        response = read_response(reader)
        assert response.status == 200 and response.body == b"ok"
        rest = reader.read_to_eof(time.monotonic() + 5)
        assert rest == b"", rest[:200]
        assert reader.eof, "the server did not close after the closing request"
    _still_serving(server)


# ---------------------------------------------------------------- defect 10
@pytest.mark.parametrize("length", ["0", "5"])
def test_no_content_length_on_204(gannet_server, length):
    """issue 9 defect 10: RFC 9110 §8.6 — a server MUST NOT send Content-Length in a 204;
    the app's Content-Length (0 or a wrong 5) is not forwarded, and the connection stays
    usable for the next request."""
    server = gannet_server(APP)
    sock, reader = _exchange(server, _req(f"/status?s=204&cl={length}"))
    with sock:
        response = read_response(reader)
        assert response.status == 204
        assert response.get_all(b"content-length") == []
        assert response.get_all(b"transfer-encoding") == []
        sock.sendall(_req("/"))
        again = read_response(reader)
        assert again.status == 200 and again.body == b"ok"


def test_content_length_on_304_is_the_apps(gannet_server):
    """issue 9 defect 10 (the other side, a guard): RFC 9110 §8.6 lets a 304 carry the
    Content-Length the 200 would have had; the app's value is kept and no body follows."""
    server = gannet_server(APP)
    sock, reader = _exchange(server, _req("/status?s=304&cl=5"))
    with sock:
        response = read_response(reader)
        assert response.status == 304
        assert response.get_all(b"content-length") in ([b"5"], [])
        sock.sendall(_req("/"))
        assert read_response(reader).body == b"ok"


# ---------------------------------------------------------------- defect 13
def test_absolute_form_authority_wins_over_host_asgi(gannet_server):
    """issue 9 defect 13: RFC 9112 §3.2.2 — with an absolute-form target the target's
    authority is the host; the scope's headers carry it as the one Host value."""
    server = gannet_server(APP)
    sock, reader = _exchange(server, _req("http://example.test:8080/scope/p?q=1", host=b"other"))
    with sock:
        scope = json.loads(read_response(reader).body)
    hosts = [value for name, value in scope["headers"] if name == "host"]
    assert hosts == ["example.test:8080"]
    assert scope["path"] == "/scope/p"
    assert scope["query_string"] == "q=1"
    assert scope["server"] == ["127.0.0.1", server.port]  # the socket's address, not the target's


def test_absolute_form_authority_wins_over_host_wsgi(gannet_server):
    """issue 9 defect 13: the same for WSGI — HTTP_HOST is the target's authority."""
    server = gannet_server("review_wsgi:app", "--interface", "wsgi")
    sock, reader = _exchange(server, _req("http://example.test:8080/environ?q=1", host=b"other"))
    with sock:
        environ = json.loads(read_response(reader).body)
    assert environ["HTTP_HOST"] == "example.test:8080"
    assert environ["PATH_INFO"] == "/environ"
    assert environ["QUERY_STRING"] == "q=1"


# ---------------------------------------------------------------- defect 16 (h1 parts)
def test_fragment_before_query_is_not_the_query(gannet_server):
    """issue 9 defect 16: in `/scope/p#frag?x=1` everything from `#` is a fragment
    (RFC 3986 §3.5): path `/scope/p`, empty query string."""
    server = gannet_server(APP)
    sock, reader = _exchange(server, _req("/scope/p#frag?x=1"))
    with sock:
        response = read_response(reader)
    if response.status == 200:  # a server may also refuse a fragment outright (400)
        scope = json.loads(response.body)
        assert scope["path"] == "/scope/p"
        assert scope["query_string"] == ""
    else:
        assert response.status == 400
    _still_serving(server)


def test_options_asterisk_under_root_path_stays_asterisk(gannet_server):
    """issue 9 defect 16: `OPTIONS *` (asterisk-form, RFC 9112 §3.2.4) names the server,
    not a path: under --root-path /r the scope path stays `*`, never `/r*`."""
    server = gannet_server(APP, "--root-path", "/r")
    sock, reader = _exchange(server, _req("*", method=b"OPTIONS"))
    with sock:
        response = read_response(reader)
    assert response.status == 200
    scope = json.loads(response.body)
    assert scope["method"] == "OPTIONS"
    assert scope["path"] == "*"


# ---------------------------------------------------------------- defect 22 (h1 parts)
def test_request_line_limit_counts_the_whole_line(gannet_server):
    """issue 9 defect 22: --limit-request-line (default 8190) limits the whole request line
    (method, target, version): an 8,203-byte line whose target alone is 8,190 gets 414."""
    server = gannet_server(APP)
    target = "/" + "a" * (8190 - 1)
    line = f"GET {target} HTTP/1.1"
    assert len(line) == 8203
    sock, reader = _exchange(server, _req(target))
    with sock:
        response = read_response(reader)
    assert response.status == 414
    _still_serving(server)


def test_request_line_at_the_limit_is_served(gannet_server):
    """issue 9 defect 22 (the other side, a guard): a request line of exactly 8,190 bytes
    is within the default limit."""
    server = gannet_server(APP)
    target = "/scope/" + "a" * (8190 - len("GET  HTTP/1.1") - len("/scope/"))
    assert len(f"GET {target} HTTP/1.1") == 8190
    sock, reader = _exchange(server, _req(target))
    with sock:
        response = read_response(reader)
    assert response.status == 200
