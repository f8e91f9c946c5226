"""Errors that carry the response they deserve.

Protocol code raises these; the connection turns them into one error response (or a
WebSocket close code) and a log line, and the worker keeps serving everyone else. One
mapping, in one place, so every protocol refuses bad input the same way.
"""
from __future__ import annotations

__all__ = ["ProtocolError", "ClientDisconnected"]


class ProtocolError(Exception):
    """Malformed or refused input. ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ClientDisconnected(OSError):
    """Raised by ``send`` when the client has gone (ASGI spec 2.4: an OSError subclass)."""
