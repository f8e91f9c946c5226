"""One worker's serving life, given a loaded app and listening sockets.

Theory of operation: ``Worker.run()`` runs the app's lifespan startup, starts accepting,
then waits for a stop request; the stop drains (stop accepting, close idle connections,
let in-flight requests finish within the graceful timeout, then cancel and force-close),
and finally runs the lifespan shutdown. Every wait on that path is bounded: by the
graceful timeout, by a second interrupt (``force()``), or by a fixed second for work that
was already cancelled.

The tick runs once a second on the loop: it refreshes the cached Date header, sweeps
every connection for its timeouts (so requests never arm timers), checks that file
descriptors are not exhausted, and calls ``on_tick`` -- the hook a supervisor's heartbeat
uses: a worker whose loop is stuck stops ticking, and so stops beating.

The worker knows nothing of signals, app loading or exit statuses (``server.py`` and
``cli.py`` own those), so a supervisor can run it in a forked child as it is.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from ..asgi.lifespan import Lifespan
from ..config import Config
from .accept import protocol_factory
from ..logging import AccessLogger
from .fd_limit import DescriptorMonitor
from .listeners import Listener
from .state import ServerState

__all__ = ["Worker", "LoadedApp"]

logger = logging.getLogger("gannet.error")

# Work that was already cancelled or closed gets this long to finish (seconds).
CANCEL_GRACE = 1.0


class LoadedApp:
    """The app as the worker serves it: the ASGI callable, its interface, and the raw
    object (the WSGI callable, for WSGI apps)."""

    __slots__ = ("app", "interface", "raw")

    def __init__(self, app: Callable, interface: str, raw: Any = None) -> None:
        self.app = app
        self.interface = interface
        self.raw = raw


class ListenerLost(RuntimeError):
    """A listener stopped accepting while serving (uvloop closes one for good after an
    accept error it cannot handle, e.g. out of descriptors with none in reserve). The
    worker drains and stops, so the process exits 1 and a supervisor restarts it, rather
    than live on unreachable."""


class Worker:
    """Serve ``app`` on ``listeners`` until ``request_exit()``; see the module docstring.

    ``on_tick``: called on the loop once a second while serving (after the sweep); an
    exception it raises is logged and the ticking goes on. ``on_max_requests``: called
    instead of the graceful stop when --limit-max-requests is reached (a supervisor starts
    the replacement first). ``drain_idle_grace``: seconds during which the drain lets idle
    keep-alive connections send one more request (answered with ``Connection: close``)
    before closing them: with other workers still serving the port, a client whose next
    request crossed our close would otherwise see an error; 0 closes them at once.
    """

    def __init__(self, config: Config, app: LoadedApp, listeners: list[Listener], *,
                 on_tick: Callable[[], None] | None = None,
                 on_max_requests: Callable[[], None] | None = None,
                 drain_idle_grace: float = 0.0) -> None:
        self.config = config
        self.loaded = app
        self.listeners = listeners
        self.on_tick = on_tick
        self.on_max_requests = on_max_requests
        self.drain_idle_grace = drain_idle_grace
        self.state: ServerState | None = None
        self.lifespan: Lifespan | None = None
        self.started = False
        self.should_exit = False
        self.force_exit = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit_event: asyncio.Event | None = None
        self._force_event: asyncio.Event | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._ticker: asyncio.TimerHandle | None = None
        self._descriptors: DescriptorMonitor | None = None
        self.failure: str | None = None  # why serving ended abnormally (ListenerLost)
        self._urls: list[str] = []  # each server's address, as it was when it started

    # ------------------------------------------------------------------ control
    def request_exit(self) -> None:
        """Begin the graceful stop (call on the worker's loop)."""
        if not self.should_exit:
            logger.info("Shutting down")
        self.should_exit = True
        if self._exit_event is not None:
            self._exit_event.set()

    def force(self) -> None:
        """Cut every remaining wait short (a second interrupt); call on the loop."""
        self.force_exit = True
        self.request_exit()
        if self._force_event is not None:
            self._force_event.set()

    # ------------------------------------------------------------------ the life
    async def run(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._exit_event = asyncio.Event()
        self._force_event = asyncio.Event()
        if self.should_exit:
            self._exit_event.set()
        if self.force_exit:
            self._force_event.set()
        config = self.config
        loaded = self.loaded
        access = AccessLogger(config.access_log_format) if config.access_log else None
        state = self.state = ServerState(config, loaded.app, loop, access,
                                         self.on_max_requests or self._max_requests)
        if loaded.interface == "wsgi":
            from ..wsgi import install_wsgi  # imported lazily: ASGI workers never pay for it

            install_wsgi(state, loaded.raw, config)
        elif config.ws != "none":
            from ..asgi.websocket import install_websocket  # sets state.ws_upgrade

            install_websocket(state, config)
        self._descriptors = DescriptorMonitor(loop, state)
        self._descriptors.install()
        self.lifespan = Lifespan(loaded.app, "off" if loaded.interface == "wsgi" else config.lifespan,
                                 state.app_state)
        try:
            if await self._startup():
                try:
                    if not self.should_exit:
                        await self._listen()
                        self.started = True
                        self._tick()
                        await self._exit_event.wait()
                    await self._drain()
                finally:
                    if self._ticker is not None:
                        self._ticker.cancel()
                    await self._lifespan_shutdown()
        finally:
            self._descriptors.uninstall()
            if state.wsgi is not None:
                state.wsgi.close()

    async def _startup(self) -> bool:
        """Run the lifespan startup; False when a stop was asked before it finished.

        A stop during startup cancels it (the app has served nothing, so there is nothing
        to drain); the cancelled startup gets the graceful timeout to unwind."""
        if self.should_exit:
            return False
        loop = self._loop
        startup = loop.create_task(self.lifespan.startup())
        stop = loop.create_task(self._exit_event.wait())
        try:
            await asyncio.wait({startup, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if startup.done():
            startup.result()  # LifespanFailure propagates to the process part
            return True
        logger.warning("Stop requested during the application's lifespan startup; cancelling it")
        startup.cancel()
        await self._bounded(self.lifespan.cancel(), self.config.timeout_graceful_shutdown,
                            "The cancelled lifespan startup did not finish; exiting without it")
        return False

    async def _lifespan_shutdown(self) -> None:
        """Bounded by the graceful timeout, and cut short by a second SIGINT."""
        await self._bounded(self.lifespan.shutdown(), self.config.timeout_graceful_shutdown,
                            "Lifespan shutdown did not finish; exiting without it")

    async def _bounded(self, coro: Any, timeout: float, message: str) -> None:
        loop = self._loop
        work = loop.create_task(coro)
        forced = loop.create_task(self._force_event.wait())
        done, pending = await asyncio.wait({work, forced}, timeout=timeout,
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if work not in done:
            logger.warning(message)
        elif work.exception() is not None:
            logger.error("Lifespan error", exc_info=work.exception())

    async def _listen(self) -> None:
        loop = self._loop
        state = self.state

        for listener in self.listeners:
            factory = protocol_factory(state, listener)
            server = await loop.create_server(factory, sock=listener.sock, backlog=self.config.backlog)
            url = listener.url  # read now: a listener the loop closes has no address
            self._servers.append(server)
            self._urls.append(url)
            logger.info("Listening on %s (Press CTRL+C to quit)", url)

    def _max_requests(self) -> None:
        logger.warning("Maximum request limit of %s reached; shutting down",
                       self.config.limit_max_requests)
        self.request_exit()

    # ------------------------------------------------------------------ the tick
    def _tick(self) -> None:
        loop = self._loop
        now_wall = time.time()
        # Re-arm first, at the next wall-clock second (so the Date header changes on the
        # second): an error below must never stop the sweep for good.
        self._ticker = loop.call_later(1.0 - (now_wall % 1.0) + 0.001, self._tick)
        state = self.state
        state.refresh_date(now_wall)
        now = loop.time()
        for conn in list(state.connections):
            try:
                conn.check_timeouts(now)
            except Exception:  # noqa: BLE001 - a bug in one connection spares the others
                logger.exception("Error while checking a connection's timeouts")
        self._descriptors.probe()
        if not self.should_exit:
            for server, url in zip(self._servers, self._urls):
                if not server.is_serving():
                    self.failure = f"the listener on {url} stopped accepting connections"
                    logger.error("%s (the event loop closed it after an accept error); stopping "
                                 "so that the worker can be restarted", self.failure)
                    self.request_exit()
                    break
        if self.on_tick is not None:
            try:
                self.on_tick()
            except Exception:  # noqa: BLE001
                logger.exception("Error in the on_tick hook")

    # ------------------------------------------------------------------ the drain
    async def _drain(self) -> None:
        state = self.state
        loop = self._loop
        for server in self._servers:
            server.close()
        state.shutting_down = True
        grace = self.config.timeout_graceful_shutdown
        deadline = loop.time() + grace
        if self.drain_idle_grace > 0:
            await self._soft_drain(min(self.drain_idle_grace, grace))
        for conn in list(state.connections):
            conn.shutdown()
        while (state.active or state.tasks or state.connections) and not self.force_exit:
            for conn in list(state.connections):
                # TLS: our close_notify is out; the client's is not worth waiting for.
                waiting = getattr(conn, "awaiting_close_notify", None)
                if waiting is not None and waiting():
                    conn.force_close()
            if loop.time() >= deadline:
                logger.warning("Graceful shutdown timed out after %.1fs: cancelling %d request(s)",
                               grace, state.active + len(state.tasks))
                break
            await asyncio.sleep(0.05)
        remaining = [*state.tasks, *_http_tasks()]
        for task in remaining:
            task.cancel()
        for conn in list(state.connections):
            conn.force_close()
        closing = [loop.create_task(server.wait_closed()) for server in self._servers]
        waits = [*remaining, *closing]
        if waits:
            # One bound for everything already cancelled or closed.
            await asyncio.wait(waits, timeout=CANCEL_GRACE)
        for task in closing:
            task.cancel()


    async def _soft_drain(self, idle_grace: float) -> None:
        """Every HTTP/1.1 connection answers its next request with ``Connection: close``
        and then closes; those still idle after ``idle_grace`` are closed by the drain."""
        from ..http.h1 import H1Protocol

        state = self.state
        for conn in list(state.connections):
            if isinstance(conn, H1Protocol):
                conn.closing = True  # the next response says close (h1's keep_alive rule)
        deadline = self._loop.time() + idle_grace
        while state.connections and self._loop.time() < deadline and not self.force_exit:
            await asyncio.sleep(0.05)


def _http_tasks() -> list[asyncio.Task]:
    """The running ASGI request tasks (h1 does not register them, to save a set operation
    per request; they are told apart by the coroutine they run)."""
    from ..asgi.http import HTTPCycle

    code = HTTPCycle.run.__code__
    return [task for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "cr_code", None) is code and not task.done()]
