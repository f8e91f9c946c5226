"""The one response-field normaliser (http/headers.py), without an event loop."""
from __future__ import annotations

import pytest

from gannet.http import headers
from gannet.http.headers import (APP_CHUNKED, APP_CLOSE, CUSTOM_DEFAULTS, HOP_BY_HOP,
                                 fields_of, refusal, scan_fields, trailer_block, without_length)


def test_hop_by_hop_fields_are_left_out_and_flagged():
    checked = scan_fields([(b"connection", b"close"), (b"keep-alive", b"timeout=5"),
                           (b"transfer-encoding", b"chunked"), (b"x-a", b"1")])
    assert checked.block == b"x-a: 1\r\n"
    assert checked.flags & HOP_BY_HOP and checked.flags & APP_CLOSE and checked.flags & APP_CHUNKED
    assert scan_fields([(b"connection", b"keep-alive")]).flags & APP_CLOSE == 0


def test_defaults_and_lengths():
    checked = scan_fields([(b"server", b"mine"), (b"content-length", b"5"), (b"content-length", b"5")])
    assert checked.flags == CUSTOM_DEFAULTS and checked.declared == 5
    assert checked.block.count(b"content-length") == 1
    with pytest.raises(ValueError):
        scan_fields([(b"content-length", b"5"), (b"content-length", b"6")])
    assert without_length(((b"content-length", b"0"), (b"x", b"y"))) == b"x: y\r\n"


@pytest.mark.parametrize("fields", [[(b"bad name", b"v")], [(b"x", b"a\r\nb")], [("x", b"v")],
                                    [(b"x", "v")], [(b"x", b"a\0")]])
def test_invalid_fields_raise(fields):
    with pytest.raises((TypeError, ValueError)):
        fields_of(tuple(fields))


def test_cache_is_bounded_and_forgets_old_values():
    """Varying values (Set-Cookie) must not pin memory: the cache is cleared when full."""
    for n in range(3 * headers._HEADS_MAX):
        fields_of(((b"set-cookie", b"id=%d" % n),))
        assert len(headers._HEAD_CACHE) <= headers._HEADS_MAX
    assert ((b"set-cookie", b"id=0"),) not in headers._HEAD_CACHE


def test_trailers_filtered():
    block = trailer_block([(b"x-checksum", b"abc"), (b"content-length", b"3"),
                           (b"set-cookie", b"a=b"), (b"authorization", b"x")])
    assert block == b"x-checksum: abc\r\n"


def test_refusal_is_complete_and_closes():
    wire = refusal(431, b"server: gannet\r\n")
    head, body = wire.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 431 ")
    assert b"connection: close" in head and b"content-length: %d" % len(body) in head
