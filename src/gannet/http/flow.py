"""Write-side flow control shared by the wire protocols.

asyncio calls ``pause_writing`` when a transport's buffer passes its high-water mark and
``resume_writing`` when it drains; an app's ``send`` awaits ``drain()`` in between, so a
client that does not read makes the app wait instead of growing the buffer.
"""
from __future__ import annotations

import asyncio

__all__ = ["FlowControl"]


class FlowControl:
    """Mixin; the protocol sets ``loop``, ``write_paused = False``, ``drain_waiters = None``
    and ``lost = False`` (True once the connection is gone: waiting is then pointless)."""

    __slots__ = ()
    loop: asyncio.AbstractEventLoop
    write_paused: bool
    drain_waiters: list[asyncio.Future] | None
    lost: bool

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain()

    def _wake_drain(self) -> None:
        waiters = self.drain_waiters
        if waiters:
            self.drain_waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def drain(self) -> None:
        if not self.write_paused or self.lost:
            return
        waiter = self.loop.create_future()
        if self.drain_waiters is None:
            self.drain_waiters = []
        self.drain_waiters.append(waiter)
        await waiter
