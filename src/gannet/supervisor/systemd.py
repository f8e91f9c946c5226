"""systemd without a dependency: socket activation and ``sd_notify``.

Socket activation (sd_listen_fds(3)): systemd binds the sockets of a ``.socket`` unit and
starts us with them open from fd 3 on, ``LISTEN_FDS`` saying how many, ``LISTEN_PID`` our
pid (a variable inherited by some other process is not for it) and ``LISTEN_FDNAMES``
their names. When no listen option was given, Gannet serves those sockets. The variables
are removed once read, so workers and the app's own children never take the sockets for
theirs.

Notification (sd_notify(3)): one datagram per state change to ``NOTIFY_SOCKET`` (a path,
or ``@name`` in the abstract namespace): ``READY=1`` once every worker accepts (the single
process: after the lifespan startup), ``RELOADING=1`` with ``MONOTONIC_USEC`` on a reload
and ``READY=1`` after it, ``STOPPING=1`` on a stop, ``STATUS=`` lines for
``systemctl status``, and ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` from the loop that
runs (the master's, or the single process's), so a stuck loop stops the pings and systemd
restarts the service. Sending never raises: systemd being gone must not stop serving.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import MutableMapping

from ..config import Config
from ..server.listeners import BindError

__all__ = ["activated_sockets", "listen_sockets", "Notifier"]

logger = logging.getLogger("gannet.error")

LISTEN_FDS_START = 3
LISTEN_OPTIONS = ("host", "port", "bind", "uds", "fd")
TICK = 1.0  # how often the single process's loop ticks (server/worker.py), in seconds


def activated_sockets(environ: MutableMapping[str, str] | None = None) -> list[socket.socket]:
    """The sockets systemd passed to this process (none when not activated); the LISTEN_*
    variables are removed either way."""
    env = os.environ if environ is None else environ
    count, pid = env.pop("LISTEN_FDS", ""), env.pop("LISTEN_PID", "")
    names = env.pop("LISTEN_FDNAMES", "")
    if not count:
        return []
    if pid != str(os.getpid()):
        logger.warning("LISTEN_FDS is set for PID %s, not for this process (%d); ignoring it",
                       pid or "(none)", os.getpid())
        return []
    try:
        number = int(count)
    except ValueError:
        raise BindError(f"systemd socket activation: LISTEN_FDS={count!r} is not a number") from None
    labels = names.split(":") if names else []
    sockets = []
    try:
        for index, fd in enumerate(range(LISTEN_FDS_START, LISTEN_FDS_START + number)):
            label = f"{labels[index]} (fd {fd})" if index < len(labels) else f"fd {fd}"
            sockets.append(_adopt(fd, label))
    except BindError:
        for sock in sockets:
            sock.detach()  # systemd's descriptors stay open; we exit anyway
        raise
    return sockets


def _adopt(fd: int, label: str) -> socket.socket:
    """The listening stream socket at ``fd``, close-on-exec as sd_listen_fds leaves it (a
    program the app execs must not hold the port open); BindError for anything else."""
    try:
        sock = socket.socket(fileno=fd)  # family and type come from the descriptor
    except OSError as exc:
        raise BindError(f"systemd socket activation: {label} is not a socket: "
                        f"{exc.strerror or exc}") from None
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise BindError(f"systemd socket activation: {label} is not a stream socket (use "
                        "ListenStream= in the .socket unit)")
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise BindError(f"systemd socket activation: {label} is not listening (a connection "
                        "passed with Accept=yes? Gannet needs Accept=no, the default)")
    sock.setblocking(False)
    sock.set_inheritable(False)
    logger.info("Using the socket systemd passed: %s", label)
    return sock
    return sockets


def listen_sockets(config: Config) -> list[socket.socket] | None:
    """systemd's sockets to serve, or None to bind as the options say: an explicit listen
    option (from any source) wins over activation, with a note."""
    sockets = activated_sockets()
    if not sockets:
        return None
    given = [name for name in LISTEN_OPTIONS if config.sources.get(name, "default") != "default"]
    if given:
        logger.info("Ignoring the %d socket(s) systemd passed: --%s was given", len(sockets),
                    given[0].replace("_", "-"))
        for sock in sockets:
            sock.detach()  # the fd stays open (an explicit --fd may be one of them)
        return None
    return sockets


class Notifier:
    """Tells systemd what we are doing; every method is a no-op outside systemd."""

    def __init__(self, address: str | None, watchdog_usec: int = 0) -> None:
        self.address = address
        self.watchdog_interval = watchdog_usec / 2e6  # seconds between WATCHDOG=1 pings
        self._next_ping = 0.0
        self._ready = False
        self._stopping = False
        self._warned = False

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] | None = None) -> "Notifier":
        """Read (and remove) NOTIFY_SOCKET and WATCHDOG_USEC / WATCHDOG_PID."""
        env = os.environ if environ is None else environ
        address = env.pop("NOTIFY_SOCKET", None) or None
        usec, pid = env.pop("WATCHDOG_USEC", ""), env.pop("WATCHDOG_PID", "")
        watchdog = 0
        if usec and (not pid or pid == str(os.getpid())):
            try:
                watchdog = max(int(usec), 0)
            except ValueError:
                logger.warning("WATCHDOG_USEC=%r is not a number; not pinging systemd", usec)
        return cls(address, watchdog)

    @property
    def active(self) -> bool:
        return self.address is not None

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")
        self._ready = True

    def reloading(self, status: str = "Reloading") -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", f"STATUS={status}")

    def stopping(self, status: str = "Stopping") -> None:
        """STOPPING=1, once (a second signal or a stop during a stop says nothing new)."""
        if not self._stopping:
            self._stopping = True
            self.notify("STOPPING=1", f"STATUS={status}")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def tick(self, status: str) -> None:
        """The single process's once-a-second tick: READY=1 the first time (the lifespan
        startup is over and the sockets accept), then the watchdog ping when due."""
        if not self._ready:
            self.ready(status)
            if self.watchdog_interval and self.watchdog_interval < TICK:
                logger.warning("WatchdogSec is below %gs: the single process pings systemd "
                               "once a second at most; raise WatchdogSec", 2 * TICK)
        self.watchdog()

    def watchdog(self) -> None:
        """Ping if half the watchdog interval has passed; call from the loop that must live."""
        if not self.watchdog_interval or not self.active:
            return
        now = time.monotonic()
        if now >= self._next_ping:
            self._next_ping = now + self.watchdog_interval
            self.notify("WATCHDOG=1")

    def notify(self, *lines: str) -> bool:
        """Send one datagram; False (logged once) when systemd cannot be reached."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto("\n".join(lines).encode(), target)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                logger.warning("Cannot notify systemd at %s: %s", self.address,
                               exc.strerror or exc)
            return False
        return True
