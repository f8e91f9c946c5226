"""A WSGI request as h1 sees it: an ``HTTPCycle`` that reads its whole body first.

Theory of operation. h1 creates one ``WSGICycle`` per request and feeds it the body on the
event loop. Because ``body_first`` is True, h1 hands the cycle to the thread pool
(``state.wsgi.submit``) only once the body is complete, so a slow uploader holds a
connection, never a thread. Bodies up to ``--wsgi-body-buffer`` bytes stay in memory;
past that they spool to an anonymous temporary file. ``body_size`` (what h1 watches to
pause reading) stays 0, so h1 keeps reading at the client's pace and ``--limit-request-body``
(enforced by h1 with a 413) is the only bound on what a client may upload.
"""
from __future__ import annotations

import io
import tempfile
from typing import Any

from ..asgi.http import HTTPCycle

__all__ = ["WSGICycle", "EmptyInput"]


class EmptyInput:
    """``wsgi.input`` for requests without a body: stateless, so one object serves all."""

    __slots__ = ()

    def read(self, size: int | None = -1) -> bytes:
        return b""

    def readline(self, size: int | None = -1) -> bytes:
        return b""

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return []

    def __iter__(self) -> Any:
        return iter(())

    def close(self) -> None:
        pass


EMPTY_INPUT = EmptyInput()


class WSGICycle(HTTPCycle):
    __slots__ = ("spool", "received")
    body_first = True
    body_buffer = 1024 * 1024  # replaced per server by install_wsgi (--wsgi-body-buffer)

    def __init__(self, scope: dict, conn: Any, loop: Any, more_body: bool,
                 expect_continue: bool) -> None:
        HTTPCycle.__init__(self, scope, conn, loop, more_body, expect_continue)
        self.spool: Any = None  # the temporary file once the body outgrew body_buffer
        self.received = 0  # body bytes received so far

    # Called by h1 on the loop thread while the request body arrives.
    def feed_body(self, data: bytes) -> None:
        self.received += len(data)
        spool = self.spool
        if spool is not None:
            spool.write(data)
            return
        self.body.append(data)
        if self.received > self.body_buffer:
            # Unbuffered: blocks from the socket are large, so each goes straight to the
            # kernel without a copy through a Python-side buffer.
            spool = self.spool = tempfile.TemporaryFile(buffering=0)
            spool.write(b"".join(self.body))
            self.body = []

    def feed_end(self) -> None:
        self.more_body = False

    def feed_disconnect(self) -> None:
        self.disconnected = True
        if not self.dispatched:
            self.release_body()  # no thread will ever read it

    # Called by the worker thread once it owns the cycle.
    def make_input(self) -> Any:
        spool = self.spool
        if spool is not None:
            spool.seek(0)
            return io.BufferedReader(spool, 65536)
        body = self.body
        if not body:
            return EMPTY_INPUT
        return io.BytesIO(body[0] if len(body) == 1 else b"".join(body))

    def release_body(self) -> None:
        spool = self.spool
        if spool is not None:
            self.spool = None
            try:
                spool.close()
            except OSError:  # pragma: no cover - closing an anonymous temp file
                pass
        self.body = []
