"""``-u/--user``, ``-g/--group`` and ``--umask``: run the app unprivileged on sockets bound
as root.

Started as root, Gannet binds first (so port 80 works), then the processes that run the
app switch to the user and group: each worker right after the fork, or the single process
right after binding, in both cases before the app is imported. The master stays root, as
gunicorn's does: it must be able to bind again, replace workers and remove the pid file. A
Unix socket file is handed to the user so it can be removed or re-used later.

Names are resolved at start-up, so a typo in ``--user`` is a configuration error (exit
2) before anything is bound or forked, not a crash loop of workers. With ``--user`` and
no ``--group``, the group is the user's primary group (what ``su`` and systemd's
``User=`` do; gunicorn would keep root's group, which surprises).
"""
from __future__ import annotations

import grp
import logging
import os
import pwd
from dataclasses import dataclass
from typing import Iterable

from ..config import Config, ConfigError
from ..server.listeners import Listener

__all__ = ["Credentials", "resolve", "switch_to", "apply_umask", "hand_over_sockets",
           "hand_over_log_files"]

logger = logging.getLogger("gannet.error")


@dataclass(frozen=True)
class Credentials:
    """Who the app runs as; ``name`` (when the user has one) gives the supplementary
    groups through initgroups."""

    uid: int
    gid: int
    name: str | None

    def __str__(self) -> str:
        return f"{self.name or self.uid} (uid {self.uid}, gid {self.gid})"


def resolve(config: Config) -> Credentials | None:
    """The credentials ``--user``/``--group`` ask for, or None when neither is given.

    Raises ConfigError for an unknown name, or when switching needs root and we are not."""
    user, group = config.user, config.group
    if user is None and group is None:
        return None
    uid, gid, name = os.geteuid(), os.getegid(), None
    if user is not None:
        entry = _lookup(user, pwd.getpwnam, pwd.getpwuid, "-u/--user", "user")
        if entry is None:
            uid = int(user)
            if group is None and os.geteuid() == 0 and uid != 0:
                # no passwd entry, so no primary group: keeping root's group (gid 0, as
                # gunicorn would) leaves the app every file root's group may read or write
                raise ConfigError(f"-u/--user {user}: uid {user} has no passwd entry, so it "
                                  "has no primary group; give -g/--group as well")
        else:
            uid, gid, name = entry.pw_uid, entry.pw_gid, entry.pw_name
    if group is not None:
        entry = _lookup(group, grp.getgrnam, grp.getgrgid, "-g/--group", "group")
        gid = int(group) if entry is None else entry.gr_gid
    credentials = Credentials(uid, gid, name)
    if os.geteuid() != 0 and (uid, gid) != (os.geteuid(), os.getegid()):
        raise ConfigError(f"-u/--user, -g/--group: switching to {credentials} needs root; "
                          f"Gannet runs as uid {os.geteuid()}")
    return credentials


def _lookup(value: str, by_name, by_id, option: str, what: str):  # type: ignore[no-untyped-def]
    """The passwd/group entry for a name or a number; None for a number without one
    (a bare id is allowed, as in gunicorn and chown)."""
    if value.isdigit():
        try:
            return by_id(int(value))
        except KeyError:
            return None
    try:
        return by_name(value)
    except KeyError:
        raise ConfigError(f"{option}: no such {what}: {value!r}") from None


def switch_to(credentials: Credentials | None) -> None:
    """Become ``credentials`` for good: groups first (they need root), then the user."""
    if credentials is None:
        return
    if (credentials.uid, credentials.gid) == (os.geteuid(), os.getegid()) and os.geteuid() != 0:
        return
    try:
        if credentials.name is not None:
            os.initgroups(credentials.name, credentials.gid)
        else:
            os.setgroups([credentials.gid])
        os.setgid(credentials.gid)
        os.setuid(credentials.uid)
    except OSError as exc:
        raise ConfigError(f"-u/--user, -g/--group: cannot switch to {credentials}: "
                          f"{exc.strerror or exc}") from None
    logger.info("Process [%d] runs as %s", os.getpid(), credentials)


def apply_umask(config: Config) -> None:
    """Set ``--umask`` for this process (and so for the workers it forks)."""
    umask = config.umask
    if umask is not None:
        os.umask(umask)


def hand_over_sockets(listeners: Iterable[Listener], config: Config,
                      credentials: Credentials | None) -> None:
    """The Unix socket files we created: mode 0o666 less ``--umask`` (listeners.py sets
    0o666 for everyone otherwise), owned by the user the app runs as."""
    umask = config.umask
    for listener in listeners:
        if not listener.path:
            continue
        try:
            if umask is not None:
                os.chmod(listener.path, 0o666 & ~umask)
            if credentials is not None:
                os.chown(listener.path, credentials.uid, credentials.gid)
        except OSError as exc:
            logger.warning("Cannot set the owner or mode of %s: %s", listener.path,
                           exc.strerror or exc)


def hand_over_log_files(credentials: Credentials | None) -> None:
    """Give the files --log-config opened (as root) to the user, as gunicorn does: a worker
    reopens them by name on USR1 (logrotate), and a root-owned 0644 file would refuse it,
    closing its log for good."""
    if credentials is None:
        return
    for path in _log_file_paths():
        try:
            os.chown(path, credentials.uid, credentials.gid)
        except OSError as exc:
            logger.warning("Cannot give the log file %s to %s: %s (USR1 cannot reopen it)",
                           path, credentials, exc.strerror or exc)


def _log_file_paths() -> set[str]:
    loggers = [logging.getLogger()] + [item for item in logging.root.manager.loggerDict.values()
                                       if isinstance(item, logging.Logger)]
    return {handler.baseFilename for item in loggers for handler in item.handlers
            if isinstance(handler, logging.FileHandler)}
