"""Development reload (--reload): watch the files, roll the workers onto the new code.

Theory of operation. The master stays what it is: a ``select`` loop that never imports the
app. A daemon thread runs watchfiles' watcher (inotify on Linux, in Rust, the GIL released
while it waits) over --reload-dir (default: --app-dir, the current directory). A batch of
changes that passes ``ChangeFilter`` calls ``Arbiter.request_reload()``: the rolling
reload HUP does, so new workers import the code from disk and the old ones stop only once
the new ones accept. New code that cannot load (a SyntaxError mid-edit) leaves the old
workers serving, and an app broken from the start leaves the master waiting, until the
next change. --reload-delay is the quiet time that closes a batch: an editor or a
``git checkout`` writing several files gives one reload.
"""
from __future__ import annotations

import copy
import fnmatch
import importlib.util
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable

from ..config import Config, ConfigError

__all__ = ["Reloader", "ChangeFilter", "development_config"]

logger = logging.getLogger("gannet.error")

# uvicorn's defaults, so its users' --reload-include/--reload-exclude behave the same.
DEFAULT_INCLUDES = ("*.py",)
DEFAULT_EXCLUDES = (".*", ".py[cod]", ".sw.*", "~*")
# Directories whose changes are never the app's code (hidden ones, .git and .venv among
# them, are skipped too, and so is any virtualenv, found by its pyvenv.cfg).
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})
MAX_BATCH_MS = 1600  # a batch closes after this long even if changes keep coming
JOIN_GRACE = 1.0  # the watcher sees its stop event within --reload-delay; then this more


def development_config(config: Config) -> Config:
    """--reload's defaults: no hung-worker timeout unless --timeout was given, so a
    ``breakpoint()`` in a request does not get its worker killed after 30 s."""
    if config.sources.get("timeout", "default") != "default":
        return config
    config = copy.copy(config)
    config.timeout = 0  # type: ignore[attr-defined]
    return config


class ChangeFilter:
    """Whether a changed path should reload: watchfiles' ``watch_filter``.

    An extra file (--reload-extra-file) always counts. Otherwise the path must not be in a
    skipped or excluded directory, its name must match an include (default ``*.py``) and
    no exclude. As in uvicorn, a default include named in --reload-exclude is dropped, a
    default exclude named in --reload-include is lifted, and an exclude naming an existing
    directory excludes everything below it. Patterns match from the right (``*.log``,
    ``tmp/*.py``).
    """

    def __init__(self, roots: Iterable[Path], includes: Iterable[str] = (),
                 excludes: Iterable[str] = (), extra_files: Iterable[Path] = (),
                 extra_only_roots: Iterable[Path] = (), cwd: Path | None = None) -> None:
        includes, excludes = list(includes), list(excludes)
        cwd = cwd or Path.cwd()
        self.roots = sorted(roots, key=lambda root: len(root.parts), reverse=True)
        self.extra_files = frozenset(extra_files)
        self.extra_only_roots = frozenset(extra_only_roots)
        self.includes = [p for p in DEFAULT_INCLUDES if p not in excludes]
        self.includes += [p for p in includes if p not in self.includes]
        self.excludes = [p for p in DEFAULT_EXCLUDES if p not in includes]
        self.excluded_dirs: list[Path] = []
        for pattern in excludes:
            candidate = cwd / pattern
            if candidate.is_dir():
                self.excluded_dirs.append(candidate.resolve())
            elif pattern not in self.excludes:
                self.excludes.append(pattern)

    def __call__(self, change: Any, path: str) -> bool:
        changed = Path(path)
        if changed in self.extra_files:
            return True
        root = next((r for r in self.roots if r == changed or r in changed.parents), None)
        if root is None or root in self.extra_only_roots:
            return False
        if any(d == changed or d in changed.parents for d in self.excluded_dirs):
            return False
        if _in_skipped_dir(root, changed):
            return False
        pure = PurePath(path)
        return (any(_matches(pure, p) for p in self.includes)
                and not any(_matches(pure, p) for p in self.excludes))


def _matches(path: PurePath, pattern: str) -> bool:
    if "/" in pattern:
        return path.match(pattern)
    return fnmatch.fnmatchcase(path.name, pattern)


def _in_skipped_dir(root: Path, path: Path) -> bool:
    directory = root
    for part in path.relative_to(root).parts[:-1]:
        directory = directory / part
        if part in SKIPPED_DIRS or part.startswith(".") or _is_virtualenv(directory):
            return True
    return False


