"""The PROXY protocol parser (http/proxy_protocol.py), pure: bytes in, a header or an error out.

v2 headers are built here with struct from the HAProxy spec (§2.2), independently of the
parser, so an encoding mistake in one cannot hide one in the other."""
from __future__ import annotations

import socket
import struct

import pytest

from gannet.http.proxy_protocol import (DEFAULT_MAX_TLV_BYTES, NEED_MORE, V1_MAX_BYTES,
                                        V2_SIGNATURE, ProxyHeader, ProxyHeaderParser,
                                        ProxyProtocolError, looks_like_proxy_header)

REQUEST = b"GET /path HTTP/1.1\r\nHost: example.com\r\n\r\n"

# §2.2 protocol byte values: command in the low nibble of byte 13, family/transport in byte 14
LOCAL, PROXY = 0x20, 0x21
UNSPEC, TCP4, UDP4, TCP6, UDP6, UNIX_STREAM, UNIX_DGRAM = 0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32


def v2_header(command: int = PROXY, family: int = TCP4, addresses: bytes = b"",
              tlvs: bytes = b"", length: int | None = None) -> bytes:
    """Encode a v2 header: signature, version/command, family, length, block."""
    block = addresses + tlvs
    return V2_SIGNATURE + struct.pack("!BBH", command, family,
                                      len(block) if length is None else length) + block


def inet4(src: str, dst: str, sport: int, dport: int) -> bytes:
    return struct.pack("!4s4sHH", socket.inet_pton(socket.AF_INET, src),
                       socket.inet_pton(socket.AF_INET, dst), sport, dport)


def inet6(src: str, dst: str, sport: int, dport: int) -> bytes:
    return struct.pack("!16s16sHH", socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst), sport, dport)


def unix(src: bytes, dst: bytes) -> bytes:
    return struct.pack("!108s108s", src, dst)  # NUL-padded paths


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


def parse(data: bytes, **options) -> ProxyHeader:
    result = ProxyHeaderParser(**options).feed(data)
    assert result is not NEED_MORE
    return result


def refusal(data: bytes, **options) -> str:
    with pytest.raises(ProxyProtocolError) as caught:
        ProxyHeaderParser(**options).feed(data)
    return caught.value.reason


# -- v1 --------------------------------------------------------------------------------

