"""Who the client really is, behind trusted proxies: X-Forwarded-* and RFC 7239 Forwarded.

Theory of operation
-------------------
Sans-I/O and pure: no sockets, no scope, no config objects. Two pieces:

* ``TrustedPeers`` is built once, at config time, from ``--forwarded-allow-ips`` /
  ``FORWARDED_ALLOW_IPS`` (comma-separated IPs and CIDRs, v4 and v6, ``*`` for everyone,
  ``unix`` for Unix-socket peers). A bad entry raises ``ValueError`` naming it, so a typo
  fails at start-up, never per request. ``is_trusted(host)`` is an exact-match set lookup
  first (the usual ``127.0.0.1``), then the networks (memoised, bounded). An IPv4-mapped
  IPv6 address (``::ffff:10.0.0.1``, what a dual-stack socket reports) is the IPv4 address
  for every purpose here: trust, and the client host we report.
* ``resolve(peer_host, peer_port, headers, trusted)`` takes the ASGI-style header list
  and returns an immutable ``Resolved``, or ``None`` when nothing changes (no forwarding
  header, or an untrusted peer: its headers change nothing).

Precedence. The two header families are never mixed for identity (client, scheme, host,
port): if any of ``X-Forwarded-For``/``-Proto``/``-Host``/``-Port`` is present, that family
alone is read and ``Forwarded`` is ignored; otherwise ``Forwarded`` is read. Reason: the
front ends users run (nginx, Apache, HAProxy ``option forwardfor``, AWS/GCP load balancers)
set X-Forwarded-* and pass a client's own ``Forwarded`` through untouched, so letting
``Forwarded`` win would let any client behind nginx spoof its address. uvicorn reads only
X-Forwarded-*, gunicorn only X-Forwarded-* (for the scheme), hypercorn's ProxyFix reads one
family chosen by the user; we pick X-Forwarded-* when present, which makes nginx et al.
safe by default. A proxy that writes only ``Forwarded`` must drop incoming X-Forwarded-*
(docs/deployment.md should say so). ``X-Forwarded-Prefix`` has no Forwarded equivalent
and applies in either case.

The chain. The client is the rightmost address not in the trusted set, walking from the
right (each proxy appends what it saw); if every address is trusted, the leftmost. A value
that is not an address (bad syntax, ``unknown``, an obfuscated ``_id``) stops the walk
there: what lies to its left cannot be trusted, so the client stays the peer. For
Forwarded, the element so chosen also supplies ``proto=`` and ``host=`` (RFC 7239 §5: each
element describes the request its proxy received; the chosen one is the client's view).
For X-Forwarded-Proto/-Host/-Port lists (``https, http``), the entry at the client's hop
is used when the list is as long as X-Forwarded-For, else the rightmost (the one our
trusted peer wrote).

Malformed values (bad addresses, bad Forwarded syntax, a proto other than
http/https/ws/wss, a bad host or port) are ignored with a debug log; nothing here raises.
At most ``MAX_HOPS`` addresses/elements are examined; past that the client stays the peer.

Cost (measured, CPython 3.11). With no forwarding header, ``resolve`` is one pass over the
header names with a frozenset membership test each (bytes cache their hash), no
allocation: ~0.26 µs for an 8-header request; the trust check is not even reached. With
``X-Forwarded-For`` + ``-Proto`` from a trusted peer: ~7 µs (addresses are checked with
inet_pton, not ipaddress). That is a large share of the issue's 5% h1-plaintext budget,
so the wiring should benchmark it and, if needed, add a special case for the common
single-address X-Forwarded-For (or memoise results per (peer, header values)).

What the wiring must do (not done here)
---------------------------------------
Only when ``--proxy-headers`` is on (precompute the flag; the h1 hot path checks only it),
call ``resolve`` once per request (and per WebSocket handshake) with the socket peer
(``None`` host for a Unix socket) and, if it returns a ``Resolved`` ``r``:

* ASGI scope: ``client = r.client``; ``scheme = r.scheme`` if set, mapped to ``ws``/``wss``
  for a WebSocket scope; ``server = (r.server_name, r.port or default port of the scheme)``
  when ``r.host`` is set (else keep the listener's, with ``r.port`` if set); if ``r.host``
  is set, replace the ``host`` header value so apps that read it agree; ``root_path +=
  r.prefix`` (and the path prefixed likewise, as ``--root-path`` does in request.py).
* WSGI environ (derived from the scope): ``REMOTE_ADDR``/``REMOTE_PORT`` from
  ``r.client``, ``wsgi.url_scheme``, ``HTTP_HOST``, ``SERVER_NAME``/``SERVER_PORT``,
  ``SCRIPT_NAME`` (with the prefix).
* The access log: ``%(h)s`` is the resolved client host (the scope's client).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import unquote

from .errors import ProtocolError
from .request import check_host
from .trust import DEFAULT_ALLOW, TrustedPeers, ip_address as _ip

__all__ = ["MAX_HOPS", "DEFAULT_ALLOW", "TrustedPeers", "Resolved", "resolve"]

logger = logging.getLogger("gannet.error")

MAX_HOPS = 32  # addresses or Forwarded elements examined per request, at most

_X_FOR, _X_PROTO, _X_HOST, _X_PORT, _X_PREFIX = (
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port",
    b"x-forwarded-prefix")
_FORWARDED = b"forwarded"
_X_IDENTITY = (_X_FOR, _X_PROTO, _X_HOST, _X_PORT)
_NAMES = frozenset((*_X_IDENTITY, _X_PREFIX, _FORWARDED))
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}

# RFC 7239 §4 / RFC 7230 §3.2.6: pair = token "=" ( token / quoted-string ), then ";" "," or end.
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PAIR = re.compile(rb"[ \t]*(" + _TOKEN + rb")=(" + _TOKEN + rb'|"(?:[^"\\\x00-\x1f\x7f]|\\[\t -~])*")[ \t]*([;,]|\Z)')
_PREFIX = re.compile(r"/[!-~]*\Z")


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a trusted proxy told us; ``None`` fields mean "keep what the socket says".

    ``client`` is always set to what the scope should say: the forwarded client (port 0
    when not forwarded) or else the peer itself (``None`` for a Unix socket).
    ``scheme`` is 'http' or 'https' (the caller maps to ws/wss). ``host`` is the Host
    value to present; ``server_name`` its host part; ``port`` from X-Forwarded-Port or
    the host's port. ``prefix`` is a decoded path to append to root_path ('' for none),
    ``raw_prefix`` the same as sent (its percent-escapes kept), for raw_path.
    """

    client: tuple[str, int] | None
    scheme: str | None = None
    host: str | None = None
    server_name: str | None = None
    port: int | None = None
    prefix: str = ""
    raw_prefix: bytes = b""


