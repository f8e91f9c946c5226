"""Python config files: ``-c gannet.conf.py`` (or ``-c python:pkg.module``) with
gunicorn's setting names and server hooks, so a gunicorn.conf.py moves over by renaming it.

Theory of operation. The file runs as gunicorn runs it: its module-level names are the
configuration, and imports, helper functions and private names are ignored. Each public
name is one of: a Gannet option (spelt as in a TOML file), a gunicorn setting translated
by the table below, a server hook (a callable under a hook's name), or nothing known,
which is ignored as gunicorn ignores it, with a warning when it is close to a setting's
name (a typo must not pass in silence). A gunicorn setting Gannet cannot honour is an
error when ignoring it would weaken security (TLS) or lose logs an operator ships from a
file, and a warning otherwise.

``load_python_config`` returns plain data for Config (values parsed here, so an error
names the file's own key) and the hook functions, which never enter Config (it stays
picklable): ``hooks_for(config)`` finds them in this module's cache in the process that
loaded the file, and runs the file again in any other.
"""
from __future__ import annotations

import builtins
import difflib
import importlib
import logging
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .foreign_flags import FOREIGN_FLAGS
from .settings import BY_NAME, SettingError

__all__ = ["PythonConfig", "is_python_config", "load_python_config", "hooks_for",
           "GunicornCfg", "HOOK_NAMES", "GUNICORN_SETTINGS"]

logger = logging.getLogger("gannet.error")

HOOK_NAMES = ("on_starting", "on_reload", "when_ready", "pre_fork", "post_fork",
              "post_worker_init", "worker_int", "worker_abort", "worker_exit", "child_exit",
              "nworkers_changed", "on_exit")

# gunicorn's settings (27.0), so a name of theirs that Gannet lacks is never ignored in
# silence. Names handled below are listed too; the rest warn with foreign_flags' hint.
GUNICORN_SETTINGS = frozenset("""
config wsgi_app bind backlog workers worker_class threads worker_connections max_requests
max_requests_jitter timeout graceful_timeout keepalive limit_request_line
limit_request_fields limit_request_field_size reload reload_engine reload_extra_files spew
check_config print_config preload_app sendfile reuse_port chdir daemon raw_env pidfile
worker_tmp_dir user group umask initgroups tmp_upload_dir secure_scheme_headers
forwarded_allow_ips accesslog disable_redirect_access_to_syslog access_log_format errorlog
loglevel capture_output logger_class logconfig logconfig_dict logconfig_json syslog_addr
syslog syslog_prefix syslog_facility enable_stdio_inheritance statsd_host dogstatsd_tags
statsd_prefix proc_name default_proc_name pythonpath paste raw_paste_global_conf
on_starting on_reload when_ready pre_fork post_fork post_worker_init worker_int
worker_abort pre_exec pre_request post_request child_exit worker_exit nworkers_changed
on_exit ssl_context proxy_protocol proxy_allow_ips keyfile certfile ssl_version cert_reqs
ca_certs suppress_ragged_eofs do_handshake_on_connect ciphers permit_obsolete_folding
strip_header_spaces permit_unconventional_http_method permit_unconventional_http_version
casefold_http_method forwarder_headers header_map root_path asgi_loop asgi_lifespan
asgi_disconnect_grace_period http_protocols http2_max_concurrent_streams
http2_initial_window_size http2_max_frame_size http2_max_header_list_size
websocket_max_message_size protocol uwsgi_allow_ips dirty_app dirty_workers dirty_threads
dirty_timeout dirty_graceful_timeout control_socket control_socket_mode
enable_backlog_metric
""".split())

