"""One HTTP request's ASGI cycle: ``receive``, ``send``, extensions, and app errors.

Theory of operation. The wire protocol (``http/h1.py`` today, h2 later) parses a request,
builds the scope (``http/request.py``) and a per-stream responder (``http/h1_stream.py``
for HTTP/1.1), and creates an :class:`HTTPCycle` with both. It then pushes request-body
events into the cycle (``feed_body``, ``feed_end``, ``feed_disconnect``) and runs
``run(app)`` as a task. The cycle holds the ASGI state machine only: it checks the app's
messages against the spec and tells the stream what to send; how that goes on the wire
(framing, flow control, files) is the stream's business. So the ASGI rules live here
once, for every protocol.

The response head is written lazily, with the first body message: a one-shot response
goes out in one write with its Content-Length known, and an app that fails between
``http.response.start`` and its first body can still get a clean 500.

Once the response is complete, the cycle owns no wire any more: further messages are
ignored (the spec says so) and logged once as an app error, so a leftover task cannot
write into the next response on a kept-alive connection.

This module is on the hot path of every request; it stays flat on purpose.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Protocol

from ..http.errors import ClientDisconnected
from ..logging import log_safe

__all__ = ["HTTPCycle", "Responder", "ASGIMessageError", "NO_BODY"]

logger = logging.getLogger("gannet.error")

_DISCONNECT = {"type": "http.disconnect"}
NO_BODY: tuple = ()  # a cycle's body before (and between) any bytes arrive


class ASGIMessageError(RuntimeError):
    """The app sent a message the ASGI spec forbids at this point; already logged."""


class Responder(Protocol):
    """What a wire protocol's stream offers a cycle. Synchronous except sendfile/drain."""

    write_paused: bool
    keep_alive: bool

    def send_response(self, cycle: "HTTPCycle", body: bytes) -> None: ...
    def send_head_and_body(self, cycle: "HTTPCycle", body: bytes, more_body: bool) -> None: ...
    def send_body(self, cycle: "HTTPCycle", body: bytes, more_body: bool) -> None: ...
    def send_trailers(self, cycle: "HTTPCycle", headers: Any, more: bool) -> None: ...
    def send_early_hint(self, cycle: "HTTPCycle", links: Any) -> None: ...
    def send_continue(self, cycle: "HTTPCycle") -> None: ...
    def sendfile(self, cycle: "HTTPCycle", file: Any, offset: int | None, count: int | None,
                 more_body: bool) -> Awaitable[None]: ...
    def send_error(self, cycle: "HTTPCycle", status: int) -> None: ...
    def abort(self, cycle: "HTTPCycle", why: str = "") -> None: ...
    def resume_reading(self) -> None: ...
    def drain(self) -> Awaitable[None]: ...
    def cycle_done(self, cycle: "HTTPCycle") -> None: ...


