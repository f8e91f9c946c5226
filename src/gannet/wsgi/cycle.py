"""A WSGI request as h1 sees it: an ``HTTPCycle`` that reads its whole body first.

Theory of operation. h1 creates one ``WSGICycle`` per request and feeds it the body on the
event loop. Because ``body_first`` is True, h1 hands the cycle to the thread pool
(``state.wsgi.submit``) only once the body is complete, so a slow uploader holds a
connection, never a thread. Bodies stay in memory while all the bodies this worker holds
together fit in ``--wsgi-body-buffer`` (a process-wide budget, so a thousand concurrent
uploads cannot each take a share of RAM); past it a body spools to an anonymous temporary
file. A large Content-Length body that fits the budget gets one pooled buffer up front
(``body_buffer``), which the kernel fills directly (wsgi/body.py says why).
``body_size`` (what h1 watches to pause reading) stays 0, so h1 keeps reading at the
client's pace and ``--limit-request-body`` (enforced by h1 with a 413) is the only bound
on what a client may upload.
"""
from __future__ import annotations

import io
import logging
import tempfile
from typing import Any

from ..asgi.http import HTTPCycle
from .body import EMPTY_INPUT, BodyBudget, BufferInput, BufferPool, ChunksRaw

__all__ = ["WSGICycle"]

logger = logging.getLogger("gannet.error")


class WSGICycle(HTTPCycle):
    # writer: the _Response producing this request's answer, set by start_response.
    __slots__ = ("spool", "received", "held", "buffer", "reader", "writer")
    body_first = True
    takes_body_buffer = True
    budget = BodyBudget(64 * 1024 * 1024)  # both replaced per server by install_wsgi
    pool = BufferPool(64 * 1024 * 1024)

    def __init__(self, scope: dict, conn: Any, loop: Any, more_body: bool,
                 expect_continue: bool) -> None:
        HTTPCycle.__init__(self, scope, conn, loop, more_body, expect_continue)
        self.spool: Any = None  # the temporary file once the budget ran out
        self.received = 0  # body bytes received so far
        self.held = 0  # of those, bytes counted against the in-memory budget
        self.buffer: bytearray | None = None  # the whole body, when h1 filled one buffer
        self.reader: BufferInput | None = None

    # Called by h1 on the loop thread while the request body arrives.
    def feed_body(self, data: bytes) -> None:
        self.received += len(data)
        spool = self.spool
        if spool is not None:
            spool.write(data)
            return
        if self.budget.take(len(data)):
            self.held += len(data)
            self.body.append(data)
            return
        # Over budget: this body moves to disk. Unbuffered, because blocks from the socket
        # are large and each goes straight to the kernel without a Python-side copy.
        logger.debug("request body past the --wsgi-body-buffer budget: spooling it to a file")
        spool = self.spool = tempfile.TemporaryFile(buffering=0)
        for chunk in self.body:
            spool.write(chunk)
        spool.write(data)
        self.body = []
        self._give_back()

    def body_buffer(self, total: int) -> memoryview | None:
        """One buffer for the whole ``total``-byte body, holding what came so far; h1 has
        the kernel fill the returned rest of it (http/body_sink.py). None when the budget
        says no: the body then goes on arriving through ``feed_body``."""
        if self.spool is not None or not self.budget.take(total - self.held):
            return None
        self.held = total
        buffer = self.pool.take(total)
        view = memoryview(buffer)
        filled = 0
        for chunk in self.body:
            view[filled:filled + len(chunk)] = chunk
            filled += len(chunk)
        self.body = []
        self.buffer = buffer
        self.received = filled  # the rest is counted by feed_end: only a whole body is read
        return view[filled:total]

    def feed_end(self) -> None:
        self.more_body = False
        if self.buffer is not None:
            self.received = self.held  # the buffer is full: the whole Content-Length is in

    def feed_disconnect(self) -> None:
        if self.disconnected:
            return  # h1 reports a half-close and then the close
        self.disconnected = True
        if not self.dispatched:
            logger.debug("client went away after %d bytes of its request body",
                         getattr(self.conn, "body_received", self.received))
            self.release_body()  # no thread will ever read it

    # Called by the worker thread once it owns the cycle.
    def write(self, data: bytes) -> None:
        """The PEP 3333 write() callable start_response returns: bound to this request, so
        a thread that kept it cannot write into a later response of the same worker (the
        runner raises once this request's response is over)."""
        self.writer.write(self, data)

    def make_input(self) -> Any:
        spool = self.spool
        if spool is not None:
            spool.seek(0)
            return io.BufferedReader(spool, 65536)
        if self.buffer is not None:
            reader = self.reader = BufferInput(self.buffer, self.received)
            return reader
        body = self.body
        if not body:
            return EMPTY_INPUT
        if len(body) == 1:
            return io.BytesIO(body[0])
        # Many reads off the socket: serve them in place rather than join a copy of them all.
        return io.BufferedReader(ChunksRaw(body), 65536)

    def _give_back(self) -> None:
        if self.held:
            self.budget.give(self.held)
            self.held = 0

    def release_body(self) -> None:
        spool = self.spool
        if spool is not None:
            self.spool = None
            try:
                spool.close()
            except OSError:  # pragma: no cover - closing an anonymous temp file
                pass
        buffer = self.buffer
        if buffer is not None:
            self.buffer = None
            if self.reader is not None:
                self.reader.detach()  # an app that kept wsgi.input must not see the next body
                self.reader = None
            self.pool.give(buffer)
        self.body = []
        self._give_back()