@lru_cache(maxsize=1024)
def _is_virtualenv(directory: Path) -> bool:
    return (directory / "pyvenv.cfg").is_file()


class Reloader:
    """Watch what --reload-dir and --reload-extra-file name; call ``on_change`` (the
    arbiter's ``request_reload``) from a thread after each batch of relevant changes.
    Building one checks the paths (ConfigError naming the option)."""

    def __init__(self, config: Config, on_change: Callable[[], None]) -> None:
        cwd = Path.cwd()
        self.on_change = on_change
        self.roots = _watched_dirs(config, cwd)
        given_files = list(config.reload_extra_file)
        script = _script_of(config)  # a script file APP names is watched wherever it lies
        if script is not None and script not in given_files:
            given_files.append(script)
        self.extra_files = [_absolute(cwd, f) for f in given_files]
        extra_only = []
        for extra, given in zip(self.extra_files, given_files):
            if not extra.parent.is_dir():
                raise ConfigError(f"--reload-extra-file {given!r}: its directory does not exist")
            if not any(r == extra.parent or r in extra.parent.parents for r in self.roots):
                extra_only.append(extra.parent)
        self.filter = ChangeFilter(self.roots + extra_only, config.reload_include,
                                   config.reload_exclude, self.extra_files, extra_only, cwd)
        self.watched = self.roots + sorted(set(extra_only))
        self.quiet_ms = max(int(config.reload_delay * 1000), 10)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cwd = cwd

    def start(self) -> None:
        logger.info("Will watch for changes in these directories: %s",
                    [str(root) for root in self.roots])
        if self.extra_files:
            logger.info("and in these files: %s", [str(path) for path in self.extra_files])
        self._thread = threading.Thread(target=self._run, name="gannet-reloader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.quiet_ms / 1000 + JOIN_GRACE)

    def _run(self) -> None:
        try:
            from watchfiles import watch

            # step: how long without a new change closes a batch (--reload-delay), and how
            # often the stop event is checked; a batch never grows past MAX_BATCH_MS.
            for changes in watch(*self.watched, watch_filter=self.filter,
                                 debounce=max(MAX_BATCH_MS, self.quiet_ms),
                                 step=self.quiet_ms, stop_event=self._stop,
                                 raise_interrupt=False):
                if self._stop.is_set():
                    return
                paths = sorted({path for _, path in changes})
                logger.warning("WatchFiles detected changes in %s. Reloading...",
                               ", ".join(repr(self._display(path)) for path in paths))
                forget_bytecode(paths)
                self.on_change()
        except Exception as exc:  # noqa: BLE001 - e.g. the inotify watch limit
            logger.error("--reload stopped watching (%s: %s); the workers keep serving but "
                         "will not reload. On Linux, raise fs.inotify.max_user_watches or set "
                         "WATCHFILES_FORCE_POLLING=1", type(exc).__name__, exc)

    def _display(self, path: str) -> str:
        try:
            return str(Path(path).relative_to(self.cwd))
        except ValueError:
            return path


def forget_bytecode(paths: Iterable[str]) -> None:
    """Remove a changed module's cached bytecode: Python trusts a .pyc whose recorded
    source mtime (whole seconds) and size match, so an edit within the same second that
    keeps the size would otherwise run the old code."""
    for path in paths:
        if not path.endswith(".py"):
            continue
        for optimization in ("", 1, 2):
            try:
                os.unlink(importlib.util.cache_from_source(path, optimization=optimization))
            except (OSError, ValueError, NotImplementedError):
                pass


def _script_of(config: Config) -> str | None:
    if not isinstance(config.app, str):
        return None
    from ..loading import script_file  # no app import: it only looks at the path

    return script_file(config.app)


def _watched_dirs(config: Config, cwd: Path) -> list[Path]:
    """--reload-dir's directories (default --app-dir), absolute, without one inside
    another (the outer one watches it already)."""
    if config.reload_dir:
        given = [("--reload-dir", d) for d in config.reload_dir]
    else:
        given = [("--app-dir", config.app_dir)]
    dirs: list[Path] = []
    for option, name in given:
        path = _absolute(cwd, name)
        if not path.is_dir():
            raise ConfigError(f"{option} {name!r}: not a directory (--reload watches it)")
        dirs.append(path)
    return sorted({d for d in dirs if not any(o in d.parents for o in dirs)})


def _absolute(cwd: Path, name: str) -> Path:
    return (cwd / os.path.expanduser(name)).resolve()
