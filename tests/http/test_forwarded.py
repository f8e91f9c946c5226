"""Trusted proxy headers, sans-I/O (http/forwarded.py): who may set them, and what they say."""
from __future__ import annotations

import pytest

from gannet.http.forwarded import MAX_HOPS, Resolved, TrustedPeers, resolve

LOCAL = TrustedPeers.default()
PROXIES = TrustedPeers("127.0.0.1, 10.0.0.0/8, fd00::/8, unix")


def _resolve(headers: list[tuple[bytes, bytes]], peer: str | None = "127.0.0.1",
             trusted: TrustedPeers = PROXIES) -> Resolved | None:
    return resolve(peer, 5000, headers, trusted)


# -- who is trusted ---------------------------------------------------------------------

@pytest.mark.parametrize("spec,host,expected", [
    ("127.0.0.1", "127.0.0.1", True),
    ("127.0.0.1", "127.0.0.2", False),
    ("127.0.0.1", "::ffff:127.0.0.1", True),  # what a dual-stack socket reports
    ("::ffff:10.1.2.3", "10.1.2.3", True),
    ("10.0.0.0/8", "10.200.3.4", True),
    ("10.0.0.0/8", "11.0.0.1", False),
    ("10.0.0.0/8", "::ffff:10.9.9.9", True),
    ("::ffff:10.0.0.0/104", "10.1.1.1", True),
    ("2001:db8::/32", "2001:db8::1", True),
    ("2001:db8::/32", "2001:db9::1", False),
    ("::1", "::1", True),
    ("::1", "0:0:0:0:0:0:0:1", True),
    ("*", "203.0.113.9", True),
    ("*", None, False),  # '*' means any address; Unix sockets are opted in with 'unix'
    ("unix", None, True),
    ("127.0.0.1", None, False),
    ("127.0.0.1", "not-an-ip", False),
    (" 127.0.0.1 ,, 10.0.0.1 ", "10.0.0.1", True),  # spaces and empty entries tolerated
])
def test_trust(spec, host, expected):
    assert TrustedPeers(spec).is_trusted(host) is expected


def test_trust_from_a_list_and_the_default():
    assert TrustedPeers(["10.0.0.1", "192.168.0.0/16,unix"]).is_trusted("192.168.4.4")
    assert LOCAL.is_trusted("127.0.0.1") and LOCAL.is_trusted(None)
    assert not LOCAL.is_trusted("10.0.0.1")
    assert not LOCAL.is_trusted("::1")  # the default is 127.0.0.1 and unix only


@pytest.mark.parametrize("entry", ["localhost", "10.0.0.0/33", "10.0.0.1/8", "300.1.1.1", "fe80::/129", "[::1]"])
def test_bad_entry_names_itself(entry):
    with pytest.raises(ValueError, match=entry.replace("[", r"\[").replace("]", r"\]")):
        TrustedPeers(f"127.0.0.1,{entry}")


def test_trust_check_repeats_the_same_answer():
    trusted = TrustedPeers("10.0.0.0/8")
    assert [trusted.is_trusted("10.1.1.1") for _ in range(3)] == [True] * 3
    assert [trusted.is_trusted("11.1.1.1") for _ in range(3)] == [False] * 3


# -- nothing to do ------------------------------------------------------------------------

def test_no_forwarding_header_changes_nothing():
    assert _resolve([(b"host", b"a"), (b"user-agent", b"x")]) is None
    assert _resolve([]) is None


def test_untrusted_peer_changes_nothing():
    spoof = [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-proto", b"https"),
             (b"x-forwarded-host", b"evil.test"), (b"x-forwarded-prefix", b"/p"),
             (b"forwarded", b"for=1.2.3.4;proto=https")]
    assert _resolve(spoof, peer="203.0.113.7") is None
    assert _resolve(spoof, peer=None, trusted=TrustedPeers("127.0.0.1")) is None
    assert _resolve(spoof, peer="127.0.0.1") is not None  # the same headers from a trusted peer count


# -- X-Forwarded-* --------------------------------------------------------------------------

