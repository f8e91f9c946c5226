"""One HTTP/1.1 exchange's response side: framing, flow control and file bodies.

Theory of operation. h1 makes one ``H1Stream`` per request and hands it to the ASGI (or
WSGI) cycle as its responder: the cycle says *what* to send (status, fields, body blocks,
trailers, a file), the stream decides *how* it goes on this wire — Content-Length,
chunked or close-delimited (decided once, when the head goes out), ``Connection``,
trailers only for a client that said ``TE: trailers`` (RFC 9110 §6.5.1), ``103`` hints
before the head, ``os.sendfile`` for files — and when the writer must wait (``drain``).
An HTTP/2 stream will offer the same methods over its own windows, so the cycles never
see a transport.

A cycle whose response is complete (or aborted) owns no wire any more: every method here
ignores it, so a leftover task's ``send`` can never write into the next response on the
same connection.

The one-message response (``send_response``) is the hot path: flat on purpose.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .headers import (APP_CHUNKED, APP_CLOSE, CUSTOM_DEFAULTS, STATUS_LINES, fields_of,
                      link_block, reason_phrase, status_line, trailer_block, without_length)
from .sendfile import send_file

if TYPE_CHECKING:
    from ..asgi.http import HTTPCycle

__all__ = ["H1Stream"]

logger = logging.getLogger("gannet.error")

_PLAIN_TEXT = ((b"content-type", b"text/plain; charset=utf-8"),)  # the server's own answers
_LAST_CHUNK = b"0\r\n\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _as_bytes(body: Any) -> bytes:
    """A bytes-like body (bytearray, memoryview) as bytes; anything else (a str) is the
    app's error."""
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    raise TypeError(f"response body must be bytes, got {type(body).__name__}")


