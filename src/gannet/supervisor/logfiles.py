"""USR1: reopen log files, so logrotate can move them away (``postrotate kill -USR1``)."""
from __future__ import annotations

import logging

__all__ = ["reopen_log_files"]

logger = logging.getLogger("gannet.error")


def reopen_log_files() -> int:
    """Reopen every logging.FileHandler's file by name; returns how many were reopened.
    Streams to stderr/stdout have nothing to reopen."""
    loggers = [logging.getLogger()] + [item for item in logging.root.manager.loggerDict.values()
                                       if isinstance(item, logging.Logger)]
    seen: set[int] = set()
    reopened = 0
    failed: list[tuple[str, OSError]] = []
    for owner in loggers:
        for handler in owner.handlers:
            if not isinstance(handler, logging.FileHandler) or id(handler) in seen:
                continue
            seen.add(id(handler))
            handler.acquire()
            try:
                try:  # the new file first: if it cannot be opened, the old one still logs
                    fresh = handler._open()
                except OSError as exc:
                    failed.append((handler.baseFilename, exc))
                    continue
                old, handler.stream = handler.stream, fresh
                if old is not None:
                    old.close()
                reopened += 1
            finally:
                handler.release()
    for path, exc in failed:  # logged once no handler's lock is held
        logger.warning("USR1: cannot reopen %s (%s); still logging to the old file", path, exc)
    return reopened
