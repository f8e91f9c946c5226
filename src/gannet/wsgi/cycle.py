"""A WSGI request as h1 sees it: an ``HTTPCycle`` that reads its whole body first.

Theory of operation. h1 creates one ``WSGICycle`` per request and feeds it the body on the
event loop. Because ``body_first`` is True, h1 hands the cycle to the thread pool
(``state.wsgi.submit``) only once the body is complete, so a slow uploader holds a
connection, never a thread. Bodies stay in memory while all the bodies this worker holds
together fit in ``--wsgi-body-buffer`` (a process-wide budget, so a thousand concurrent
uploads cannot each take a share of RAM); past it a body spools to an anonymous temporary
file. ``body_size`` (what h1 watches to
pause reading) stays 0, so h1 keeps reading at the client's pace and ``--limit-request-body``
(enforced by h1 with a 413) is the only bound on what a client may upload.
"""
from __future__ import annotations

import io
import tempfile
import threading
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


class _ChunksRaw(io.RawIOBase):
    """A body held as the list of blocks it arrived in, read without joining them."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.index = 0
        self.offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunks = self.chunks
        while self.index < len(chunks):
            chunk = chunks[self.index]
            available = len(chunk) - self.offset
            if available <= 0:
                self.index += 1
                self.offset = 0
                continue
            size = min(len(buffer), available)
            buffer[:size] = memoryview(chunk)[self.offset:self.offset + size]
            self.offset += size
            return size
        return 0

    def readall(self) -> bytes:
        rest = [memoryview(self.chunks[self.index])[self.offset:]] if self.index < len(self.chunks) else []
        rest += self.chunks[self.index + 1:]
        self.index = len(self.chunks)
        self.offset = 0
        return b"".join(rest)


class BodyBudget:
    """Bytes of request body a worker may hold in memory, shared by all its requests.
    Taken on the loop thread, given back by whichever thread finishes a request."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if size > self.left:
                return False
            self.left -= size
            return True

    def give(self, size: int) -> None:
        with self._lock:
            self.left += size


class WSGICycle(HTTPCycle):
    __slots__ = ("spool", "received", "held")
    body_first = True
    budget = BodyBudget(64 * 1024 * 1024)  # replaced per server by install_wsgi

    def __init__(self, scope: dict, conn: Any, loop: Any, more_body: bool,
                 expect_continue: bool) -> None:
        HTTPCycle.__init__(self, scope, conn, loop, more_body, expect_continue)
        self.spool: Any = None  # the temporary file once the budget ran out
        self.received = 0  # body bytes received so far
        self.held = 0  # of those, bytes counted against the in-memory budget

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
        spool = self.spool = tempfile.TemporaryFile(buffering=0)
        for chunk in self.body:
            spool.write(chunk)
        spool.write(data)
        self.body = []
        self._give_back()

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
        if len(body) == 1:
            return io.BytesIO(body[0])
        # Many reads off the socket: serve them in place rather than join a copy of them all.
        return io.BufferedReader(_ChunksRaw(body), 65536)

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
        self.body = []
        self._give_back()
