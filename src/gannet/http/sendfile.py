"""File bodies for http.response.pathsend / zerocopysend (and WSGI's file_wrapper).

On a plain TCP socket the file goes out with os.sendfile, zero-copy. The event loop owns
the socket's descriptor, so writability is awaited on a duplicate of it, and the
transport's own buffer is drained first so bytes stay in order. Over TLS, or for objects
without a descriptor, the file is read in blocks and written through the transport.
"""
from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from .errors import ClientDisconnected

if TYPE_CHECKING:
    from ..asgi.http import HTTPCycle
    from .h1 import H1Protocol
    from .h1_stream import H1Stream

__all__ = ["send_file"]

SENDFILE_BLOCK = 1024 * 1024


async def send_file(stream: "H1Stream", cycle: "HTTPCycle", file: Any, offset: int | None,
                    count: int | None, more_body: bool) -> None:
    """Send ``count`` bytes of ``file`` from ``offset`` as (part of) the response body.
    A client that goes away midway raises ClientDisconnected: the client's doing, not
    the app's error."""
    try:
        fileno = file.fileno()
    except (AttributeError, OSError):
        fileno = None
    if offset is None:
        offset = file.tell() if fileno is None else os.lseek(fileno, 0, os.SEEK_CUR)
    if count is None:
        if fileno is None:
            file.seek(0, os.SEEK_END)
            count = file.tell() - offset
            file.seek(offset)
        else:
            count = os.fstat(fileno).st_size - offset
    count = max(count, 0)
    if not cycle.head_sent:
        stream.send_head_and_body(cycle, b"", True, None if more_body else count)
    if stream.no_body or count == 0:
        stream.send_body(cycle, b"", more_body)
        return
    conn = stream.conn
    transport = stream.transport
    if stream.chunked:
        transport.write(b"%x\r\n" % count)
    elif stream.remaining is not None:
        if count > stream.remaining:
            stream.abort(cycle, "file longer than the response's Content-Length")
            raise RuntimeError("file longer than the response's Content-Length")
        stream.remaining -= count
    sock = transport.get_extra_info("socket")
    conn.file_sending += 1  # the write-timeout sweep watches this transfer's progress
    try:
        if fileno is not None and sock is not None and transport.get_extra_info("sslcontext") is None:
            await _zero_copy(conn, sock.fileno(), fileno, offset, count)
        else:
            await _copy(conn, file, offset, count)
    except (ConnectionError, BrokenPipeError) as exc:
        raise ClientDisconnected(f"client went away during a file body: {exc}") from None
    finally:
        conn.file_sending -= 1
    if cycle.complete:
        return  # finished meanwhile (aborted, or the app completed it from another task)
    cycle.bytes_sent += count
    if stream.chunked:
        transport.write(b"\r\n")
    stream.send_body(cycle, b"", more_body)


async def _zero_copy(conn: "H1Protocol", sockfd: int, fileno: int, offset: int, count: int) -> None:
    # The event loop owns the socket's fd, so we wait for writability on a duplicate;
    # the transport's own buffer is drained first so bytes stay in order.
    await _flush(conn)
    dup = os.dup(sockfd)
    try:
        while count > 0:
            if conn.lost:
                raise ConnectionResetError("client disconnected")
            try:
                sent = os.sendfile(dup, fileno, offset, min(count, SENDFILE_BLOCK))
            except BlockingIOError:
                # The connection wakes this waiter too when it goes (connection_lost): a
                # client that never reads must not keep the duplicate, and so the socket,
                # open forever.
                waiter = conn.file_waiter = conn.loop.create_future()
                conn.loop.add_writer(dup, _set_done, waiter)
                try:
                    await waiter
                finally:
                    conn.file_waiter = None
                    conn.loop.remove_writer(dup)
                continue
            if sent == 0:
                raise RuntimeError("file ended before the declared length")
            offset += sent
            count -= sent
            conn.file_sent += sent
    finally:
        os.close(dup)

async def _copy(conn: "H1Protocol", file: Any, offset: int, count: int) -> None:
    file.seek(offset)
    while count > 0:
        block = file.read(min(count, 256 * 1024))
        if not block:
            raise RuntimeError("file ended before the declared length")
        count -= len(block)
        conn.file_sent += len(block)
        conn.transport.write(block)
        if conn.write_paused:
            await conn.drain()
        if conn.lost:
            raise ConnectionResetError("client disconnected")


async def _flush(conn: "H1Protocol") -> None:
    """Wait until the transport has written everything it buffered: with a high-water mark
    of 0 the transport itself pauses us while anything is left and resumes us at empty."""
    transport = conn.transport
    if not transport.get_write_buffer_size():
        return
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0)
    try:
        while transport.get_write_buffer_size() and not conn.lost:
            await conn.drain()
    finally:
        if not conn.lost:
            transport.set_write_buffer_limits(high=high, low=low)
    if conn.lost:
        raise ConnectionResetError("client disconnected")


def _set_done(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)