def test_x_forwarded_for_alone():
    result = _resolve([(b"x-forwarded-for", b"203.0.113.9")])
    assert result == Resolved(client=("203.0.113.9", 0))


def test_chain_rightmost_untrusted_wins():
    headers = [(b"x-forwarded-for", b"198.51.100.1, 203.0.113.9, 10.0.0.5")]
    assert _resolve(headers).client == ("203.0.113.9", 0)


def test_chain_over_several_lines():
    headers = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-for", b"10.0.0.5, 10.0.0.6")]
    assert _resolve(headers).client == ("198.51.100.1", 0)


def test_chain_all_trusted_gives_the_leftmost():
    assert _resolve([(b"x-forwarded-for", b"10.0.0.9, 10.0.0.5")]).client == ("10.0.0.9", 0)


def test_spoofed_left_entries_do_not_matter():
    # the client sent "X-Forwarded-For: 10.0.0.1" itself; nginx appended its real address
    assert _resolve([(b"x-forwarded-for", b"10.0.0.1, 203.0.113.9")]).client == ("203.0.113.9", 0)


@pytest.mark.parametrize("value,client", [
    (b"203.0.113.9:4711", ("203.0.113.9", 4711)),
    (b"[2001:db8::1]:4711", ("2001:db8::1", 4711)),
    (b"2001:db8::1", ("2001:db8::1", 0)),
    (b"[2001:db8::1]", ("2001:db8::1", 0)),
    (b"::ffff:203.0.113.9", ("203.0.113.9", 0)),
])
def test_x_forwarded_for_address_forms(value, client):
    assert _resolve([(b"x-forwarded-for", value)]).client == client


@pytest.mark.parametrize("value", [b"unknown", b"999.1.1.1", b"", b"[1.2.3.4]", b"1.2.3.4:99999",
                                   b"1.2.3.4:x", b"[::1", b"a b"])
def test_malformed_x_forwarded_for_keeps_the_peer(value):
    result = _resolve([(b"x-forwarded-for", value), (b"x-forwarded-proto", b"https")])
    assert result == Resolved(client=("127.0.0.1", 5000), scheme="https")


def test_malformed_entry_stops_the_walk():
    # left of garbage nothing is believed: the client stays the peer
    result = _resolve([(b"x-forwarded-for", b"203.0.113.9, junk, 10.0.0.5"), (b"x-forwarded-proto", b"https")])
    assert result.client == ("127.0.0.1", 5000)


@pytest.mark.parametrize("value,scheme", [(b"https", "https"), (b"HTTP", "http"), (b"wss", "https"),
                                          (b"ws", "http"), (b" https ", "https")])
def test_x_forwarded_proto(value, scheme):
    assert _resolve([(b"x-forwarded-proto", value)]) == Resolved(client=("127.0.0.1", 5000), scheme=scheme)


@pytest.mark.parametrize("value", [b"ftp", b"javascript", b"", b"https;x"])
def test_bad_proto_is_ignored(value):
    assert _resolve([(b"x-forwarded-proto", value)]) is None


def test_proto_list_follows_the_client_hop():
    headers = [(b"x-forwarded-for", b"203.0.113.9, 10.0.0.5"), (b"x-forwarded-proto", b"https, http")]
    assert _resolve(headers).scheme == "https"
    # lengths differ: the rightmost entry, which our trusted peer wrote
    headers = [(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"http, https")]
    assert _resolve(headers).scheme == "https"


def test_x_forwarded_host_and_port():
    result = _resolve([(b"x-forwarded-host", b"example.com:8443")])
    assert (result.host, result.server_name, result.port) == ("example.com:8443", "example.com", 8443)
    result = _resolve([(b"x-forwarded-host", b"example.com"), (b"x-forwarded-port", b"444")])
    assert (result.host, result.server_name, result.port) == ("example.com", "example.com", 444)
    result = _resolve([(b"x-forwarded-host", b"[2001:db8::1]:8080")])
    assert (result.server_name, result.port) == ("[2001:db8::1]", 8080)
    assert _resolve([(b"x-forwarded-port", b"8080")]).port == 8080


