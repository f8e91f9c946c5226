"""Find the application: "pkg.mod:attr.sub", a mod_wsgi script file, factories, and which
interface it speaks.

Detection never guesses silently: the chosen interface is logged, and an ambiguous object
is treated as ASGI 3 only when its call signature fits ``(scope, receive, send)``.

When loading fails, ``AppLoadError``'s message is all the user sees (cli.py logs it and
exits 4; a supervisor may one day receive it pickled, so it stays a plain string): the
exception, the frames of the app and of the libraries it called (never Gannet's own or the
import machinery's, told apart by where those packages really live, not by a folder's
name), and Python's own caret for a SyntaxError. At ``--log-level debug`` the message
carries the whole traceback instead. A missing attribute names what looks like an app.

A script file (``site.wsgi``, ``path/to/wsgi.py``, optionally ``:callable``) is loaded the
way mod_wsgi loads a WSGIScriptAlias target (see "script files" below): run as a module
named ``_mod_wsgi_<md5 of its absolute path>``, registered in sys.modules while it runs,
with nothing added to sys.path (mod_wsgi-express puts its working directory there, as
--app-dir's default ``.`` does). One departure: a ``.py`` script that ``import`` would
find under its own name (``gannet app.py`` with the working directory on sys.path) is
registered under that name too, so ``from app import db`` in the app's other modules
finds it instead of running the file a second time.
"""
from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import logging
import os
import sys
import traceback
from types import ModuleType
from typing import Any, Callable

__all__ = ["AppLoadError", "import_from_string", "load_app", "detect_interface", "ASGI2Adapter",
           "describe_load_error", "script_file"]

logger = logging.getLogger("gannet.error")

# Tried in this order when APP names a module and no attribute: gunicorn's one default
# (``application``), then the name most ASGI frameworks' docs use.
DEFAULT_ATTRIBUTES = ("application", "app")
_MISSING = object()


class AppLoadError(Exception):
    """The app could not be imported or built; ``str()`` is the whole message for the user
    (a first line saying what failed, then where, possibly over several lines)."""


def import_from_string(target: str) -> Any:
    """The object ``target`` names: ``module:attr.sub``, or a bare ``module`` whose
    ``application`` (gunicorn's default) or else ``app`` is taken; or a script file's
    (``path/to/site.wsgi[:attr.sub]``, see "script files" below) with the same defaults."""
    script = _script_target(target, warn=True)
    if script is not None:
        path, attrs = script
        if attrs == "":
            raise AppLoadError(f"APP {target!r} ends with ':': name the callable after it, or "
                               "leave the ':' out to use 'application'")
        module = _load_script(path)
        return _resolve(module, path, attrs, "script")
    module_name, sep, attrs = target.partition(":")
    if not module_name or (sep and not attrs):
        raise AppLoadError(f"APP must look like 'module:attribute', got {target!r}")
    module = _import_module(module_name)
    return _resolve(module, module_name, attrs if sep else None, "module")


def _resolve(module: ModuleType, shown: str, attrs: str | None, kind: str) -> Any:
    """``attrs`` ("obj.sub") looked up in ``module``; None takes the default names."""
    if attrs is None:
        return _default_attribute(module, shown, kind)
    obj: Any = module
    for depth, attr in enumerate(attrs.split(".")):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            if depth:
                missing = ".".join(attrs.split(".")[:depth + 1])
                raise AppLoadError(f"attribute {missing!r} not found in {kind} {shown!r}") from None
            raise AppLoadError(f"attribute {attr!r} not found in {kind} {shown!r}"
                               f"{_suggestion(module, shown)}") from None
    return obj


