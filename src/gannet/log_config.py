"""Read a user's --log-config file (dictConfig JSON/YAML, or fileConfig .ini/.conf).

People arriving from uvicorn bring uvicorn's logging config. So that it works here unchanged:

* Logger aliases. A config that configures uvicorn's loggers but none of Gannet's gets the
  same settings applied to Gannet's (``uvicorn`` → ``gannet``, ``uvicorn.error`` →
  ``gannet.error``, ``uvicorn.access`` → ``gannet.access``, ``uvicorn.asgi`` →
  ``gannet.error.asgi``). The uvicorn loggers stay configured too: apps log on
  ``uvicorn.error`` themselves. One info line says the aliases were applied.
* uvicorn's formatters (``uvicorn.logging.DefaultFormatter``, ``AccessFormatter``,
  ``ColourizedFormatter``) become Gannet's equivalents below, whether uvicorn is installed
  or not: uvicorn's AccessFormatter unpacks ``record.args`` as (client, method, path,
  version, status) and Gannet's access records are finished lines, so it would fail on
  every request. The equivalents give ``%(levelprefix)s`` and, for an access record, put
  Gannet's whole access line where the format names the client, request line and status.

A file that cannot be read or applied raises ValueError with one line, ``--log-config
PATH: reason`` (cli.py prints it and exits 2). A config under which no handler receives
Gannet's records gets one warning on stderr: otherwise the server would run silently.
"""
from __future__ import annotations

import configparser
import copy
import json
import logging
import logging.config
import re
import sys
from typing import Any, Literal

__all__ = ["load_log_config", "UvicornDefaultFormatter", "UvicornAccessFormatter"]

logger = logging.getLogger("gannet.error")

# uvicorn's logger names and the Gannet loggers that take their settings.
LOGGER_ALIASES = {"uvicorn": "gannet", "uvicorn.error": "gannet.error",
                  "uvicorn.access": "gannet.access", "uvicorn.asgi": "gannet.error.asgi"}

_LEVEL_COLOURS = {5: "34", logging.DEBUG: "36", logging.INFO: "32", logging.WARNING: "33",
                  logging.ERROR: "31", logging.CRITICAL: "91"}


class UvicornDefaultFormatter(logging.Formatter):
    """uvicorn's DefaultFormatter, for configs written for uvicorn: ``%(levelprefix)s`` is
    the level name and a colon padded to uvicorn's width, coloured when ``use_colors``
    (None: when stderr is a terminal, as uvicorn does)."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, style: Literal["%", "{", "$"] = "%",
                 use_colors: bool | None = None, validate: bool = True, **_: Any) -> None:
        super().__init__(fmt, datefmt, style, validate=False)  # levelprefix is ours to add
        self.use_colors = sys.stderr.isatty() if use_colors is None else bool(use_colors)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return self._style.format(self._prefixed(record))

    def _prefixed(self, record: logging.LogRecord) -> logging.LogRecord:
        shown = copy.copy(record)
        name = record.levelname
        if self.use_colors and record.levelno in _LEVEL_COLOURS:
            name = f"\033[{_LEVEL_COLOURS[record.levelno]}m{name}\033[0m"
        shown.levelprefix = name + ":" + " " * max(8 - len(record.levelname), 1)
        return shown


# The access atoms of uvicorn's format, in each formatting style.
_ACCESS_SPAN = {"%": r"%\((?:client_addr|request_line|status_code)\)[-#0 +]*\d*s",
                "{": r"\{(?:client_addr|request_line|status_code)(?:![rsa])?(?::[^}]*)?\}",
                "$": r"\$\{?(?:client_addr|request_line|status_code)\}?"}
_MESSAGE = {"%": "%(message)s", "{": "{message}", "$": "${message}"}


class UvicornAccessFormatter(UvicornDefaultFormatter):
    """uvicorn's AccessFormatter for Gannet's access records: the part of the format from
    the first to the last of ``client_addr``/``request_line``/``status_code`` is replaced
    by the message, which is Gannet's access line (--access-log-format) and already holds
    them. A record that does carry those fields is formatted as written."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, style: Literal["%", "{", "$"] = "%",
                 use_colors: bool | None = None, validate: bool = True, **extra: Any) -> None:
        super().__init__(fmt, datefmt, style, use_colors, validate, **extra)
        fmt = fmt or _MESSAGE.get(style, "%(message)s")
        atoms = list(re.finditer(_ACCESS_SPAN.get(style, _ACCESS_SPAN["%"]), fmt))
        if atoms:
            start, end = atoms[0].start(), atoms[-1].end()
            fmt = fmt[:start] + _MESSAGE.get(style, "%(message)s") + fmt[end:]
        self._line_style = logging.Formatter(fmt, datefmt, style, validate=False)._style

    def formatMessage(self, record: logging.LogRecord) -> str:
        style = self._style if hasattr(record, "request_line") else self._line_style
        return style.format(self._prefixed(record))


