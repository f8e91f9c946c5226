"""WSGI (PEP 3333) apps behind the same HTTP core as ASGI apps.

``install_wsgi`` is called once by the server on the loop thread. It makes h1 create a
:class:`WSGICycle` per request (body read by the loop first, spooled to disk past
``--wsgi-body-buffer``) and hand complete requests to a :class:`WSGIRunner`: ``--threads``
workers fed through a C-level queue, posting their output back to the loop in batches
with per-client backpressure (``--wsgi-write-buffer``). See runner.py for the design and
the memory bound.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from .cycle import WSGICycle
from .environ import FileWrapper, InvalidResponse
from .runner import ClientGone, WSGIRunner

__all__ = ["install_wsgi", "WSGICycle", "WSGIRunner", "FileWrapper", "InvalidResponse",
           "ClientGone"]

logger = logging.getLogger("gannet.error")


def install_wsgi(state: Any, app: Callable, config: Any) -> WSGIRunner:
    """Serve ``app`` (a PEP 3333 callable) for every request of this worker."""
    cycle_class = type("WSGICycle", (WSGICycle,), {
        "__slots__": (), "body_buffer": config.wsgi_body_buffer})
    runner = WSGIRunner(state, app, config)
    state.wsgi = runner
    state.cycle_class = cycle_class
    if _refresh_resets_hooks(state):
        # ServerState.refresh_date (run by the server's once-a-second ticker) re-assigns
        # cycle_class and wsgi to their defaults, which would silently turn this worker
        # back into an ASGI server. Until state.py stops doing that, restore them after
        # each refresh.
        refresh = state.refresh_date

        def refresh_date(now: float | None = None) -> None:
            refresh(now)
            state.wsgi = runner
            state.cycle_class = cycle_class

        state.refresh_date = refresh_date
    logger.debug("WSGI: %d threads, body buffer %d bytes, write buffer %d bytes",
                 config.threads, config.wsgi_body_buffer, config.wsgi_write_buffer)
    return runner


def _refresh_resets_hooks(state: Any) -> bool:
    wsgi, cycle_class = state.wsgi, state.cycle_class
    try:
        state.refresh_date()
        return state.wsgi is not wsgi or state.cycle_class is not cycle_class
    finally:
        state.wsgi, state.cycle_class = wsgi, cycle_class
