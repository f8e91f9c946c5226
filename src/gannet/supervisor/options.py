"""Whether a run has a master, and how many workers it starts.

``gannet APP`` alone stays one process, exactly as before the supervisor existed. The
master runs when the number of workers was given by any source (``-w``,
``GANNET_WORKERS``, the config file) or by ``WEB_CONCURRENCY`` (read as uvicorn and
gunicorn read it: below every Gannet source), and when an option that only a master can
honour was given (``--timeout``, ``--preload``, ``--max-requests-jitter``).
"""
from __future__ import annotations

import os
from typing import Mapping

from ..config import Config, ConfigError

__all__ = ["worker_count", "MASTER_ONLY"]

MASTER_ONLY = ("workers", "timeout", "preload", "max_requests_jitter")


def worker_count(config: Config, environ: Mapping[str, str] | None = None) -> int | None:
    """The number of workers for the master, or None for one process without a master."""
    env = os.environ if environ is None else environ
    web_concurrency = None
    if config.sources.get("workers", "default") == "default" and env.get("WEB_CONCURRENCY"):
        raw = env["WEB_CONCURRENCY"]
        try:
            web_concurrency = int(raw)
        except ValueError:
            raise ConfigError(f"-w/--workers (from WEB_CONCURRENCY): expected an integer, "
                              f"got {raw!r}") from None
        if web_concurrency < 1:
            raise ConfigError(f"-w/--workers (from WEB_CONCURRENCY): must be at least 1, "
                              f"got {web_concurrency}")
    if web_concurrency is None and all(config.sources.get(name, "default") == "default"
                                       for name in MASTER_ONLY):
        return None
    return web_concurrency or config.workers  # type: ignore[attr-defined]
