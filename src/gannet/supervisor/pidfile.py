"""``--pid FILE``: the process id of the master (or of the single process), for scripts
and init systems that signal it.

Written once the sockets are bound and removed at exit. A file that names another live
process means another Gannet (or something else) runs with the same file: starting would
let two servers fight over one pid file, so we refuse, as gunicorn does. A file naming a
dead process is left over from a crash and is replaced. The new content is written to a
temporary file and renamed over the old one, so a reader never sees a half-written pid.
"""
from __future__ import annotations

import logging
import os

from ..server.listeners import BindError

__all__ = ["PidFile", "PidFileError"]

logger = logging.getLogger("gannet.error")


class PidFileError(BindError):
    """The pid file names another live process (or cannot be written). A BindError so it
    ends start-up with status 1, as a port in use does: another instance holds it."""


class PidFile:
    """One pid file; ``create()`` after binding, ``remove()`` at exit."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.pid: int | None = None

    def create(self, pid: int | None = None) -> None:
        """Write ``pid`` (ours by default); refuse when the file names another live process."""
        pid = os.getpid() if pid is None else pid
        existed = os.path.lexists(self.path)  # before the check: what the check saw, or less
        other = self._live_owner()
        if other is not None and other != pid:
            raise PidFileError(f"--pid {self.path}: already running on PID {other} (the pid "
                               "file names a live process; stop it, or remove the file if "
                               "that process is not Gannet)")
        try:
            temporary = self._write_temporary(pid)
        except OSError as exc:
            raise PidFileError(f"--pid {self.path}: cannot write the pid file: "
                               f"{exc.strerror or exc}") from None
        try:
            if not existed:
                _link_or_replace(temporary, self.path)
            else:
                os.replace(temporary, self.path)  # a stale file, or our own
        except FileExistsError:
            owner = self._live_owner()
            raise PidFileError(f"--pid {self.path}: another process wrote the pid file "
                               f"while this one started (PID {owner or 'unknown'})") from None
        except OSError as exc:
            raise PidFileError(f"--pid {self.path}: cannot write the pid file: "
                               f"{exc.strerror or exc}") from None
        finally:
            _unlink(temporary)
        self.pid = pid
        logger.info("Wrote pid %d to %s", pid, self.path)

    def _write_temporary(self, pid: int) -> str:
        """A new file beside the pid file, never an existing path (see the module doc)."""
        directory, name = os.path.split(self.path)
        # os.urandom, not secrets: that would load hashlib and OpenSSL into the master.
        temporary = os.path.join(directory, f".{name}.{os.urandom(8).hex()}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, 0o644)
        try:
            os.fchmod(fd, 0o644)  # readable by the scripts that signal us, whatever the umask
            os.write(fd, f"{pid}\n".encode("ascii"))
        except BaseException:
            os.close(fd)
            _unlink(temporary)
            raise
        os.close(fd)
        return temporary

    def remove(self) -> None:
        """Remove the file if it still holds our pid (a successor may have replaced it)."""
        if self.pid is None:
            return
        if self._read() == self.pid:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("Cannot remove the pid file %s: %s", self.path, exc.strerror or exc)
        self.pid = None

    def _read(self) -> int | None:
        try:
            with open(self.path, encoding="ascii", errors="replace") as handle:
                return int(handle.read().strip() or 0) or None
        except (OSError, ValueError):
            return None  # missing, unreadable or not a number: nothing to protect

    def _live_owner(self) -> int | None:
        pid = self._read()
        if pid is None:
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            logger.info("Replacing the stale pid file %s (PID %d is not running)", self.path, pid)
            return None
        except PermissionError:
            return pid  # alive, owned by another user
        return pid


def _link_or_replace(temporary: str, path: str) -> None:
    """Put ``temporary`` at ``path`` only if nothing is there (FileExistsError otherwise);
    a file system without hard links gets the plain rename."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise
    except OSError:
        os.replace(temporary, path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