@pytest.mark.parametrize("headers", [
    [(b"x-forwarded-host", b"bad host")],
    [(b"x-forwarded-host", b"a.test:99999")],
    [(b"x-forwarded-host", b":80")],
    [(b"x-forwarded-host", b"a/b")],
    [(b"x-forwarded-port", b"0")],
    [(b"x-forwarded-port", b"http")],
    [(b"x-forwarded-port", b"123456")],
])
def test_bad_host_or_port_is_ignored(headers):
    assert _resolve(headers) is None


@pytest.mark.parametrize("value,prefix", [(b"/api", "/api"), (b"/api/", "/api"), (b"/a%20b", "/a b"),
                                          (b"/", ""), (b"api", ""), (b"/a b", ""), (b"/%ff", "")])
def test_x_forwarded_prefix(value, prefix):
    result = _resolve([(b"x-forwarded-prefix", value)])
    assert (result.prefix if result else "") == prefix


def test_prefix_applies_with_forwarded_too():
    result = _resolve([(b"forwarded", b"for=203.0.113.9"), (b"x-forwarded-prefix", b"/app")])
    assert (result.client, result.prefix) == (("203.0.113.9", 0), "/app")


# -- RFC 7239 Forwarded ----------------------------------------------------------------------

def test_forwarded_alone():
    result = _resolve([(b"forwarded", b'for=203.0.113.9;proto=https;host="example.com:8443"')])
    assert result == Resolved(client=("203.0.113.9", 0), scheme="https", host="example.com:8443",
                              server_name="example.com", port=8443)


@pytest.mark.parametrize("value,client", [
    (b'for="[2001:db8:cafe::17]:4711"', ("2001:db8:cafe::17", 4711)),
    (b'for="[2001:db8:cafe::17]"', ("2001:db8:cafe::17", 0)),
    (b'for="192.0.2.43:47011"', ("192.0.2.43", 47011)),
    (b'For="192.0.2.43"', ("192.0.2.43", 0)),  # parameter names are case-insensitive
    (b'for = 192.0.2.43', None),  # no whitespace around '=' (RFC 7239 §4)
    (b'for="192.0.2.43:_port1"', ("192.0.2.43", 0)),  # obfuscated port: the address still counts
    (b'for="\\1\\9\\2.0.2.43"', ("192.0.2.43", 0)),  # quoted-pair
    (b"for=unknown", None),
    (b"for=_hidden", None),
    (b"for=192.0.2.43:80", None),  # ':' is not a token character: must be quoted
    (b"for=[::1]", None),
    (b'for="[192.0.2.43]"', None),
    (b'for="192.0.2.43', None),
])
def test_forwarded_for_forms(value, client):
    result = _resolve([(b"forwarded", value)])
    assert (result.client if result else ("127.0.0.1", 5000)) == (client or ("127.0.0.1", 5000))


def test_forwarded_chain_elements_and_lines():
    headers = [(b"forwarded", b'for=198.51.100.1;proto=http, for=203.0.113.9;proto=https;host=a.test'),
               (b"forwarded", b"for=10.0.0.5;proto=http")]
    result = _resolve(headers)
    assert (result.client, result.scheme, result.host) == (("203.0.113.9", 0), "https", "a.test")


def test_forwarded_quoted_separators_do_not_split():
    result = _resolve([(b"forwarded", b'for=203.0.113.9;host="a.test";ext="x, y; z=1"')])
    assert result.client == ("203.0.113.9", 0)


def test_forwarded_all_trusted_gives_the_leftmost():
    result = _resolve([(b"forwarded", b"for=10.0.0.9;proto=https, for=10.0.0.5;proto=http")])
    assert (result.client, result.scheme) == (("10.0.0.9", 0), "https")


def test_forwarded_unknown_client_keeps_the_peer_but_uses_its_element():
    result = _resolve([(b"forwarded", b"for=unknown;proto=https, for=10.0.0.5;proto=http")])
    assert (result.client, result.scheme) == (("127.0.0.1", 5000), "https")


