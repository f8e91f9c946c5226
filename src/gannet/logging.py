"""Logger names, log set-up, and the access-log line built from gunicorn's atoms.

Loggers: ``gannet.error`` (server events and app errors) and ``gannet.access`` (one line
per request). ``--log-config`` hands both to the user's dictConfig/fileConfig instead.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import time
from typing import Any

from .log_config import load_log_config

__all__ = ["TRACE", "configure_logging", "AccessLogger", "error_logger", "access_logger"]

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

error_logger = logging.getLogger("gannet.error")
access_logger = logging.getLogger("gannet.access")

_LEVELS = {"critical": logging.CRITICAL, "error": logging.ERROR, "warning": logging.WARNING,
           "info": logging.INFO, "debug": logging.DEBUG, "trace": TRACE}


def configure_logging(log_level: str = "info", log_config: str | None = None,
                      level_given: bool = True) -> None:
    """Install Gannet's default handlers, or the user's configuration file. With a config
    file, its levels stand unless a log level was given explicitly too."""
    if log_config:
        load_log_config(log_config)
    else:
        formatter = logging.Formatter("%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
                                      "%Y-%m-%d %H:%M:%S %z")
        for logger in (error_logger, access_logger):
            if not any(getattr(h, "_gannet", False) for h in logger.handlers):
                handler = logging.StreamHandler(sys.stderr if logger is error_logger else sys.stdout)
                handler.setFormatter(formatter)
                handler._gannet = True  # type: ignore[attr-defined]
                logger.addHandler(handler)
            logger.propagate = False
    if log_config and not level_given:
        return
    level = _LEVELS[log_level]
    logging.getLogger("gannet").setLevel(level)
    error_logger.setLevel(level)
    access_logger.setLevel(level)


_ATOM = re.compile(r"%\((\{[^}]*\}[ioe]|[A-Za-z]+)\)s")


class AccessLogger:
    """Formats one access line with gunicorn's atoms; only built when --access-log is on.

    Atoms: h remote address, l '-', u user '-', t time, r request line, m method, U path,
    q query, H protocol, s status, B body bytes, b body bytes or '-', f referer, a user agent,
    T seconds, M milliseconds, D microseconds, L seconds with decimals, p pid,
    {name}i request header, {name}o response header, {name}e environment variable.
    """

    def __init__(self, fmt: str, logger: logging.Logger = access_logger) -> None:
        self.fmt = fmt
        self.logger = logger
        self.atoms = set(_ATOM.findall(fmt))

    def log(self, conn: Any, cycle: Any, now: float, note: str = "") -> None:
        """One access line; ``note`` (e.g. "aborted": the response was cut short) is
        appended in brackets, so a format-driven line still says what happened."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        try:
            line = self.fmt % _Atoms(self, conn, cycle, now)
            self.logger.info(f"{line} [{note}]" if note else line)
        except Exception:  # noqa: BLE001 - a bad format must not break the response path
            self.logger.exception("cannot format access log line with %r", self.fmt)


class _Atoms(dict):
    """Computes only the atoms the format uses (a dict subclass so '%' formatting works)."""

    def __init__(self, owner: AccessLogger, conn: Any, cycle: Any, now: float) -> None:
        super().__init__()
        scope = cycle.scope
        elapsed = max(now - cycle.start_time, 0.0)
        for atom in owner.atoms:
            self[atom] = _atom(atom, conn, cycle, scope, elapsed)


def _header(headers: Any, name: str) -> str:
    wanted = name.lower().encode("latin-1")
    for key, value in headers or ():
        if bytes(key).lower() == wanted:
            return bytes(value).decode("latin-1")
    return "-"


def _atom(atom: str, conn: Any, cycle: Any, scope: dict, elapsed: float) -> str:
    client = scope.get("client")
    query = scope.get("query_string", b"").decode("latin-1")
    target = scope.get("raw_path", b"").decode("latin-1") + (("?" + query) if query else "")
    if atom.startswith("{"):
        name, kind = atom[1:-2], atom[-1]
        if kind == "i":
            return _header(scope.get("headers"), name)
        if kind == "o":
            return _header(cycle.headers, name)
        return os.environ.get(name, "-")
    simple = {
        "h": lambda: client[0] if client else "-",
        "l": lambda: "-",
        "u": lambda: "-",
        "t": lambda: time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
        "r": lambda: f"{scope['method']} {target} HTTP/{scope['http_version']}",
        "m": lambda: scope["method"],
        "U": lambda: scope.get("path", ""),
        "q": lambda: query,
        "H": lambda: f"HTTP/{scope['http_version']}",
        "s": lambda: str(cycle.status),
        "B": lambda: str(cycle.bytes_sent),
        "b": lambda: str(cycle.bytes_sent) if cycle.bytes_sent else "-",
        "f": lambda: _header(scope.get("headers"), "referer"),
        "a": lambda: _header(scope.get("headers"), "user-agent"),
        "T": lambda: str(int(elapsed)),
        "M": lambda: str(int(elapsed * 1000)),
        "D": lambda: str(int(elapsed * 1_000_000)),
        "L": lambda: f"{elapsed:.6f}",
        "p": lambda: f"<{os.getpid()}>",
    }.get(atom)
    return simple() if simple else "-"