# gunicorn name -> Gannet option with the same meaning. Options another part of Gannet may
# not have yet (pidfile, user, group, umask, reload, proc_name) are used once they exist.
RENAMED: dict[str, str] = {
    "graceful_timeout": "timeout_graceful_shutdown", "keepalive": "timeout_keep_alive",
    "preload_app": "preload", "loglevel": "log_level", "logconfig": "log_config",
    "logconfig_json": "log_config", "asgi_loop": "loop",
    "asgi_lifespan": "lifespan", "websocket_max_message_size": "ws_max_size",
    "max_requests": "limit_max_requests", "reload_extra_files": "reload_extra_file",
    "proxy_allow_ips": "proxy_allow_from", "uwsgi_allow_ips": "uwsgi_allow_from",
    "certfile": "ssl_certfile", "keyfile": "ssl_keyfile", "ca_certs": "ssl_ca_certs",
    "cert_reqs": "ssl_cert_reqs", "ciphers": "ssl_ciphers",
}
SAME_NAMED = ("bind", "backlog", "workers", "threads", "timeout", "max_requests_jitter",
              "limit_request_line", "limit_request_fields", "limit_request_field_size",
              "access_log_format", "pidfile", "user", "group", "umask", "reload", "proc_name",
              "root_path", "forwarded_allow_ips", "proxy_protocol")
# worker classes whose job Gannet does itself (ASGI and WSGI apps, threads for WSGI)
SERVED_ALIKE = {"sync", "gthread", "asgi", "uvicorn.workers.UvicornWorker",
                "uvicorn.workers.UvicornH11Worker", "uvicorn_worker.UvicornWorker",
                "uvicorn_worker.UvicornH11Worker", "gunicorn.workers.sync.SyncWorker",
                "gunicorn.workers.gthread.ThreadWorker"}
_SSL_CONTEXT = ("a function that builds the SSLContext is not supported: Gannet would "
                "serve with a context other than the one this file asks for, so it refuses "
                "to start; use certfile, keyfile, ca_certs, cert_reqs and ciphers (docs/tls.md)")
_LOG_FILE = ("Gannet does not write log files itself, and ignoring this would lose the "
             "lines an operator expects there: route the gannet.{} logger to a file "
             "handler with logconfig = 'logging.json' (--log-config, docs/logging.md), or "
             "set {} = '-' for {}")
_IGNORED_QUIETLY = {"config", "default_proc_name"}
_FLAG_OF = {"raw_env": "--env", "sendfile": "--no-sendfile", "syslog": "--log-syslog",
            "syslog_addr": "--log-syslog-to", "syslog_prefix": "--log-syslog-prefix",
            "syslog_facility": "--log-syslog-facility", "raw_paste_global_conf": "--paste-global",
            "enable_stdio_inheritance": "--enable-stdio-inheritance", "daemon": "--daemon",
            "proxy_allow_ips": "--proxy-allow-from", "uwsgi_allow_ips": "--uwsgi-allow-from"}


class PythonConfigError(ValueError):
    """Raised with one message naming the file and the setting (config.py makes it a
    ConfigError)."""


@dataclass
class PythonConfig:
    """What one Python config file says: options by Gannet name (typed), its hook
    functions, and what to tell the user once logging is set up."""

    location: str
    options: dict[str, Any] = field(default_factory=dict)
    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)  # the file's settings as written
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_LOADED: dict[str, PythonConfig] = {}


def is_python_config(location: str | os.PathLike[str]) -> bool:
    """A .py path or ``python:module`` (gunicorn's forms); TOML otherwise."""
    text = os.fspath(location)
    return text.endswith(".py") or text.startswith("python:")


def load_python_config(location: str | os.PathLike[str]) -> PythonConfig:
    """Run the file (or import the module) and translate its names; raises
    PythonConfigError. Changes the process as gunicorn does: ``raw_env`` into os.environ,
    ``chdir`` and ``pythonpath`` into the working directory and sys.path."""
    location = os.fspath(location)
    namespace = _execute(location)
    result = PythonConfig(location)
    for name, value in namespace.items():
        if not name.startswith("_") and not isinstance(value, types.ModuleType):
            _take(result, name, value)
    if result.values.get("protocol") == "uwsgi":
        # gunicorn's protocol = "uwsgi": its binds speak uwsgi (default 127.0.0.1:8000).
        result.options["uwsgi_socket"] = result.options.pop("bind", None) or ["127.0.0.1:8000"]
    _LOADED[location] = result
    return result