def _split_host_port(text: str) -> tuple[str, int] | None:
    """``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]``, ``[::1]:80`` as (address, port 0 if none).
    No zone ids (``fe80::1%eth0``): the sender's interface means nothing here, and the
    text after '%' is free."""
    if "%" in text:
        return None
    if text.startswith("["):
        inner, bracket, rest = text[1:].partition("]")
        if not bracket or ":" not in inner:
            return None  # brackets are for IPv6 only (RFC 3986 §3.2.2)
        address = _ip(inner)
    else:
        address = _ip(text)
        if address is not None:
            return address, 0
        head, colon, tail = text.rpartition(":")
        if not colon or ":" in head:
            return None
        address, rest = _ip(head), ":" + tail
    if address is None:
        return None
    if not rest:
        return address, 0
    port = _port(rest[1:]) if rest[0] == ":" else None
    return (address, port) if port is not None else None


def _port(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()) or len(text) > 5:
        return None
    value = int(text)
    return value if 0 < value < 65536 else None


def _node(value: str) -> tuple[str, int] | None:
    """A Forwarded ``for=`` node (RFC 7239 §6): an address, or None for unknown/_obfuscated/bad."""
    if value.lower() == "unknown" or value.startswith("_"):
        return None
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1:] if end >= 0 else ""
        if rest.startswith(":_"):  # obfuscated port (RFC 7239 §6.3): keep the address
            value = value[:end + 1]
    elif value.count(":") == 1 and value.partition(":")[2].startswith("_"):
        value = value.partition(":")[0]
    return _split_host_port(value)


