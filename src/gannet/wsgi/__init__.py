"""WSGI (PEP 3333) apps behind the same HTTP core as ASGI apps.

``install_wsgi`` is called once by the server on the loop thread. It makes h1 create a
:class:`WSGICycle` per request (body read by the loop first, in memory within the
worker-wide ``--wsgi-body-buffer`` budget, spooled to disk past it) and hand complete
requests to a :class:`WSGIRunner`: ``--threads``
workers fed through a C-level queue, posting their output back to the loop in batches
with per-client backpressure (``--wsgi-write-buffer``). See runner.py for the design and
the memory bound.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from .body import BodyBudget, BufferPool
from .cycle import WSGICycle
from .environ import FileWrapper, InvalidResponse
from .malloc import keep_freed_memory
from .runner import ClientGone, WSGIRunner

__all__ = ["install_wsgi", "WSGICycle", "WSGIRunner", "FileWrapper", "InvalidResponse",
           "ClientGone"]

logger = logging.getLogger("gannet.error")


def install_wsgi(state: Any, app: Callable, config: Any) -> WSGIRunner:
    """Serve ``app`` (a PEP 3333 callable) for every request of this worker."""
    cycle_class = type("WSGICycle", (WSGICycle,), {
        "__slots__": (), "budget": BodyBudget(config.wsgi_body_buffer),
        "pool": BufferPool(config.wsgi_body_buffer)})
    keep_freed_memory(2 * config.wsgi_body_buffer)
    runner = WSGIRunner(state, app, config)
    state.wsgi = runner
    state.cycle_class = cycle_class
    logger.debug("WSGI: %d threads, body memory budget %d bytes, write buffer %d bytes",
                 config.threads, config.wsgi_body_buffer, config.wsgi_write_buffer)
    return runner