def test_v1_tcp4():
    header = parse(b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n" + REQUEST)
    assert header == ProxyHeader(1, "PROXY", "TCP4", ("192.0.2.10", 56324),
                                 ("198.51.100.1", 443), REQUEST)


def test_v1_tcp6_addresses_are_normalised():
    header = parse(b"PROXY TCP6 2001:DB8:0:0::1 ::ffff:192.0.2.1 65535 0\r\n" + REQUEST)
    assert header.family == "TCP6"
    assert header.source == ("2001:db8::1", 65535)
    assert header.destination == ("::ffff:c000:201", 0)
    assert header.rest == REQUEST


@pytest.mark.parametrize("line", [b"PROXY UNKNOWN\r\n",
                                  b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"])
def test_v1_unknown_keeps_the_real_endpoints(line):
    header = parse(line + REQUEST)
    assert (header.family, header.source, header.destination) == ("UNKNOWN", None, None)
    assert header.rest == REQUEST


def test_v1_longest_line_is_accepted():
    longest = b"PROXY UNKNOWN " + b"x" * (V1_MAX_BYTES - 16) + b"\r\n"
    assert len(longest) == V1_MAX_BYTES
    assert parse(longest).rest == b""


def test_v1_too_long_is_refused_once_the_limit_is_reached():
    parser = ProxyHeaderParser()
    assert parser.feed(b"PROXY UNKNOWN " + b"x" * (V1_MAX_BYTES - 15)) is NEED_MORE
    with pytest.raises(ProxyProtocolError, match="too long"):
        parser.feed(b"x")


def test_v1_line_one_byte_over_the_limit_is_refused():
    assert "too long" in refusal(b"PROXY UNKNOWN " + b"x" * (V1_MAX_BYTES - 15) + b"\r\n")


@pytest.mark.parametrize("line, reason", [
    (b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\n", "CRLF"),
    (b"PROXY TCP4 192.0.2.10  198.51.100.1 56324 443\r\n", "number of fields"),
    (b"PROXY TCP4 192.0.2.10 198.51.100.1 56324\r\n", "number of fields"),
    (b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443 \r\n", "number of fields"),
    (b"PROXY TCP4 192.0.2.10 2001:db8::1 56324 443\r\n", "bad address"),
    (b"PROXY TCP6 192.0.2.10 2001:db8::1 56324 443\r\n", "bad address"),
    (b"PROXY TCP4 192.0.2.300 198.51.100.1 56324 443\r\n", "bad address"),
    (b"PROXY TCP4 192.0.2.010 198.51.100.1 56324 443\r\n", "bad address"),
    (b"PROXY TCP6 fe80::1%eth0 2001:db8::1 56324 443\r\n", "bad address"),
    (b"PROXY TCP4 192.0.2.\xff 198.51.100.1 56324 443\r\n", "bad address"),
    (b"PROXY TCP4 192.0.2.10 198.51.100.1 65536 443\r\n", "bad port"),
    (b"PROXY TCP4 192.0.2.10 198.51.100.1 056324 443\r\n", "bad port"),
    (b"PROXY TCP4 192.0.2.10 198.51.100.1 0443 443\r\n", "bad port"),
    (b"PROXY TCP4 192.0.2.10 198.51.100.1 +443 443\r\n", "bad port"),
    (b"PROXY TCP4 192.0.2.10 198.51.100.1 443 \xd9\xa3\r\n", "bad port"),
    (b"PROXY TCP4 192.0.2.10 198.51.100.1 443 -1\r\n", "bad port"),
    (b"PROXY TCP4 192.0.2.10 198.51.100.1  443\r\n", "bad port"),
    (b"PROXY UDP4 192.0.2.10 198.51.100.1 56324 443\r\n", "unsupported v1 protocol"),
    (b"PROXY TCP44 192.0.2.10 198.51.100.1 56324 443\r\n", "unsupported v1 protocol"),
    (b"PROXY \r\n", "unsupported v1 protocol"),
    (b"PROXY tcp4 192.0.2.10 198.51.100.1 56324 443\r\n", "unsupported v1 protocol"),
])
def test_v1_garbled_lines_are_refused(line, reason):
    assert reason in refusal(line + REQUEST)


def test_v1_refusal_does_not_echo_peer_bytes():
    assert "evil" not in refusal(b"PROXY TCP4 evil 198.51.100.1 56324 443\r\n")


@pytest.mark.parametrize("prefix", [b"PROXY U", b"PROXY TCP6", b"PROXY TCP4 ", b"PROXY UNKNOWN\r"])
def test_v1_prefixes_of_a_valid_line_wait_for_more(prefix):
    assert ProxyHeaderParser().feed(prefix) is NEED_MORE


@pytest.mark.parametrize("prefix", [b"PROXY X", b"PROXY TCP5", b"PROXY TCP\r", b"PROXY UNKNOWNS"])
def test_v1_impossible_protocol_word_fails_without_waiting(prefix):
    assert refusal(prefix) == "unsupported v1 protocol"


# -- v2 --------------------------------------------------------------------------------

def test_v2_proxy_tcp4():
    header = parse(v2_header(PROXY, TCP4, inet4("192.0.2.10", "198.51.100.1", 56324, 443))
                   + REQUEST)
    assert header == ProxyHeader(2, "PROXY", "TCP4", ("192.0.2.10", 56324),
                                 ("198.51.100.1", 443), REQUEST, ())


def test_v2_proxy_tcp6():
    header = parse(v2_header(PROXY, TCP6, inet6("2001:db8::10", "2001:db8::1", 1, 65535))
                   + REQUEST)
    assert (header.family, header.source, header.destination) == (
        "TCP6", ("2001:db8::10", 1), ("2001:db8::1", 65535))
    assert header.rest == REQUEST


def test_v2_proxy_unix_stream_has_no_ports_so_no_addresses():
    header = parse(v2_header(PROXY, UNIX_STREAM, unix(b"/run/client.sock", b"/run/lb.sock"))
                   + REQUEST)
    assert (header.command, header.family, header.source, header.destination) == (
        "PROXY", "UNIX", None, None)
    assert header.rest == REQUEST


@pytest.mark.parametrize("family, addresses", [
    (TCP4, inet4("192.0.2.10", "198.51.100.1", 56324, 443)),
    (TCP6, inet6("2001:db8::10", "2001:db8::1", 1, 2)),
    (UNIX_STREAM, unix(b"/a", b"/b")),
    (UNSPEC, b""),
    (UDP4, b""),  # §2.2: LOCAL discards the block, family included
    (0xFF, b"garbage"),
])
def test_v2_local_keeps_the_real_endpoints_whatever_the_family(family, addresses):
    header = parse(v2_header(LOCAL, family, addresses) + REQUEST)
    assert (header.version, header.command, header.source, header.destination) == (
        2, "LOCAL", None, None)
    assert header.rest == REQUEST


def test_v2_local_health_check_without_request_bytes():
    header = parse(v2_header(LOCAL, UNSPEC))
    assert header.command == "LOCAL" and header.rest == b""


def test_v2_proxy_unspec_carries_no_addresses():
    header = parse(v2_header(PROXY, UNSPEC) + REQUEST)
    assert (header.command, header.family, header.source, header.rest) == (
        "PROXY", "UNSPEC", None, REQUEST)


def test_v2_tlvs_are_skipped_and_returned_raw():
    tlvs = tlv(0x01, b"h2") + tlv(0x02, b"example.com") + tlv(0x04, b"") + tlv(0xEA, b"\x01vpce-1")
    header = parse(v2_header(PROXY, TCP4, inet4("192.0.2.10", "198.51.100.1", 5, 6), tlvs)
                   + REQUEST)
    assert header.source == ("192.0.2.10", 5)
    assert header.tlvs == ((0x01, b"h2"), (0x02, b"example.com"), (0x04, b""),
                           (0xEA, b"\x01vpce-1"))
    assert header.rest == REQUEST


def test_v2_tlvs_up_to_the_cap_are_accepted():
    tlvs = tlv(0x04, b"\0" * (DEFAULT_MAX_TLV_BYTES - 3))
    header = parse(v2_header(PROXY, TCP6, inet6("::1", "::2", 1, 2), tlvs) + REQUEST)
    assert len(header.tlvs[0][1]) == DEFAULT_MAX_TLV_BYTES - 3 and header.rest == REQUEST


def test_v2_beyond_the_tlv_cap_fails_from_the_fixed_bytes_alone():
    full = v2_header(PROXY, TCP4, inet4("192.0.2.10", "198.51.100.1", 5, 6),
                     tlv(0x04, b"\0" * (DEFAULT_MAX_TLV_BYTES - 2)))
    assert refusal(full[:16]) == "v2 header too long"


def test_v2_cap_is_configurable():
    data = v2_header(PROXY, TCP4, inet4("192.0.2.10", "198.51.100.1", 5, 6), tlv(0x04, b"12345"))
    assert refusal(data, max_tlv_bytes=7) == "v2 header too long"
    assert parse(data, max_tlv_bytes=8).tlvs == ((0x04, b"12345"),)


def test_v2_maximum_declared_length_is_refused():
    assert refusal(v2_header(PROXY, TCP4, length=65535)[:16]) == "v2 header too long"
    assert refusal(v2_header(LOCAL, UNSPEC, length=65535)[:16]) == "v2 header too long"


@pytest.mark.parametrize("data, reason", [
    (v2_header(PROXY, UDP4, inet4("192.0.2.10", "198.51.100.1", 5, 6)), "DGRAM"),
    (v2_header(PROXY, UDP6, inet6("::1", "::2", 5, 6)), "DGRAM"),
    (v2_header(PROXY, UNIX_DGRAM, unix(b"/a", b"/b")), "DGRAM"),
    (v2_header(PROXY, 0x41, b""), "unsupported v2 address family"),
    (v2_header(PROXY, 0x13, b""), "unsupported v2 address family"),
    (v2_header(PROXY, 0x10, b""), "unsupported v2 address family"),
    (v2_header(PROXY, 0x01, b""), "unsupported v2 address family"),
    (v2_header(0x22, TCP4, inet4("192.0.2.10", "198.51.100.1", 5, 6)), "unsupported v2 command"),
    (v2_header(0x11, TCP4, inet4("192.0.2.10", "198.51.100.1", 5, 6)),
     "unsupported PROXY protocol version"),
    (v2_header(0x31, TCP4, inet4("192.0.2.10", "198.51.100.1", 5, 6)),
     "unsupported PROXY protocol version"),
    (v2_header(PROXY, TCP4, inet4("192.0.2.10", "198.51.100.1", 5, 6)[:11]), "bad address"),
    (v2_header(PROXY, TCP6, inet4("192.0.2.10", "198.51.100.1", 5, 6)), "bad address"),
    (v2_header(PROXY, UNIX_STREAM, b"/short"), "bad address"),
    (v2_header(PROXY, TCP4, inet4("192.0.2.10", "198.51.100.1", 5, 6), b"\x04\x00"),
     "garbled v2 TLV"),
    (v2_header(PROXY, TCP4, inet4("192.0.2.10", "198.51.100.1", 5, 6), b"\x04\x00\x05abcd"),
     "garbled v2 TLV"),
])
def test_v2_invalid_headers_are_refused(data, reason):
    assert reason in refusal(data + REQUEST)


@pytest.mark.parametrize("data, reason", [
    (V2_SIGNATURE + b"\x11", "unsupported PROXY protocol version"),
    (V2_SIGNATURE + b"\x2f", "unsupported v2 command"),
    (V2_SIGNATURE + b"\x21\x12", "DGRAM"),
    (V2_SIGNATURE + b"\x21\x51", "unsupported v2 address family"),
])
def test_v2_bad_fixed_bytes_fail_as_soon_as_seen(data, reason):
    assert reason in refusal(data)


@pytest.mark.parametrize("signature_prefix_len", range(1, 12))
def test_v2_signature_prefixes_wait_for_more(signature_prefix_len):
    assert ProxyHeaderParser().feed(V2_SIGNATURE[:signature_prefix_len]) is NEED_MORE


def test_v2_wrong_signature_is_refused():
    data = v2_header(PROXY, TCP4, inet4("192.0.2.10", "198.51.100.1", 5, 6))
    assert refusal(data[:10] + b"X" + data[11:]) == "not a PROXY protocol header"


def test_v2_waits_for_the_declared_length():
    data = v2_header(PROXY, TCP4, inet4("192.0.2.10", "198.51.100.1", 5, 6), tlv(0x01, b"h2"))
    parser = ProxyHeaderParser()
    assert parser.feed(data[:-1]) is NEED_MORE
    assert parser.feed(data[-1:] + REQUEST).rest == REQUEST


# -- both versions -------------------------------------------------------------------

HEADERS = [
    b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n",
    b"PROXY TCP6 2001:db8::10 2001:db8::1 56324 443\r\n",
    b"PROXY UNKNOWN\r\n",
    v2_header(PROXY, TCP4, inet4("192.0.2.10", "198.51.100.1", 56324, 443), tlv(0x02, b"a.b")),
    v2_header(PROXY, TCP6, inet6("2001:db8::10", "2001:db8::1", 56324, 443)),
    v2_header(PROXY, UNIX_STREAM, unix(b"/a", b"/b")),
    v2_header(LOCAL, UNSPEC),
]


@pytest.mark.parametrize("data", HEADERS)
def test_byte_by_byte_waits_then_gives_the_same_header(data):
    parser = ProxyHeaderParser()
    for index in range(len(data) - 1):
        assert parser.feed(data[index:index + 1]) is NEED_MORE
    dribbled = parser.feed(data[-1:])
    assert dribbled == parse(data + REQUEST)._replace(rest=b"")


@pytest.mark.parametrize("data", HEADERS)
def test_request_bytes_after_the_header_come_back_intact(data):
    body = bytes(range(256)) * 4  # every byte value, CR and LF and NUL included
    assert parse(data + REQUEST + body).rest == REQUEST + body


@pytest.mark.parametrize("start", [b"GET / HTTP/1.1\r\n", b"G", b"\x16\x03\x01", b"PRI * HTTP/2.0",
                                   b"\r\n\r\nX", b"proxy ", b"PROXY\t"])
def test_plain_http_and_tls_fail_on_the_first_bytes(start):
    assert refusal(start) == "not a PROXY protocol header"
    assert not looks_like_proxy_header(start)


@pytest.mark.parametrize("data", HEADERS + [b"P", b"PROXY", V2_SIGNATURE[:1]])
def test_looks_like_proxy_header(data):
    assert looks_like_proxy_header(data)


def test_looks_like_proxy_header_wants_bytes():
    assert not looks_like_proxy_header(b"")


def test_empty_feed_waits():
    parser = ProxyHeaderParser()
    assert parser.feed(b"") is NEED_MORE
    assert parser.feed(b"PROXY UNKNOWN\r\n").family == "UNKNOWN"


@pytest.mark.parametrize("first", [b"PROXY UNKNOWN\r\n", b"GET /"])
def test_parser_is_single_use(first):
    parser = ProxyHeaderParser()
    try:
        parser.feed(first)
    except ProxyProtocolError:
        pass
    with pytest.raises(RuntimeError):
        parser.feed(b"PROXY UNKNOWN\r\n")


def test_buffer_never_holds_more_than_the_largest_header():
    parser = ProxyHeaderParser()
    assert parser.feed(v2_header(PROXY, TCP4, length=12 + DEFAULT_MAX_TLV_BYTES)[:16]) is NEED_MORE
    for _ in range(12 + DEFAULT_MAX_TLV_BYTES - 1):
        assert parser.feed(b"\0") is NEED_MORE
        assert len(parser._buffer) <= 16 + 12 + DEFAULT_MAX_TLV_BYTES
    with pytest.raises(ProxyProtocolError, match="TLV"):
        parser.feed(b"\0")  # 4096 zero bytes: 1365 empty TLVs and one byte that frames none