def _host(text: str) -> tuple[str, str, int | None] | None:
    """A Host value as (value, name, port), or None if it is not ``uri-host [":" port]``."""
    raw = text.strip().encode("latin-1", "replace")
    try:
        check_host(raw)
    except ProtocolError:
        return None
    value = raw.decode("ascii", "replace")
    if value.startswith("["):
        name, _, port_text = value.partition("]")
        name += "]"
        port_text = port_text[1:]
    else:
        name, _, port_text = value.partition(":")
    if not name:
        return None
    port = _port(port_text) if port_text else None
    if port_text and port is None:
        return None
    return value, name, port


def _scheme(text: str) -> str | None:
    scheme = _SCHEMES.get(text.strip().lower())
    if scheme is None:
        logger.debug("forwarded: ignored proto %r", text[:64])
    return scheme


def _prefix(values: Sequence[bytes]) -> tuple[str, bytes]:
    """The X-Forwarded-Prefix path, percent-decoded like ASGI's root_path, and as sent
    (for raw_path); ('', b'') if unusable. A path only: '?' or '#' in it is refused."""
    if len(values) != 1:
        return "", b""  # several prefix lines: ambiguous, ignore rather than guess an order
    text = values[0].decode("latin-1").strip()
    try:
        if not _PREFIX.match(text) or "?" in text or "#" in text:
            raise ValueError(text)
        decoded = unquote(text, errors="strict")
        if not decoded.isprintable():
            raise ValueError(text)
    except (ValueError, UnicodeDecodeError):
        logger.debug("forwarded: ignored prefix %r", text[:64])
        return "", b""
    raw = text.rstrip("/")
    return unquote(raw), raw.encode("ascii")


def _walk(candidates: Sequence[tuple[str, int] | None], complete: bool,
          trusted: TrustedPeers) -> tuple[int, tuple[str, int] | None] | None:
    """(index from the right, address) of the client in a right-to-left chain: the first
    untrusted entry (``None``: not an address, so the client is unknown), else the leftmost
    if the chain is ``complete``; None if the cap or an incomplete chain came first."""
    for index, candidate in enumerate(candidates):
        if index >= MAX_HOPS:
            return None
        if candidate is None or not trusted.is_trusted(candidate[0]):
            return index, candidate
    if not complete or not candidates:
        return None
    return len(candidates) - 1, candidates[-1]


def _x_for_chain(values: Sequence[bytes]) -> tuple[list[tuple[str, int] | None], bool]:
    """X-Forwarded-For entries right to left over all lines, at most MAX_HOPS of them
    (rsplit bounds the work), and whether that is the whole chain."""
    entries: list[tuple[str, int] | None] = []
    for value in reversed(values):
        parts = value.rsplit(b",", MAX_HOPS - len(entries))
        for part in reversed(parts):
            if len(entries) >= MAX_HOPS:
                return entries, False
            text = part.strip().decode("latin-1")
            address = _split_host_port(text)
            if address is None:
                logger.debug("forwarded: ignored X-Forwarded-For entry %r", text[:64])
            entries.append(address)
    return entries, True


def _pick(values: Sequence[bytes], index: int | None, hops: int | None) -> str | None:
    """One entry of an X-Forwarded-Proto/-Host/-Port list: the client's hop, else the rightmost."""
    if not values:
        return None
    entries = b",".join(values).rsplit(b",", MAX_HOPS)
    if index is not None and hops == len(entries):
        return entries[-1 - index].decode("latin-1").strip()
    return entries[-1].decode("latin-1").strip()


