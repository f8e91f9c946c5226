"""TLS connections: the handshake, bounded and logged, then the protocol ALPN chose.

Every connection on a TLS listener starts with a ``TLSGate``. It runs the handshake with
the loop's own TLS transport (``loop.start_tls``: uvloop's is compiled, and every later
read and write goes through it, so the gate costs one task per connection and nothing per
request), bounded by ``--header-read-timeout``: a client that stalls in the handshake, or
never starts one, is closed then. A failed handshake is one debug line naming the peer
and OpenSSL's reason; a client that speaks plain HTTP to the TLS port gets an info line
saying so (OpenSSL recognises it), and the connection is closed: no bytes are sent back
in the clear.

Once the handshake is done the negotiated ALPN protocol picks the protocol object that
serves the connection (``protocol_for``): HTTP/1.1 today; HTTP/2 adds ``h2`` here and in
config/tls.py's ALPN list. Behind a PROXY header (server/proxy.py) the gate starts on
the bytes that followed the header and hands the named endpoints on.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any, Callable

from .proxy import peer_name

__all__ = ["TLSGate"]

logger = logging.getLogger("gannet.error")

# How long a closing connection waits for the client's close_notify (the loop's default
# is 30 s, for which a client that never answers would hold the connection).
SHUTDOWN_TIMEOUT = 5.0


class TLSGate(asyncio.Protocol):
    """One connection until its handshake is done; then ``make_inner(alpn)``'s."""

    def __init__(self, state: Any, make_inner: Callable[[str | None], Any],
                 context: ssl.SSLContext) -> None:
        self.state = state
        self.make_inner = make_inner
        self.context = context
        self.transport: Any = None
        self.task: asyncio.Task | None = None
        self.pending: list[bytes] = []  # decrypted bytes before the hand-over (rare)
        self.raw_rest = b""  # TLS bytes that came with a PROXY header, before the handshake
        self.handshaking = False
        self.started = 0.0
        self.done = False
        self.lost = False  # connection_lost came (before start_tls took the transport)
        self.peer = "?"  # "host:port" for log lines
        # A PROXY header's endpoints (proxied_connection_made), handed on to the inner.
        self.proxied: tuple | None = None

    # ------------------------------------------------------------------ transport events
    def connection_made(self, transport: Any) -> None:
        if self.transport is not None:
            return  # start_tls calls this again with the TLS transport: nothing to do
        self.transport = transport
        self.peer = _peer(transport)  # now: a reset socket may no longer say who it was
        self.started = self.state.loop.time()
        self.state.connections.add(self)
        self.task = self.state.loop.create_task(self._handshake(), name="gannet-tls")

    def proxied_connection_made(self, transport: Any, client: Any, server: Any,
                                unix: bool = False, scheme: str | None = None) -> None:
        """Behind a PROXY header (server/proxy.py): the handshake starts now, and the
        endpoints the header named go to the protocol that serves the connection."""
        self.proxied = (client, server, unix)
        self.connection_made(transport)
        if isinstance(client, tuple) and client:  # log lines name the client, as h1's do
            self.peer = f"{peer_name(client)} (via {self.peer})"

    def data_received(self, data: bytes) -> None:
        if not self.handshaking or self.transport.get_protocol() is self:
            # From the socket itself, before start_tls has taken it over: TLS bytes (read
            # with the accept or with a PROXY header, or the next segment arriving while
            # start_tls is starting), fed to the TLS layer once it is there.
            self.raw_rest += data
            return
        # From the TLS layer, between the end of the handshake and the hand-over:
        # decrypted bytes, kept for the inner protocol.
        self.pending.append(data)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        # During the handshake the TLS layer reports the loss to start_tls too, which
        # then raises in _handshake, and _failed says why: leave the task to it.
        self.lost = True
        self.done = True
        self.state.connections.discard(self)

    # ------------------------------------------------------------------ the server's calls
    def check_timeouts(self, now: float) -> None:
        """The loop's handshake timeout closes a stalled handshake; this is the backstop."""
        if not self.done and now - self.started > self.state.header_read_timeout + 1.0:
            logger.debug("%s - TLS handshake not done within %gs; closing",
                         self.peer, self.state.header_read_timeout)
            self.force_close()

    def shutdown(self) -> None:
        self.force_close()  # nothing was asked of the app yet

    def force_close(self) -> None:
        self.done = True
        self.state.connections.discard(self)
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.transport is not None:
            self.transport.abort()

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    # ------------------------------------------------------------------ the handshake
    async def _handshake(self) -> None:
        state = self.state
        raw = self.transport
        if self.done or raw.is_closing():
            # Closed before this task ran (a port check, a reset): no TLS layer for it. The
            # loop's start_tls on a closed socket would still build one, and its handshake
            # timer would keep it (and its OpenSSL state) for --header-read-timeout.
            if self.lost or raw.is_closing():
                logger.debug("%s - TLS handshake failed: closed by the client before it "
                             "began", self.peer)
            return
        self.handshaking = True
        try:
            starting = state.loop.start_tls(raw, self, self.context, server_side=True,
                                            ssl_handshake_timeout=state.header_read_timeout,
                                            ssl_shutdown_timeout=SHUTDOWN_TIMEOUT)
            if self.raw_rest:
                tls = await self._start_with(starting)
            else:
                tls = await starting
        except asyncio.CancelledError:
            raw.abort()
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the peer made OpenSSL say
            self._failed(exc)
            _unlink(exc)
            return
        if self.done or tls is None:
            if self.lost:  # lost while start_tls was starting (the loop still returned)
                logger.debug("%s - TLS handshake failed: closed by the client", self.peer)
            if tls is not None:
                tls.abort()
            return
        self.done = True
        state.connections.discard(self)
        ssl_object = tls.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        inner = self.make_inner(alpn)
        inner.raw = raw  # its buffer holds encrypted output too (h1's _close_transport)
        tls.set_protocol(inner)
        if self.proxied is not None:
            client, server, unix = self.proxied
            inner.proxied_connection_made(tls, client, server, unix, "https")
        else:
            inner.connection_made(tls)
        for data in self.pending:
            if tls.is_closing():
                break
            inner.data_received(data)
        self.pending = []

    async def _start_with(self, starting: Any) -> Any:
        """start_tls, with ``raw_rest`` (already read from the socket) fed to the TLS layer
        as if just received. start_tls switches the transport's protocol synchronously and
        schedules the TLS protocol's connection_made; two loop turns later that has run,
        and no new socket read has (reads happen after the ready callbacks): feed then.
        start_tls runs as its own task, one loop turn from now: until then the socket
        would deliver what it reads to this gate, not to the TLS layer (the next segment
        of a ClientHello was taken for decrypted data and the handshake stalled; a reset
        left the TLS layer start_tls then built waiting for its handshake timer). So the
        socket stops reading now; start_tls resumes it once its TLS layer is in place."""
        loop = self.state.loop
        self.transport.pause_reading()
        task = asyncio.ensure_future(starting)
        loop.call_soon(loop.call_soon, self._feed_tls)
        return await task

    def _feed_tls(self) -> None:
        data, self.raw_rest = self.raw_rest, b""
        protocol = self.transport.get_protocol()
        if protocol is self or self.transport.is_closing():
            return  # start_tls did not take the socket (it failed), or it is gone
        if hasattr(protocol, "get_buffer"):  # a BufferedProtocol (uvloop's and asyncio's)
            view = memoryview(data)
            while view:
                buffer = protocol.get_buffer(len(view))
                size = min(len(buffer), len(view))
                buffer[:size] = view[:size]
                protocol.buffer_updated(size)
                view = view[size:]
        else:
            protocol.data_received(data)

    def _failed(self, exc: BaseException) -> None:
        self.done = True
        self.state.connections.discard(self)
        peer = self.peer
        reason = getattr(exc, "reason", None)
        if reason in ("HTTP_REQUEST", "HTTPS_PROXY_REQUEST"):
            logger.info("%s - plain HTTP sent to the TLS port; closed (use https://)", peer)
        elif isinstance(exc, TimeoutError) or (
                # the loop's handshake timeout (asyncio's and uvloop's sslproto) aborts with
                # ConnectionAbortedError("SSL handshake is taking longer than ...")
                isinstance(exc, ConnectionAbortedError) and "taking longer" in str(exc)):
            logger.debug("%s - TLS handshake not done within %gs (--header-read-timeout); "
                         "closed", peer, self.state.header_read_timeout)
        elif reason is None and isinstance(exc, (ConnectionError, EOFError)) and not str(exc):
            logger.debug("%s - TLS handshake failed: closed by the client", peer)
        else:
            logger.debug("%s - TLS handshake failed: %s", peer,
                         reason or str(exc) or type(exc).__name__)
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.abort()


def _unlink(exc: BaseException) -> None:
    """Drop the traceback (and chained exceptions) of a failed handshake's exception. The
    traceback holds the frames of start_tls and of _handshake, which hold the TLS
    protocol (with its OpenSSL state), its buffers, the gate and the exception itself: a
    reference cycle per failed handshake, freed only by the cyclic collector, and under
    a flood of them (promoted to the oldest generation while their handshakes ran) only
    at its rare full collections: RSS grew by some hundred MiB."""
    seen = 0
    while exc is not None and seen < 8:
        exc.__traceback__ = None
        exc, seen = (exc.__cause__ or exc.__context__), seen + 1


def _peer(transport: Any) -> str:
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple) and peer:
        return peer_name(peer)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if getattr(sock, "family", None) == socket.AF_UNIX:
        return "unix socket"
    # A TCP client that reset the connection before it was looked at has no name any more.
    return "a client that reset the connection"