def hooks_for(config: Any) -> Any:
    """The server hooks of ``config``'s Python config file as a supervisor Hooks, or None
    when it has none (or the config file is TOML)."""
    location = getattr(config, "config_file", None)
    if not location or not is_python_config(location):
        return None
    loaded = _LOADED.get(os.fspath(location)) or load_python_config(location)
    if not loaded.hooks:
        return None
    from ..supervisor.hooks import hooks_from_functions

    return hooks_from_functions(loaded.hooks, GunicornCfg(config, loaded.values))


# ---------------------------------------------------------------------- running the file
def describe_load_error(exc: BaseException, what: str) -> str:
    """loading.describe_load_error, imported only on failure: loading imports asyncio,
    which the master (that reads this file) does not otherwise load."""
    from ..loading import describe_load_error as describe

    return describe(exc, what)


def _execute(location: str) -> dict[str, Any]:
    if location.startswith("python:"):
        module_name = location[len("python:"):]
        if os.getcwd() not in sys.path:  # gunicorn imports from its working directory
            sys.path.insert(0, os.getcwd())
        try:
            return dict(vars(importlib.import_module(module_name)))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - whatever the module raises
            raise PythonConfigError(f"--config {location}: " + describe_load_error(
                exc, f"importing the config module {module_name!r}")) from None
    try:
        with open(location, "rb") as handle:
            source = handle.read()
    except FileNotFoundError:
        raise PythonConfigError(f"--config: no such file: {location}") from None
    except OSError as exc:
        raise PythonConfigError(f"--config: cannot read {location}: {exc}") from None
    path = os.path.abspath(location)
    namespace: dict[str, Any] = {"__builtins__": builtins, "__name__": "__config__",
                                 "__file__": path, "__doc__": None, "__package__": None}
    try:
        exec(compile(source, path, "exec"), namespace)  # noqa: S102 - the user's config
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a broken config file is the
        # user's to fix; sys.exit() in it must not end the start silently (even with 0)
        raise PythonConfigError(f"--config {location}: " + describe_load_error(
            exc, f"running the config file {location}")) from None
    return namespace


# ---------------------------------------------------------------------- translating names
def _take(result: PythonConfig, name: str, value: Any) -> None:
    """File one module-level name into ``result``."""
    if name in HOOK_NAMES:
        if not callable(value):
            raise PythonConfigError(f"{name} (from {result.location}): a server hook must "
                                    f"be a function, got {value!r}")
        result.hooks[name] = value
        return
    if name in ("pre_request", "post_request", "pre_exec"):
        if callable(value):
            result.warnings.append(_unsupported_hook(name, result.location))
        return
    if name in GUNICORN_SETTINGS:  # before the helper test: ssl_context is a function
        result.values[name] = value
        _gunicorn_setting(result, name, value)
    elif name in BY_NAME or (name == "app" and isinstance(value, str)):
        _set(result, name, name, value)
    elif not callable(value):  # helper functions and classes are ignored, as by gunicorn
        _maybe_typo(result, name)


def _gunicorn_setting(result: PythonConfig, name: str, value: Any) -> None:
    where = f"{name} (from {result.location})"
    special = _SPECIAL.get(name)
    if special is not None:
        special(result, name, value)
    elif name in RENAMED or name in SAME_NAMED:
        target = RENAMED.get(name, name)
        if target in BY_NAME:
            _set(result, name, target, value)
        else:
            result.warnings.append(f"{where} is not available in Gannet yet and is ignored")
    elif name == "ssl_context":
        if value is not None:
            raise PythonConfigError(f"{where}: {_SSL_CONTEXT}")
    elif name == "ssl_version":
        result.warnings.append(f"{where} is ignored: TLS 1.2 is the oldest version Gannet "
                               "offers; --ssl-min-version TLSv1.3 raises it")
    elif name not in _IGNORED_QUIETLY:
        result.warnings.append(f"{where} is ignored: {_hint(name)}")


