"""The WebSocket handshake on HTTP/1.1 (RFC 6455 §4): a protocol operation of the wire.

Theory of operation. h1 parses a ``GET`` with ``Upgrade: websocket`` and calls
``state.ws_upgrade(h1conn, scope, trailing_bytes)``; ``upgrade`` here checks the request
(``ws.negotiate``) and ``--limit-concurrency`` and writes any refusal itself (400, 426,
503), then wraps the socket in an ``H1Handshake`` and hands it to ``start_app`` (the ASGI
layer's factory, with the request's scope and the offered subprotocols). The ``H1Handshake`` is the transport's protocol until the app answers,
and offers the wire-neutral operations of ``ws.WSStream``:
- ``accept``: the 101 (§4.2.2), then a ``WSConnection`` takes the transport over;
- ``refuse``: a plain refusal (403 for a close before accept, 500 for an app that failed);
- ``deny`` / ``deny_body``: the app's own HTTP response instead (the
  ``websocket.http.response`` extension), then the connection closes;
- ``drain`` / ``abort``.
HTTP/2 will offer the same operations on an extended CONNECT stream (RFC 8441), so the
ASGI cycle never touches a transport. This module knows nothing about ASGI.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from .headers import (CUSTOM_DEFAULTS, STATUS_LINES, defaults_without, fields_of, reason_phrase,
                      refusal, status_line)
from .ws import HandshakeError, Handshake, Handler, WSConnection, negotiate
from ..logging import request_clock

__all__ = ["upgrade", "H1Handshake"]

logger = logging.getLogger("gannet.error")


def upgrade(state: Any, settings: tuple, h1conn: Any, scope: dict, trailing: bytes,
            start_app: Callable[["H1Handshake", dict, list], None]) -> None:
    """Take over an HTTP/1.1 connection whose request asked for a WebSocket."""
    transport = h1conn.transport
    if transport is None or transport.is_closing():
        return
    try:
        handshake = negotiate(scope["headers"], scope["http_version"], settings[4])
        limit = state.limit_concurrency
        if limit is not None and state.active >= limit:
            raise HandshakeError(503, f"{state.active} requests in flight (--limit-concurrency)")
    except HandshakeError as exc:
        logger.info("refused WebSocket handshake from %s: %d %s",
                    _client(scope), exc.status, exc.reason)
        extra = b"".join(b"%b: %b\r\n" % pair for pair in exc.headers)
        if exc.status == 426:
            extra += b"upgrade: websocket\r\n"
        _write_plain(transport, state, exc.status, extra)
        if state.access_log:  # refused before the app: the line the app's answers get too
            state.access_logger.log_answer(scope, exc.status, len(reason_phrase(exc.status).encode()),
                                           request_clock())
        return
    stream = H1Handshake(state, transport, handshake, h1conn.client, trailing, settings)
    transport.set_protocol(stream)
    # h1 may have paused reading; until the app answers we read on, buffering what
    # arrives (bounded: see data_received) so a client that goes away is noticed.
    try:
        transport.resume_reading()
    except RuntimeError:  # pragma: no cover - already reading on some loops
        pass
    start_app(stream, scope, handshake.subprotocols)


def _write_plain(transport: Any, state: Any, status: int, extra: bytes = b"") -> None:
    """A short text response that ends the connection (refusals before any WebSocket):
    the same writer as h1's own refusals."""
    transport.write(refusal(status, state.default_headers, extra))
    transport.close()


