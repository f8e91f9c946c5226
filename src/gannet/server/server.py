"""The process part of one worker: load the app, bind, own the signals, run the Worker.

``Server`` is the embeddable API (``await Server(config).serve()``, ``shutdown()``). It
runs start-up in phases and lets each phase fail with its own exception, so the caller
(cli.py, later the supervisor) can choose an exit status without guessing:

    configuration   ConfigError       (a bad option that only shows at start-up)
    loading         AppLoadError      (any error while importing or building the app)
    binding         BindError         (any error while creating the listeners)
    lifespan        LifespanFailure   (the app's startup failed)

Anything else is a bug in Gannet and propagates unchanged. Signals only record what was
asked (``handle_exit``); the worker acts on it. Library code never exits the process.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from typing import TYPE_CHECKING, Any, Callable

from ..config import Config, ConfigError
from .listeners import BindError, Listener, bind

if TYPE_CHECKING:
    import asyncio

    from .worker import LoadedApp, Worker

# asyncio, the app loader and the worker (h1, ASGI) are imported where they are used: the
# master imports this module for _bind and Server but never serves, and each of them costs
# it resident memory (issue 11: master RSS under 25 MiB).

__all__ = ["Server", "run_loop", "BindError", "load"]

logger = logging.getLogger("gannet.error")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Server:
    """Embeddable server: ``await Server(config).serve()``; ``shutdown()`` to stop.

    ``on_tick`` is called on the loop once a second while serving (see ``Worker``). The
    other keywords are the supervisor's seams: ``on_max_requests`` replaces the stop at
    --limit-max-requests, ``preloaded`` is an app the master already loaded (--preload),
    ``drain_idle_grace`` lets idle keep-alive connections send one more request, answered
    with ``Connection: close``, before the drain closes them (see ``Worker``).
    """

    def __init__(self, config: Config, *, on_tick: Callable[[], None] | None = None,
                 on_max_requests: Callable[[], None] | None = None,
                 preloaded: LoadedApp | None = None, drain_idle_grace: float = 0.0) -> None:
        self.config = config
        self.on_tick = on_tick
        self.on_max_requests = on_max_requests
        self.preloaded = preloaded
        self.drain_idle_grace = drain_idle_grace
        self.listeners: list[Listener] = []
        self.worker: Worker | None = None
        self._should_exit = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.notifier: Any = None  # systemd's (supervisor/systemd.py) in the single process

    # ------------------------------------------------------------------ public API
    @property
    def started(self) -> bool:
        return self.worker is not None and self.worker.started

    @property
    def state(self) -> Any:
        return self.worker.state if self.worker is not None else None

    @property
    def should_exit(self) -> bool:
        return self.worker.should_exit if self.worker is not None else self._should_exit

    @property
    def force_exit(self) -> bool:
        return self.worker is not None and self.worker.force_exit

    @property
    def bound_urls(self) -> list[str]:
        return [listener.url for listener in self.listeners]

    def shutdown(self) -> None:
        """Ask the server to stop gracefully; safe from any thread."""
        self._should_exit = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if _loop_is_current(loop):
            self._request_exit()
        else:
            loop.call_soon_threadsafe(self._request_exit)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Load the app, bind (or adopt ``sockets``, already bound and listening), and
        serve until stopped. Raises the phase's exception when start-up fails."""
        import asyncio

        from .worker import ListenerLost, Worker

        self._loop = asyncio.get_running_loop()
        duties = None
        if sockets is None:  # the single process: its --pid, -u/-g, umask, systemd
            from ..supervisor.operations import ProcessDuties

            duties = ProcessDuties(self.config)
            self.notifier = duties.notifier
            if duties.credentials is not None:  # bind as root, switch before the import
                self.listeners = duties.bind(switch=True)
        try:
            loaded = self.preloaded or load(self.config)
        except BaseException:
            _close_listeners(self.listeners)  # bound early for -u/-g
            if duties is not None:
                duties.close()
            raise
        from ..asgi.trace import install as trace_asgi_messages  # wraps only at TRACE level
        trace_asgi_messages(loaded)
        if not self.listeners:
            self.listeners = duties.bind() if duties else _bind(self.config, sockets)
        on_tick = duties.on_tick(self.on_tick) if duties else self.on_tick
        worker = self.worker = Worker(self.config, loaded, self.listeners, on_tick=on_tick,
                                      on_max_requests=self.on_max_requests,
                                      drain_idle_grace=self.drain_idle_grace)
        if self._should_exit:
            worker.should_exit = True
        self._install_signal_handlers()
        try:
            await worker.run()
        finally:
            self._restore_signal_handlers()
            _close_listeners(self.listeners)
            if duties is not None:
                duties.close()
        logger.info("Finished server process [%d]", os.getpid())
        if worker.failure is not None:
            raise ListenerLost(worker.failure)

    # ------------------------------------------------------------------ signals
    def handle_exit(self, sig: int) -> None:
        """Signal handler: only records what was asked; the worker acts on it."""
        worker = self.worker
        if self.notifier is not None:
            self.notifier.stopping()
        if worker is None:
            self._should_exit = True
            return
        if worker.should_exit and sig == signal.SIGINT:
            logger.warning("Second interrupt: forcing exit")
            worker.force()
        else:
            worker.request_exit()

    def _request_exit(self) -> None:
        self._should_exit = True
        if self.notifier is not None:
            self.notifier.stopping()
        if self.worker is not None:
            self.worker.request_exit()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # embedded in a thread: the host program owns signals
        loop = self._loop
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