def _import_module(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name or module_name.startswith(f"{exc.name}."):
            raise AppLoadError(f"could not import module {module_name!r}: {exc}"
                               f"{_no_script_either(module_name)}") from exc
        # The app's module exists but one of its own imports failed: show where.
        raise AppLoadError(describe_load_error(exc, f"importing {module_name!r}")) from exc
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the app's import-time code
        raise AppLoadError(describe_load_error(exc, f"importing {module_name!r}")) from exc


def _default_attribute(module: ModuleType, shown: str, kind: str = "module") -> Any:
    for attr in DEFAULT_ATTRIBUTES:
        # One getattr per name: a module's __getattr__ (PEP 562, lazy apps) runs once.
        found = getattr(module, attr, _MISSING)
        if found is not _MISSING:
            logger.info("No attribute given: using '%s:%s'", shown, attr)
            return found
    names = " or ".join(repr(attr) for attr in DEFAULT_ATTRIBUTES)
    entry = " (mod_wsgi's entry point is 'application')" if kind == "script" else ""
    raise AppLoadError(f"{kind} {shown!r} has no {names}{entry} (tried for APP without "
                       f"':attribute'): add 'application = ...' to it, or name the app as "
                       f"'{shown}:NAME'{_suggestion(module, shown)}")


def load_app(app: Any, *, factory: bool = False, app_dir: str | None = None) -> Any:
    if app_dir is not None and app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    name = app if isinstance(app, str) else type(app).__name__
    if isinstance(app, str):
        app = import_from_string(app)
    if factory:
        if not callable(app):
            raise AppLoadError("--factory was given but the app is not callable")
        try:
            app = app()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the app's own factory
            raise AppLoadError(describe_load_error(exc, f"calling the factory {name!r}")) from exc
    elif inspect.isfunction(app) and not _looks_like_app(app):
        logger.warning("the app looks like a factory (it takes no arguments); did you mean --factory?")
    if not callable(app):
        raise AppLoadError(f"the app is not callable (got {type(app).__name__})")
    return app


# ---------------------------------------------------------------------- script files
# What tells a script file from a module name. A module name never holds a path separator,
# so anything with one is a path. Without one, a name ending in .wsgi or .py is a file when
# such a file exists, unless the same words also name an importable module (``mysite.wsgi``
# next to a ``mysite/wsgi.py``): that form was served before script files were, so it
# still is, with a warning. A file without a suffix needs a separator: ``./site``.
SCRIPT_SUFFIXES = (".wsgi", ".py")
# mod_wsgi's name for a script's module (wsgi_module_name() in mod_wsgi's C source:
# "_mod_wsgi_" + MD5 of the full path): objects pickled under mod_wsgi from classes the
# script defines name this module, and unpickle here when the path is the same.
SCRIPT_MODULE_PREFIX = "_mod_wsgi_"
_LISTED_SCRIPTS = ("wsgi.py", "asgi.py", "app.py", "application.py")


def script_file(target: str) -> str | None:
    """The absolute path of the script file APP names (``site.wsgi``, ``path/to/wsgi.py``,
    with or without ``:callable``) when it exists, else None: --reload must watch that file
    wherever it lies and whatever its suffix."""
    script = _script_target(target)
    if script is None:
        return None
    path = os.path.abspath(script[0])
    return path if os.path.isfile(path) else None


def _script_target(target: str, warn: bool = False) -> tuple[str, str | None] | None:
    """(path, attributes or None) when ``target`` names a script file, None for a module.
    An existing file is taken whole; otherwise what follows the last ':' is the callable
    when it is a dotted name (a missing '/srv/a:b/site.wsgi' stays one path)."""
    if _has_separator(target) and os.path.isfile(target):
        return target, None
    path, sep, attrs = target.rpartition(":")
    if sep and path and (attrs == "" or _is_dotted(attrs)) and _names_script(path, warn):
        return path, attrs
    if _names_script(target, warn):
        return target, None  # with a separator, never a module: the loader says what is wrong
    return None


def _names_script(text: str, warn: bool) -> bool:
    if _has_separator(text):
        return True
    if not text.lower().endswith(SCRIPT_SUFFIXES) or not os.path.isfile(text):
        return False
    if _module_exists(text):
        if warn:
            logger.warning("'%s' names both a module and the file %s: serving the module, as "
                           "before script files were served; write './%s' for the file",
                           text, os.path.abspath(text), text)
        return False
    return True


def _has_separator(text: str) -> bool:
    return os.sep in text or "/" in text or bool(os.altsep and os.altsep in text)


def _is_dotted(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def _module_exists(name: str) -> bool:
    """Whether the dotted ``name`` can be imported, found without importing anything (a
    package's __init__ must not run just to tell a file from a module)."""
    parts = name.split(".")
    if len(parts) < 2 or not _is_dotted(name):
        return False
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name: found, not imported
        for depth in range(1, len(parts)):
            if spec is None or spec.submodule_search_locations is None:
                return False
            spec = importlib.machinery.PathFinder.find_spec(
                ".".join(parts[:depth + 1]), list(spec.submodule_search_locations))
    except (ImportError, ValueError):
        return False
    return spec is not None


class _ScriptLoader(importlib.machinery.SourceFileLoader):
    """Compiles the script from its source each time and writes no bytecode, as mod_wsgi
    does: ``site.wsgi`` would otherwise share ``__pycache__/site.*.pyc`` with a ``site.py``
    beside it."""

    def __init__(self, fullname: str, path: str, source: bytes) -> None:
        super().__init__(fullname, path)
        self._source = source

    def get_code(self, fullname: str) -> Any:
        # bytes, so a PEP 263 coding line or a BOM is honoured as Python honours it.
        return compile(self._source, self.path, "exec", dont_inherit=True)


def _load_script(shown: str) -> ModuleType:
    """Run the script file ``shown`` (as given; relative to the working directory, as
    mod_wsgi-express resolves it) as a module, the way mod_wsgi does: named after its
    path's MD5, ``__file__`` set, in sys.modules while it runs (Flask's root_path and
    pickle find it there) and removed again if it fails, not ``__main__`` (its
    ``if __name__ == "__main__":`` development server stays off)."""
    path = os.path.abspath(shown)
    if os.path.isdir(path):
        raise AppLoadError(f"{shown!r} is a directory, not a script file{_scripts_in(path, shown)}")
    if not os.path.exists(path):
        where = f" (looked for {path})" if path != shown else ""
        hint = f"; did you mean '{shown}.py'?" if os.path.isfile(path + ".py") else ""
        raise AppLoadError(f"script file {shown!r} not found{where}{hint}")
    try:
        with open(path, "rb") as file:
            source = file.read()
    except OSError as exc:
        raise AppLoadError(f"cannot read the script file {shown!r}: {exc.strerror or exc}") from exc
    name = SCRIPT_MODULE_PREFIX + hashlib.md5(path.encode("utf-8", "surrogateescape"),
                                              usedforsecurity=False).hexdigest()
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == path:
        return loaded  # imported once per process, as a module would be
    logger.info("Loading the script file %s as module %s", path, name)
    loader = _ScriptLoader(name, path, source)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    spec.cached = None  # nothing is written to __pycache__
    module = importlib.util.module_from_spec(spec)
    names = [name]
    alias = _importable_as(path)
    if alias is not None:
        # ``gannet app.py`` with views.py saying ``from app import db`` (the working
        # directory is on sys.path): that import must find this module, not run the file
        # again as a second module (mod_wsgi would: two apps, the served one without the
        # routes views.py added; two pools, two schedulers).
        logger.info("The script file %s is also module '%s' (what 'import %s' finds): both "
                    "names are this one module", path, alias, alias)
        names.append(alias)
    for each in names:
        sys.modules[each] = module
    try:
        loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the script's own code
        for each in names:
            if sys.modules.get(each) is module:
                del sys.modules[each]
        raise AppLoadError(describe_load_error(exc, f"running the script {shown!r}")) from exc
    return module


def _importable_as(path: str) -> str | None:
    """The top-level module name under which ``import`` would load the file ``path`` itself
    (a ``.py`` file in a sys.path directory, not yet imported), else None. Found without
    importing anything."""
    stem, suffix = os.path.splitext(os.path.basename(path))
    if suffix != ".py" or not stem.isidentifier() or stem in sys.modules:
        return None
    try:
        # The whole import system (built-in and frozen modules come before sys.path): a
        # script named array.py must not become the 'array' module. A top-level name is
        # found without importing anything.
        spec = importlib.util.find_spec(stem)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or spec.submodule_search_locations is not None:
        return None
    try:
        return stem if os.path.samefile(spec.origin, path) else None
    except OSError:
        return None


def _scripts_in(directory: str, shown: str) -> str:
    try:
        names = sorted(entry for entry in os.listdir(directory)
                       if (entry.lower().endswith(".wsgi") or entry in _LISTED_SCRIPTS)
                       and os.path.isfile(os.path.join(directory, entry)))
    except OSError:
        return ""
    if not names:
        return "; name the file that defines 'application'"
    listed = ", ".join(repr(os.path.join(shown, entry)) for entry in names[:_MAX_LISTED])
    return f"; script files in it: {listed}"


def _no_script_either(module_name: str) -> str:
    """For ``site.wsgi`` that is neither a module nor a file: say both were looked for."""
    if not module_name.lower().endswith(SCRIPT_SUFFIXES):
        return ""
    return f"; no script file {module_name!r} either (looked for {os.path.abspath(module_name)})"


# ---------------------------------------------------------------------- load errors
_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"
# Where Gannet and the import machinery really live: their frames are not the app's,
# wherever the app sits (even under a folder named gannet).
_GANNET_DIR = os.path.realpath(os.path.dirname(__file__))
_IMPORTLIB_DIR = os.path.realpath(os.path.dirname(importlib.__file__))
_ASYNCIO_DIR = os.path.realpath(os.path.dirname(asyncio.__file__))


def describe_load_error(exc: BaseException, doing: str) -> str:
    """The message for an error the app raised while ``doing`` (e.g. "importing 'x'"):
    the exception first, then Python's traceback without Gannet's frames (all frames at
    --log-level debug, read from the ``gannet.error`` logger's effective level)."""
    text = str(exc).strip()
    headline = type(exc).__name__ + (f": {text.splitlines()[0]}" if text else "")
    if logger.isEnabledFor(logging.DEBUG):
        full = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip("\n")
        return f"{headline}\nRaised while {doing}; the full traceback:\n{full}"
    body = "".join(_format_without_our_frames(exc)).rstrip("\n")
    return (f"{headline}\nRaised while {doing} (most recent call last; Gannet's own frames "
            f"left out, --log-level debug shows them):\n{body}")


def _format_without_our_frames(exc: BaseException) -> list[str]:
    """Like traceback.format_exception, chained exceptions included, minus our frames."""
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link: str | None = None  # how the exception printed next follows from this one
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            link, current = _CAUSE, current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            link, current = _CONTEXT, current.__context__
        else:
            current = None
    lines: list[str] = []
    for current, link in reversed(chain):
        lines.extend(_format_frames(_app_frames(traceback.extract_tb(current.__traceback__))))
        lines.extend(traceback.format_exception_only(type(current), current))
        if link is not None:
            lines.append(f"\n{link}\n\n")
    return lines


# A long traceback (a RecursionError through two functions has ~1000 distinct frames)
# shows its first and last frames: where the app started and where it failed.
_FIRST_FRAMES, _LAST_FRAMES = 10, 30


def _format_frames(frames: list[traceback.FrameSummary]) -> list[str]:
    if len(frames) <= _FIRST_FRAMES + _LAST_FRAMES:
        return traceback.StackSummary.from_list(frames).format()
    left_out = len(frames) - _FIRST_FRAMES - _LAST_FRAMES
    return [*traceback.StackSummary.from_list(frames[:_FIRST_FRAMES]).format(),
            f"  ... {left_out} frames left out (--log-level debug shows them) ...\n",
            *traceback.StackSummary.from_list(frames[-_LAST_FRAMES:]).format()]


def _app_frames(frames: traceback.StackSummary) -> list[traceback.FrameSummary]:
    """The frames of the app and its libraries: the event loop's frames are dropped only
    before the app's first frame (an app may run a loop of its own at import)."""
    start = 0
    while start < len(frames) and (_is_ours(frames[start].filename)
                                   or _is_loop_machinery(frames[start].filename)):
        start += 1
    return [frame for frame in frames[start:] if not _is_ours(frame.filename)]


def _is_ours(filename: str) -> bool:
    """A frame of Gannet or of the import machinery."""
    if filename.startswith("<frozen importlib"):
        return True
    return _is_under(filename, _GANNET_DIR) or _is_under(filename, _IMPORTLIB_DIR)


def _is_loop_machinery(filename: str) -> bool:
    if filename.startswith("uvloop/"):  # uvloop's compiled frames carry relative names
        return True
    return _is_under(filename, _ASYNCIO_DIR)


def _is_under(filename: str, directory: str) -> bool:
    if filename.startswith("<"):
        return False
    return os.path.realpath(filename).startswith(directory + os.sep)


# ---------------------------------------------------------------------- what looks like an app
_MAX_LISTED = 5


def _suggestion(module: ModuleType, module_name: str) -> str:
    """A hint naming the module's callables that look like apps, for a missing attribute."""
    apps, factories = _app_candidates(module)
    if len(apps) == 1:
        return f"; did you mean '{module_name}:{apps[0]}'?"
    if apps:
        listed = ", ".join(f"'{module_name}:{name}'" for name in apps[:_MAX_LISTED])
        return f"; callables in it that look like apps: {listed}"
    if factories:
        listed = ", ".join(f"'{module_name}:{name}'" for name in factories[:_MAX_LISTED])
        return f"; did you mean {listed} with --factory?"
    return "; nothing in it looks like an ASGI or WSGI app"


def _app_candidates(module: ModuleType) -> tuple[list[str], list[str]]:
    """Top-level names that look like apps, and functions that look like app factories.
    Imported classes and functions, modules and private names are the libraries' or the
    module's plumbing, not its app."""
    apps: list[str] = []
    factories: list[str] = []
    for name, obj in list(vars(module).items()):
        try:
            if name.startswith("_") or isinstance(obj, ModuleType) or not callable(obj):
                continue
            if _is_app_shaped(obj, module.__name__):
                apps.append(name)
            elif _is_factory_shaped(obj, module.__name__, name):
                factories.append(name)
        except Exception:  # noqa: BLE001 - e.g. Flask's request proxy, which raises outside
            continue  # a request when inspected: the hint must never replace the real error
    return apps, factories


def _is_app_shaped(obj: Any, module_name: str) -> bool:
    if inspect.isclass(obj):
        if obj.__module__ != module_name:
            return False
        call = obj.__dict__.get("__call__")
        if asyncio.iscoroutinefunction(call):  # class-style ASGI 2: Class(scope)(receive, send)
            return _positional_count(call) == 3
        return _positional_count(obj) == 2 and hasattr(obj, "__iter__")  # PEP 3333 class
    if inspect.isfunction(obj):
        if obj.__module__ != module_name:
            return False
        return _fits_app_signature(obj, obj)
    if inspect.isroutine(obj) or type(obj).__module__ in ("typing", "typing_extensions", "builtins"):
        return False
    return _fits_app_signature(obj, getattr(type(obj), "__call__", None))


def _fits_app_signature(obj: Any, call: Any) -> bool:
    """``async (scope, receive, send)`` or ``(environ, start_response)``."""
    count = _positional_count(obj)
    if asyncio.iscoroutinefunction(call):
        return count in (3, -1)
    return count == 2


def _is_factory_shaped(obj: Any, module_name: str, name: str) -> bool:
    return (inspect.isfunction(obj) and obj.__module__ == module_name and "app" in name.lower()
            and not asyncio.iscoroutinefunction(obj) and _positional_count(obj) == 0)


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
