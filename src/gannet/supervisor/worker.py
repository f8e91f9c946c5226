"""A worker process's life after the fork: reset what the master owned, serve, exit.

The worker is the single-process server (``server.Server``) on inherited sockets, with
four additions: its ``on_tick`` beats to the master (from inside the loop, so a stuck
loop goes silent), --max-requests asks the master for a replacement instead of stopping,
the drain lets idle keep-alive clients send one more request (answered with close) since
other workers keep the port, and a watchdog thread answers the master's DUMP. Its exit
status is the single process's (cli.run_server), which tells the master why it stopped.
"""
from __future__ import annotations

import copy
import logging
import os
import random
import signal
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from .channel import BEAT, RETIRE, Channel, send
from .hooks import call_hook
from .logfiles import reopen_log_files
from .privileges import switch_to
from .proctitle import set_title
from .watchdog import install_stack_dump, start_watchdog

if TYPE_CHECKING:
    from .arbiter import Arbiter, WorkerProcess

__all__ = ["worker_main", "DRAIN_IDLE_GRACE"]

logger = logging.getLogger("gannet.error")

# Seconds an idle keep-alive connection of a draining worker may still send a request.
DRAIN_IDLE_GRACE = 1.0
# Signals the master handles; in a worker they go back to their defaults or are ignored.
_MASTER_SIGNALS = (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1,
                   signal.SIGQUIT, signal.SIGCHLD, signal.SIGINT, signal.SIGTERM)
_IGNORED = (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1)


def worker_main(arbiter: "Arbiter", process: "WorkerProcess", channel: Channel) -> NoReturn:
    """Run in the child right after ``os.fork()``; never returns."""
    from .arbiter import SIGNALS

    status = 1
    try:
        _reset_signals()
        arbiter.close_in_child(process)
        channel.worker_side()
        install_stack_dump()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # blocked by the arbiter's _spawn
        set_title("worker", arbiter.config.app)
        call_hook(arbiter.hooks, "post_fork", arbiter, process)
        _import_serving_code()
        status = _become_user(arbiter)  # -u/-g, before the app is imported
        if status == 0:
            status = _serve(arbiter, process, channel)
        call_hook(arbiter.hooks, "worker_exit", arbiter, process)
    except BaseException:  # noqa: BLE001 - nothing may escape into the master's code
        logger.exception("Worker %d failed", os.getpid())
    finally:
        for handler in logging.getLogger("gannet").handlers + logging.getLogger().handlers:
            try:
                handler.flush()
            except Exception:  # noqa: BLE001
                pass
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _reset_signals() -> None:
    signal.set_wakeup_fd(-1)
    for sig in _MASTER_SIGNALS:
        signal.signal(sig, signal.SIG_IGN if sig in _IGNORED else signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in any Python program


def _import_serving_code() -> None:
    """Import asyncio and Gannet's serving modules before -u/-g: the master leaves them
    out to stay small, and the user may not be able to read the interpreter's files (only
    the app is meant to be imported as the user)."""
    import asyncio  # noqa: F401

    from .. import cli, loading  # noqa: F401
    from ..asgi import lifespan  # noqa: F401
    from ..server import worker  # noqa: F401


def _become_user(arbiter: "Arbiter") -> int:
    """Switch to --user/--group; 0, or 2 (a bad option: the master stops, no crash loop)."""
    from ..cli import EXIT_CONFIG
    from ..config import ConfigError

    try:
        switch_to(arbiter.credentials)
    except ConfigError as exc:
        logger.error("%s", exc)
        return EXIT_CONFIG
    return 0


def _serve(arbiter: "Arbiter", process: "WorkerProcess", channel: Channel) -> int:
    from ..cli import run_server
    from ..server.server import Server

    config = arbiter.config
    if config.limit_max_requests and config.max_requests_jitter:  # type: ignore[attr-defined]
        config = copy.copy(config)
        config.limit_max_requests += random.randint(0, config.max_requests_jitter)  # type: ignore[attr-defined]
    beats = _Heartbeat(arbiter, process, channel.beat_w)

    def retire() -> None:
        logger.warning("Maximum request limit of %s reached; asking the master for a "
                       "replacement", config.limit_max_requests)
        if not send(channel.beat_w, RETIRE):
            beats.server.shutdown()  # no master to ask: stop as the single process does

    server = Server(config, on_tick=beats, on_max_requests=retire, preloaded=arbiter.preloaded,
                    drain_idle_grace=DRAIN_IDLE_GRACE)
    beats.server = server

    def master_gone() -> None:
        logger.warning("The master is gone; worker %d stops", os.getpid())
        server.shutdown()

    start_watchdog(channel.control_r, channel.beat_w, lambda: server.state,
                   lambda: call_hook(arbiter.hooks, "worker_abort", process), master_gone)
    return run_server(server, _run(server, arbiter, process), config.loop)


async def _run(server: Any, arbiter: "Arbiter", process: "WorkerProcess") -> None:
    """``server.serve()`` with the worker's own signals: QUIT stops fast (the master's
    INT/QUIT), USR1 reopens log files. INT and TERM are the server's own."""
    import asyncio  # here, not at the top: the master imports this module to fork

    loop = asyncio.get_running_loop()

    def fast_stop() -> None:
        call_hook(arbiter.hooks, "worker_int", process)
        if server.worker is not None:
            server.worker.force()
        else:
            server.shutdown()

    loop.add_signal_handler(signal.SIGQUIT, fast_stop)
    loop.add_signal_handler(signal.SIGUSR1, reopen_log_files)
    try:
        await server.serve(sockets=[listener.sock for listener in arbiter.listeners])
    finally:
        # Served and drained: a stop signal arriving now (systemd signals every process
        # of the unit, then the master forwards its own) has nothing left to stop.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)


class _Heartbeat:
    """The server's on_tick: one BEAT a second from inside the loop; the first one also
    tells the master this worker accepts connections."""

    def __init__(self, arbiter: "Arbiter", process: "WorkerProcess", fd: int) -> None:
        self.arbiter = arbiter
        self.process = process
        self.fd = fd
        self.first = True
        self.server: Any = None

    def __call__(self) -> None:
        send(self.fd, BEAT)
        if self.first:
            self.first = False
            call_hook(self.arbiter.hooks, "post_worker_init", self.process)
