"""Process titles: ``gannet: master [main:app]`` and ``gannet: worker [main:app]`` in
``ps`` and ``top``, as gunicorn shows them, when ``setproctitle`` is installed
(``pip install setproctitle``, or ``gannet[proctitle]``). Without it nothing changes: a
title is a convenience, never a reason to fail.
"""
from __future__ import annotations

import logging
from typing import Any

__all__ = ["set_title", "title_for"]

logger = logging.getLogger("gannet.error")


def title_for(role: str, app: Any) -> str:
    """``gannet: ROLE [APP]``; an app object (gannet.run) is named by its type."""
    name = app if isinstance(app, str) else type(app).__name__
    return f"gannet: {role} [{name}]"


def set_title(role: str, app: Any) -> None:
    """Set this process's title when setproctitle can."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    try:
        setproctitle(title_for(role, app))
    except Exception:  # noqa: BLE001 - a title must never stop the server
        logger.debug("Cannot set the process title", exc_info=True)