class H1Stream:
    """One request's responder. h1 builds it on its hot path without an ``__init__``
    frame (H1Protocol.on_headers_complete), setting ``conn``, ``transport`` and the
    request's facts: ``keep_alive``; ``http10`` (a kept-alive response must say so);
    ``no_body`` (HEAD, or once the head is out 204/304); ``te_trailers`` (the client sent
    "TE: trailers"). ``chunked``, ``remaining`` and ``trailers`` (trailers follow the body
    on the wire) are set by ``_head``, before anything reads them. A stream whose request
    is over is reused by the connection's next request (see cycle_done)."""

    __slots__ = ("conn", "transport", "keep_alive", "http10", "no_body", "te_trailers",
                 "chunked", "remaining", "trailers")

    # ------------------------------------------------------------ flow control
    @property
    def write_paused(self) -> bool:
        return self.conn.write_paused

    @property
    def body_received(self) -> int:
        """Request body bytes taken off the wire so far (for a log line when it stops)."""
        return self.conn.body_received

    async def drain(self) -> None:
        await self.conn.drain()

    def resume_reading(self) -> None:
        self.conn.resume_reading()

    def cycle_done(self, cycle: "HTTPCycle") -> None:
        """The request's app has returned: one request fewer in flight."""
        conn = self.conn
        state = conn.state
        state.active -= 1
        if state.limit_max_requests is not None and state.total_requests >= state.limit_max_requests:
            state.max_requests_reached()
        if cycle.complete:
            if not cycle.aborted and state.wsgi is None and not conn.lost:
                conn.spare_stream = self  # reused by the connection's next request (ASGI only)
        else:
            # Only a request whose client left ends incomplete (the cycle answers or aborts
            # every other): it still gets its access line. The common path pays no check.
            conn.log_abandoned(cycle)

    # ------------------------------------------------------------ the response
    def send_response(self, cycle: "HTTPCycle", body: bytes) -> None:
        """A whole response in one ASGI message: the common case, built and written in one
        step; anything unusual (flags in the head, trailers, no body, a length that
        disagrees, close) takes send_head_and_body. Hot path: flat on purpose."""
        block, declared, flags = fields_of(cycle.headers)
        status = cycle.status
        size = len(body)
        conn = self.conn
        if flags or cycle.trailers_pending or self.no_body or status == 204 or status == 304 \
                or not self.keep_alive or conn.closing or self.http10 or size >= 65536 \
                or (declared is not None and declared != size):
            self.send_head_and_body(cycle, body, False)
            return
        line = STATUS_LINES.get(status) or status_line(status)
        if declared is None:
            self.transport.write(b"".join((line, block, b"content-length: %d\r\n" % size,
                                           conn.state.default_headers, b"\r\n", body)))
        else:
            self.transport.write(b"".join((line, block, conn.state.default_headers, b"\r\n", body)))
        cycle.head_sent = True
        cycle.bytes_sent = size
        conn.response_complete(cycle)

    def send_head_and_body(self, cycle: "HTTPCycle", body: bytes, more_body: bool,
                           length: int | None = None) -> None:
        if cycle.complete:
            return
        if body.__class__ is not bytes:
            body = _as_bytes(body)
        head = self._head(cycle, body, more_body, length)
        cycle.head_sent = True
        transport = self.transport
        if self.no_body:
            transport.write(head)
        elif self.chunked:
            if body:
                transport.write(b"%b%x\r\n%b\r\n" % (head, len(body), body))
            else:
                transport.write(head)
            if not more_body and not self.trailers:
                transport.write(_LAST_CHUNK)
        elif len(body) < 65536:
            transport.write(head + body)
        else:
            transport.write(head)
            transport.write(body)
        cycle.bytes_sent = 0 if self.no_body else len(body)
        if not more_body and not cycle.trailers_pending:
            self.conn.response_complete(cycle)

    def send_body(self, cycle: "HTTPCycle", body: bytes, more_body: bool) -> None:
        if cycle.complete:
            return
        if self.transport.is_closing():
            # A write failed (the client reset) and connection_lost waits behind an app that
            # never yields: stop here, or it streams on into a dead transport and its line
            # claims every byte. One C-level call per streamed block; one-shot bodies skip it.
            self.abort(cycle)
            return
        if body and not self.no_body:
            if body.__class__ is not bytes:
                body = _as_bytes(body)
            if self.chunked:
                self.transport.write(b"%x\r\n%b\r\n" % (len(body), body))
            else:
                remaining = self.remaining
                if remaining is not None:
                    remaining -= len(body)
                    if remaining < 0:
                        self.abort(cycle)
                        raise RuntimeError("response body longer than its Content-Length")
                    self.remaining = remaining
                self.transport.write(body)
            cycle.bytes_sent += len(body)
        if not more_body:
            if self.remaining and not self.no_body:
                self.abort(cycle)
                raise RuntimeError(f"response ended {self.remaining} bytes short of its Content-Length")
            if self.chunked and not self.trailers:
                self.transport.write(_LAST_CHUNK)
            if not cycle.trailers_pending:
                self.conn.response_complete(cycle)

    def send_trailers(self, cycle: "HTTPCycle", headers: Any, more: bool) -> None:
        if cycle.complete:
            return
        if self.trailers:
            parts = []
            if self.trailers is True:
                parts.append(b"0\r\n")
                self.trailers = 2  # the last chunk is out; fields follow
            parts.append(trailer_block(headers))
            if not more:
                parts.append(b"\r\n")
            self.transport.write(b"".join(parts))
        else:
            trailer_block(headers)  # still checked: a bad field is the app's error either way
        if not more:
            self.conn.response_complete(cycle)

    def send_early_hint(self, cycle: "HTTPCycle", links: Any) -> None:
        """A 103 (RFC 8297) before the head; HTTP/1.0 clients get none (RFC 9110 §15.2)."""
        block = link_block(links)
        if self.http10 or cycle.head_sent or cycle.complete or not block:
            return
        self.transport.write(b"HTTP/1.1 103 Early Hints\r\n%b\r\n" % block)

    def send_continue(self, cycle: "HTTPCycle") -> None:
        conn = self.conn
        if cycle is conn.cycle and not conn.dead:
            self.transport.write(_CONTINUE)

    async def sendfile(self, cycle: "HTTPCycle", file: Any, offset: int | None,
                       count: int | None, more_body: bool) -> None:
        """A file body; send_file credits it to ``bytes_sent`` once it is whole. Cut short
        (the client went away), the part the kernel took still counts in the access line;
        an abort meanwhile (--write-timeout) counts it itself (H1Protocol.abort_response)."""
        conn = self.conn
        conn.file_mark = conn.file_sent
        try:
            await send_file(self, cycle, file, offset, count, more_body)
        except BaseException:
            if not cycle.complete:
                cycle.bytes_sent += conn.file_sent - conn.file_mark
            raise

    def send_error(self, cycle: "HTTPCycle", status: int) -> None:
        conn = self.conn
        if cycle.complete or (conn.dead and self.transport.is_closing()):
            return
        self.keep_alive = self.keep_alive and not cycle.more_body
        cycle.status = status
        cycle.headers = _PLAIN_TEXT
        cycle.trailers_pending = False
        self.chunked = False
        self.trailers = False
        self.remaining = None
        self.send_head_and_body(cycle, reason_phrase(status).encode(), False)

    def abort(self, cycle: "HTTPCycle", why: str = "") -> None:
        """Cut the connection under a response that cannot be finished properly."""
        if cycle.complete:
            return
        cycle.complete = True
        cycle.aborted = True
        self.keep_alive = False
        self.conn.abort_response(cycle, why)

    # ------------------------------------------------------------ framing
    def _head(self, cycle: "HTTPCycle", body: bytes, more_body: bool, length: int | None) -> bytes:
        """The response head, deciding its framing (Content-Length, chunked or
        close-delimited) once. Called with the first body bytes, so a one-shot body gets its
        length. Raises ValueError/RuntimeError/TypeError for heads that must not go out."""
        headers = cycle.headers
        block, declared, flags = fields_of(headers)
        status = cycle.status
        line = STATUS_LINES.get(status) or status_line(status)
        framing = b""
        self.chunked = False
        self.remaining = None
        no_body = self.no_body or status == 204 or status == 304
        self.no_body = no_body
        # Trailers go out only to a client that asked for them (ASGI trailers extension,
        # RFC 9110 §6.5.1), and only in a chunked body; otherwise they are dropped.
        trailers = cycle.trailers_pending and self.te_trailers and not no_body and not self.http10
        if declared is not None:
            if declared < 0:
                raise ValueError("invalid Content-Length in the response head")
            if status == 204:
                block = without_length(headers)  # RFC 9110 §8.6: never on a 204
            elif not no_body:
                remaining = declared - len(body)
                if remaining < 0 or (remaining and not more_body):
                    raise RuntimeError(
                        f"response body of {len(body) if remaining < 0 else 'only ' + str(len(body))} "
                        f"bytes does not match Content-Length {declared}")
                self.remaining = remaining
                trailers = False  # a declared length leaves no room for trailers
        elif no_body:
            pass
        elif not more_body and not trailers:
            framing = b"content-length: %d\r\n" % len(body)
        elif length is not None and not trailers:
            framing = b"content-length: %d\r\n" % length
            self.remaining = length - len(body)
        elif not self.http10:
            self.chunked = True
            framing = b"transfer-encoding: chunked\r\n"
        else:
            self.keep_alive = False  # HTTP/1.0 without a length: the close delimits the body
        self.trailers = trailers
        conn = self.conn
        if flags & APP_CLOSE or conn.closing:
            self.keep_alive = False  # the app's Connection: close is a request to close
        elif flags & APP_CHUNKED and not self.chunked and declared is None and not no_body \
                and more_body:
            self.keep_alive = False
        if not self.keep_alive:
            framing += b"connection: close\r\n"
        elif self.http10:
            framing += b"connection: keep-alive\r\n"
        state = conn.state
        defaults = state.default_headers_without(headers) if flags & CUSTOM_DEFAULTS \
            else state.default_headers
        return b"".join((line, block, framing, defaults, b"\r\n"))