class HTTPCycle:
    """One request's ASGI state. Every attribute is a slot set in ``__init__``: on Python
    3.11 a class-level default read through an instance takes the slow generic lookup, and
    this object is read a few dozen times per request. ``conn`` is the stream's responder."""

    __slots__ = (
        "scope", "conn", "loop", "body", "more_body", "expect_continue", "body_size",
        "delivered", "disconnected", "peer_gone", "body_done", "waiter", "started",
        "head_sent", "complete", "trailers_pending", "status", "headers", "task",
        "dispatched", "bytes_sent", "start_time", "late_logged", "aborted",
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
        self.waiter: asyncio.Future | None = None  # shared by every receive() waiting
        self.started = False
        self.head_sent = False
        self.complete = False  # the response is out (or aborted): the wire is not ours
        self.trailers_pending = False
        self.status = 0
        self.headers: tuple = ()
        self.task: asyncio.Task | None = None
        self.dispatched = False
        self.bytes_sent = 0
        self.start_time = 0.0
        self.late_logged = False
        self.aborted = False  # cut short (write timeout, an app error mid-body): send raises

    # ------------------------------------------------------------ fed by the wire protocol
    def feed_body(self, data: bytes) -> None:
        body = self.body
        if body:
            body.append(data)
        else:
            self.body = [data]  # h1 starts ASGI cycles with () (NO_BODY): no list per request
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
            # Every concurrent receive() waits on the same future, so each one sees the
            # next event (and http.disconnect): none loses its wake-up.
            waiter = self.waiter
            if waiter is None or waiter.done():
                waiter = self.waiter = self.loop.create_future()
            await waiter
            if self.waiter is waiter:
                self.waiter = None
        if self.disconnected or self.complete or (self.peer_gone and self.delivered):
            return _DISCONNECT
        body = self.body
        if body:
            data = body[0] if len(body) == 1 else b"".join(body)
            self.body = NO_BODY
            self.body_size = 0
        else:
            data = b""
        if not self.more_body:
            self.delivered = True
        else:
            self.conn.resume_reading()
        return {"type": "http.request", "body": data, "more_body": self.more_body}

    async def send(self, message: dict) -> None:
        if self.complete:
            if self.aborted:
                # The connection was cut under this response: ASGI 2.4 says send raises
                # an OSError, so a streaming app stops instead of producing for nobody.
                raise ClientDisconnected("the response was aborted")
            self._late(message)  # ignored: the response is over (ASGI spec)
            return
        if self.disconnected:
            raise ClientDisconnected("client disconnected")  # ASGI 2.4: an OSError subclass
        mtype = message["type"]
        if mtype == "http.response.body":
            if not self.started or self.body_done:
                self._protocol_error(message)
            more_body = message.get("more_body", False)
            try:  # free in 3.11 unless raised
                if self.head_sent:
                    self.conn.send_body(self, message.get("body", b""), more_body)
                elif more_body:
                    self.conn.send_head_and_body(self, message.get("body", b""), True)
                else:
                    self.conn.send_response(self, message.get("body", b""))
            except TypeError as exc:  # a str body, a header that is not bytes...
                self._protocol_error(message, f"http.response.body: {exc}")
            if more_body:
                if self.conn.write_paused:
                    await self.conn.drain()
                return
            self.body_done = True  # the stream has marked the response complete
            return
        if mtype == "http.response.start":
            if self.started:
                self._protocol_error(message)
            status = message["status"]
            if type(status) is not int or not 200 <= status <= 999:  # 1xx: not a final response
                self._protocol_error(message, f"invalid status {status!r}")
            self.status = status
            headers = message.get("headers", ())
            # A tuple from here on: hashable (responses are cached by content) and, for an
            # iterator, read once.
            self.headers = headers if type(headers) is tuple else tuple(headers)
            if message.get("trailers"):
                self.trailers_pending = True
            self.started = True
            return
        if mtype == "http.response.trailers":
            if not self.trailers_pending or not self.body_done:
                self._protocol_error(message)  # trailers come after the whole body
            more = message.get("more_trailers", False)
            self.conn.send_trailers(self, message.get("headers", ()), more)
            if not more:
                self.trailers_pending = False
            return
        if mtype == "http.response.pathsend" or mtype == "http.response.zerocopysend":
            await self._send_file(message, mtype)
            return
        if mtype == "http.response.early_hint":
            # The extension's window: after http.response.start, before the final body.
            # Gannet writes the head with the first body, so until then a 103 can still
            # precede it; outside the window the hint is ignored, as the spec allows.
            if self.started and not self.head_sent:
                self.conn.send_early_hint(self, message.get("links", ()))
            else:
                logger.debug("early hint outside its window (after http.response.start, "
                             "before the first body): ignored")
            return
        self._protocol_error(message, f"unknown message type {mtype!r}")

    async def _send_file(self, message: dict, mtype: str) -> None:
        if not self.started or self.body_done or (self.head_sent and mtype.endswith("pathsend")):
            self._protocol_error(message)
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

    def _late(self, message: Any) -> None:
        """A message after the response completed: the spec says it is ignored; it is
        still the app's mistake, so it is logged once per request."""
        if not self.late_logged and not self.disconnected:
            self.late_logged = True
            mtype = message.get("type") if isinstance(message, dict) else message
            logger.error("ASGI app error: %r sent after the response to %s %s was complete; "
                         "ignored", mtype, self.scope.get("method"), log_safe(self.scope.get("path", "")))

    def _protocol_error(self, message: dict, why: str | None = None) -> None:
        reason = why or (
            f"unexpected ASGI message {message.get('type')!r} "
            f"(response {'started' if self.started else 'not started'})"
        )
        logger.error("ASGI protocol error: %s", reason)
        raise ASGIMessageError(reason)

    # ------------------------------------------------------------ the task
    async def run(self, app: Callable) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if not self.complete:
                if self.disconnected:
                    logger.debug("request task cancelled after the client went away")
                else:
                    # Cancelled by the graceful drain, or the app cancelled itself: either
                    # way the client gets an answer if none had started.
                    logger.warning("request task for %s %s was cancelled before its response "
                                   "completed", self.scope.get("method"),
                                   log_safe(self.scope.get("path", "")))
                self._fail()
        except ClientDisconnected:
            logger.debug("client went away before the response was sent")
            self._fail()
        except ASGIMessageError:
            self._fail()  # logged where it was detected
        except BaseException as exc:  # noqa: BLE001 - the app's errors must not kill the worker
            # SystemExit and KeyboardInterrupt from a request are app errors too: the
            # worker answers 500 and serves on (as uvicorn and Gannet's WSGI mode do).
            if self.disconnected:
                # The client left and the app tripped over that (a closed stream, a
                # framework's own "client disconnected"): the client's doing, not a bug.
                logger.debug("ASGI app raised %r after the client went away", exc)
            else:
                logger.error("Exception in ASGI application", exc_info=exc)
            self._fail()
        else:
            if not self.complete and not self.disconnected:
                if not self.head_sent:
                    logger.error("ASGI app returned without %s the response",
                                 "completing" if self.started else "starting")
                else:
                    logger.error("ASGI app returned without completing the response")
                self._fail()
        finally:
            self.conn.cycle_done(self)

    def _fail(self) -> None:
        """The response cannot complete normally: a 500 if nothing went out, else abort."""
        if self.complete:
            return
        if self.head_sent or self.disconnected:
            self.conn.abort(self)
        else:
            try:
                self.conn.send_error(self, 500)
            except Exception:  # noqa: BLE001 - a stream that cannot even answer 500
                logger.exception("cannot send a 500")
                self.conn.abort(self)
