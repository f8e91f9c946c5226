"""Server hooks under gunicorn's names, called by the arbiter and its workers.

Every hook is a no-op here; a Python config file (``-c gannet.conf.py``, config/pyconfig.py)
fills them from a gunicorn.conf.py's functions of the same names (hooks_from_functions).
A hook that raises is logged and the server goes on: a broken hook must not take the fleet
down.

Where each one runs: ``on_starting``, ``on_reload``, ``when_ready``, ``pre_fork``,
``child_exit``, ``nworkers_changed`` and ``on_exit`` in the master; ``post_fork``,
``post_worker_init``, ``worker_int``, ``worker_abort`` and ``worker_exit`` in the worker.
"""
from __future__ import annotations

import logging
from typing import Any

__all__ = ["Hooks", "call_hook", "hooks_from_functions"]

logger = logging.getLogger("gannet.error")


class Hooks:
    """No-op hooks; override any of them (``arbiter`` is the Arbiter, ``worker`` a
    supervisor.arbiter.WorkerProcess)."""

    def on_starting(self, arbiter: Any) -> None:
        """Before the master binds its sockets."""

    def on_reload(self, arbiter: Any) -> None:
        """A rolling reload begins (HUP, or a reloader's request)."""

    def when_ready(self, arbiter: Any) -> None:
        """The sockets are bound (and the app preloaded); workers are about to start."""

    def pre_fork(self, arbiter: Any, worker: Any) -> None:
        """In the master, just before a worker is forked."""

    def post_fork(self, arbiter: Any, worker: Any) -> None:
        """In the new worker, just after the fork."""

    def post_worker_init(self, worker: Any) -> None:
        """In the worker, once it accepts connections (after the lifespan startup)."""

    def worker_int(self, worker: Any) -> None:
        """In the worker, on SIGINT or SIGQUIT."""

    def worker_abort(self, worker: Any) -> None:
        """In the worker, when the master found it hung (before its stacks are dumped)."""

    def worker_exit(self, arbiter: Any, worker: Any) -> None:
        """In the worker, just before it exits."""

    def child_exit(self, arbiter: Any, worker: Any) -> None:
        """In the master, after a worker exited and was reaped."""

    def nworkers_changed(self, arbiter: Any, new_value: int, old_value: int) -> None:
        """In the master, after TTIN/TTOU changed the number of workers."""

    def on_exit(self, arbiter: Any) -> None:
        """In the master, just before it exits."""


def call_hook(hooks: Hooks, name: str, *args: Any) -> None:
    """Run one hook; log what it raises instead of letting it stop the server."""
    try:
        getattr(hooks, name)(*args)
    except Exception:  # noqa: BLE001 - user code
        logger.exception("Error in the %s hook", name)


# Which arguments of each hook are the master and which a worker, in gunicorn's order:
# s = server (the Arbiter), w = worker (a WorkerProcess), - = passed as it is.
_ROLES = {"on_starting": "s", "on_reload": "s", "when_ready": "s", "pre_fork": "sw",
          "post_fork": "sw", "post_worker_init": "w", "worker_int": "w", "worker_abort": "w",
          "worker_exit": "sw", "child_exit": "sw", "nworkers_changed": "s--", "on_exit": "s"}


def hooks_from_functions(functions: dict[str, Any], cfg: Any) -> Hooks:
    """Hooks calling a gunicorn.conf.py's functions with gunicorn's signatures; ``server``
    and ``worker`` also offer gunicorn's ``.log`` and ``.cfg`` (``cfg`` here), so hooks
    written for gunicorn (``server.log.info(...)``, ``worker.pid``) run unchanged."""
    hooks = Hooks()
    for name, function in functions.items():
        setattr(hooks, name, _adapted(function, _ROLES[name], cfg))
    return hooks


def _adapted(function: Any, roles: str, cfg: Any) -> Any:
    def call(*args: Any) -> Any:
        return function(*(_HookView(arg, cfg) if role in "sw" else arg
                          for role, arg in zip(roles, args)))

    return call


class _HookView:
    """The Arbiter or a WorkerProcess as a hook sees it: every attribute of the object
    (``pid``, ``age``, ``num_workers``...), plus gunicorn's ``log`` and ``cfg``."""

    def __init__(self, target: Any, cfg: Any) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "cfg", cfg)
        object.__setattr__(self, "log", logger)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_target"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_target"), name, value)

    def __repr__(self) -> str:
        return f"<{object.__getattribute__(self, '_target')!r} as a hook sees it>"
