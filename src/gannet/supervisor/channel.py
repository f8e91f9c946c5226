"""The two pipes between the master and one worker, and the bytes they carry.

Worker -> master (``beat``): one byte per message, written non-blocking (a full pipe only
loses beats, never blocks the worker's loop):

    BEAT     the worker's loop ticked (once a second, from inside the loop, so a blocked
             loop stops beating and a busy thread elsewhere cannot beat for it); the first
             beat also means "accepting": it comes after the lifespan startup and listen
    RETIRE   --max-requests reached: start my replacement, then stop me
    DUMPED   the in-flight requests and the stacks are in the log (after DUMP)

Master -> worker (``control``): DUMP asks the worker's watchdog thread to log what it is
doing before the master kills it. End of file on it means the master is gone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["BEAT", "RETIRE", "DUMPED", "DUMP", "Channel", "send"]

BEAT = b"."
RETIRE = b"R"
DUMPED = b"d"
DUMP = b"D"


@dataclass
class Channel:
    """File descriptors of one worker's pipes; each side closes the ends it does not use."""

    beat_r: int
    beat_w: int
    control_r: int
    control_w: int

    @classmethod
    def open(cls) -> "Channel":
        beat_r, beat_w = os.pipe()
        control_r, control_w = os.pipe()
        for fd in (beat_r, beat_w, control_w):
            os.set_blocking(fd, False)
        return cls(beat_r, beat_w, control_r, control_w)

    def master_side(self) -> None:
        """In the master after the fork: keep the read end of beats, the write end of control."""
        _close(self.beat_w, self.control_r)
        self.beat_w = self.control_r = -1

    def worker_side(self) -> None:
        """In the worker after the fork: keep the write end of beats, the read end of control."""
        _close(self.beat_r, self.control_w)
        self.beat_r = self.control_w = -1

    def close(self) -> None:
        _close(self.beat_r, self.beat_w, self.control_r, self.control_w)
        self.beat_r = self.beat_w = self.control_r = self.control_w = -1


def send(fd: int, message: bytes) -> bool:
    """Write one message without blocking; False when it could not be written."""
    try:
        return os.write(fd, message) == len(message)
    except (BlockingIOError, BrokenPipeError, OSError):
        return False


def _close(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
