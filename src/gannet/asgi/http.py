"""One HTTP request's ASGI cycle: ``receive``, ``send``, extensions, and app errors.

Theory of operation. The wire protocol (``http/h1.py`` today, h2 later) parses a request,
builds the scope and creates an :class:`HTTPCycle`. It then pushes request-body events
into the cycle (``feed_body``, ``feed_end``, ``feed_disconnect``) and runs ``run(app)`` as a
task. The cycle checks the app's messages against the ASGI spec and calls back into the
protocol through a small interface (``Responder`` below) that knows how to frame bytes on
its wire. So the ASGI rules live here once, and framing lives in the protocol.

The response head is written lazily, with the first body message: a one-shot response
goes out in one write with its Content-Length known, and an app that fails between
``http.response.start`` and its first body can still get a clean 500.

This module is on the hot path of every request; it stays flat on purpose.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Protocol

from ..http.errors import ClientDisconnected

__all__ = ["HTTPCycle", "Responder", "ASGIMessageError", "ASGI_INFO", "EXTENSIONS"]

logger = logging.getLogger("gannet.error")

ASGI_INFO = {"version": "3.0", "spec_version": "2.4"}
EXTENSIONS: dict[str, dict[str, Any]] = {
    "http.response.trailers": {},
    "http.response.pathsend": {},
    "http.response.zerocopysend": {},
    "http.response.early_hint": {},
}

_DISCONNECT = {"type": "http.disconnect"}


class ASGIMessageError(RuntimeError):
    """The app sent a message the ASGI spec forbids at this point; already logged."""


class Responder(Protocol):
    """What a wire protocol offers a cycle. Every method is synchronous except sendfile."""

    write_paused: bool

    def send_response(self, cycle: "HTTPCycle", body: bytes) -> None: ...
    def send_head_and_body(self, cycle: "HTTPCycle", body: bytes, more_body: bool) -> None: ...
    def send_body(self, cycle: "HTTPCycle", body: bytes, more_body: bool) -> None: ...
    def send_trailers(self, cycle: "HTTPCycle", headers: list, more: bool) -> None: ...
    def send_early_hint(self, cycle: "HTTPCycle", headers: list) -> None: ...
    def send_continue(self, cycle: "HTTPCycle") -> None: ...
    def sendfile(self, cycle: "HTTPCycle", file: Any, offset: int, count: int | None,
                 more_body: bool) -> Awaitable[None]: ...
    def send_error(self, cycle: "HTTPCycle", status: int) -> None: ...
    def abort(self, cycle: "HTTPCycle") -> None: ...
    def resume_reading(self) -> None: ...
    def drain(self) -> Awaitable[None]: ...
    def cycle_done(self, cycle: "HTTPCycle") -> None: ...


class HTTPCycle:
    """One request's state. Every attribute is a slot set in ``__init__``: on Python 3.11 a
    class-level default read through an instance takes the slow generic lookup, and this
    object is read a few dozen times per request. The framing attributes at the end are
    owned by the wire protocol: one object per request instead of two."""

    __slots__ = (
        "scope", "conn", "loop", "body", "more_body", "expect_continue", "body_size",
        "delivered", "disconnected", "peer_gone", "body_done", "waiter", "started",
        "head_sent", "complete", "trailers_pending", "status", "headers", "task",
        "dispatched", "keep_alive", "http10", "chunked", "remaining", "no_body", "bytes_sent",
        "start_time",
    )
    # True for cycles whose app must not start before the request body is complete (WSGI).
    body_first = False
    # True for cycles that can take a known-length body into a buffer of their own
    # (``body_buffer``), received there without a copy per socket read (http/body_sink.py).
    takes_body_buffer = False

    def __init__(self, scope: dict, conn: Responder, loop: asyncio.AbstractEventLoop,
                 more_body: bool, expect_continue: bool) -> None:
        self.scope = scope
        self.conn = conn
        self.loop = loop
        self.body: list[bytes] = []
        self.more_body = more_body
        self.expect_continue = expect_continue
        self.body_size = 0
        self.delivered = False
        self.disconnected = False
        self.peer_gone = False  # the client half-closed after a complete request
        self.body_done = False  # the app's last body message has been sent
        self.waiter: asyncio.Future | None = None
        self.started = False
        self.head_sent = False
        self.complete = False
        self.trailers_pending: bool | int = False
        self.status = 0
        self.headers: tuple = ()
        self.task: asyncio.Task | None = None
        self.dispatched = False
        # framing, owned by the wire protocol
        self.keep_alive = True
        self.http10 = False  # an HTTP/1.0 request: a kept-alive response must say so
        self.chunked = False
        self.remaining: int | None = None
        self.no_body = False
        self.bytes_sent = 0
        self.start_time = 0.0

    # ------------------------------------------------------------ fed by the wire protocol
    def feed_body(self, data: bytes) -> None:
        self.body.append(data)
        self.body_size += len(data)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def feed_end(self) -> None:
        self.more_body = False
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def feed_eof(self) -> None:
        """The client sent EOF after a complete request: a long-poll app should hear that it
        went away, but a half-closing client can still read the response, so send works."""
        self.peer_gone = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def feed_disconnect(self) -> None:
        self.disconnected = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------ the app's callables
    async def receive(self) -> dict:
        if self.expect_continue:
            # RFC 9110 §10.1.1: the 100 goes out only once the app asks for the body.
            self.expect_continue = False
            if not self.head_sent and not self.disconnected:
                self.conn.send_continue(self)
        if not self.body and (self.more_body or self.delivered) \
                and not self.disconnected and not self.complete and not self.peer_gone:
            self.conn.resume_reading()
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.disconnected or self.complete or (self.peer_gone and self.delivered):
            return _DISCONNECT
        body = self.body
        if body:
            data = body[0] if len(body) == 1 else b"".join(body)
            self.body = []
            self.body_size = 0
        else:
            data = b""
        if not self.more_body:
            self.delivered = True
        else:
            self.conn.resume_reading()
        return {"type": "http.request", "body": data, "more_body": self.more_body}

    async def send(self, message: dict) -> None:
        if self.disconnected:
            raise ClientDisconnected("client disconnected")  # ASGI 2.4: an OSError subclass
        mtype = message["type"]
        if mtype == "http.response.body":
            if not self.started or self.body_done:
                self._protocol_error(message)
            more_body = message.get("more_body", False)
            if self.head_sent:
                self.conn.send_body(self, message.get("body", b""), more_body)
            elif more_body:
                self.conn.send_head_and_body(self, message.get("body", b""), True)
            else:
                self.conn.send_response(self, message.get("body", b""))
            if more_body:
                if self.conn.write_paused:
                    await self.conn.drain()
                return
            self.body_done = True  # the protocol has marked the response complete
            return
        if mtype == "http.response.start":
            if self.started:
                self._protocol_error(message)
            status = message["status"]
            if type(status) is not int or not 200 <= status <= 999:  # 1xx: not a final response
                self._protocol_error(message, f"invalid status {status!r}")
            self.status = status
            headers = message.get("headers", ())
            # A tuple from here on: hashable (h1 caches checked heads by content) and, for
            # an iterator, read once.
            self.headers = headers if type(headers) is tuple else tuple(headers)
            if message.get("trailers"):
                self.trailers_pending = True
            self.started = True
            return
        if mtype == "http.response.trailers":
            if not self.trailers_pending or not self.body_done:
                self._protocol_error(message)  # trailers come after the whole body
            if self.disconnected:
                raise ClientDisconnected("client disconnected")
            more = message.get("more_trailers", False)
            self.conn.send_trailers(self, list(message.get("headers", ())), more)
            if not more:
                self.trailers_pending = False
                self.complete = True
            return
        if mtype == "http.response.pathsend" or mtype == "http.response.zerocopysend":
            await self._send_file(message, mtype)
            return
        if mtype == "http.response.early_hint":
            if self.started:
                return  # too late to hint; the spec lets servers ignore it
            self.conn.send_early_hint(self, list(message.get("links", ())))
            return
        self._protocol_error(message, f"unknown message type {mtype!r}")

    async def _send_file(self, message: dict, mtype: str) -> None:
        if not self.started or self.body_done or (self.head_sent and mtype.endswith("pathsend")):
            self._protocol_error(message)
        if self.disconnected:
            raise ClientDisconnected("client disconnected")
        if mtype == "http.response.pathsend":
            path = message["path"]
            with open(path, "rb") as file:
                await self.conn.sendfile(self, file, 0, None, False)
            more_body = False
        else:
            more_body = message.get("more_body", False)
            await self.conn.sendfile(self, message["file"], message.get("offset"),
                                     message.get("count"), more_body)
        if not more_body:
            self.body_done = True
            if not self.trailers_pending:
                self.complete = True

    def _protocol_error(self, message: dict, why: str | None = None) -> None:
        reason = why or (
            f"unexpected ASGI message {message.get('type')!r} "
            f"(response {'complete' if self.complete else 'started' if self.started else 'not started'})"
        )
        logger.error("ASGI protocol error: %s; closing the connection", reason)
        self.conn.abort(self)
        raise ASGIMessageError(reason)

    # ------------------------------------------------------------ the task
    async def run(self, app: Callable) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            logger.debug("client went away before the response was sent")
        except ASGIMessageError:
            pass  # logged and aborted where it was detected
        except asyncio.CancelledError:
            if not self.complete:
                self.conn.abort(self)
        except BaseException as exc:  # noqa: BLE001 - the app's errors must not kill the worker
            logger.error("Exception in ASGI application", exc_info=exc)
            if self.head_sent or self.disconnected:
                self.conn.abort(self)
            elif not self.complete:
                self.conn.send_error(self, 500)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            if not self.complete and not self.disconnected:
                if not self.head_sent:
                    logger.error("ASGI app returned without %s the response",
                                 "completing" if self.started else "starting")
                    self.conn.send_error(self, 500)
                else:
                    logger.error("ASGI app returned without completing the response")
                    self.conn.abort(self)
        finally:
            self.conn.cycle_done(self)
