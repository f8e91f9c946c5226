"""A known-length request body received straight into a buffer its cycle provides.

A plain ``asyncio.Protocol`` gets each socket read as a new ``bytes``: the loop reads into
its own buffer and copies out. For a body the server holds anyway (WSGI reads it before
the app runs), that copy is pure cost: profiling wsgi-upload-10m showed user-space memmove
at twice the kernel's own copy. While such a body arrives, the connection's transport is
switched to this ``BufferedProtocol``, the kernel writes into the final buffer, and the
transport goes back to the h1 protocol the moment the last byte is in. It asks for no more
than the body's remaining length, so nothing past the body is ever read into it.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .h1 import H1Protocol

__all__ = ["BodySink"]


class BodySink(asyncio.BufferedProtocol):
    __slots__ = ("conn", "view", "filled")

    def __init__(self, conn: "H1Protocol", view: memoryview) -> None:
        self.conn = conn
        self.view = view
        self.filled = 0

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view[self.filled:]

    def buffer_updated(self, nbytes: int) -> None:
        self.filled += nbytes
        conn = self.conn
        conn.body_received += nbytes
        conn.body_progress = conn.loop.time()
        if self.filled >= len(self.view):
            self.view = memoryview(b"")  # release the export before the buffer moves on
            conn.body_sink_done()

    # Everything else is the connection's business.
    def eof_received(self) -> bool | None:
        return self.conn.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.view = memoryview(b"")
        self.conn.connection_lost(exc)

    def pause_writing(self) -> None:
        self.conn.pause_writing()

    def resume_writing(self) -> None:
        self.conn.resume_writing()

    def connection_made(self, transport: Any) -> None:  # pragma: no cover - never the first
        raise RuntimeError("BodySink only takes over an established connection")
