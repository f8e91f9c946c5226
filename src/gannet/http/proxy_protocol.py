"""The PROXY protocol (HAProxy, versions 1 and 2), sans I/O: who the client really was.

A load balancer that speaks the PROXY protocol (HAProxy ``send-proxy``/``send-proxy-v2``,
AWS NLB, GCP, Azure) writes one header at the very start of the TCP stream, before any
HTTP, naming the original client and the address it connected to. The spec is
https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt; sections are cited below.

Theory of operation
-------------------
:class:`ProxyHeaderParser` is fed the connection's first bytes as they arrive.
``feed(data)`` returns :data:`NEED_MORE` until the header is complete, then a
:class:`ProxyHeader` whose ``rest`` holds the bytes that followed the header (the start of
the HTTP request, to hand to the HTTP parser untouched). Anything that is not a valid
header raises :class:`ProxyProtocolError` with a short fixed ``reason`` for the log; the
reason never echoes peer bytes. The parser is finished after one result or one error.

- Early rejection: the first bytes must be a prefix of ``"PROXY "`` (v1) or of the 12-byte
  v2 signature (§2.2). Plain HTTP (``GET / HTTP/1.1``) fails on its first byte, without
  waiting for more; so does a v1 protocol word that cannot become TCP4, TCP6 or UNKNOWN,
  and a v2 version, command or family byte as soon as it is seen.
- Bounded memory: a v1 line is at most 107 bytes with its CRLF (§2.1); a v2 header is
  16 bytes plus its declared length, and the length is checked against the cap
  (the family's address block plus ``max_tlv_bytes``, 4 KiB by default, instead of the
  65535 the format allows) as soon as the 16 fixed bytes are in. What is kept between
  calls is therefore never more than the largest header accepted.
- Byte-by-byte delivery works; the parser holds no clock. The caller bounds the wait
  with the header-read timeout, so a peer dribbling a header is cut off like one
  dribbling a request line.
- v1 (§2.1): ``PROXY TCP4|TCP6 src dst sport dport\\r\\n`` with single spaces, addresses of
  the named family (no IPv6 zone ids), ports 0-65535 in decimal without leading zeros.
  ``PROXY UNKNOWN ...\\r\\n`` ignores the rest of the line and carries no addresses.
- v2 (§2.2): ``LOCAL`` (health checks from the proxy itself) is accepted whatever its
  family and carries no addresses: the real endpoints stand. ``PROXY`` over
  ``UNSPEC`` likewise carries none. ``PROXY`` over TCP/IPv4, TCP/IPv6 or a Unix stream
  socket is accepted; a Unix socket has no ports, so its addresses are ``None`` too.
  DGRAM (UDP) is refused: an HTTP server behind it makes no sense. Unassigned family or
  transport values are refused, as §2.2 requires. TLVs (§2.2.7) after the addresses must
  frame the rest of the block exactly; they are returned raw and not interpreted
  (the CRC32c TLV is not verified).

What the wiring must do (``--proxy-protocol``, ``--proxy-allow-from``)
-------------------------------------------------------------------
- With ``--proxy-protocol`` on, each accepted connection from a peer in
  ``--proxy-allow-from`` (IPs, CIDRs, ``unix``) feeds its first bytes here before any HTTP
  parsing, under the header-read timeout; a timeout, an error, or EOF before the header
  is complete closes the connection with one log line (the reason, the peer) and no
  HTTP response, because the header is required.
- A peer outside ``--proxy-allow-from`` that sends a header is closed with a log line:
  check ``looks_like_proxy_header(first_bytes)`` on its first read instead of parsing.
- The result's ``source`` replaces the ASGI scope ``client`` (and WSGI ``REMOTE_ADDR``,
  ``REMOTE_PORT``) and the access log's client; ``destination`` replaces ``server``.
  ``None`` (LOCAL, UNKNOWN, UNSPEC, Unix) keeps the real socket endpoints. ``rest``
  goes to the HTTP parser as if it had just been received. TLS, when terminated by
  Gannet, starts after the header: the header is read on the raw socket first.
"""
from __future__ import annotations

import enum
import ipaddress
import struct
from typing import Literal, NamedTuple, Optional, Tuple, Union

__all__ = [
    "NEED_MORE", "ProxyHeader", "ProxyHeaderParser", "ProxyProtocolError",
    "V1_MAX_BYTES", "V2_SIGNATURE", "DEFAULT_MAX_TLV_BYTES", "looks_like_proxy_header",
]

V1_PREFIX = b"PROXY "
V1_MAX_BYTES = 107  # §2.1: the longest TCP6 line, CRLF included
V1_PROTOCOLS = (b"TCP4", b"TCP6", b"UNKNOWN")
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"  # §2.2
V2_FIXED_BYTES = 16
DEFAULT_MAX_TLV_BYTES = 4096

