"""USR1's reopen of log files (supervisor/logfiles.py), as a unit: what happens when the
new file cannot be opened."""
from __future__ import annotations

import logging
import os

from contextlib import contextmanager

from gannet.supervisor.logfiles import reopen_log_files


@contextmanager
def _captured(logger: logging.Logger):
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Keep(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def test_a_file_that_cannot_be_reopened_keeps_logging_to_the_old_one(tmp_path):
    # The log's folder moved away (its path no longer exists): opening by name fails.
    # Before: the old stream was closed first, the open raised, and every later record
    # was lost ("I/O operation on closed file").
    folder = tmp_path / "logs"
    folder.mkdir()
    handler = logging.FileHandler(folder / "app.log")
    logger = logging.getLogger("gannet.test.logfiles")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("before")
        os.rename(folder, tmp_path / "moved")
        with _captured(logging.getLogger("gannet.error")) as warnings:
            reopen_log_files()  # counts only files really reopened
        # the warning goes to gannet.error (not to the logger whose handler failed)
        assert any("cannot reopen" in message for message in warnings), warnings
        logger.warning("after")
        handler.flush()
        text = (tmp_path / "moved" / "app.log").read_text()
        assert "before" in text and "after" in text
        assert not handler.stream.closed
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_a_reopen_switches_to_the_new_file(tmp_path):
    path = tmp_path / "app.log"
    handler = logging.FileHandler(path)
    logger = logging.getLogger("gannet.test.logfiles2")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("old")
        os.rename(path, tmp_path / "app.log.1")  # logrotate's move
        reopen_log_files()
        logger.warning("new")
        handler.flush()
        assert path.read_text().strip() == "new"
        assert (tmp_path / "app.log.1").read_text().strip() == "old"
    finally:
        logger.removeHandler(handler)
        handler.close()
