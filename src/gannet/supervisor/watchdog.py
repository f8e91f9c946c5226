"""What a hung worker was doing: its in-flight requests and every thread's stack.

A worker is hung when its event loop stops ticking, so nothing here may need the loop.
Two mechanisms, because neither works alone:

- The watchdog thread blocks on the control pipe. On DUMP it walks the worker's
  connections (read-only, best effort: the loop that owns them is stuck) and logs each
  request in flight (at most MAX_LISTED), then every thread's stack (``faulthandler``
  into a scratch file, logged as one record). It needs the
  GIL, which a loop stuck in ``time.sleep``, a socket call, a lock or Python code gives up.
- ``faulthandler`` is also registered on SIGUSR2 (``kill -USR2 <worker>`` works by hand
  too). Its C handler needs no GIL, so when the loop is stuck in C code that holds the GIL
  and the thread cannot run, the master's SIGUSR2 still gets the stacks out.

The per-request hot path pays nothing: requests are not registered anywhere, the list is
built from ``state.connections`` only when asked.
"""
from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
from typing import Any, Callable

from ..logging import log_safe, request_clock
from .channel import DUMP, DUMPED, send

__all__ = ["DUMP_SIGNAL", "in_flight", "install_stack_dump", "start_watchdog"]

logger = logging.getLogger("gannet.error")

DUMP_SIGNAL = signal.SIGUSR2
MAX_LISTED = 50  # requests in flight listed by name in a hung worker's record


def install_stack_dump() -> None:
    """SIGUSR2 writes every thread's Python stack to stderr from C (no GIL, no loop)."""
    faulthandler.register(DUMP_SIGNAL, file=sys.stderr, all_threads=True, chain=False)


def in_flight(state: Any) -> list[str]:
    """One line per request the worker is answering: method, path, client, seconds."""
    if state is None:
        return []
    now = request_clock()
    lines = []
    for conn in list(state.connections):
        client = getattr(conn, "client", None)
        peer = f"{client[0]}:{client[1]}" if client else "unix socket"
        seen: set[int] = set()
        for cycle in (getattr(conn, "cycle", None), getattr(conn, "parsing", None),
                      *(getattr(conn, "pipeline", None) or ())):
            scope = getattr(cycle, "scope", None)
            if cycle is None or id(cycle) in seen or not scope:
                continue
            seen.add(id(cycle))
            start = getattr(cycle, "start_time", 0.0)
            running = f"{now - start:.1f}s" if start else "?s"
            query = scope.get("query_string") or b""
            target = scope.get("path", "?") + ("?" + query.decode("latin-1") if query else "")
            method = scope.get("method", scope.get("type", "?"))
            lines.append(f"{method} {log_safe(target)} from {peer}, "
                         f"running {running}")
    if len(lines) > MAX_LISTED:  # one record, however many connections: keep it readable
        lines[MAX_LISTED:] = [f"... and {len(lines) - MAX_LISTED} more"]
    return lines


def start_watchdog(control_fd: int, beat_fd: int, state: Callable[[], Any],
                   on_abort: Callable[[], None], on_master_gone: Callable[[], None]) -> None:
    """Serve DUMP requests from the master on a daemon thread; ``state()`` gives the
    worker's ServerState (None before it serves)."""

    def watch() -> None:
        while True:
            try:
                data = os.read(control_fd, 64)
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            except OSError:
                return
            if not data:
                on_master_gone()
                return
            if DUMP in data:
                dump(state(), on_abort)
                send(beat_fd, DUMPED)

    threading.Thread(target=watch, name="gannet-watchdog", daemon=True).start()


def dump(state: Any, on_abort: Callable[[], None]) -> None:
    on_abort()
    try:
        requests = in_flight(state)
    except Exception as exc:  # noqa: BLE001 - racing a stuck loop's data: best effort
        requests = [f"(could not list them: {type(exc).__name__}: {exc})"]
    pid = os.getpid()
    if requests:
        logger.error("Worker %d is hung; requests in flight:\n  %s", pid, "\n  ".join(requests))
    else:
        logger.error("Worker %d is hung; no request in flight", pid)
    # Through a scratch file into one record: it reaches the error log's handlers (a file,
    # --log-config) and is written at once, not line by line among other workers' lines.
    import tempfile

    with tempfile.TemporaryFile() as scratch:
        faulthandler.dump_traceback(file=scratch, all_threads=True)  # bounded by faulthandler
        scratch.seek(0)
        stacks = scratch.read().decode("utf-8", "replace").rstrip()
    logger.error("Worker %d: the stack of every thread follows\n%s", pid, stacks)
