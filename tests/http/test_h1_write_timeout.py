"""The write-timeout clock of h1's once-a-second sweep, without sockets: only the client
taking bytes is progress; our own writes growing the buffer are not (review finding: an
app trickling heartbeats below the high-water mark to a client that reads nothing reset
the clock for ever)."""
from __future__ import annotations

import asyncio

from gannet.config import Config
from gannet.http.h1 import H1Protocol
from gannet.server.state import ServerState


class _Transport:
    def __init__(self) -> None:
        self.pending = 0
        self.aborted = False

    def get_extra_info(self, name):
        return {"peername": ("127.0.0.1", 5), "sockname": ("127.0.0.1", 80)}.get(name)

    def get_write_buffer_size(self) -> int:
        return self.pending

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.aborted


def _conn(loop) -> tuple[H1Protocol, _Transport]:
    async def app(scope, receive, send):  # never called
        raise AssertionError

    state = ServerState(Config(app="x:y", write_timeout=2.0, access_log=False), app, loop)
    conn = H1Protocol(state)
    transport = _Transport()
    conn.connection_made(transport)
    return conn, transport


def test_growing_buffer_is_not_progress():
    loop = asyncio.new_event_loop()
    try:
        conn, transport = _conn(loop)
        for second in range(6):
            transport.pending = 1000 * (second + 1)  # our heartbeats; the client reads nothing
            conn.check_timeouts(100.0 + second)
            if transport.aborted:
                break
        assert transport.aborted and second <= 4
    finally:
        loop.close()


def test_shrinking_buffer_is_progress():
    loop = asyncio.new_event_loop()
    try:
        conn, transport = _conn(loop)
        for second in range(8):
            transport.pending = 100_000 - 1000 * second  # the client takes a little each second
            conn.check_timeouts(100.0 + second)
        assert not transport.aborted
        for second in range(8, 12):  # then it stops reading
            conn.check_timeouts(100.0 + second)
        assert transport.aborted
    finally:
        loop.close()