def _x_forwarded(peer: tuple[str, int] | None, found: dict[bytes, list[bytes]], trusted: TrustedPeers) -> Resolved:
    client, index, hops = peer, None, None
    chain = found.get(_X_FOR)
    if chain:
        entries, complete = _x_for_chain(chain)
        hops = len(entries) if complete else None
        chosen = _walk(entries, complete, trusted)
        if chosen is not None and chosen[1] is not None:
            index, client = chosen
    proto = _pick(found.get(_X_PROTO, ()), index, hops)
    host_text = _pick(found.get(_X_HOST, ()), index, hops)
    port_text = _pick(found.get(_X_PORT, ()), index, hops)
    host = _host(host_text) if host_text else None
    if host_text and host is None:
        logger.debug("forwarded: ignored X-Forwarded-Host %r", host_text[:64])
    port = _port(port_text) if port_text else None
    if port_text and port is None:
        logger.debug("forwarded: ignored X-Forwarded-Port %r", port_text[:64])
    return Resolved(client=client, scheme=_scheme(proto) if proto else None,
                    host=host[0] if host else None, server_name=host[1] if host else None,
                    port=port if port is not None else (host[2] if host else None))


def _elements(value: bytes) -> list[dict[str, str]] | None:
    """One Forwarded line as elements of lower-cased parameters, or None if malformed."""
    elements: list[dict[str, str]] = [{}]
    at, end = 0, len(value)
    while at < end:
        match = _PAIR.match(value, at)
        if match is None or match.end() == at:
            return None
        name, raw, separator = match.groups()
        text = raw.decode("latin-1")
        if text.startswith('"'):
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        key = name.decode("ascii").lower()
        if key in elements[-1]:
            return None  # RFC 7239 §4: a parameter must not occur twice in one element
        elements[-1][key] = text
        if separator == b",":
            if len(elements) > MAX_HOPS:
                return None
            elements.append({})
        at = match.end()
    return elements if elements[-1] else None


def _forwarded(peer: tuple[str, int] | None, values: Sequence[bytes], trusted: TrustedPeers) -> Resolved | None:
    parsed: list[dict[str, str]] = []
    complete = True
    for value in reversed(values):
        elements = _elements(value)
        if elements is None:
            logger.debug("forwarded: ignored malformed Forwarded %r", value[:64])
            complete = False  # what lies left of a malformed line cannot be trusted
            break
        parsed.extend(reversed(elements))
        if len(parsed) > MAX_HOPS:
            complete = False
            break
    nodes = [_node(element["for"]) if "for" in element else None for element in parsed[:MAX_HOPS]]
    chosen = _walk(nodes, complete, trusted)
    if chosen is None:
        return None
    element = parsed[chosen[0]]
    host = _host(element["host"]) if "host" in element else None
    scheme = _scheme(element["proto"]) if "proto" in element else None
    return Resolved(client=chosen[1] or peer, scheme=scheme,
                    host=host[0] if host else None, server_name=host[1] if host else None,
                    port=host[2] if host else None)


def resolve(peer_host: str | None, peer_port: int | None, headers: Sequence[tuple[bytes, bytes]],
            trusted: TrustedPeers, *, sender_trusted: bool | None = None) -> Resolved | None:
    """The forwarded view of one request, or None when nothing changes.

    ``headers`` are (lower-case name, value) pairs as in an ASGI scope. Never raises on
    header content; see the module docstring for precedence, the chain and the costs.
    ``sender_trusted``: whether whoever wrote the headers is trusted, when that is not the
    peer itself (a PROXY header or uwsgi vars named the peer; the proxy that connected to
    us wrote the headers); by default the peer decides.
    """
    for name, _ in headers:  # the fast path: names only, no allocation
        if name in _NAMES:
            break
    else:
        return None
    if not (trusted.is_trusted(peer_host) if sender_trusted is None else sender_trusted):
        return None
    found: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        if name in _NAMES:
            found.setdefault(name, []).append(value)
    peer = (_ip(peer_host) or peer_host, peer_port or 0) if peer_host is not None else None
    if any(name in found for name in _X_IDENTITY):
        result: Resolved | None = _x_forwarded(peer, found, trusted)
    elif _FORWARDED in found:
        result = _forwarded(peer, found[_FORWARDED], trusted)
    else:
        result = None
    prefix, raw_prefix = _prefix(found[_X_PREFIX]) if _X_PREFIX in found else ("", b"")
    if prefix:
        result = Resolved(client=peer) if result is None else result
        result = Resolved(result.client, result.scheme, result.host, result.server_name, result.port,
                          prefix, raw_prefix)
    if result is None or result == Resolved(client=peer):
        return None
    return result
