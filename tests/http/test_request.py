"""The protocol-neutral request-head layer (http/request.py), without an event loop, and
the h1 scope it must agree with (h1 inlines http_scope on its hot path)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from gannet.config import Config
from gannet.http.errors import ProtocolError
from gannet.http.h1 import H1Protocol
from gannet.http.request import (NO_PARAMS, check_host, http_scope, replace_host,
                                 request_line_length, split_target)
from gannet.server.state import ServerState


def _state(root_path: str = "") -> SimpleNamespace:
    raw = root_path.encode()
    return SimpleNamespace(root_path=root_path, raw_root_path=raw, targets={})


@pytest.mark.parametrize("url,expected", [
    (b"/p?a=1", ("/p", b"/p", b"a=1")),
    (b"/p#frag?x=1", ("/p", b"/p", b"")),  # a '#' before '?' ends the path (issue 9 #16)
    (b"/p?x=1#frag", ("/p", b"/p", b"x=1")),
    (b"/a%20b", ("/a b", b"/a%20b", b"")),
])
def test_origin_form(url, expected):
    assert split_target(_state(), url, "GET") == (expected, None)


def test_root_path_is_prefixed_but_not_to_asterisk():
    state = _state("/r")
    assert split_target(state, b"/x", "GET")[0] == ("/r/x", b"/r/x", b"")
    assert split_target(state, b"*", "OPTIONS")[0] == ("*", b"*", b"")  # issue 9 #16


@pytest.mark.parametrize("url,authority", [
    (b"http://example.test:8080/p?q=1", b"example.test:8080"),
    (b"https://example.test/p", b"example.test"),
    (b"http://[::1]:81/p", b"[::1]:81"),
])
def test_absolute_form_authority(url, authority):
    target, got = split_target(_state(), url, "GET")
    assert got == authority  # RFC 9112 §3.2.2: it replaces Host
    assert target[0] == "/p"


@pytest.mark.parametrize("url", [b"ftp://example.test/p", b"http:///p", b"example.test"])
def test_bad_targets_are_400(url):
    with pytest.raises(ProtocolError) as info:
        split_target(_state(), url, "GET")
    assert info.value.status == 400


def test_replace_host():
    headers = [(b"host", b"other"), (b"accept", b"*/*")]
    replace_host(headers, b"example.test")
    assert headers == [(b"host", b"example.test"), (b"accept", b"*/*")]
    headers = [(b"accept", b"*/*")]
    replace_host(headers, b"example.test")
    assert (b"host", b"example.test") in headers


def test_host_values():
    check_host(b"example.test:8080")
    check_host(b"[::1]:80")
    with pytest.raises(ProtocolError):
        check_host(b"bad host")


def test_request_line_length_counts_the_whole_line():
    line = b"GET /abc HTTP/1.1"
    assert request_line_length("GET", b"/abc") == len(line)


def test_scopes_do_not_share_dicts_and_params_are_read_only():
    one = http_scope("1.1", None, None, "http", "GET", "", ("/", b"/", b""), [], {})
    two = http_scope("1.1", None, None, "http", "GET", "", ("/", b"/", b""), [], {})
    assert one["asgi"] is not two["asgi"] and one["extensions"] is not two["extensions"]
    assert isinstance(NO_PARAMS, dict) and NO_PARAMS == {}
    with pytest.raises(TypeError):
        one["extensions"]["http.response.trailers"]["x"] = 1
    assert two["extensions"]["http.response.trailers"] == {}


class _Transport:
    def __init__(self) -> None:
        self.written = b""

    def get_extra_info(self, name):
        return {"peername": ("127.0.0.1", 5), "sockname": ("127.0.0.1", 80)}.get(name)

    def write(self, data):
        self.written += data

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def is_closing(self):
        return False

    def close(self):
        pass


async def _no_content(scope, receive, send):
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _one_request(request: bytes, inspect) -> None:
    """Feed ``request`` to a fresh H1Protocol and call ``inspect(conn, loop)`` at once,
    before the request's task has run; then let it run."""

    async def main():
        loop = asyncio.get_running_loop()
        state = ServerState(Config(app="x:y", access_log=False), _no_content, loop)
        conn = H1Protocol(state)
        conn.connection_made(_Transport())
        conn.data_received(request)
        inspect(conn, loop)

    asyncio.run(main())


def test_h1_scope_agrees_with_http_scope():
    """h1 builds its scope inline for speed; it must say what http_scope says."""
    seen = []
    _one_request(b"GET /p?q=1 HTTP/1.1\r\nHost: h\r\n\r\n",
                 lambda conn, loop: seen.append((conn.cycle.scope, conn.state.root_path)))
    (scope, root_path), = seen
    reference = http_scope("1.1", ("127.0.0.1", 80), ("127.0.0.1", 5), "http", "GET",
                           root_path, ("/p", b"/p", b"q=1"), scope["headers"], {})
    assert scope == reference
    assert scope.keys() == reference.keys()


def test_h1_cycle_and_stream_match_their_constructors():
    """h1 builds ASGI cycles and streams without __init__ frames: every HTTPCycle slot
    must be set, to what HTTPCycle.__init__ sets, and every request-level stream slot."""
    from gannet.asgi.http import HTTPCycle

    snapshots = []

    def inspect(conn, loop):
        inline = conn.cycle
        snapshots.append({name: getattr(inline, name, "unset") for name in HTTPCycle.__slots__})
        reference = HTTPCycle(inline.scope, inline.conn, loop, False, False)
        snapshots.append({name: getattr(reference, name) for name in HTTPCycle.__slots__})
        stream = inline.conn
        snapshots.append({name: getattr(stream, name, "unset") for name in
                          ("conn", "transport", "keep_alive", "http10", "no_body", "te_trailers")})

    _one_request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", inspect)
    inline, reference, stream = snapshots
    for name in HTTPCycle.__slots__:
        if name == "body":
            assert not inline["body"] and not reference["body"]  # () or []: no bytes yet
        elif name != "dispatched":  # h1 has already dispatched its own
            assert inline[name] == reference[name], name
    assert "unset" not in stream.values()
    assert (stream["keep_alive"], stream["http10"], stream["no_body"], stream["te_trailers"]) \
        == (True, False, False, False)
