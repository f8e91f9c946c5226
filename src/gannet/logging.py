"""Logger names, log set-up, and the access-log line built from gunicorn's atoms.

Loggers: ``gannet.error`` (server events and app errors) and ``gannet.access`` (one line
per response, refusals and abandoned requests included). ``--log-config`` hands both to
the user's dictConfig/fileConfig instead. docs/logging.md is the user's side of this.

Times come from ``request_clock`` (``time.perf_counter``): uvloop's ``loop.time()`` moves
in milliseconds, which made ``%(D)s`` step by 1000 and short requests take ``0.000000s``.
"""
from __future__ import annotations

import logging
import os
import base64
import binascii
import re
import sys
import time
from typing import Any

from .config.settings import DEFAULT_ACCESS_LOG_FORMAT
from .log_config import load_log_config

__all__ = ["TRACE", "configure_logging", "AccessLogger", "error_logger", "access_logger",
           "request_clock", "DEFAULT_ACCESS_FORMAT", "ABORTED", "CLIENT_GONE",
           "CLIENT_CLOSED_FIRST"]

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
        formatter = _PrefixFormatter("%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
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


class _PrefixFormatter(logging.Formatter):
    """The default handlers' formatter: time, pid and level before the message, except for
    an access line of a custom --access-log-format, printed exactly as formatted (as
    gunicorn's access log does), so a gunicorn format gives gunicorn's line."""

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "gannet_plain", False):
            return record.getMessage()
        return super().format(record)


request_clock = time.perf_counter  # a request's start and end; microsecond resolution
# Gannet's own line: the client as uvicorn shows it (host:port); %(h)s stays gunicorn's.
DEFAULT_ACCESS_FORMAT = DEFAULT_ACCESS_LOG_FORMAT
ABORTED = "aborted"  # the response started and was cut short
CLIENT_GONE = "client gone"  # the client left before any of the response was sent
# The client sent EOF (closed its side) before the response was complete: the response
# went out whole, but whether the client read it is unknown (nc -N does; a killed curl
# does not): the line says so rather than claim a clean delivery.
CLIENT_CLOSED_FIRST = "client closed first"
_PLAIN = {"gannet_plain": True}
# What a value must not carry raw into a log (Apache's rule; gunicorn escapes only '"'):
# control characters (C0, DEL, C1, Unicode line separators) become \xHH, so a CR/LF from
# a Basic-auth user or a %0a in a path cannot forge a line, nor ESC/CSI drive a terminal;
# '"' and '\' get a backslash, so quoted fields stay whole and escapes stay unambiguous.
_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f-\x9f\u2028\u2029]')


def log_safe(value: str) -> str:
    """``value`` (a client-sent path, user...) fit for any log line: escaped as above."""
    return _UNSAFE.sub(_escape, value)


def _escape(match: "re.Match[str]") -> str:
    char = match.group()
    if char == '"' or char == "\\":
        return "\\" + char
    return ("\\x%02x" if char < "\u0100" else "\\u%04x") % ord(char)


class AccessLogger:
    """Formats one access line with gunicorn's atoms; only built when --access-log is on.

    Atoms: h remote address, l '-', u user (HTTP Basic) or '-', t time, r request line,
    m method, U path, q query, H protocol, s status ('-' if none was sent), B and b body bytes
    (gunicorn's b is 0, not CLF's '-', for an empty body), f referer, a user agent, T seconds, M milliseconds,
    D microseconds, L seconds with decimals, p pid, {name}i request header, {name}o
    response header, {name}e environment variable; and Gannet's own: client_addr
    (host:port) and note (``aborted``, ``client gone``, ``client closed first`` or
    '-'). A line whose format has no
    %(note)s gets the note appended in brackets, so every format says what happened.
    """

    def __init__(self, fmt: str, logger: logging.Logger = access_logger) -> None:
        default = fmt == DEFAULT_ACCESS_FORMAT
        self.fmt = DEFAULT_ACCESS_FORMAT if default else fmt
        self.logger = logger
        self.note_in_format = "%(note)" in self.fmt
        self.extra = None if default else _PLAIN

    def log(self, conn: Any, cycle: Any, note: str = "") -> None:
        """One access line for ``cycle`` (anything with scope, status, headers, bytes_sent
        and start_time); ``note`` says it did not end normally (ABORTED, CLIENT_GONE)."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        try:
            line = self.fmt % _Atoms(cycle, request_clock(), note)
            if note and not self.note_in_format:
                line = f"{line} [{note}]"
            self.logger.info(line, extra=self.extra)
        except Exception:  # noqa: BLE001 - a bad format must not break the response path
            self.logger.exception("cannot format access log line with %r", self.fmt)

    def log_answer(self, scope: dict, status: int, sent: int, start: float, note: str = "") -> None:
        """An answer Gannet gave without an HTTP cycle: a refusal before the app (``scope``
        holds what is known of the request), a WebSocket handshake's answer."""
        self.log(None, _Answer(scope, status, sent, start), note)