_FORMATTER_SUBSTITUTES = {
    "uvicorn.logging.DefaultFormatter": UvicornDefaultFormatter,
    "uvicorn.logging.ColourizedFormatter": UvicornDefaultFormatter,
    "uvicorn.logging.AccessFormatter": UvicornAccessFormatter,
}


def load_log_config(path: str) -> None:
    """Apply the logging configuration in ``path`` (see the module docstring)."""
    lower = path.lower()
    notes: list[str] = []
    if lower.endswith((".json", ".yaml", ".yml")):
        config = _read_dict(path, lower)
        notes = _adapt_dict(config)
        try:
            logging.config.dictConfig(config)
        except (ValueError, TypeError, AttributeError, ImportError, KeyError) as exc:
            raise ValueError(f"--log-config {path}: {_reason(exc)}") from exc
    else:
        parser = _read_ini(path)
        notes = _adapt_ini(parser)
        try:
            logging.config.fileConfig(parser, disable_existing_loggers=False)
        except (ValueError, TypeError, AttributeError, ImportError, KeyError, OSError,
                SyntaxError, NameError, configparser.Error) as exc:
            raise ValueError(f"--log-config {path}: {_reason(exc)}") from exc
    _enable_gannet_loggers()
    for note in notes:
        logger.info("--log-config %s: %s", path, note)
    _warn_if_unreached(path)


