"""Say why new connections fail when the process runs out of file descriptors.

When accept(2) fails with EMFILE/ENFILE (or ENOBUFS/ENOMEM), neither event loop tells the
operator in words:

- asyncio (``selector_events._accept_connection``) passes the error to the loop's
  exception handler as "socket.accept() out of system resource", stops reading the
  listener and retries a second later; pending connections wait in the backlog.
- uvloop (libuv ``uv__server_io``) uses libuv's "EMFILE trick": it frees a reserved
  descriptor, accepts every pending connection and closes it at once, and reports
  nothing -- clients see a reset. Only when no descriptor is in reserve does the error
  reach uvloop, which closes the listener and calls the exception handler.

So the monitor does two things: a loop exception handler that recognises those errors,
and a probe from the once-a-second tick (open and close /dev/null) that notices when the
descriptor table is full even though no loop said so. Either way one warning per second
at most, naming the limit; the worker keeps serving the connections it has.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
from typing import Any

__all__ = ["DescriptorMonitor", "RESOURCE_ERRNOS"]

logger = logging.getLogger("gannet.error")

RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_INTERVAL = 1.0  # at most one warning per this many seconds


class DescriptorMonitor:
    def __init__(self, loop: asyncio.AbstractEventLoop, state: Any) -> None:
        self.loop = loop
        self.state = state
        self._previous: Any = None
        self._installed = False
        self._last_warning = float("-inf")
        self.warnings = 0

    def install(self) -> None:
        """Put our handler in front of the loop's (keeping whatever was there for the rest)."""
        self._previous = self.loop.get_exception_handler()
        self.loop.set_exception_handler(self._handle)
        self._installed = True

    def uninstall(self) -> None:
        if self._installed and self.loop.get_exception_handler() == self._handle:
            self.loop.set_exception_handler(self._previous)
        self._installed = False

    def probe(self) -> None:
        """Called by the tick: can this process still open a descriptor?"""
        try:
            fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in RESOURCE_ERRNOS:
                self.report(exc)
            return
        os.close(fd)

    def report(self, exc: OSError) -> None:
        now = self.loop.time()
        if now - self._last_warning < _INTERVAL:
            return
        self._last_warning = now
        self.warnings += 1
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
        logger.warning("Cannot accept new connections: %s (%s; open file limit %s, %d open "
                       "connections); new connections are refused or reset until some close. "
                       "Raise the limit (ulimit -n, LimitNOFILE=) or lower --limit-concurrency",
                       os.strerror(exc.errno) if exc.errno else exc,
                       errno.errorcode.get(exc.errno or 0, "?"), limit, len(self.state.connections))

    def _handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS:
            self.report(exc)
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
