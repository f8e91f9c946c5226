"""The master and its worker processes (docs/workers.md).

``Arbiter`` binds every listener once, forks the workers (``worker.py``), and watches
them: replaces the dead, kills the hung after logging what they were doing, reloads on
HUP without a failed request. ``worker_count`` decides whether a run needs it at all.
"""
from __future__ import annotations

from .arbiter import Arbiter, WorkerProcess
from .hooks import Hooks
from .options import worker_count

__all__ = ["Arbiter", "Hooks", "WorkerProcess", "worker_count"]