def _set(result: PythonConfig, name: str, target: str, value: Any) -> None:
    """Parse ``value`` for the Gannet option ``target``; errors name the file's key."""
    if target == "app":
        if not isinstance(value, str):
            raise PythonConfigError(f"{name} (from {result.location}): expected "
                                    f"'module:attribute', got {value!r}")
        result.options["app"] = value
        return
    try:
        result.options[target] = BY_NAME[target].parse(value)
    except SettingError as exc:
        raise PythonConfigError(f"{name} (from {result.location}): {exc.reason}") from None


def _hint(name: str) -> str:
    flag = _FLAG_OF.get(name, "--" + name.replace("_", "-"))
    if flag in FOREIGN_FLAGS:
        return f"gunicorn's {flag} {FOREIGN_FLAGS[flag][1]}"
    return "Gannet has no such setting (every option: docs/options.md)"


def _unsupported_hook(name: str, location: str) -> str:
    if name == "pre_exec":
        return (f"pre_exec (from {location}) is never called: Gannet's master does not "
                "re-exec itself (HUP is a rolling reload of the workers)")
    return (f"{name} (from {location}) is never called: Gannet has no per-request hooks "
            "(they would cost every request); use an ASGI or WSGI middleware")


def _maybe_typo(result: PythonConfig, name: str) -> None:
    known = sorted(GUNICORN_SETTINGS | set(BY_NAME))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
    if close:
        result.warnings.append(f"{name} (from {result.location}) is not a setting and is "
                               f"ignored; did you mean {close[0]}?")


# ---------------------------------------------------------------------- special cases
def _secure_scheme_headers(result: PythonConfig, name: str, value: Any) -> None:
    names = {str(key).lower() for key in value} if isinstance(value, dict) else set()
    text = (f"{name} (from {result.location}) is not needed: Gannet takes the scheme from "
            "X-Forwarded-Proto (or Forwarded proto=) sent by a peer in forwarded_allow_ips "
            "(--proxy-headers, on by default)")
    if names - {"x-forwarded-proto"}:
        result.warnings.append(text + "; it reads no other header for it, so "
                               + ", ".join(sorted(names - {"x-forwarded-proto"}))
                               + " is ignored: have the proxy send X-Forwarded-Proto")
    else:
        result.notes.append(text)


def _protocol(result: PythonConfig, name: str, value: Any) -> None:
    if value not in ("http", "uwsgi"):
        raise PythonConfigError(f"{name} (from {result.location}): expected 'http' or "
                                f"'uwsgi', got {value!r}")


def _bind(result: PythonConfig, name: str, value: Any) -> None:
    # gunicorn takes one address as a string (never split at commas) or a list
    _set(result, name, "bind", [value] if isinstance(value, str) else value)


def _max_requests(result: PythonConfig, name: str, value: Any) -> None:
    _set(result, name, "limit_max_requests", None if value in (0, "0") else value)


def _wsgi_app(result: PythonConfig, name: str, value: Any) -> None:
    if value is not None:
        _set(result, name, "app", value)


def _accesslog(result: PythonConfig, name: str, value: Any) -> None:
    # gunicorn writes no access log unless this names a destination; '-' is stdout
    if value is None:
        _set(result, name, "access_log", False)
    elif value == "-":
        _set(result, name, "access_log", True)
    else:
        raise PythonConfigError(f"{name} (from {result.location}): "
                                + _LOG_FILE.format("access", "accesslog", "stdout"))


