"""Find the application: "pkg.mod:attr.sub", factories, and which interface it speaks.

Detection never guesses silently: the chosen interface is logged, and an ambiguous object
is treated as ASGI 3 only when its call signature fits ``(scope, receive, send)``.
"""
from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import sys
from typing import Any, Callable

__all__ = ["AppLoadError", "import_from_string", "load_app", "detect_interface", "ASGI2Adapter"]

logger = logging.getLogger("gannet.error")


class AppLoadError(Exception):
    """The app could not be imported or built; ``str()`` is one line for the user."""


def import_from_string(target: str) -> Any:
    module_name, sep, attrs = target.partition(":")
    if not sep or not module_name or not attrs:
        raise AppLoadError(f"APP must look like 'module:attribute', got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name or module_name.startswith(f"{exc.name}."):
            raise AppLoadError(f"could not import module {module_name!r}: {exc}") from exc
        raise  # the app's module exists but one of its own imports failed
    obj: Any = module
    try:
        for attr in attrs.split("."):
            obj = getattr(obj, attr)
    except AttributeError:
        raise AppLoadError(f"attribute {attrs!r} not found in module {module_name!r}") from None
    return obj


def load_app(app: Any, *, factory: bool = False, app_dir: str | None = None) -> Any:
    if app_dir is not None and app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    if isinstance(app, str):
        app = import_from_string(app)
    if factory:
        if not callable(app):
            raise AppLoadError("--factory was given but the app is not callable")
        app = app()
    elif inspect.isfunction(app) and not _looks_like_app(app):
        logger.warning("the app looks like a factory (it takes no arguments); did you mean --factory?")
    if not callable(app):
        raise AppLoadError(f"the app is not callable (got {type(app).__name__})")
    return app


def _looks_like_app(fn: Callable) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return len(params) > 0


def _positional_count(fn: Any) -> int | None:
    """Positional parameters of ``fn``; -1 for ``*args``; None when it cannot be told."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    count = 0
    for param in sig.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return -1
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def detect_interface(app: Any) -> str:
    """Return 'asgi3', 'asgi2' or 'wsgi' for an app object."""
    if inspect.isclass(app):
        # Class-style ASGI 2 is instantiated with the scope, and its instances have an
        # async __call__(receive, send). PEP 3333 allows a class as a WSGI app too:
        # Class(environ, start_response) returns the iterable.
        if asyncio.iscoroutinefunction(getattr(app, "__call__", None)):
            return "asgi2"
        return "wsgi" if _positional_count(app) == 2 else "asgi2"
    call = app if inspect.isroutine(app) else getattr(app, "__call__", None)
    if asyncio.iscoroutinefunction(call) or asyncio.iscoroutinefunction(app):
        return "asgi3"
    count = _positional_count(app)
    if count == 2:
        return "wsgi"
    if count == 1:
        return "asgi2"
    if count == -1:
        # A plain (not async) callable taking *args: what WSGI middleware and
        # wsgiref.validate return. ASGI wrappers are coroutine functions, caught above.
        logger.warning("the app takes *args and is not async: serving it as WSGI; "
                       "pass --interface to choose explicitly")
        return "wsgi"
    return "asgi3"


class ASGI2Adapter:
    """Run an ASGI 2 (double-callable) app as ASGI 3."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        instance = self.app(scope)
        await instance(receive, send)
