"""The ASGI lifespan protocol: startup, shutdown, and the state dict shared with requests.

``auto`` tolerates apps that do not implement lifespan (they raise, answer the startup
event with a non-lifespan message, or return); an app that took the startup event and then
exited (``sys.exit("database unreachable")``) failed its startup.
``on`` treats every one of those as a startup failure. A failed startup stops the worker with
the app's message and a non-zero exit status (chosen by cli.py, not here).

Waiting is said out loud, as uvicorn does ("Waiting for application startup."), and a
startup or shutdown still running after ``WAIT_LOG_INTERVAL`` seconds is reported again
every interval at warning level, so a deploy stuck on a database connection shows why no
"Listening on" line appears.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

__all__ = ["Lifespan", "LifespanFailure"]

logger = logging.getLogger("gannet.error")

# The lifespan sub-specification's version (its messages have not changed since 2.0).
LIFESPAN_SPEC_VERSION = "2.0"

# Seconds between "still waiting" warnings during a slow startup or shutdown.
WAIT_LOG_INTERVAL = 5.0


class LifespanFailure(Exception):
    """Startup or shutdown failed; ``str()`` is the app's message."""


class Lifespan:
    def __init__(self, app: Callable, mode: str, state: dict[str, Any]) -> None:
        self.app = app
        self.mode = mode
        self.state = state
        self.unsupported = False
        self._events: asyncio.Queue[dict] = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._failure: str | None = None
        self._task: asyncio.Task | None = None
        self._crashed = False
        self._cancelling = False
        # Whether the app took the startup event, and whether it sent something that is
        # not a lifespan message: together they tell a lifespan-aware app whose startup
        # failed (an error) from an app that knows nothing of lifespan (auto: carry on).
        self._took_startup = False
        self._foreign_message = False

    async def startup(self) -> None:
        if self.mode == "off":
            return
        # A fresh "asgi" dict: an app that mutates its scope changes nothing else.
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": LIFESPAN_SPEC_VERSION},
                 "state": self.state}
        self._task = asyncio.get_running_loop().create_task(self._run(scope))
        logger.info("Waiting for application startup.")
        await self._events.put({"type": "lifespan.startup"})
        await _wait_reporting(self._startup_done, "startup")
        if self._failure is not None:
            raise LifespanFailure(self._failure)
        if not self.unsupported:
            logger.info("Application startup complete.")

    async def shutdown(self) -> None:
        if self.mode == "off" or self.unsupported or self._task is None or self._crashed:
            return
        logger.info("Waiting for application shutdown.")
        await self._events.put({"type": "lifespan.shutdown"})
        await _wait_reporting(self._shutdown_done, "shutdown")
        if self._failure is not None:
            logger.error("Application shutdown failed: %s", self._failure)
        elif not self._crashed:
            logger.info("Application shutdown complete.")

    async def cancel(self) -> None:
        """Cancel a startup that has not finished (a stop was asked meanwhile) and wait for
        the app to unwind; the caller bounds the wait."""
        task = self._task
        if task is None or task.done():
            return
        self._cancelling = True
        task.cancel()
        await asyncio.wait({task})

    async def _run(self, scope: dict) -> None:
        try:
            await self.app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            self._crashed = True
            if not self._cancelling:
                raise
            logger.info("Lifespan startup cancelled")
        except BaseException as exc:  # noqa: BLE001
            # SystemExit and KeyboardInterrupt too: they are the app's failure, reported
            # like any other, never a way out of the server that skips its own exit status.
            self._crashed = True
            # Only an explicit exit after taking the startup event is a positive sign of
            # a lifespan-aware app that failed; anything else may be an app that knows
            # nothing of lifespan (it read the event as a request), as uvicorn assumes.
            unaware = not self._took_startup or self._foreign_message \
                or not isinstance(exc, SystemExit)
            if not self._startup_done.is_set() and self.mode == "auto" and unaware:
                self.unsupported = True
                logger.info("ASGI 'lifespan' protocol appears unsupported (%s: %s); continuing",
                            type(exc).__name__, exc)
            elif not self._startup_done.is_set():
                self._failure = f"{type(exc).__name__}: {exc}"
                logger.error("Exception in 'lifespan' protocol", exc_info=exc)
            else:
                logger.error("Exception in 'lifespan' protocol", exc_info=exc)
        else:
            if not self._startup_done.is_set():
                if self.mode == "auto":
                    self.unsupported = True
                    logger.info("ASGI 'lifespan' protocol appears unsupported; continuing")
                else:
                    self._failure = "the app returned without completing lifespan startup"
        finally:
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> dict:
        event = await self._events.get()
        if event["type"] == "lifespan.startup":
            self._took_startup = True
        return event

    async def _send(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._startup_done.set()
        elif kind == "lifespan.startup.failed":
            self._failure = message.get("message") or "lifespan startup failed"
            self._startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            self._failure = message.get("message") or "lifespan shutdown failed"
            self._shutdown_done.set()
        else:
            self._foreign_message = True
            raise RuntimeError(f"unexpected lifespan message {kind!r}")


async def _wait_reporting(done: asyncio.Event, phase: str) -> None:
    """Wait for ``done``, warning every WAIT_LOG_INTERVAL seconds that the app's ``phase``
    is still running (the caller bounds the wait; cancelling it cancels this)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiter = loop.create_task(done.wait())
    try:
        while not waiter.done():
            finished, _ = await asyncio.wait({waiter}, timeout=WAIT_LOG_INTERVAL)
            if not finished:
                logger.warning("Still waiting for application %s (%.1f s so far)",
                               phase, loop.time() - started)
    finally:
        waiter.cancel()
