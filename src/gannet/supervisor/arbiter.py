"""The master: bind once, fork workers, keep their number, replace the dead, kill the hung.

Theory of operation. The master imports nothing of the app (unless --preload) and runs no
event loop: one ``select`` over a wake-up pipe and each worker's beat pipe (channel.py),
at most every TICK seconds. Signal handlers only queue the signal and write to the wake-up
pipe; the loop then acts, one signal at a time (``_handle_signal``), reaps exited workers
(``_reap``), kills hung ones (``_murder_hung``) and brings the fleet to its target
(``_manage``).

Each worker is *fresh* (counts toward --workers), *outgoing* (replaced by a rolling
reload), *retiring* (reached --max-requests) or *stopping* (sent TERM/QUIT). ``_manage``
spawns fresh workers until there are --workers of them and stops outgoing and retiring
ones only once that many fresh ones are accepting (their first beat), so the port always
has a worker to accept and the shared listening sockets never close: a reload or a
retirement loses no connection. A worker that cannot boot (exit 2, 3 or 4 before its first
beat) stops the master with its status when no worker is serving, ends a reload that
brought it (the old workers keep serving), and is otherwise retried with backoff.
"""
from __future__ import annotations

import logging
import os
import select
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..cli import EXIT_APP_LOAD, EXIT_CONFIG, EXIT_ERROR, EXIT_LIFESPAN
from ..config import Config, ConfigError
from ..server.listeners import BindError, Listener
from .channel import BEAT, DUMP, DUMPED, RETIRE, Channel, send
from .hooks import Hooks, call_hook
from .logfiles import reopen_log_files
from .operations import ProcessDuties
from .privileges import Credentials
from .proctitle import set_title
from .systemd import Notifier
from .watchdog import DUMP_SIGNAL

__all__ = ["Arbiter", "WorkerProcess"]

logger = logging.getLogger("gannet.error")

TICK = 0.5  # the longest the master sleeps between checks (seconds)
DUMP_GRACE = 1.0  # time for a hung worker's watchdog thread to log before the C-level dump
KILL_AFTER_DUMP = 0.5  # time for the C-level dump to be written before SIGKILL
FAST_STOP_GRACE = 5.0  # INT/QUIT: workers that have not exited by then are killed
STOP_BACKSTOP = 5.0  # beyond a worker's own bounds (drain + lifespan shutdown) on TERM
CRASH_WINDOW = 10.0  # a worker that dies younger than this counts toward the backoff
MAX_BACKOFF = 30.0
# A worker that exits with one of cli.py's statuses before serving cannot boot.
BOOT_FAILURES = {EXIT_CONFIG: "a bad option", EXIT_LIFESPAN: "the lifespan startup failed",
                 EXIT_APP_LOAD: "the app could not be loaded"}
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGTTIN,
           signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD)


@dataclass(eq=False)
class WorkerProcess:
    """The master's view of one worker (also what hooks receive as ``worker``)."""

    age: int  # 1 for the first worker ever spawned, then 2, 3...
    channel: Channel
    spawned: float
    pid: int = 0
    last_beat: float = 0.0
    ready: bool = False  # has beaten once: accepting connections
    outgoing: bool = False  # to be replaced by a rolling reload
    retiring: bool = False  # reached --max-requests; replaced, then stopped
    stopping: float | None = None  # when TERM/QUIT was sent
    kill_at: float | None = None  # SIGKILL if still alive then
    dump_sent: float | None = None  # hung: DUMP asked at this time
    dump_signalled: float | None = None  # hung: SIGUSR2 sent at this time
    dumped: bool = False
    killed: bool = False  # SIGKILLed by the master (hung, or past its stop deadline)
    beat_open: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # for hooks' own bookkeeping


