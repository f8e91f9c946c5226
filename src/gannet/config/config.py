"""Config: the merged, validated options of one Gannet run.

Sources are layered defaults < config file < environment < explicit arguments (the command
line or ``gannet.run(**options)``). Each value passes through its Setting's parser whatever
its source, so a bad value is refused the same way from everywhere, naming the option.
A Config holds only plain data, so it pickles into worker processes.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Mapping

from .settings import BY_NAME, SETTINGS, Setting, SettingError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["Config", "ConfigError", "load_config_file"]


class ConfigError(ValueError):
    """A configuration problem; ``str()`` is one line naming the option and why."""


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a gannet.toml (top-level keys) or a pyproject.toml ([tool.gannet])."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"--config: no such file: {os.fspath(path)}") from None
    except (tomllib.TOMLDecodeError, OSError) as exc:
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
    threads: int
    wsgi_body_buffer: int
    wsgi_write_buffer: int
    ws: str
    ws_max_size: int
    ws_max_queue: int
    ws_ping_interval: float | None
    ws_ping_timeout: float | None
    ws_per_message_deflate: bool

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
        values: dict[str, Any] = {s.name: _copy(s.default) for s in SETTINGS}
        for name in values:
            self.sources[name] = "default"

        path = config_file if config_file is not None else _discover_pyproject()
        if path is not None:
            for key, raw in load_config_file(path).items():
                if key in ("app", "application"):
                    if self.app is None:
                        self.app = raw
                    continue
                setting = _lookup(key, f"unknown option {key!r} in {path}")
                values[key] = _parse(setting, raw)
                self.sources[key] = f"file {path}"

        env = os.environ if environ is None else environ
        if app is None and env.get("GANNET_APP"):  # env beats the file, the CLI beats both
            self.app = env["GANNET_APP"]
        for setting in SETTINGS:
            if setting.env_var in env:
                values[setting.name] = _parse(setting, env[setting.env_var], via=setting.env_var)
                self.sources[setting.name] = "env"

        for key, raw in options.items():
            setting = _lookup(key, f"unknown option {key!r}")
            values[key] = _parse(setting, raw)
            self.sources[key] = "argument"

        self.__dict__.update(values)
        self._check_combinations()

    # ------------------------------------------------------------------ derived values
    def _check_combinations(self) -> None:
        if self.app is None:
            raise ConfigError("APP: no application given (gannet module:attr)")
        for address in self.bind:
            if not (address.startswith(("unix:", "fd://")) or ":" in address):
                raise ConfigError(f"--bind: {address!r} is not HOST:PORT, unix:PATH or fd://N")

    @property
    def bind_addresses(self) -> list[str]:
        """Every address to listen on, in --bind syntax."""
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


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _lookup(key: str, message: str) -> Setting:
    setting = BY_NAME.get(key)
    if setting is None:
        raise ConfigError(message)
    return setting


def _parse(setting: Setting, raw: Any, via: str | None = None) -> Any:
    try:
        return setting.parse(raw)
    except SettingError as exc:
        where = f" (from {via})" if via else ""
        raise ConfigError(f"{setting.display}{where}: {exc.reason}") from None
