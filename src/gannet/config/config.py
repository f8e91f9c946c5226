"""Config: the merged, validated options of one Gannet run.

Sources are layered defaults < config file < environment < explicit arguments (the command
line or ``gannet.run(**options)``). Each value passes through its Setting's parser whatever
its source, so a bad value is refused the same way from everywhere, naming the option.
A Config holds only plain data, so it pickles into worker processes.
"""
from __future__ import annotations

import difflib
import os
import sys
from typing import Any, Mapping

from .env_file import EnvFileError, parse_env_file
from .foreign_flags import FOREIGN_FLAGS
from .listen import LISTEN_OPTIONS, resolve_listen
from .pyconfig import PythonConfig, PythonConfigError, is_python_config, load_python_config
from .settings import BY_NAME, SETTINGS, Setting, SettingError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["Config", "ConfigError", "load_config_file"]


class ConfigError(ValueError):
    """A configuration problem; ``str()`` is one line naming the option and why."""


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a gannet.toml (top-level keys) or a pyproject.toml ([tool.gannet]); a .py file
    or ``python:module`` is run as a Python config file (pyconfig.py)."""
    if is_python_config(path):  # -c gunicorn.conf.py; some of those files even parse as
        # TOML, so the name decides. Config also keeps the file's warnings (pyconfig.py).
        return _python_config(path).options
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"--config: no such file: {os.fspath(path)}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config: cannot read {os.fspath(path)}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {os.fspath(path)}: {exc}") from None
    if os.path.basename(os.fspath(path)) == "pyproject.toml" or "tool" in data:
        data = data.get("tool", {}).get("gannet", {})
    # Keys may be spelt like the flags (timeout-keep-alive) or like Python (timeout_keep_alive).
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def _discover_pyproject() -> str | None:
    candidate = os.path.join(os.getcwd(), "pyproject.toml")
    if not os.path.isfile(candidate):
        return None
    try:
        with open(candidate, "rb") as handle:
            data = tomllib.load(handle)
    except (tomllib.TOMLDecodeError, OSError):
        return None
    return candidate if "gannet" in data.get("tool", {}) else None


class Config:
    """Validated options plus the application (an object or an import string)."""

    app: Any
    # Attributes are set from SETTINGS in __init__; listed for type checkers and readers.
    host: str
    port: int
    bind: list[str]
    uds: str | None
    fd: int | None
    backlog: int
    app_dir: str
    factory: bool
    interface: str
    lifespan: str
    loop: str
    env_file: str | None
    root_path: str
    timeout_keep_alive: float
    timeout_graceful_shutdown: float
    header_read_timeout: float
    body_read_timeout: float
    write_timeout: float
    limit_concurrency: int | None
    limit_max_requests: int | None
    limit_request_line: int
    limit_request_fields: int
    limit_request_field_size: int
    limit_request_body: int
    log_level: str
    log_config: str | None
    access_log: bool
    access_log_format: str
    server_header: bool
    date_header: bool
    header: list[str]
    threads: int
    wsgi_body_buffer: int
    wsgi_write_buffer: int
    ws: str
    ws_max_size: int
    ws_max_queue: int
    ws_ping_interval: float | None
    ws_ping_timeout: float | None
    ws_per_message_deflate: bool
    reload: bool
    reload_dir: list[str]
    reload_include: list[str]
    reload_exclude: list[str]
    reload_delay: float
    reload_extra_file: list[str]
    pidfile: str | None
    user: str | None
    group: str | None
    umask: int | None
    uwsgi_socket: list[str]
    proxy_headers: bool
    forwarded_allow_ips: str
    forwarded_headers: str
    proxy_protocol: str
    proxy_allow_from: str
    uwsgi_allow_from: str
    ssl_certfile: str | None
    ssl_keyfile: str | None
    ssl_keyfile_password: str | None
    ssl_ca_certs: str | None
    ssl_cert_reqs: str
    ssl_ciphers: str
    ssl_min_version: str

    def __init__(
        self,
        app: Any = None,
        *,
        config_file: str | None = None,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        self.app = app
        self.config_file = config_file
        self.sources: dict[str, str] = {}
        # Said once logging is configured (cli.py): warnings, and info-level notes.
        self.warnings: list[str] = []
        self.notes: list[str] = []
        values: dict[str, Any] = {s.name: _copy(s.default) for s in SETTINGS}
        for name in values:
            self.sources[name] = "default"

        path = config_file if config_file is not None else _discover_pyproject()
        if path is not None:
            for key, raw in self._file_options(path).items():
                if key in ("app", "application"):
                    if self.app is None:
                        self.app = raw
                    continue
                setting = _lookup(key, f"unknown option {key!r} in {path}")
                values[key] = _parse(setting, raw, via=os.fspath(path))
                self.sources[key] = f"file {path}"

        env = os.environ if environ is None else environ
        from_file = self._load_env_file(env, values["env_file"], options)
        if environ is not None and from_file:  # a given mapping is never written to
            env = {**from_file, **env}

        def via(name: str) -> str:
            return f"{name} in {self.env_file}" if name in from_file else name

        if "GANNET_APP" in env:
            app_from_env = _env_value(env, "GANNET_APP", "APP", via("GANNET_APP"))
            if app is None:  # env beats the file, the CLI beats both
                self.app = app_from_env
        if "FORWARDED_ALLOW_IPS" in env and BY_NAME["forwarded_allow_ips"].env_var not in env:
            # uvicorn's and gunicorn's variable, read as they do; GANNET_* wins over it.
            raw = _env_value(env, "FORWARDED_ALLOW_IPS", "--forwarded-allow-ips",
                             via("FORWARDED_ALLOW_IPS"))
            values["forwarded_allow_ips"] = _parse(BY_NAME["forwarded_allow_ips"], raw,
                                                   via=via("FORWARDED_ALLOW_IPS"))
            self.sources["forwarded_allow_ips"] = "env"
        for setting in SETTINGS:
            if setting.env_var in env:
                raw = _env_value(env, setting.env_var, setting.display, via(setting.env_var))
                values[setting.name] = _parse(setting, raw, via=via(setting.env_var))
                self.sources[setting.name] = "env"
        self.warnings += unknown_variables(env)

        for key, raw in options.items():
            setting = _lookup(key, f"unknown option {key!r}")
            values[key] = _parse(setting, raw)
            self.sources[key] = "argument"

        try:
            self.notes += resolve_listen(values, self.sources)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.__dict__.update(values)
        self._check_combinations()

    def _file_options(self, path: str) -> dict[str, Any]:
        """The config file's options; a Python file's warnings and notes are kept too."""
        if not is_python_config(path):
            return load_config_file(path)
        loaded = _python_config(path)
        self.warnings += loaded.warnings
        self.notes += loaded.notes
        return loaded.options

    def _load_env_file(self, env: Mapping[str, str], from_config_file: str | None,
                       options: Mapping[str, Any]) -> dict[str, str]:
        """Read --env-file (argument > GANNET_ENV_FILE > config file) into os.environ, or
        into a copy when an environ mapping was given; returns the variables it added."""
        setting = BY_NAME["env_file"]
        if "env_file" in options:
            path = _parse(setting, options["env_file"])
        elif setting.env_var in env:
            raw = _env_value(env, setting.env_var, setting.display, setting.env_var)
            path = _parse(setting, raw, via=setting.env_var)
        else:
            path = from_config_file
        self.env_file = path
        if not path:
            return {}
        try:
            parsed = parse_env_file(path, env)  # ${NAME} from the same environment
        except EnvFileError as exc:
            raise ConfigError(f"--env-file {exc}") from None
        added = {key: value for key, value in parsed.items() if key not in env}
        if env is os.environ:
            os.environ.update(added)
        return added

    # ------------------------------------------------------------------ derived values
    def _check_combinations(self) -> None:
        if self.app is None:
            raise ConfigError("APP: no application given (gannet module:attr)")
        for name in ("bind", "uwsgi_socket"):
            for address in getattr(self, name):
                if name == "uwsgi_socket" and address.startswith("/"):
                    continue  # a Unix socket's path, as uWSGI takes it
                if not (address.startswith(("unix:", "fd://")) or ":" in address):
                    setting = BY_NAME[name]
                    where = _where(self.sources[name], setting)
                    raise ConfigError(f"{setting.flags[-1]}{where}: {address!r} is not "
                                      "HOST:PORT, unix:PATH or fd://N")
        if not self.ssl_certfile:
            given = [s.display for s in SETTINGS if s.section == "tls"
                     and self.sources[s.name] != "default" and getattr(self, s.name)]
            if given:
                raise ConfigError(f"{', '.join(given)} without --ssl-certfile: TLS needs a "
                                  "certificate; give --ssl-certfile (or drop these)")
        if self.reload and self.preload:  # type: ignore[attr-defined]
            raise ConfigError("--reload cannot be combined with --preload: the master would "
                              "hold the old code (under --reload each worker imports the app "
                              "from disk)")
        idle = [s.display for s in SETTINGS
                if s.name.startswith("reload_") and self.sources[s.name] != "default"]
        if idle and not self.reload:
            self.warnings.append(f"{', '.join(idle)}: ignored without --reload")

    @property
    def listen_addresses(self) -> list[tuple[str, str]]:
        """Every (address, protocol) to listen on: the HTTP ones, then --uwsgi-socket's.
        --uwsgi-socket alone (no HTTP listen option from any source) listens for uwsgi only,
        as a uWSGI user moving its nginx config over expects."""
        # uWSGI takes a bare path as a Unix socket (socket = /run/x.sock); so do we, here.
        uwsgi = [("unix:" + address if address.startswith("/") else address, "uwsgi")
                 for address in self.uwsgi_socket]
        if uwsgi and all(self.sources[name] == "default" or (name == "bind" and not self.bind)
                         for name in LISTEN_OPTIONS):
            return uwsgi
        return [(address, "http") for address in self.bind_addresses] + uwsgi

    @property
    def bind_addresses(self) -> list[str]:
        """Every HTTP address to listen on, in --bind syntax."""
        if self.bind:
            return list(self.bind)
        if self.fd is not None:
            return [f"fd://{self.fd}"]
        if self.uds:
            return [f"unix:{self.uds}"]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return [f"{host}:{self.port}"]

    def as_dict(self) -> dict[str, Any]:
        return {s.name: getattr(self, s.name) for s in SETTINGS}

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.as_dict().items() if self.sources.get(k) != "default"}
        return f"Config(app={self.app!r}, {changed!r})"


def _python_config(path: str | os.PathLike[str]) -> PythonConfig:
    try:
        return load_python_config(path)
    except PythonConfigError as exc:
        raise ConfigError(str(exc)) from None


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _lookup(key: str, message: str) -> Setting:
    setting = BY_NAME.get(key)
    if setting is None:
        raise ConfigError(message)
    return setting


def _where(source: str, setting: Setting) -> str:
    """' (from x.toml)' or ' (from GANNET_X)' for a value's source, as errors say it."""
    if source.startswith("file "):
        return f" (from {source[5:]})"
    return f" (from {setting.env_var})" if source == "env" else ""


