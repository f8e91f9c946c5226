"""Where a WSGI request body lives between the socket and the app, and how ``wsgi.input``
reads it.

Three shapes, picked by h1 and :class:`~gannet.wsgi.cycle.WSGICycle` as the body arrives:
- a Content-Length body larger than h1's raw-body threshold, when the worker's memory
  budget allows, is received by the kernel straight into one buffer (``http/body_sink.py``)
  and read through :class:`BufferInput`;
- smaller or chunked bodies are the list of blocks they arrived in (:class:`ChunksRaw`);
- past the budget, a temporary file.
"""
from __future__ import annotations

import io
import threading
from typing import Any

__all__ = ["BodyBudget", "BufferPool", "BufferInput", "ChunksRaw", "EmptyInput", "EMPTY_INPUT"]


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


class BufferPool:
    """Body buffers kept for the next upload. A new ``bytearray`` of 10 MiB is zero-filled
    (and page-faulted in, when malloc had returned the memory to the kernel); a reused one
    costs nothing. At most ``keep`` idle bytes are kept; the oldest go first."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.kept = 0
        self.free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, size: int) -> bytearray:
        with self._lock:
            for index, buffer in enumerate(self.free):
                if size <= len(buffer) <= 2 * size:  # a much larger one would sit half idle
                    del self.free[index]
                    self.kept -= len(buffer)
                    return buffer
        return bytearray(size)

    def give(self, buffer: bytearray) -> None:
        size = len(buffer)
        if size > self.keep:
            return
        with self._lock:
            while self.free and self.kept + size > self.keep:
                self.kept -= len(self.free.pop(0))
            self.free.append(buffer)
            self.kept += size


class BufferInput:
    """``wsgi.input`` over a body held whole in one buffer. Each read copies out only what
    was asked for (PEP 3333 wants ``bytes``); nothing else is copied. ``detach`` empties it
    when the request ends, so an app that kept the stream can never read the next body the
    pooled buffer holds."""

    __slots__ = ("buffer", "view", "pos", "end")

    def __init__(self, buffer: bytearray, end: int) -> None:
        self.buffer = buffer
        self.view = memoryview(buffer)
        self.pos = 0
        self.end = end

    def _stop(self, size: int | None) -> int:
        """Where a read of ``size`` (None or negative: all) starting at ``pos`` ends."""
        if size is not None and 0 <= size < self.end - self.pos:
            return self.pos + size
        return self.end

    def read(self, size: int | None = -1) -> bytes:
        pos = self.pos
        stop = self.pos = self._stop(size)
        return self.view[pos:stop].tobytes()

    def readline(self, size: int | None = -1) -> bytes:
        pos = self.pos
        stop = self._stop(size)
        newline = self.buffer.find(b"\n", pos, stop)
        if newline >= 0:
            stop = newline + 1
        self.pos = stop
        return self.view[pos:stop].tobytes()

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> "BufferInput":
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self) -> None:
        pass

    def detach(self) -> None:
        self.view.release()
        self.buffer = bytearray()
        self.view = memoryview(self.buffer)
        self.pos = self.end = 0


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


class ChunksRaw(io.RawIOBase):
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
        rest: list[bytes | memoryview] = \
            [memoryview(self.chunks[self.index])[self.offset:]] if self.index < len(self.chunks) else []
        rest += self.chunks[self.index + 1:]
        self.index = len(self.chunks)
        self.offset = 0
        return b"".join(rest)
