"""What the process that owns the sockets does for the operator, in one place for the
master and the single process: ``--umask``, ``-u/--user``/``-g/--group``, systemd (socket
activation, sd_notify) and ``--pid``.

Order matters and is the same in both: the umask first (it shapes every file created
after it), the names resolved (a typo stops the start before anything is bound), then the
sockets bound (or taken from systemd), the Unix socket files and the log files handed to
the user, the pid file written, and only then -- in the single process, before the app is
imported -- the switch to the user. The master never switches: its workers do, right
after the fork.
"""
from __future__ import annotations

from typing import Callable

from ..config import Config
from ..server.listeners import Listener
from .pidfile import PidFile
from .privileges import (apply_umask, hand_over_log_files, hand_over_sockets, resolve,
                         switch_to)
from .systemd import Notifier, listen_sockets

__all__ = ["ProcessDuties"]


class ProcessDuties:
    """Construct at start-up (raises ConfigError for a bad --user/--group); ``bind()``
    once; ``close()`` at exit."""

    def __init__(self, config: Config) -> None:
        self.config = config
        apply_umask(config)
        self.credentials = resolve(config)
        self.notifier = Notifier.from_environ()
        self.sockets = listen_sockets(config)  # systemd's, or None to bind as configured
        pidfile = config.pidfile
        self.pidfile = PidFile(pidfile) if pidfile else None

    def bind(self, given: list[Listener] | None = None, *, switch: bool = False) -> list[Listener]:
        """Bind (unless ``given``), hand Unix socket files over, write the pid file, and
        with ``switch`` become --user/--group. On failure the new listeners are closed."""
        from ..server.server import _bind, _close_listeners

        listeners = given or _bind(self.config, self.sockets)
        try:
            hand_over_sockets(listeners, self.config, self.credentials)
            hand_over_log_files(self.credentials)
            if self.pidfile is not None:
                self.pidfile.create()
            if switch:
                switch_to(self.credentials)
        except BaseException:
            if not given:
                _close_listeners(listeners)
            raise
        return listeners

    def on_tick(self, inner: Callable[[], None] | None) -> Callable[[], None] | None:
        """The single process's tick: READY=1 once serving, then WATCHDOG=1 pings; the
        plain ``inner`` when systemd is not listening (nothing added per tick)."""
        if not self.notifier.active:
            return inner
        notifier = self.notifier

        def tick() -> None:
            notifier.tick("Serving")
            if inner is not None:
                inner()

        return tick

    def close(self) -> None:
        if self.pidfile is not None:
            self.pidfile.remove()