# ---------------------------------------------------------------------- start-up phases
def load(config: Config) -> LoadedApp:
    """Import and build the app; every failure becomes AppLoadError, whose message shows
    the app's frames, not ours (loading.describe_load_error)."""
    from ..loading import ASGI2Adapter, AppLoadError, describe_load_error, detect_interface, load_app
    from .worker import LoadedApp

    try:
        app = load_app(config.app, factory=config.factory, app_dir=config.app_dir)
        interface = config.interface
        if interface == "auto":
            interface = detect_interface(app)
            logger.info("Detected the %s interface for %s", interface.upper(), _describe(config.app))
    except AppLoadError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - e.g. an app object whose signature raises
        raise AppLoadError(describe_load_error(exc, f"loading {_describe(config.app)!r}")) from exc
    if interface == "asgi2":
        return LoadedApp(ASGI2Adapter(app), interface)
    if interface == "wsgi":
        return LoadedApp(_no_asgi_app, interface, app)  # requests go to state.wsgi
    return LoadedApp(app, interface, app)


def _bind(config: Config, sockets: list[socket.socket] | None) -> list[Listener]:
    """The listeners, bound here (before the app's startup: a port in use fails fast) or
    adopted from ``sockets``. Any failure is a BindError naming the address."""
    inherited: list[Listener] = []
    addresses = config.listen_addresses
    if sockets is not None:  # inherited (systemd, a caller's sockets): they serve HTTP
        inherited = [Listener(sock, "inherited", "fd", tls=bool(config.ssl_certfile))
                     for sock in sockets]
        addresses = [(address, kind) for address, kind in addresses if kind != "http"]
    listeners: list[Listener] = []
    address = "?"
    try:
        for address, protocol in addresses:
            listeners.append(bind(address, config.backlog, protocol, bool(config.ssl_certfile)))
    except BindError:
        _close_listeners(listeners)
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a NUL byte in a path, or a bug of ours
        _close_listeners(listeners)
        error = BindError(f"cannot listen on {address}: {type(exc).__name__}: {exc}")
        # OSError and ValueError are the address's fault; anything else is ours: keep the
        # traceback for the log.
        error.unexpected = not isinstance(exc, (OSError, ValueError))  # type: ignore[attr-defined]
        raise error from exc
    return inherited + listeners


def _close_listeners(listeners: list[Listener]) -> None:
    for listener in listeners:
        listener.sock.close()
        if listener.path:
            try:
                os.unlink(listener.path)
            except OSError:
                pass


async def _no_asgi_app(scope: dict, receive: Any, send: Any) -> None:
    raise RuntimeError("a WSGI app has no ASGI entry point")


def _loop_is_current(loop: asyncio.AbstractEventLoop) -> bool:
    import asyncio

    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _describe(app: Any) -> str:
    return app if isinstance(app, str) else type(app).__name__


# ---------------------------------------------------------------------- the loop
def run_loop(main: Any, loop_name: str = "auto") -> Any:
    """Run a coroutine on the chosen event loop (uvloop when auto and installed).

    Unlike ``asyncio.run``, the clean-up after ``main`` is bounded: tasks still pending
    (an app that ignores cancellation) get CANCEL_GRACE seconds, not forever."""
    import asyncio

    factory = _loop_factory(loop_name)
    loop = factory() if factory is not None else asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_leftovers(loop)
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    import asyncio

    from .worker import CANCEL_GRACE

    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=CANCEL_GRACE))
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                logger.error("Unhandled exception in a task at exit", exc_info=task.exception())
    try:
        loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), CANCEL_GRACE))
    except (asyncio.TimeoutError, RuntimeError):  # pragma: no cover
        pass


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise ConfigError("--loop uvloop: uvloop is not installed (pip install uvloop)") from None
        return None
    return uvloop.new_event_loop