def _env_value(env: Mapping[str, str], name: str, display: str, via: str) -> str:
    """The variable's text; an empty one is a template gone wrong (``GANNET_HOST=${HOST}``
    with HOST unset), never a request for the default, so it is an error naming it."""
    raw = env[name]
    if not raw.strip():
        raise ConfigError(f"{display} (from {via}): the variable is empty; give it a value "
                          "or unset it")
    return raw


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """A warning for each GANNET_* variable that is no option (a typo would otherwise be
    ignored in silence), naming the closest option's variable."""
    known = {setting.env_var for setting in SETTINGS} | {"GANNET_APP"}
    warnings = []
    for name in sorted(env):
        if not name.startswith("GANNET_") or name in known:
            continue
        flag = "--" + name[len("GANNET_"):].lower().replace("_", "-")
        if flag in FOREIGN_FLAGS:
            whose, text = FOREIGN_FLAGS[flag]
            hint = f"{whose} {flag} {text}"
        else:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else "every option's variable is " \
                "listed in docs/options.md"
        warnings.append(f"{name} is not a Gannet option and is ignored; {hint}")
    return warnings


def _parse(setting: Setting, raw: Any, via: str | None = None) -> Any:
    try:
        return setting.parse(raw)
    except SettingError as exc:
        where = f" (from {via})" if via else ""
        raise ConfigError(f"{setting.display}{where}: {exc.reason}") from None