class _Answer:
    """The fields of a cycle that the atoms read, for answers that had no cycle."""

    __slots__ = ("scope", "status", "headers", "bytes_sent", "start_time")

    def __init__(self, scope: dict, status: int, sent: int, start: float) -> None:
        self.scope = scope
        self.status = status
        self.headers = ()
        self.bytes_sent = sent
        self.start_time = start


class _Atoms(dict):
    """The atoms a line uses, each computed when the format asks for it (a dict subclass
    so '%' formatting works). Any key works, as with gunicorn's SafeAtoms: an unknown atom
    is '-', and conversions or widths (``%(s)5s``, ``%(h)r``) apply to the value. Values
    are escaped (``_UNSAFE``) so no client-sent byte can forge a line."""

    __slots__ = ("cycle", "micros", "note")

    def __init__(self, cycle: Any, now: float, note: str) -> None:
        super().__init__()
        start = cycle.start_time
        self.cycle = cycle
        self.micros = max(int((now - start) * 1_000_000), 0) if start else 0
        self.note = note

    def __missing__(self, atom: str) -> str:
        cycle = self.cycle
        value = _atom(atom, cycle, cycle.scope, self.micros, self.note)
        if _UNSAFE.search(value):
            value = _UNSAFE.sub(_escape, value)
        self[atom] = value
        return value


def _header(headers: Any, name: str) -> str:
    wanted = name.lower().encode("latin-1")
    for key, value in headers or ():
        if bytes(key).lower() == wanted:
            return bytes(value).decode("latin-1")
    return "-"


def _basic_user(headers: Any) -> str:
    """The user name of an HTTP Basic Authorization header, as gunicorn's %(u)s."""
    auth = _header(headers, "authorization")
    if not auth.lower().startswith("basic"):
        return "-"
    parts = auth.split(" ", 1)
    try:
        return base64.b64decode(parts[1].strip()).split(b":", 1)[0].decode("utf-8") if len(parts) == 2 else "-"
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return "-"


def _client_addr(client: Any) -> str:
    if not client:
        return "-"
    return f"{client[0]}:{client[1]}" if len(client) > 1 and client[1] is not None else str(client[0])


def _atom(atom: str, cycle: Any, scope: dict, micros: int, note: str) -> str:
    client = scope.get("client")
    query = scope.get("query_string", b"").decode("latin-1")
    method = scope.get("method")
    if atom.startswith("{"):
        name, kind = atom[1:-2], atom[-1]
        if atom[-2:-1] != "}":
            return "-"
        if kind == "i":
            return _header(scope.get("headers"), name)
        if kind == "o":
            return _header(cycle.headers, name)
        return os.environ.get(name, "-") if kind == "e" else "-"
    if atom == "r":
        # A request line that never parsed is '-', as gunicorn and nginx log it.
        if method is None:
            return "-"
        target = scope.get("raw_path", b"").decode("latin-1") + (("?" + query) if query else "")
        return f"{method} {target} HTTP/{scope['http_version']}"
    sent = cycle.bytes_sent
    simple = {
        "h": lambda: client[0] if client else "-",
        "client_addr": lambda: _client_addr(client),
        "l": lambda: "-",
        "u": lambda: _basic_user(scope.get("headers")),
        "t": lambda: time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
        "m": lambda: method or "-",
        "U": lambda: scope.get("path") or "-",
        "q": lambda: query,
        "H": lambda: f"HTTP/{scope['http_version']}" if scope.get("http_version") else "-",
        "s": lambda: str(cycle.status) if cycle.status else "-",
        "B": lambda: str(sent),
        "b": lambda: str(sent),  # gunicorn prints 0, not CLF's '-', for an empty body
        "f": lambda: _header(scope.get("headers"), "referer"),
        "a": lambda: _header(scope.get("headers"), "user-agent"),
        "T": lambda: str(micros // 1_000_000),
        "M": lambda: str(micros // 1000),
        "D": lambda: str(micros),
        "L": lambda: "%d.%06d" % divmod(micros, 1_000_000),
        "p": lambda: f"<{os.getpid()}>",
        "note": lambda: note or "-",
    }.get(atom)
    return simple() if simple else "-"
