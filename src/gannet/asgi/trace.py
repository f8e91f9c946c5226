"""ASGI messages at TRACE level: every scope, receive and send, for ``--log-level trace``.

What uvicorn's message logger shows, so a user debugging a framework can see what the app
was given and what it answered. Each call of the app (one HTTP request, one WebSocket,
the lifespan) gets a number, counted per worker, and every line carries it:

    ASGI [3] Started scope={'type': 'http', 'method': 'GET', 'headers': '<2 headers>', ...}
    ASGI [3] Receive {'type': 'http.request', 'body': '<0 bytes>', 'more_body': False}
    ASGI [3] Send {'type': 'http.response.start', 'status': 200, 'headers': '<1 headers>'}
    ASGI [3] Completed

Bodies and headers are abbreviated (``<N bytes>``, ``<N chars>``, ``<N headers>``): the
log shows the conversation, not the data, nor credentials carried in headers.

The app is wrapped only when the ``gannet.error.asgi`` logger is enabled for TRACE at
start-up (``install`` decides once), so a server not at trace level pays nothing.
"""
from __future__ import annotations

import itertools
import logging
from typing import Any, Callable

from ..logging import TRACE

__all__ = ["MessageTracer", "install", "abbreviate"]

logger = logging.getLogger("gannet.error.asgi")

# Message keys whose content is replaced by its size.
_SIZED = {"body": "<{} bytes>", "bytes": "<{} bytes>", "text": "<{} chars>",
          "headers": "<{} headers>", "state": "<{} keys>"}


def abbreviate(message: Any) -> Any:
    """A copy of an ASGI message (or scope) with bodies, headers and state as sizes."""
    if type(message) is not dict:
        return message
    shown = dict(message)
    for key, template in _SIZED.items():
        value = shown.get(key)
        if value is not None:
            try:
                shown[key] = template.format(len(value))
            except TypeError:  # not sized: the app sent something odd; show it as it is
                pass
    return shown


class MessageTracer:
    """Wraps an ASGI 3 app; logs each call's scope and messages on ``gannet.error.asgi``."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self._numbers = itertools.count(1)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> Any:
        number = next(self._numbers)
        logger.log(TRACE, "ASGI [%d] Started scope=%r", number, abbreviate(scope))

        async def traced_receive() -> Any:
            message = await receive()
            logger.log(TRACE, "ASGI [%d] Receive %r", number, abbreviate(message))
            return message

        async def traced_send(message: Any) -> None:
            logger.log(TRACE, "ASGI [%d] Send %r", number, abbreviate(message))
            await send(message)

        try:
            result = await self.app(scope, traced_receive, traced_send)
        except BaseException as exc:
            logger.log(TRACE, "ASGI [%d] Raised %s", number, type(exc).__name__)
            raise
        logger.log(TRACE, "ASGI [%d] Completed", number)
        return result


def install(loaded: Any) -> None:
    """Wrap ``loaded.app`` (server/worker.LoadedApp) in a MessageTracer when ASGI
    messages would be logged; WSGI apps have no ASGI messages to show."""
    if loaded.interface != "wsgi" and logger.isEnabledFor(TRACE):
        loaded.app = MessageTracer(loaded.app)