class H1Handshake(asyncio.Protocol):
    """One handshake on HTTP/1.1, from the Upgrade request until the app's answer."""

    __slots__ = ("state", "loop", "transport", "handshake", "client", "pending", "settings",
                 "handler", "lost", "shutdown_asked", "drain_waiter", "head_sent", "chunked",
                 "remaining", "stall_since", "stall_size", "drained")

    def __init__(self, state: Any, transport: Any, handshake: Handshake, client: Any,
                 pending: bytes, settings: tuple) -> None:
        self.state = state
        self.loop = state.loop
        self.transport = transport
        self.handshake = handshake
        self.client = client
        self.pending = pending
        self.settings = settings
        self.handler: Handler = None  # type: ignore[assignment]  # set by the app's cycle
        self.lost = False
        self.shutdown_asked = False
        self.drain_waiter: asyncio.Future | None = None
        self.head_sent = False
        self.chunked = False
        self.remaining: int | None = None
        self.stall_since: float | None = None
        self.stall_size = 0  # the write buffer's size at the last sweep
        self.drained = False  # resume_writing since the last sweep: the client took bytes
        state.connections.add(self)

    # ------------------------------------------------------------ transport events
    def connection_made(self, transport: Any) -> None:  # pragma: no cover - set_protocol
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        # Frames sent before our 101: keep them for the WSConnection, but never more than
        # one message's worth (then stop reading until the app decides).
        self.pending += data
        if len(self.pending) > min(self.settings[0] + 14, 1 << 20):
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.state.connections.discard(self)
        self.pending = b""  # early frames for a WebSocket that will never open
        self.resume_writing()
        handler, self.handler = self.handler, None  # type: ignore[assignment]
        if handler is not None:
            handler.on_close(1006, "")

    def pause_writing(self) -> None:
        # Only a denial response is written before the 101; its streamed body waits here.
        self.drain_waiter = self.loop.create_future()

    def resume_writing(self) -> None:
        self.drained = True
        waiter, self.drain_waiter = self.drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------ the server's sweep
    def check_timeouts(self, now: float) -> None:
        # Before the 101 there is no WebSocket to ping; what can stall is a denial body
        # whose client does not read: the write timeout bounds it.
        # Progress: a drain since the last sweep, or a smaller buffer than then (not the
        # smallest ever seen: a steady but slow reader refills it between sweeps).
        drained, self.drained = self.drained, False
        if self.drain_waiter is None or self.lost:
            self.stall_since = None
            return
        size = self.transport.get_write_buffer_size()
        if self.stall_since is None or drained or size < self.stall_size:
            self.stall_since = now
        elif now - self.stall_since >= self.state.write_timeout:
            logger.info("WebSocket handshake from %s: the client accepted no data for %.0fs "
                        "(--write-timeout); closing", _peer(self.client), now - self.stall_since)
            self.transport.abort()
            return
        self.stall_size = size

    def shutdown(self) -> None:
        self.shutdown_asked = True  # the app is still deciding; a 101 will close at once

    def force_close(self) -> None:
        self.transport.abort()

    # ------------------------------------------------------------ the app's answer
    def accept(self, subprotocol: str | None, headers: list) -> WSConnection:
        state = self.state
        transport = self.transport
        settings = self.settings
        handshake = self.handshake
        head = handshake.response_head(subprotocol, headers, state.default_headers)
        conn = WSConnection(state, transport, self.handler, handshake.extensions,
                            settings[0], settings[2], settings[3], self.client)
        transport.write(head)
        state.connections.discard(self)
        transport.set_protocol(conn)
        pending = self.pending
        self._release()
        conn.start(pending)  # reads on unless those frames filled the app's queue
        if self.shutdown_asked or state.shutting_down:
            conn.shutdown()
        return conn

    def refuse(self, status: int) -> None:
        if self.head_sent:
            self.abort()  # too late for a status: the client must not take it as whole
            return
        self.head_sent = True
        if not self.lost:
            _write_plain(self.transport, self.state, status)
        self._release()

    def deny(self, status: int, headers: list, body: bytes = b"", more: bool = False) -> None:
        if self.head_sent:
            raise RuntimeError("the response has already started")
        # The one response-field normaliser (http/headers.py): names, values, hop-by-hop
        # fields left out (we frame the body and close after it).
        fields = tuple((bytes(name), bytes(value)) for name, value in headers)
        block, length, flags = fields_of(fields)
        if length is not None and length < 0:
            raise ValueError("invalid Content-Length in the denial response")
        parts = [STATUS_LINES.get(status) or status_line(status), block]
        if length is None:
            if more:
                self.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                parts.append(b"content-length: %d\r\n" % len(body))
        else:
            self.remaining = length
        parts.append(b"connection: close\r\n")
        parts.append(defaults_without(self.state.default_headers, fields)
                     if flags & CUSTOM_DEFAULTS else self.state.default_headers)
        parts.append(b"\r\n")
        self.head_sent = True
        self.transport.write(b"".join(parts))
        self.deny_body(body, more)

    def deny_body(self, body: bytes, more: bool) -> None:
        transport = self.transport
        if self.chunked:
            if body:
                transport.write(b"%x\r\n%b\r\n" % (len(body), body))
            if not more:
                transport.write(b"0\r\n\r\n")
        else:
            if self.remaining is not None:
                self.remaining -= len(body)
                if self.remaining < 0 or (not more and self.remaining):
                    transport.abort()
                    raise RuntimeError("response body does not match its Content-Length")
            if body:
                transport.write(body)
        if not more:
            transport.close()
            self._release()

    async def drain(self) -> None:
        waiter = self.drain_waiter
        if waiter is not None:
            await waiter

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self._release()

    def _release(self) -> None:
        """The stream has answered: forget the handshake, the bytes kept for the
        WebSocket and the handler (no cycle left between this and the ASGI side)."""
        self.handshake = None  # type: ignore[assignment]
        self.pending = b""
        self.handler = None  # type: ignore[assignment]


def _client(scope: dict) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


def _peer(client: Any) -> str:
    return f"{client[0]}:{client[1]}" if client else "unix socket"