class Arbiter:
    """Run ``workers`` worker processes for ``config``; ``run()`` returns the exit status.

    ``listeners``: already bound sockets to serve instead of binding (systemd socket
    activation hands them over). ``hooks``: server hooks (hooks.py). A reloader calls
    ``request_reload()``, an embedding program ``request_stop()``; both only queue.
    """

    def __init__(self, config: Config, workers: int = 1, *,
                 listeners: list[Listener] | None = None, hooks: Hooks | None = None) -> None:
        self.config = config
        self.num_workers = workers
        self.listeners: list[Listener] = list(listeners or [])
        self._own_listeners = listeners is None
        self.hooks = hooks or Hooks()
        self.preloaded: Any = None
        self.workers: dict[int, WorkerProcess] = {}
        self.pid = os.getpid()
        self._queue: deque[int] = deque()
        self._wake_r, self._wake_w = -1, -1
        self._stopping: str | None = None  # "graceful" or "fast"
        self._exit_status = 0
        self._age = 0
        self._crashes = 0
        self._next_spawn = 0.0
        self._old_handlers: dict[int, Any] = {}
        self.reloader: Any = None  # --reload's file watcher (reload.py)
        self._awaiting_change = False  # --reload: no worker could boot; wait for an edit
        self.credentials: Credentials | None = None  # what workers switch to (-u/-g)
        self.notifier = Notifier(None)  # systemd's, once _start reads the environment
        self._duties: ProcessDuties | None = None
        self._ready_told = False  # READY=1 sent for the first full set of workers

    # ------------------------------------------------------------------ public API
    def request_reload(self) -> None:
        """Ask for a rolling reload (as HUP does); safe from a thread or a signal handler."""
        self._enqueue(signal.SIGHUP)

    def request_stop(self, graceful: bool = True) -> None:
        """Ask for a stop (TERM when graceful, else QUIT); safe from anywhere."""
        self._enqueue(signal.SIGTERM if graceful else signal.SIGQUIT)

    def run(self) -> int:
        """Bind, (preload,) start the workers and supervise them until stopped."""
        logger.info("Starting gannet master [%d] with %d worker(s)", self.pid, self.num_workers)
        set_title("master", self.config.app)
        call_hook(self.hooks, "on_starting", self)
        started = False
        self._install_signals()  # from here on a HUP, USR1 or TTIN before any worker queues
        try:
            status = self._start_unless_stopped()
            if status is not None:
                return status
            started = True
            call_hook(self.hooks, "when_ready", self)
            return self._loop()
        finally:
            self._restore_signals()
            self._close_listeners()
            if self._duties is not None:
                self._duties.close()
            if self.reloader is not None:
                self.reloader.stop()
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1  # a late request_reload() writes nowhere
            if started:
                logger.info("Master [%d] exiting with status %d", self.pid, self._exit_status)
            call_hook(self.hooks, "on_exit", self)

    def close_in_child(self, process: WorkerProcess) -> None:
        """In a new worker: drop the master's descriptors for the other workers and its
        wake-up pipe (a worker must see end-of-file on its control pipe when the master
        dies, so no other process may hold that pipe's write end)."""
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._wake_r = self._wake_w = -1
        for other in self.workers.values():
            if other is not process:
                other.channel.close()
        self.workers = {}
        self._queue.clear()

    # ------------------------------------------------------------------ start-up
    def _start_unless_stopped(self) -> int | None:
        """``_start``, cut short by TERM, INT or QUIT (status 0): with no worker yet there
        is nothing to drain, and a queued stop would wait for a --preload import that may
        take long or hang. The socket file and the pid file are removed all the same."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, _abort_start)
        try:
            return self._start()
        except _StartAborted as exc:
            logger.info("%s during start-up: stopping", exc)
            return 0
        finally:
            for sig in STOP_SIGNALS:
                signal.signal(sig, self._on_signal)

    def _start(self) -> int | None:
        """Bind and preload; the exit status when that fails."""
        app_load, bad_config, error = EXIT_APP_LOAD, EXIT_CONFIG, EXIT_ERROR

        try:
            duties = self._duties = ProcessDuties(self.config)  # umask, -u/-g, systemd, --pid
            self.notifier, self.credentials = duties.notifier, duties.credentials
            self.listeners = duties.bind(self.listeners)  # the workers switch to -u/-g
        except ConfigError as exc:
            logger.error("%s", exc)
            return bad_config
        except BindError as exc:
            logger.error("%s", exc, exc_info=exc.__cause__ if getattr(exc, "unexpected", False) else None)
            return error
        for listener in self.listeners:
            # fork() shares every descriptor; a program the app or a hook exec()s must not
            # hold the listening socket (it would keep the port taken after we stop).
            listener.sock.set_inheritable(False)
            logger.info("Master [%d] bound %s", self.pid, listener.url)
        if self.config.preload:  # type: ignore[attr-defined]
            from ..loading import AppLoadError  # only here: the master imports no loader
            from ..server.server import load

            try:
                self.preloaded = load(self.config)
            except AppLoadError as exc:
                logger.error("Error loading app: %s", exc)
                return app_load
            except ConfigError as exc:
                logger.error("%s", exc)
                return bad_config
        if self.config.reload:  # development: a watcher thread asks for rolling reloads
            from .reload import Reloader, development_config

            self.config = development_config(self.config)
            try:
                self.reloader = Reloader(self.config, self.request_reload)
            except ConfigError as exc:
                logger.error("%s", exc)
                return bad_config
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        if self.reloader is not None:
            self.reloader.start()
        return None

    def _close_listeners(self) -> None:
        if self._own_listeners:
            from ..server.server import _close_listeners

            _close_listeners(self.listeners)

    # ------------------------------------------------------------------ signals
    def _install_signals(self) -> None:
        for sig in SIGNALS:
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _restore_signals(self) -> None:
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()

    def _on_signal(self, sig: int, frame: Any) -> None:
        """Only queue: the loop acts (a handler may run in the middle of anything)."""
        self._enqueue(sig)

    def _enqueue(self, sig: int) -> None:
        self._queue.append(sig)
        if self._wake_w >= 0:
            send(self._wake_w, b"!")

    def _handle_signal(self, sig: int) -> None:
        if sig == signal.SIGCHLD:
            return  # the wake-up was the point: _reap follows
        if sig == signal.SIGTERM:
            self._stop(graceful=True)
        elif sig in (signal.SIGINT, signal.SIGQUIT):
            self._stop(graceful=False)
        elif self._stopping:
            return
        elif sig == signal.SIGHUP:
            self._reload()
        elif sig in (signal.SIGTTIN, signal.SIGTTOU):
            old = self.num_workers
            self.num_workers = old + 1 if sig == signal.SIGTTIN else max(old - 1, 1)
            logger.info("%s: %d worker(s) wanted (was %d)", signal.Signals(sig).name,
                        self.num_workers, old)
            if self.num_workers != old:
                call_hook(self.hooks, "nworkers_changed", self, self.num_workers, old)
        elif sig == signal.SIGUSR1:
            reopened = reopen_log_files()
            logger.info("USR1: reopened %d log file(s); telling the workers", reopened)
            self._signal_all(signal.SIGUSR1)
        elif sig == DUMP_SIGNAL:
            logger.warning("SIGUSR2 does nothing in the master; send it to a worker to log "
                           "its stacks")

    def _stop(self, graceful: bool) -> None:
        if self._stopping == "fast" or (graceful and self._stopping == "graceful"):
            return
        self._stopping = "graceful" if graceful else "fast"
        self.notifier.stopping()
        grace = self.config.timeout_graceful_shutdown
        logger.info("%s: stopping %d worker(s)%s", "Graceful stop" if graceful else "Fast stop",
                    len(self.workers), f" (up to {grace:g}s to drain)" if graceful else "")
        sig = signal.SIGTERM if graceful else signal.SIGQUIT
        for worker in self.workers.values():
            self._send_stop(worker, sig, force=True)

    def _reload(self) -> None:
        """Rolling reload: the current workers become outgoing; ``_manage`` starts as many
        new ones and stops the outgoing once all the new ones accept."""
        self._awaiting_change = False  # --reload: the awaited change came; boot again
        if self.config.ssl_certfile:
            # The new workers get the certificate and key as they are now, read here, as
            # the user the master runs as (config/tls.py); broken ones keep the old workers.
            from ..config.tls import TLSConfigError, prepare_context

            try:
                prepare_context(self.config)
            except TLSConfigError as exc:
                logger.error("Not reloading: %s (the current workers go on serving)", exc)
                return
        call_hook(self.hooks, "on_reload", self)
        self.notifier.reloading(f"Reloading: starting {self.num_workers} new worker(s)")
        outgoing = 0
        for worker in self.workers.values():
            if worker.stopping is None:
                worker.outgoing = True
                outgoing += 1
        logger.info("Reloading: starting %d new worker(s); the %d current one(s) serve until "
                    "the new ones accept", self.num_workers, outgoing)

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> int:
        while True:
            self._wait()
            self.notifier.watchdog()  # from this loop: a stuck master stops the pings
            while self._queue:
                self._handle_signal(self._queue.popleft())
            self._reap()
            now = time.monotonic()
            self._enforce_stop_deadlines(now)
            if self._stopping:
                if not self.workers:
                    return self._exit_status
                continue
            self._murder_hung(now)
            self._manage(now)

    def _wait(self) -> None:
        """Sleep until a signal, a worker's message, or the next check is due; read the
        messages."""
        timeout = TICK
        until_spawn = self._next_spawn - time.monotonic()
        if 0 < until_spawn < timeout:
            timeout = until_spawn
        by_fd = {w.channel.beat_r: w for w in self.workers.values() if w.beat_open}
        try:
            readable, _, _ = select.select([self._wake_r, *by_fd], [], [], timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries select
            return
        for fd in readable:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if fd == self._wake_r:
                continue
            self._on_messages(by_fd[fd], data)

    def _on_messages(self, worker: WorkerProcess, data: bytes) -> None:
        if not data:
            worker.beat_open = False  # it exited (or closed the pipe): _reap tells
            return
        now = time.monotonic()
        if BEAT in data:
            worker.last_beat = now
            if not worker.ready:
                worker.ready = True
                logger.debug("Worker [%d] is accepting connections", worker.pid)
        if RETIRE in data and not worker.retiring:
            worker.retiring = True
            logger.info("Worker [%d] reached --max-requests; booting its replacement",
                        worker.pid)
        if DUMPED in data:
            worker.dumped = True

    # ------------------------------------------------------------------ exits
    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            worker.channel.close()
            call_hook(self.hooks, "child_exit", self, worker)
            self._on_exit(worker, os.waitstatus_to_exitcode(status))

    def _on_exit(self, worker: WorkerProcess, code: int) -> None:
        how = f"exit status {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
        if self._stopping or (worker.stopping is not None and not worker.killed):
            logger.info("Worker [%d] exited (%s)", worker.pid, how)
            return
        if worker.killed:
            logger.error("Hung worker [%d] killed; booting a replacement", worker.pid)
            return
        if not worker.ready and code in BOOT_FAILURES:
            self._boot_failed(worker, code)
            return
        logger.error("Worker [%d] died (%s); booting a replacement", worker.pid, how)
        self._backoff(worker)

    def _boot_failed(self, worker: WorkerProcess, code: int) -> None:
        why = f"{BOOT_FAILURES[code]}, exit status {code}"
        if worker.outgoing:  # a newer reload superseded it; that one's workers are booting
            logger.info("Worker [%d] of a superseded reload could not boot (%s)", worker.pid, why)
            return
        if any(w.outgoing and w.stopping is None for w in self.workers.values()):
            logger.error("Reload failed: a new worker could not boot (%s); the old workers "
                         "keep serving", why)
            self.notifier.ready(f"Reload failed ({why}); {self.num_workers} old worker(s) serving")
            for other in self.workers.values():
                if other.stopping is None and not other.outgoing:
                    self._send_stop(other, signal.SIGTERM)
                other.outgoing = False
        elif (self.reloader is not None and code != EXIT_CONFIG
              and not any(w.ready and w.stopping is None for w in self.workers.values())):
            logger.error("Worker [%d] could not boot (%s); --reload waits for a file change "
                         "to try again", worker.pid, why)
            self._awaiting_change = True
        elif not any(w.ready and w.stopping is None for w in self.workers.values()):
            logger.error("Worker [%d] could not boot (%s); no worker is serving, so the master "
                         "stops with status %d", worker.pid, why, code)
            self._exit_status = code
            self._stop(graceful=True)
        else:
            logger.error("A new worker could not boot (%s); the others keep serving", why)
            self._backoff(worker)

    def _backoff(self, worker: WorkerProcess) -> None:
        """Replace at once, unless workers keep dying young: then wait, doubling."""
        now = time.monotonic()
        self._crashes = self._crashes + 1 if now - worker.spawned < CRASH_WINDOW else 1
        delay = 0.0 if self._crashes <= 1 else min(0.5 * 2 ** (self._crashes - 2), MAX_BACKOFF)
        if delay:
            logger.warning("Workers keep dying (%d in a row); the next boots in %.1fs",
                           self._crashes, delay)
        self._next_spawn = now + delay

    # ------------------------------------------------------------------ hung and late
    def _murder_hung(self, now: float) -> None:
        timeout = self.config.timeout  # type: ignore[attr-defined]
        if not timeout:
            return
        for worker in self.workers.values():
            if worker.killed or worker.stopping is not None:
                continue  # stopping workers are bounded by their stop deadline
            if worker.dump_sent is None:
                silent = now - (worker.last_beat or worker.spawned)
                if silent > timeout and not worker.ready:
                    logger.error("Worker [%d] timed out booting: not accepting after %.1fs "
                                 "(--timeout %g counts the app's import and lifespan startup; "
                                 "raise it for a slow start); logging its stacks, then killing "
                                 "it", worker.pid, silent, timeout)
                    worker.dump_sent = now
                    send(worker.channel.control_w, DUMP)
                elif silent > timeout:
                    logger.error("Worker [%d] timed out: its event loop has not ticked for "
                                 "%.1fs (--timeout %g); logging its requests and stacks, then "
                                 "killing it", worker.pid, silent, timeout)
                    worker.dump_sent = now
                    send(worker.channel.control_w, DUMP)
            elif not worker.dumped and worker.dump_signalled is None:
                if now - worker.dump_sent >= DUMP_GRACE:
                    logger.error("Worker [%d] did not list its requests (its loop holds the "
                                 "GIL in C code?); its stacks come from faulthandler",
                                 worker.pid)
                    worker.dump_signalled = now
                    _kill(worker.pid, DUMP_SIGNAL)
            elif worker.dumped or now - (worker.dump_signalled or now) >= KILL_AFTER_DUMP:
                worker.killed = True
                _kill(worker.pid, signal.SIGKILL)

    def _enforce_stop_deadlines(self, now: float) -> None:
        for worker in self.workers.values():
            if worker.kill_at is not None and now >= worker.kill_at and not worker.killed:
                logger.warning("Worker [%d] did not stop in time; killing it", worker.pid)
                worker.killed = True
                _kill(worker.pid, signal.SIGKILL)

    def _send_stop(self, worker: WorkerProcess, sig: int, force: bool = False) -> None:
        if worker.stopping is not None and not force:
            return
        now = time.monotonic()
        worker.stopping = worker.stopping or now
        if sig == signal.SIGTERM:
            # The worker bounds its drain and its lifespan shutdown by the graceful timeout
            # each; the master's SIGKILL is only the backstop.
            bound = 2 * self.config.timeout_graceful_shutdown + STOP_BACKSTOP
        else:
            bound = FAST_STOP_GRACE
        worker.kill_at = min(worker.kill_at or now + bound, now + bound)
        _kill(worker.pid, sig)

    def _signal_all(self, sig: int) -> None:
        for worker in self.workers.values():
            _kill(worker.pid, sig)

    # ------------------------------------------------------------------ the fleet
    def _manage(self, now: float) -> None:
        active = [w for w in self.workers.values() if w.stopping is None]
        fresh = sorted((w for w in active if not w.outgoing and not w.retiring),
                       key=lambda w: w.age)
        for extra in fresh[:max(len(fresh) - self.num_workers, 0)]:
            logger.info("Stopping worker [%d] (fewer workers wanted)", extra.pid)
            self._send_stop(extra, signal.SIGTERM)
            fresh.remove(extra)
        while (len(fresh) < self.num_workers and now >= self._next_spawn
               and not self._awaiting_change):
            worker = self._spawn()
            if worker is None:
                break
            fresh.append(worker)
        replaced = [w for w in active if w.outgoing or w.retiring]
        all_ready = sum(w.ready for w in fresh) >= self.num_workers
        if all_ready and not self._ready_told:
            self._ready_told = True
            self.notifier.ready(f"{self.num_workers} worker(s) serving")
        if replaced and all_ready:
            if any(w.outgoing for w in replaced):
                logger.info("Reload complete: %d new worker(s) accepting; the old ones drain",
                            self.num_workers)
                self.notifier.ready(f"Reloaded: {self.num_workers} worker(s) serving")
            for worker in replaced:
                self._send_stop(worker, signal.SIGTERM)

    def _spawn(self) -> WorkerProcess | None:
        from .worker import worker_main

        self._age += 1
        channel = Channel.open()
        worker = WorkerProcess(age=self._age, channel=channel, spawned=time.monotonic())
        call_hook(self.hooks, "pre_fork", self, worker)
        # Blocked across the fork: a signal sent to the new child before it has reset the
        # master's handlers waits for its own (worker_main unblocks), instead of being queued
        # into the master's copy and lost.
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
            channel.close()
            logger.error("Cannot fork a worker: %s", exc)
            self._backoff(worker)
            return None
        if pid == 0:  # the child
            worker.pid = os.getpid()
            worker_main(self, worker, channel)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        worker.pid = pid
        worker.last_beat = worker.spawned
        channel.master_side()
        self.workers[pid] = worker
        logger.info("Booting worker [%d]", pid)
        return worker


class _StartAborted(BaseException):
    """A stop signal during start-up (BaseException: the app loader must not wrap it)."""


def _abort_start(sig: int, frame: Any) -> None:
    raise _StartAborted(signal.Signals(sig).name)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass  # already gone: _reap will tell