# §2.2: the address block's size for each family nibble (UNSPEC carries none).
_ADDRESS_BYTES = {0x0: 0, 0x1: 12, 0x2: 36, 0x3: 216}
_FAMILY_NAMES = {0x0: "UNSPEC", 0x1: "TCP4", 0x2: "TCP6", 0x3: "UNIX"}
_STREAM, _DGRAM = 0x1, 0x2
_LOCAL, _PROXY = 0x0, 0x1

Address = Tuple[str, int]


class ProxyProtocolError(Exception):
    """A PROXY header that must close the connection; ``reason`` is short, for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _NeedMore(enum.Enum):
    NEED_MORE = "need more"


NEED_MORE = _NeedMore.NEED_MORE
"""Returned by :meth:`ProxyHeaderParser.feed` while the header is still incomplete."""


class ProxyHeader(NamedTuple):
    """One parsed header. ``source``/``destination`` are ``None`` when the real
    socket endpoints stand (v1 UNKNOWN, v2 LOCAL, UNSPEC, Unix sockets)."""

    version: int                 # 1 or 2
    command: str                 # "PROXY" or "LOCAL" (v2 health checks)
    family: str                  # "TCP4", "TCP6", "UNIX", "UNKNOWN" (v1) or "UNSPEC"
    source: Optional[Address]
    destination: Optional[Address]
    rest: bytes                  # what followed the header: the start of the request
    tlvs: Tuple[Tuple[int, bytes], ...] = ()


def looks_like_proxy_header(data: bytes) -> bool:
    """Whether ``data`` (a connection's first bytes) starts, or may start, a PROXY header.

    For peers not allowed to send one: a True here closes the connection."""
    if not data:
        return False
    return (data[:6] == V1_PREFIX[:len(data)] or data[:12] == V2_SIGNATURE[:len(data)])


class ProxyHeaderParser:
    """Incremental parser for one connection's PROXY header (v1 or v2)."""

    def __init__(self, max_tlv_bytes: int = DEFAULT_MAX_TLV_BYTES) -> None:
        self.max_tlv_bytes = max_tlv_bytes
        self._buffer = bytearray()
        self._finished = False

    def feed(self, data: bytes) -> Union[ProxyHeader, Literal[_NeedMore.NEED_MORE]]:
        """Add received bytes; return the header once complete, else :data:`NEED_MORE`.

        Raises :class:`ProxyProtocolError` as soon as the bytes cannot be a valid header."""
        if self._finished:
            raise RuntimeError("this parser has already returned a header or an error")
        self._buffer += data
        try:
            result = self._parse(bytes(self._buffer))
        except ProxyProtocolError:
            self._finish()
            raise
        if result is not NEED_MORE:
            self._finish()
        return result

    def _finish(self) -> None:
        self._finished = True
        self._buffer = bytearray()

    def _parse(self, buffer: bytes) -> Union[ProxyHeader, Literal[_NeedMore.NEED_MORE]]:
        if not buffer:
            return NEED_MORE
        if buffer[:6] == V1_PREFIX[:len(buffer)]:
            return self._parse_v1(buffer) if len(buffer) > len(V1_PREFIX) else NEED_MORE
        if buffer[:12] == V2_SIGNATURE[:len(buffer)]:
            return self._parse_v2(buffer)
        raise ProxyProtocolError("not a PROXY protocol header")

    # -- v1 (§2.1) ----------------------------------------------------------------------

    def _parse_v1(self, buffer: bytes) -> Union[ProxyHeader, Literal[_NeedMore.NEED_MORE]]:
        end = buffer.find(b"\n", 0, V1_MAX_BYTES)
        if end < 0:
            _check_v1_protocol_prefix(buffer[len(V1_PREFIX):V1_MAX_BYTES])
            if len(buffer) >= V1_MAX_BYTES:
                raise ProxyProtocolError("v1 header too long")
            return NEED_MORE
        if buffer[end - 1:end] != b"\r":
            raise ProxyProtocolError("garbled v1 header: line not ended by CRLF")
        line, rest = buffer[len(V1_PREFIX):end - 1], buffer[end + 1:]
        fields = line.split(b" ")
        protocol = fields[0]
        if protocol == b"UNKNOWN":  # §2.1: the receiver must ignore the rest of the line
            return ProxyHeader(1, "PROXY", "UNKNOWN", None, None, rest)
        if protocol not in (b"TCP4", b"TCP6"):
            raise ProxyProtocolError("unsupported v1 protocol")
        if len(fields) != 5:
            raise ProxyProtocolError("garbled v1 header: wrong number of fields")
        make = ipaddress.IPv4Address if protocol == b"TCP4" else ipaddress.IPv6Address
        source = (_v1_host(fields[1], make), _v1_port(fields[3]))
        destination = (_v1_host(fields[2], make), _v1_port(fields[4]))
        return ProxyHeader(1, "PROXY", protocol.decode(), source, destination, rest)

    # -- v2 (§2.2) ----------------------------------------------------------------------

    def _parse_v2(self, buffer: bytes) -> Union[ProxyHeader, Literal[_NeedMore.NEED_MORE]]:
        if len(buffer) <= 12:
            return NEED_MORE
        version, command = buffer[12] >> 4, buffer[12] & 0xF
        if version != 2:
            raise ProxyProtocolError("unsupported PROXY protocol version")
        if command not in (_LOCAL, _PROXY):
            raise ProxyProtocolError("unsupported v2 command")
        if len(buffer) > 13 and command == _PROXY:
            _check_v2_family(buffer[13] >> 4, buffer[13] & 0xF)
        if len(buffer) < V2_FIXED_BYTES:
            return NEED_MORE
        family = buffer[13] >> 4
        (length,) = struct.unpack_from("!H", buffer, 14)
        address_bytes = _ADDRESS_BYTES.get(family, 0) if command == _PROXY else 0
        if length > address_bytes + self.max_tlv_bytes:
            raise ProxyProtocolError("v2 header too long")
        end = V2_FIXED_BYTES + length
        if len(buffer) < end:
            return NEED_MORE
        rest = buffer[end:]
        if command == _LOCAL:  # §2.2: discard the block, family included; real endpoints stand
            return ProxyHeader(2, "LOCAL", "UNSPEC", None, None, rest)
        if length < address_bytes:
            raise ProxyProtocolError("bad address: v2 address block too short")
        block = buffer[V2_FIXED_BYTES:end]
        tlvs = _v2_tlvs(block[address_bytes:])
        source = destination = None
        if family == 0x1:
            src, dst, sport, dport = struct.unpack_from("!4s4sHH", block)
            source = (str(ipaddress.IPv4Address(src)), sport)
            destination = (str(ipaddress.IPv4Address(dst)), dport)
        elif family == 0x2:
            src, dst, sport, dport = struct.unpack_from("!16s16sHH", block)
            source = (str(ipaddress.IPv6Address(src)), sport)
            destination = (str(ipaddress.IPv6Address(dst)), dport)
        return ProxyHeader(2, "PROXY", _FAMILY_NAMES[family], source, destination, rest, tlvs)


def _check_v1_protocol_prefix(partial: bytes) -> None:
    """Refuse a v1 line early once its protocol word cannot become a known one."""
    word = partial.split(b" ", 1)[0].split(b"\r", 1)[0]
    complete = len(word) < len(partial)  # a space or CR has ended the word
    if not any(p == word if complete else p.startswith(word) for p in V1_PROTOCOLS):
        raise ProxyProtocolError("unsupported v1 protocol")


def _v1_host(text: bytes, make: type) -> str:
    if b"%" in text:  # an IPv6 zone id names the proxy's interface, not the client's
        raise ProxyProtocolError("bad address in v1 header")
    try:
        return str(make(text.decode("ascii")))
    except (ValueError, UnicodeDecodeError):
        raise ProxyProtocolError("bad address in v1 header") from None


def _v1_port(text: bytes) -> int:
    # §2.1: decimal 0-65535; leading zeros and signs would let two spellings mean one port
    if not (text.isdigit() and len(text) <= 5) or (len(text) > 1 and text[:1] == b"0"):
        raise ProxyProtocolError("bad port in v1 header")
    port = int(text)
    if port > 65535:
        raise ProxyProtocolError("bad port in v1 header")
    return port


def _check_v2_family(family: int, transport: int) -> None:
    """§2.2: only the listed family/transport pairs are valid; we serve streams only."""
    if family not in _ADDRESS_BYTES or transport > _DGRAM or (family == 0) != (transport == 0):
        raise ProxyProtocolError("unsupported v2 address family")
    if transport == _DGRAM:
        raise ProxyProtocolError("unsupported v2 transport: DGRAM")


def _v2_tlvs(data: bytes) -> Tuple[Tuple[int, bytes], ...]:
    """§2.2.7: type (1 byte), length (2 bytes), value; they must fill the block exactly."""
    tlvs = []
    offset = 0
    while offset < len(data):
        if offset + 3 > len(data):
            raise ProxyProtocolError("garbled v2 TLV")
        kind, size = data[offset], struct.unpack_from("!H", data, offset + 1)[0]
        offset += 3
        if offset + size > len(data):
            raise ProxyProtocolError("garbled v2 TLV")
        tlvs.append((kind, data[offset:offset + size]))
        offset += size
    return tuple(tlvs)
