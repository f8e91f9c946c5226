"""The PROXY protocol gate: a connection's first bytes, before any HTTP (or uwsgi).

With ``--proxy-protocol`` on, every accepted connection starts with a ``ProxyGate``. It
reads just enough to decide, then hands the transport to the real protocol
(``transport.set_protocol``) with the endpoints the header named, and passes on the bytes
that followed the header untouched:

- a peer in ``--proxy-allow-from`` must send a header (the mode: v1, v2 or either). A
  garbled or wrong-version header, EOF before it is whole, or no header within
  ``--header-read-timeout`` (a dribbling peer) closes the connection with one info line
  naming the peer and the reason; no HTTP response, since the peer is a proxy that
  expects none. ``LOCAL`` (HAProxy's health checks) and ``UNKNOWN`` keep the socket's
  endpoints.
- the named client, not the proxy, counts as the writer of any X-Forwarded-* headers that
  follow (a layer-4 proxy passes a client's own headers through): they are believed only
  if that client is itself in ``--forwarded-allow-ips``; never when the header relays a
  connection without naming its client (v1 ``UNKNOWN``, v2 ``UNSPEC``, a client on the
  proxy's Unix socket), while ``LOCAL`` (the proxy's own connection) leaves the proxy the
  writer. The scheme comes from v2's SSL
  TLV (HAProxy ``send-proxy-v2-ssl``): https when the client used TLS.
- any other peer is served as it is, with its own address (a health probe or a local
  tool reaching a worker directly), unless its first bytes are a PROXY header: then it is
  trying to choose its own address, and it is disconnected with a log line. Deciding
  needs at most the 12 bytes of the v2 signature; plain HTTP differs within two.

The gate is registered with the server while it waits, so the once-a-second sweep applies
the header-read timeout and the drain closes it. TLS (when Gannet terminates it) will
start after the header: the header is read on the raw socket first.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from ..http.proxy_protocol import (NEED_MORE, V1_PREFIX, V2_SIGNATURE, ProxyHeaderParser,
                                   ProxyProtocolError)

__all__ = ["ProxyGate"]

logger = logging.getLogger("gannet.error")

_V2_BYTES = len(V2_SIGNATURE)


class ProxyGate(asyncio.Protocol):
    """Reads (or refuses) a PROXY header, then becomes ``make_inner()``'s protocol."""

    def __init__(self, state: Any, make_inner: Callable[[], Any]) -> None:
        self.state = state
        self.make_inner = make_inner
        self.transport: Any = None
        self.peer: Any = None
        self.trusted = False
        self.parser: ProxyHeaderParser | None = None
        self.buffer = b""  # an untrusted peer's first bytes, until they decide
        self.started = 0.0
        self.done = False

    # ------------------------------------------------------------------ transport events
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = peer
        host = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self.trusted = self.state.proxy_allow.is_trusted(host)
        if self.trusted:
            self.parser = ProxyHeaderParser()
        self.started = self.state.loop.time()
        self.state.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.done:
            return
        if self.parser is None:
            self._untrusted(data)
            return
        try:
            header = self.parser.feed(data)
        except ProxyProtocolError as exc:
            self._refuse(f"invalid PROXY protocol header ({exc.reason})")
            return
        if header is NEED_MORE:
            return
        mode = self.state.proxy_protocol
        if mode in ("v1", "v2") and header.version != int(mode[1]):
            self._refuse(f"PROXY protocol v{header.version} header where --proxy-protocol "
                         f"{mode} expects v{mode[1]}")
            return
        relayed = header.command == "PROXY"
        unix: bool | None = relayed and header.family == "UNIX"
        if relayed and header.source is None and not unix:
            # v1 UNKNOWN, v2 UNSPEC: a relayed client the header does not name. Its bytes
            # are that client's, so the proxy (the socket peer) must not vouch for its
            # X-Forwarded-*: unix=None tells h1 (and is passed on by a TLS gate or uwsgi).
            unix = None
        scheme = "https" if relayed and _client_used_tls(header.tlvs) else None
        self._hand_over(header.rest, header.source, header.destination, unix, scheme)

    def eof_received(self) -> bool | None:
        if not self.done:
            self._refuse("closed before its PROXY protocol header was complete"
                         if self.trusted else None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.done = True
        self.state.connections.discard(self)

    # ------------------------------------------------------------------ the server's calls
    def check_timeouts(self, now: float) -> None:
        if not self.done and now - self.started > self.state.header_read_timeout:
            if self.trusted:
                why: str | None = (f"no PROXY protocol header within "
                                   f"{self.state.header_read_timeout:g}s (--header-read-timeout)")
            else:  # silent, or stalled inside what could still become a PROXY header
                why = (f"sent {len(self.buffer)} bytes that could begin a PROXY protocol header"
                       f" and nothing more within {self.state.header_read_timeout:g}s"
                       if self.buffer else None)
            self._refuse(why)

    def shutdown(self) -> None:
        if not self.done:
            self.done = True
            self.transport.close()

    def force_close(self) -> None:
        self.done = True
        self.transport.abort()

    def pause_writing(self) -> None:  # nothing is written before the hand-over
        pass

    def resume_writing(self) -> None:
        pass

    # ------------------------------------------------------------------ decisions
    def _untrusted(self, data: bytes) -> None:
        """A peer outside --proxy-allow-from: served directly unless it sends a header."""
        buffer = self.buffer + data
        if buffer[:6] == V1_PREFIX or buffer[:_V2_BYTES] == V2_SIGNATURE:
            self._refuse("sent a PROXY protocol header but is not in --proxy-allow-from")
            return
        if (buffer[:6] == V1_PREFIX[:len(buffer)] and len(buffer) < 6) or \
                (buffer[:_V2_BYTES] == V2_SIGNATURE[:len(buffer)] and len(buffer) < _V2_BYTES):
            self.buffer = buffer  # still ambiguous (at most 11 bytes): wait for more
            return
        self._hand_over(buffer, None, None, False, None)

    def _hand_over(self, rest: bytes, client: Any, server: Any, unix: bool | None,
                   scheme: str | None) -> None:
        self.done = True
        self.state.connections.discard(self)
        inner = self.make_inner()
        transport = self.transport
        transport.set_protocol(inner)
        inner.proxied_connection_made(transport, client, server, unix, scheme)
        if rest and not transport.is_closing():
            inner.data_received(rest)

    def _refuse(self, why: str | None) -> None:
        self.done = True
        if why is not None:
            logger.info("Connection from %s closed: %s", _describe(self.peer), why)
        self.transport.abort()  # a proxy expects no HTTP answer; drop what it sent


def _client_used_tls(tlvs: Any) -> bool:
    """PP2_TYPE_SSL (0x20) with PP2_CLIENT_SSL set (proxy-protocol.txt §2.2.5): HAProxy's
    send-proxy-v2-ssl, AWS/GCP load balancers terminating TLS. The scheme the client used."""
    for kind, value in tlvs:
        if kind == 0x20 and value[:1] and value[0] & 0x01:
            return True
    return False


def peer_name(peer: tuple) -> str:
    """host:port for a log line, an IPv6 host in brackets (server/tls.py's lines too)."""
    host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
    return f"{host}:{peer[1]}"


def _describe(peer: Any) -> str:
    return peer_name(peer) if isinstance(peer, tuple) and peer else "a Unix socket peer"