# ---------------------------------------------------------------- reading
def _read_dict(path: str, lower: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--log-config {path}: cannot read it: {_os_reason(exc)}") from None
    if lower.endswith(".json"):
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--log-config {path}: not valid JSON: {exc}") from exc
    else:
        try:
            import yaml
        except ImportError:
            raise ValueError(f"--log-config {path}: a YAML file needs PyYAML (pip install pyyaml)") from None
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise ValueError(f"--log-config {path}: not valid YAML: {problem}{where}") from None
    if not isinstance(config, dict):
        raise ValueError(f"--log-config {path}: must hold a dictConfig mapping, not {type(config).__name__}")
    return config


def _read_ini(path: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--log-config {path}: cannot read it: {_os_reason(exc)}") from None
    except configparser.Error as exc:
        raise ValueError(f"--log-config {path}: not a fileConfig INI file (dictConfig files end "
                         f"in .json, .yaml or .yml): {_ini_reason(exc)}") from None
    return parser


def _ini_reason(exc: configparser.Error) -> str:
    """configparser's messages repeat the file name and quote whole lines: keep where."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno} comes before any [section] header"
    if isinstance(exc, configparser.ParsingError):
        return "cannot parse line " + ", ".join(str(lineno) for lineno, _ in exc.errors)
    return _reason(exc)


def _os_reason(exc: OSError | UnicodeDecodeError) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _reason(exc: BaseException) -> str:
    """One line: the error and, for dictConfig's "Unable to configure ...", its cause."""
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}: {cause}"
    if isinstance(exc, KeyError):
        text = f"missing section or key {text}"
    return " ".join(text.split())


# ---------------------------------------------------------------- uvicorn configs
def _adapt_dict(config: dict) -> list[str]:
    notes = []
    replaced = []
    for name, spec in (config.get("formatters") or {}).items():
        if not isinstance(spec, dict):
            continue
        target = spec.get("()") or spec.get("class")
        substitute = _FORMATTER_SUBSTITUTES.get(target) if isinstance(target, str) else None
        if substitute is None:
            continue
        spec.pop("class", None)
        spec["()"] = substitute
        if "format" in spec:  # the "class" form's key; a "()" factory takes fmt
            spec["fmt"] = spec.pop("format")
        replaced.append(name)
    if replaced:
        notes.append(f"uvicorn's formatters ({', '.join(replaced)}) use Gannet's equivalents")
    loggers = config.get("loggers")
    if isinstance(loggers, dict) and not any(_is_gannet(name) for name in loggers):
        aliased: list[str] = [name for name in LOGGER_ALIASES if name in loggers]
        for name in aliased:
            loggers[LOGGER_ALIASES[name]] = copy.deepcopy(loggers[name])
        if aliased:
            notes.append(_alias_note(aliased))
    return notes


def _adapt_ini(parser: configparser.ConfigParser) -> list[str]:
    notes = []
    replaced = []
    for section in parser.sections():
        if section.startswith("formatter_"):
            target = parser.get(section, "class", raw=True, fallback="").strip()
            if target in _FORMATTER_SUBSTITUTES:
                parser.set(section, "class", f"{__name__}.{_FORMATTER_SUBSTITUTES[target].__name__}")
                replaced.append(section[len("formatter_"):])
    if replaced:
        notes.append(f"uvicorn's formatters ({', '.join(replaced)}) use Gannet's equivalents")
    if not parser.has_section("loggers"):
        return notes  # fileConfig says what is missing
    keys = [key.strip() for key in parser.get("loggers", "keys", raw=True, fallback="").split(",")
            if key.strip()]
    qualnames = {key: parser.get(f"logger_{key}", "qualname", raw=True, fallback="").strip()
                 for key in keys if key != "root" and parser.has_section(f"logger_{key}")}
    if any(_is_gannet(name) for name in qualnames.values()):
        return notes
    aliased: list[str] = []
    for key, name in qualnames.items():
        if name in LOGGER_ALIASES:
            alias = f"gannet_alias_{len(aliased)}"
            parser[f"logger_{alias}"] = dict(parser.items(f"logger_{key}", raw=True))
            parser.set(f"logger_{alias}", "qualname", LOGGER_ALIASES[name])
            keys.append(alias)
            aliased.append(name)
    if aliased:
        parser.set("loggers", "keys", ",".join(keys))
        notes.append(_alias_note(aliased))
    return notes


def _is_gannet(name: str) -> bool:
    return name == "gannet" or name.startswith("gannet.")


def _alias_note(aliased: list[str]) -> str:
    pairs = ", ".join(f"{name} → {LOGGER_ALIASES[name]}" for name in aliased)
    return f"it configures uvicorn's loggers and none of Gannet's; applied as aliases ({pairs})"


# ---------------------------------------------------------------- after loading
def _enable_gannet_loggers() -> None:
    """dictConfig's ``disable_existing_loggers`` (true unless said otherwise) is meant for
    libraries imported before it; Gannet's loggers exist only because Gannet started first,
    and a config that sends everything to the root logger means them too."""
    for name, item in list(logging.root.manager.loggerDict.items()):
        if _is_gannet(name) and isinstance(item, logging.Logger):
            item.disabled = False


def _warn_if_unreached(path: str) -> None:
    unreached = [name for name in ("gannet.error", "gannet.access")
                 if not logging.getLogger(name).hasHandlers()]
    if not unreached:
        return
    record = logging.makeLogRecord({
        "name": "gannet.error", "levelno": logging.WARNING, "levelname": "WARNING",
        "msg": "gannet: warning: --log-config %s: no handler receives the records of %s, so "
               "they are not logged; configure the gannet, gannet.error and gannet.access "
               "loggers (or uvicorn's names for them, or the root logger) with a handler",
        "args": (path, " and ".join(unreached))})
    handler = logging.lastResort or logging.StreamHandler(sys.stderr)
    handler.handle(record)
