"""One worker: load the app, run lifespan, listen, serve, and drain gracefully.

The ticker runs once a second: it refreshes the cached Date header and sweeps every
connection for header-read and keep-alive timeouts, so requests never arm timers.
Signals only set flags (``handle_exit``); the serve loop acts on them.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable

from ..asgi.lifespan import Lifespan
from ..config import Config
from ..http.h1 import H1Protocol
from ..loading import ASGI2Adapter, AppLoadError, detect_interface, load_app
from ..logging import AccessLogger
from .listeners import Listener, bind
from .state import ServerState

__all__ = ["Server", "run_loop"]

logger = logging.getLogger("gannet.error")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Server:
    """Embeddable server: ``await Server(config).serve()``; ``shutdown()`` to stop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.state: ServerState | None = None
        self.listeners: list[Listener] = []
        self.started = False
        self.should_exit = False
        self.force_exit = False
        self._exit_event: asyncio.Event | None = None
        self._force_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._ticker: asyncio.TimerHandle | None = None
        self.lifespan: Lifespan | None = None
        self._interface = "asgi3"
        self._raw_app: Any = None

    # ------------------------------------------------------------------ public API
    def shutdown(self) -> None:
        """Ask the server to stop gracefully; safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self.should_exit = True
            return
        if threading.current_thread() is threading.main_thread() and _loop_is_current(loop):
            self._request_exit()
        else:
            loop.call_soon_threadsafe(self._request_exit)

    @property
    def bound_urls(self) -> list[str]:
        return [listener.url for listener in self.listeners]

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._exit_event = asyncio.Event()
        self._force_event = asyncio.Event()
        if self.should_exit:
            self._exit_event.set()
        app = self._load_app()
        config = self.config
        access = AccessLogger(config.access_log_format) if config.access_log else None
        state = self.state = ServerState(config, app, loop, access, self._max_requests)
        if self._interface == "wsgi":
            from ..wsgi import install_wsgi  # imported lazily: ASGI workers never pay for it

            install_wsgi(state, self._raw_app, config)
        elif config.ws != "none":
            from ..asgi.websocket import install_websocket  # sets state.ws_upgrade

            install_websocket(state, config)
        # Bind first: a port in use fails fast, before the app's startup runs.
        self._bind(sockets)
        self._install_signal_handlers()
        try:
            self.lifespan = Lifespan(app, "off" if self._interface == "wsgi" else config.lifespan,
                                     state.app_state)
            await self.lifespan.startup()
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
            self._restore_signal_handlers()
            if state.wsgi is not None:
                state.wsgi.close()
            self._close_listeners()
        logger.info("Finished server process [%d]", os.getpid())

    # ------------------------------------------------------------------ start-up
    def _load_app(self) -> Callable:
        config = self.config
        app = load_app(config.app, factory=config.factory, app_dir=config.app_dir)
        interface = config.interface
        if interface == "auto":
            interface = detect_interface(app)
            logger.info("Detected the %s interface for %s", interface.upper(), _describe(config.app))
        self._interface = interface
        if interface == "asgi2":
            return ASGI2Adapter(app)
        self._raw_app = app
        if interface == "wsgi":
            return _no_asgi_app  # requests go to state.wsgi (see install_wsgi)
        return app

    async def _lifespan_shutdown(self) -> None:
        """Bounded by the graceful timeout, and cut short by a second SIGINT."""
        loop = asyncio.get_running_loop()
        shutdown = loop.create_task(self.lifespan.shutdown())
        forced = loop.create_task(self._force_event.wait())
        done, pending = await asyncio.wait({shutdown, forced}, timeout=self.config.timeout_graceful_shutdown,
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if shutdown not in done:
            logger.warning("Lifespan shutdown did not finish; exiting without it")

    def _bind(self, sockets: list[socket.socket] | None) -> None:
        if sockets is not None:
            self.listeners = [Listener(sock, "inherited", "fd") for sock in sockets]
            return
        for address in self.config.bind_addresses:
            self.listeners.append(bind(address, self.config.backlog))

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        state = self.state

        def factory() -> H1Protocol:
            return H1Protocol(state)

        for listener in self.listeners:
            server = await loop.create_server(factory, sock=listener.sock, backlog=self.config.backlog)
            self._servers.append(server)
            logger.info("Listening on %s (Press CTRL+C to quit)", listener.url)

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # embedded in a thread: the host program owns signals
        loop = asyncio.get_running_loop()
        try:
            for sig in HANDLED_SIGNALS:
                loop.add_signal_handler(sig, self.handle_exit, sig)
        except NotImplementedError:  # pragma: no cover - Windows
            for sig in HANDLED_SIGNALS:
                signal.signal(sig, lambda s, f: loop.call_soon_threadsafe(self.handle_exit, s))

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread() or self._loop is None:
            return
        for sig in HANDLED_SIGNALS:
            try:
                self._loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover
                pass

    def handle_exit(self, sig: int) -> None:
        """Signal handler: only records what was asked; the serve loop acts on it."""
        if self.should_exit and sig == signal.SIGINT:
            logger.warning("Second interrupt: forcing exit")
            self.force_exit = True
            if self._force_event is not None:
                self._force_event.set()
        self._request_exit()

    def _request_exit(self) -> None:
        if not self.should_exit:
            logger.info("Shutting down")
        self.should_exit = True
        if self._exit_event is not None:
            self._exit_event.set()

    def _max_requests(self) -> None:
        logger.warning("Maximum request limit of %s reached; shutting down",
                       self.config.limit_max_requests)
        self._request_exit()

    # ------------------------------------------------------------------ the ticker
    def _tick(self) -> None:
        state = self.state
        now_wall = time.time()
        state.refresh_date(now_wall)
        now = self._loop.time()
        for conn in list(state.connections):
            conn.check_timeouts(now)
        # Re-arm at the next wall-clock second so the Date header changes on the second.
        self._ticker = self._loop.call_later(1.0 - (now_wall % 1.0) + 0.001, self._tick)

    # ------------------------------------------------------------------ the drain
    async def _drain(self) -> None:
        state = self.state
        for server in self._servers:
            server.close()
        state.shutting_down = True
        for conn in list(state.connections):
            conn.shutdown()
        deadline = self._loop.time() + self.config.timeout_graceful_shutdown
        while (state.active or state.tasks or state.connections) and not self.force_exit:
            if self._loop.time() >= deadline:
                logger.warning("Graceful shutdown timed out after %.1fs: cancelling %d request(s)",
                               self.config.timeout_graceful_shutdown, state.active + len(state.tasks))
                break
            await asyncio.sleep(0.05)
        remaining = [*state.tasks, *_http_tasks()]
        for task in remaining:
            task.cancel()
        for conn in list(state.connections):
            conn.force_close()
        if remaining:
            await asyncio.wait(remaining, timeout=1.0)
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 1.0)
            except (asyncio.TimeoutError, RuntimeError):
                pass

    def _close_listeners(self) -> None:
        for listener in self.listeners:
            listener.sock.close()
            if listener.path:
                try:
                    os.unlink(listener.path)
                except OSError:
                    pass


async def _no_asgi_app(scope: dict, receive: Any, send: Any) -> None:
    raise RuntimeError("a WSGI app has no ASGI entry point")


def _http_tasks() -> list[asyncio.Task]:
    """The running ASGI request tasks (h1 does not register them, to save a set operation
    per request; they are told apart by the coroutine they run)."""
    from ..asgi.http import HTTPCycle

    code = HTTPCycle.run.__code__
    return [task for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "cr_code", None) is code and not task.done()]


def _loop_is_current(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _describe(app: Any) -> str:
    return app if isinstance(app, str) else type(app).__name__


def run_loop(main: Any, loop_name: str = "auto") -> Any:
    """Run a coroutine on the chosen event loop (uvloop when auto and installed)."""
    factory = _loop_factory(loop_name)
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(main)
    loop = factory() if factory is not None else asyncio.new_event_loop()  # pragma: no cover
    try:  # pragma: no cover - Python 3.10
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:  # pragma: no cover
        loop.close()


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise AppLoadError("--loop uvloop: uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


__all__ += ["AppLoadError"]