def test_forwarded_without_for_still_gives_proto_and_host():
    result = _resolve([(b"forwarded", b"proto=https;host=a.test")])
    assert (result.client, result.scheme, result.host) == (("127.0.0.1", 5000), "https", "a.test")


@pytest.mark.parametrize("value", [
    b"for=203.0.113.9;;proto=https", b"for=203.0.113.9,", b"for", b"=1", b"for=1.2.3.4;for=5.6.7.8",
    b"for=1.2.3.4 proto=https", b'for="a\x01"', b"",
])
def test_malformed_forwarded_is_ignored(value):
    assert _resolve([(b"forwarded", value)]) is None


def test_malformed_forwarded_line_stops_the_walk():
    headers = [(b"forwarded", b"for=203.0.113.9"), (b"forwarded", b"for=;;"), (b"forwarded", b"for=10.0.0.5")]
    assert _resolve(headers) is None  # all we saw was trusted, and left of it is garbage


def test_forwarded_bad_proto_is_ignored_but_client_kept():
    result = _resolve([(b"forwarded", b"for=203.0.113.9;proto=gopher")])
    assert (result.client, result.scheme) == (("203.0.113.9", 0), None)


# -- precedence -------------------------------------------------------------------------------

def test_x_forwarded_wins_over_forwarded():
    headers = [(b"forwarded", b"for=198.51.100.1;proto=https;host=evil.test"),
               (b"x-forwarded-for", b"203.0.113.9")]
    assert _resolve(headers) == Resolved(client=("203.0.113.9", 0))


def test_forwarded_is_read_when_no_x_forwarded_identity_header():
    headers = [(b"forwarded", b"for=198.51.100.1;proto=https"), (b"x-forwarded-prefix", b"/p")]
    result = _resolve(headers)
    assert (result.client, result.scheme, result.prefix) == (("198.51.100.1", 0), "https", "/p")


# -- caps -------------------------------------------------------------------------------------

def test_x_forwarded_for_cap():
    assert 8 <= MAX_HOPS <= 64  # enough for real chains, small enough to bound the work
    within = b", ".join([b"203.0.113.9"] + [b"10.0.0.5"] * (MAX_HOPS - 1))
    assert _resolve([(b"x-forwarded-for", within)]).client == ("203.0.113.9", 0)
    beyond = b", ".join([b"203.0.113.9"] + [b"10.0.0.5"] * MAX_HOPS)
    assert _resolve([(b"x-forwarded-for", beyond)]) is None  # the client stays the peer


def test_x_forwarded_for_cap_spans_lines():
    lines = [(b"x-forwarded-for", b"203.0.113.9")] + [(b"x-forwarded-for", b"10.0.0.5")] * MAX_HOPS
    assert _resolve(lines) is None
    assert _resolve(lines[:MAX_HOPS]).client == ("203.0.113.9", 0)


def test_huge_untrusted_tail_is_cheap_and_right():
    # only the rightmost entries are split off: the client is found without parsing the rest
    value = b",".join([b"junk"] * 100_000 + [b"203.0.113.9"])
    assert _resolve([(b"x-forwarded-for", value)]).client == ("203.0.113.9", 0)


def test_forwarded_cap():
    within = b", ".join([b"for=203.0.113.9"] + [b"for=10.0.0.5"] * (MAX_HOPS - 1))
    assert _resolve([(b"forwarded", within)]).client == ("203.0.113.9", 0)
    beyond = b", ".join([b"for=203.0.113.9"] + [b"for=10.0.0.5"] * MAX_HOPS)
    assert _resolve([(b"forwarded", beyond)]) is None


def test_unix_peer_trusted_only_with_unix():
    headers = [(b"x-forwarded-for", b"203.0.113.9")]
    assert _resolve(headers, peer=None).client == ("203.0.113.9", 0)
    assert _resolve(headers, peer=None, trusted=TrustedPeers("*")) is None
    assert _resolve([(b"x-forwarded-proto", b"https")], peer=None) == Resolved(client=None, scheme="https")