def _errorlog(result: PythonConfig, name: str, value: Any) -> None:
    if value not in (None, "-"):
        raise PythonConfigError(f"{name} (from {result.location}): "
                                + _LOG_FILE.format("error", "errorlog", "stderr"))


def _logconfig_dict(result: PythonConfig, name: str, value: Any) -> None:
    if value:
        raise PythonConfigError(f"{name} (from {result.location}): a dictConfig inside the "
                                "config file is not supported: save it as JSON and set "
                                "logconfig = 'logging.json' (--log-config, docs/logging.md)")


def _syslog(result: PythonConfig, name: str, value: Any) -> None:
    if value:
        raise PythonConfigError(f"{name} (from {result.location}): {_hint(name)}")


def _worker_class(result: PythonConfig, name: str, value: Any) -> None:
    label = value if isinstance(value, str) else getattr(value, "__name__", repr(value))
    if label in SERVED_ALIKE:
        result.notes.append(f"worker_class {label!r} (from {result.location}) is not "
                            "needed: Gannet serves ASGI and WSGI apps itself")
    else:
        result.warnings.append(f"worker_class {label!r} (from {result.location}) is not "
                               "supported and is ignored: Gannet runs ASGI apps on asyncio "
                               "and WSGI apps on threads (--threads), not on gevent, "
                               "eventlet or a custom worker")


def _raw_env(result: PythonConfig, name: str, value: Any) -> None:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise PythonConfigError(f"{name} (from {result.location}): expected a list of "
                                f"'KEY=VALUE' strings, got {value!r}")
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise PythonConfigError(f"{name} (from {result.location}): expected "
                                    f"'KEY=VALUE', got {item!r}")
        key, _, text = item.partition("=")
        os.environ[key.strip()] = text  # as gunicorn: the file's value wins


def _chdir(result: PythonConfig, name: str, value: Any) -> None:
    # gunicorn changes directory before loading the app and imports from there
    try:
        os.chdir(value)
    except (OSError, TypeError) as exc:
        raise PythonConfigError(f"{name} (from {result.location}): cannot change "
                                f"directory to {value!r}: {exc}") from None
    result.options["app_dir"] = os.getcwd()


def _pythonpath(result: PythonConfig, name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise PythonConfigError(f"{name} (from {result.location}): expected a "
                                f"comma-separated string of directories, got {value!r}")
    for path in reversed([part.strip() for part in value.split(",") if part.strip()]):
        if os.path.abspath(path) not in sys.path:
            sys.path.insert(0, os.path.abspath(path))


_SPECIAL: dict[str, Callable[[PythonConfig, str, Any], None]] = {
    "bind": _bind, "max_requests": _max_requests, "wsgi_app": _wsgi_app,
    "accesslog": _accesslog, "errorlog": _errorlog, "logconfig_dict": _logconfig_dict,
    "syslog": _syslog, "worker_class": _worker_class, "raw_env": _raw_env,
    "chdir": _chdir, "pythonpath": _pythonpath, "protocol": _protocol,
    "secure_scheme_headers": _secure_scheme_headers,
}


# ---------------------------------------------------------------------- server.cfg
class GunicornCfg:
    """``server.cfg`` / ``worker.cfg`` in hooks: the effective settings by gunicorn's names
    or Gannet's (``cfg.workers``, ``cfg.bind``, ``cfg.keepalive``, ``cfg.max_requests``);
    a setting Gannet lacks reads as the file wrote it."""

    def __init__(self, config: Any, written: Mapping[str, Any]) -> None:
        self._config = config
        self._written = dict(written)

    def __getattr__(self, name: str) -> Any:
        config = self.__dict__["_config"]
        if name == "bind":
            return config.bind_addresses
        if name == "max_requests":
            return config.limit_max_requests or 0
        target = RENAMED.get(name, name)
        if target in BY_NAME:
            return getattr(config, target)
        if name in self.__dict__["_written"]:
            return self.__dict__["_written"][name]
        raise AttributeError(f"no setting named {name!r}")
