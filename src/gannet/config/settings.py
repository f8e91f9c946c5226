"""Every option Gannet understands, declared exactly once.

A :class:`Setting` carries everything the rest of the program derives from it: the
command-line flags, the ``GANNET_*`` environment variable, the config-file key, the
``--help`` text, the type conversion and the validation. ``cli.py`` builds argparse from
this list, ``config.py`` merges the sources, and ``docs/options.md`` is generated from it
(``python -m gannet.config.docs``), so the four can never disagree.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

from .response_headers import to_header_list

__all__ = ["Setting", "SETTINGS", "BY_NAME", "SettingError"]


class SettingError(ValueError):
    """A value that an option cannot take; carries the option so the message can name it."""

    def __init__(self, setting: "Setting", reason: str) -> None:
        super().__init__(f"{setting.display}: {reason}")
        self.setting = setting
        self.reason = reason


# ---------------------------------------------------------------- converters
# Each converter takes a value from any source (a CLI string, an env string, or an already
# typed value from a TOML file or a Python call) and returns the typed value or raises
# ValueError with a human reason.

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected an integer, got {value!r}") from None


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number of seconds, got {value!r}") from None


def to_str(value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"expected a string, got {value!r}")
    return os.fspath(value)


def to_nonempty_str(value: Any) -> str:
    """A string that must say something: an empty host or path is never what anyone means
    (a templated ``GANNET_HOST=${HOST}`` with HOST unset must not bind every interface)."""
    text = to_str(value)
    if not text.strip():
        raise ValueError(f"expected a value, got {text!r}")
    return text


def to_str_list(value: Any) -> list[str]:
    """Lists come as repeated flags, a TOML array, or a comma-separated env string."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not parts:
            raise ValueError(f"expected a comma-separated list, got {value!r}")
        return parts
    if isinstance(value, (list, tuple)):
        return [to_str(item) for item in value]
    raise ValueError(f"expected a list of strings, got {value!r}")


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """None or the word "none" unsets the option; an empty string is refused by ``convert``
    (an empty variable is a template gone wrong, not a request to unset)."""
    def convert_optional(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            return None
        return convert(value)

    return convert_optional


def to_umask(value: Any) -> int:
    """gunicorn's -m/--umask forms: 0o22 or 022 (octal), 0x12, or decimal 18."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = to_str(value).strip()
        if len(text) > 1 and text[0] == "0" and text[1].isdigit():
            text = "0o" + text[1:]  # 022 is octal, as in chmod and gunicorn
        try:
            number = int(text, 0)
        except ValueError:
            raise ValueError(f"expected an octal umask such as 0o22 or 022, got {value!r}") from None
    if not 0 <= number <= 0o777:
        raise ValueError(f"a umask is between 0 and 0o777, got {value!r}")
    return number


# ---------------------------------------------------------------- validators


def at_least(minimum: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is not None and value < minimum:
            return f"must be at least {minimum:g}, got {value}"
        return None

    return check


class _AnyAtom(dict):
    def __missing__(self, key: str) -> str:
        return "-"


def log_format(value: str) -> str | None:
    try:
        value % _AnyAtom()
    except (ValueError, TypeError, KeyError) as exc:
        return f"not a valid %-format ({exc})"
    return None


def port_number(value: int) -> str | None:
    if not 0 <= value <= 65535:
        return f"must be between 0 and 65535, got {value}"
    return None


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    convert: Callable[[Any], Any] = to_str
    flags: tuple[str, ...] = ()
    choices: tuple[str, ...] | None = None
    validate: Callable[[Any], str | None] | None = None
    multiple: bool = False  # repeatable flag collecting a list
    negatable: bool = False  # boolean with --x / --no-x
    section: str = "server"
    metavar: str | None = None
    cli: bool = True  # False for settings that only come from the Python API
    aliases: tuple[str, ...] = field(default=())
    const: Any = None  # a flag given without a value means this (--proxy-protocol: auto)

    @property
    def env_var(self) -> str:
        return "GANNET_" + self.name.upper()

    @property
    def display(self) -> str:
        return self.flags[0] if self.flags else self.name

    def parse(self, value: Any) -> Any:
        """Convert and validate a value from any source; raise SettingError naming the option."""
        try:
            typed = self.convert(value)
        except ValueError as exc:
            raise SettingError(self, str(exc)) from None
        if self.choices is not None and typed not in self.choices:
            raise SettingError(self, f"must be one of {', '.join(self.choices)}; got {typed!r}")
        if self.validate is not None and typed is not None:
            problem = self.validate(typed)
            if problem:
                raise SettingError(self, problem)
        return typed


def to_peer_list(value: Any) -> str:
    """An allow-list of peers (IPs, networks, '*', 'unix'), checked now so a typo fails at
    start-up; kept as one comma-separated string so Config stays plain data."""
    from ..http.trust import TrustedPeers  # light: ipaddress and socket, no event loop

    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"expected a comma-separated list of addresses, got {value!r}")
    text = ",".join(part.strip() for item in items for part in item.split(",") if part.strip())
    if not text:
        raise ValueError(f"expected a comma-separated list of addresses, got {value!r}")
    TrustedPeers(text)
    return text


FORWARDING_HEADERS = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                      "x-forwarded-port", "x-forwarded-prefix", "forwarded")


def to_forwarding_headers(value: Any) -> str:
    """A subset of FORWARDING_HEADERS, any case, as one comma-separated string."""
    names = [name.lower() for name in to_str_list(value)]
    if not names:  # a TOML []: believing none is --no-proxy-headers, said plainly
        raise ValueError("an empty list (to believe no forwarding header, use --no-proxy-headers)")
    unknown = [name for name in names if name not in FORWARDING_HEADERS]
    if unknown:
        raise ValueError(f"{', '.join(map(repr, unknown))}: not a forwarding header Gannet "
                         f"reads ({', '.join(FORWARDING_HEADERS)})")
    return ",".join(name for name in FORWARDING_HEADERS if name in names)


def to_proxy_protocol(value: Any) -> str:
    """gunicorn's forms too: True means auto, False off."""
    if isinstance(value, bool):
        return "auto" if value else "off"
    return to_str(value).strip().lower()


def _s(name: str, default: Any, help: str, **kw: Any) -> Setting:
    flags = kw.pop("flags", None) or ("--" + name.replace("_", "-"),)
    return Setting(name=name, default=default, help=help, flags=tuple(flags), **kw)


_opt_int = _optional(to_int)
_opt_float = _optional(to_float)
_opt_str = _optional(to_nonempty_str)

# Mozilla's "intermediate" TLS 1.2 suites (v5.7), in its order; config/tls.py says why.
INTERMEDIATE_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
))
_CERT_REQS_NUMBERS = {"0": "none", "1": "optional", "2": "required"}


def to_cert_reqs(value: Any) -> str:
    """none/optional/required, or uvicorn's and gunicorn's numbers (ssl.CERT_* values)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = to_str(value).strip().lower()
    return _CERT_REQS_NUMBERS.get(text, text)


DEFAULT_ACCESS_LOG_FORMAT = '%(client_addr)s - "%(r)s" %(s)s %(b)s %(L)ss'

SETTINGS: tuple[Setting, ...] = (
    # -------------------------------------------------------------- where to listen
    _s("host", "127.0.0.1", "Bind to this address (IPv6 without brackets).",
       convert=to_nonempty_str, section="binding"),
    _s("port", 8000, "Bind to this TCP port; 0 picks a free port and the log says which.",
       convert=to_int, validate=port_number, section="binding"),
    _s("bind", [], "Bind address, repeatable: HOST:PORT, [::1]:PORT, unix:PATH or fd://N. "
       "Replaces --host/--port when given (several sources: see docs/options.md).", flags=("-b", "--bind"), convert=to_str_list,
       multiple=True, section="binding", metavar="ADDRESS"),
    _s("uds", None, "Bind to this Unix domain socket path.", convert=_opt_str, section="binding",
       metavar="PATH"),
    _s("fd", None, "Serve on an already-bound socket inherited as this file descriptor.",
       convert=_opt_int, validate=at_least(0), section="binding"),
    _s("uwsgi_socket", [], "Listen for the uwsgi protocol (what nginx uwsgi_pass and Apache "
       "mod_proxy_uwsgi speak) on this address; repeatable, same forms as -b (and a bare "
       "/path, as uWSGI takes it, for a Unix socket). Without any "
       "HTTP listen option, Gannet then listens for uwsgi only (docs/deployment.md).",
       convert=to_str_list, multiple=True, section="binding", metavar="ADDRESS"),
    _s("backlog", 2048, "Maximum number of pending connections in the listen queue.",
       convert=to_int, validate=at_least(1), section="binding"),
    # -------------------------------------------------------------- the application
    _s("app_dir", ".", "Directory put first on sys.path before the app is imported.",
       section="application", metavar="DIR"),
    _s("factory", False, "Treat APP as a zero-argument callable that returns the application.",
       convert=to_bool, negatable=True, section="application"),
    _s("interface", "auto", "Application interface; auto detects ASGI 3, ASGI 2 and WSGI apps "
       "and logs its choice.", choices=("auto", "asgi3", "asgi2", "wsgi"), section="application"),
    _s("lifespan", "auto", "Run the ASGI lifespan protocol: auto tolerates apps without it, on "
       "requires it, off skips it.", choices=("auto", "on", "off"), section="application"),
    _s("loop", "auto", "Event loop: auto uses uvloop when it is installed.",
       choices=("auto", "asyncio", "uvloop"), section="application"),
    _s("env_file", None, "Read KEY=VALUE lines from this file into the environment before "
       "the other options are read (uvicorn's --env-file): GANNET_* lines count as the "
       "environment, and the app sees every variable. Variables already set win.",
       convert=_opt_str, section="application", metavar="PATH"),
    _s("root_path", "", "ASGI root_path (WSGI SCRIPT_NAME) when mounted below a URL prefix.",
       section="application", metavar="PATH"),
    # -------------------------------------------------------------- behind a proxy
    _s("proxy_headers", True, "Believe X-Forwarded-For, -Proto, -Host, -Port, -Prefix and "
       "RFC 7239 Forwarded from a peer in --forwarded-allow-ips: the app (ASGI scope, WSGI "
       "environ) and the access log then see the client's address, scheme, host and path "
       "prefix; from any other peer they change nothing.", convert=to_bool, negatable=True,
       section="proxy"),
    _s("forwarded_allow_ips", "127.0.0.1,unix", "Peers whose forwarding headers are "
       "believed: comma-separated IPs and networks (10.0.0.0/8, fd00::/8), '*' for any peer, "
       "'unix' for Unix-socket peers. FORWARDED_ALLOW_IPS (uvicorn's and gunicorn's "
       "variable) is read too; GANNET_FORWARDED_ALLOW_IPS wins over it.",
       convert=to_peer_list, section="proxy", metavar="LIST"),
    _s("forwarded_headers", ",".join(FORWARDING_HEADERS), "Which forwarding headers a "
       "trusted peer may set: a comma-separated subset. List only those your proxy writes "
       "(or clears): one it passes through untouched is the client's choice (an AWS ALB "
       "writes x-forwarded-for,x-forwarded-proto,x-forwarded-port and no others).",
       convert=to_forwarding_headers, section="proxy", metavar="LIST"),
    _s("proxy_protocol", "off", "Read a PROXY protocol header (HAProxy send-proxy, cloud load "
       "balancers) at the start of each connection from a peer in --proxy-allow-from: such a "
       "peer must send one (v1, v2, or auto: either); its addresses become the client's. "
       "Other peers are served as they are, and one that sends a PROXY header is "
       "disconnected. A bare --proxy-protocol means auto.", convert=to_proxy_protocol,
       choices=("off", "v1", "v2", "auto"), const="auto", section="proxy", metavar="MODE"),
    _s("proxy_allow_from", "127.0.0.1,::1,unix", "Peers that may (and then must) send a PROXY "
       "protocol header: IPs, networks, '*', 'unix'.", convert=to_peer_list,
       section="proxy", metavar="LIST"),
    _s("uwsgi_allow_from", "127.0.0.1,::1", "Peers allowed to speak the uwsgi protocol on "
       "--uwsgi-socket (they say who the client is): IPs, networks, '*'; Unix-socket peers "
       "always are. Others are disconnected with a log line.", convert=to_peer_list,
       section="proxy", metavar="LIST"),
    # -------------------------------------------------------------- TLS (config/tls.py)
    _s("ssl_certfile", None, "Serve HTTPS (and WSS) on every HTTP listener with this PEM "
       "certificate chain (the server's certificate first). Checked at start-up; a HUP "
       "reloads it with the workers.", convert=_opt_str, section="tls", metavar="PATH",
       flags=("--ssl-certfile", "--certfile")),
    _s("ssl_keyfile", None, "The certificate's private key (PEM); not needed when "
       "--ssl-certfile holds it too.", convert=_opt_str, section="tls", metavar="PATH",
       flags=("--ssl-keyfile", "--keyfile")),
    _s("ssl_keyfile_password", None, "Password of an encrypted --ssl-keyfile.",
       convert=_opt_str, section="tls", metavar="PASSWORD"),
    _s("ssl_ca_certs", None, "CA certificates (PEM) that client certificates must chain to "
       "(with --ssl-cert-reqs).", convert=_opt_str, section="tls", metavar="PATH",
       flags=("--ssl-ca-certs", "--ca-certs")),
    _s("ssl_cert_reqs", "none", "Client certificates: none (not asked for), optional "
       "(asked for, checked when sent) or required (the handshake fails without a valid "
       "one); uvicorn's and gunicorn's 0/1/2 too.", convert=to_cert_reqs,
       choices=("none", "optional", "required"), section="tls", metavar="MODE",
       flags=("--ssl-cert-reqs", "--cert-reqs")),
    _s("ssl_ciphers", INTERMEDIATE_CIPHERS, "TLS 1.2 cipher suites (OpenSSL's syntax); the "
       "default is Mozilla's intermediate profile: forward secrecy and AEAD only. TLS 1.3's "
       "suites are OpenSSL's.", convert=to_nonempty_str, section="tls", metavar="CIPHERS",
       flags=("--ssl-ciphers", "--ciphers")),
    _s("ssl_min_version", "TLSv1.2", "Oldest TLS version accepted.",
       choices=("TLSv1.2", "TLSv1.3"), section="tls", metavar="VERSION"),
    # -------------------------------------------------------------- timeouts
    _s("timeout_keep_alive", 5.0, "Close a keep-alive connection idle for this many seconds.",
       convert=to_float, validate=at_least(0), section="timeouts", metavar="SECONDS"),
    _s("timeout_graceful_shutdown", 30.0, "On shutdown, wait this long for in-flight requests "
       "before cancelling them.", convert=to_float, validate=at_least(0), section="timeouts",
       metavar="SECONDS", flags=("--timeout-graceful-shutdown", "--graceful-timeout")),
    _s("header_read_timeout", 10.0, "A request's line and headers must arrive within this many "
       "seconds of its first byte, or the client gets 408 (slowloris guard).",
       convert=to_float, validate=at_least(0.001), section="timeouts", metavar="SECONDS"),
    _s("body_read_timeout", 60.0, "A request body that makes no progress for this many "
       "seconds (while Gannet is reading it) is abandoned: 408, or a close if the response "
       "had started; the app sees http.disconnect.", convert=to_float, validate=at_least(0.001),
       section="timeouts", metavar="SECONDS"),
    _s("write_timeout", 60.0, "A response (HTTP or WebSocket) whose client accepts no bytes "
       "for this many seconds while output is waiting is aborted: the connection is closed, "
       "a WSGI iterable is closed, a log line says why.", convert=to_float,
       validate=at_least(0.001), section="timeouts", metavar="SECONDS"),
    # -------------------------------------------------------------- limits
    _s("limit_concurrency", None, "Answer 503 to new requests while this many are in flight.",
       convert=_opt_int, validate=at_least(1), section="limits", metavar="N"),
    _s("limit_max_requests", None, "Shut the worker down gracefully after this many requests "
       "(under the master, its replacement is accepting before it stops).",
       convert=_opt_int, validate=at_least(1), section="limits", metavar="N",
       flags=("--limit-max-requests", "--max-requests")),
    _s("limit_request_line", 8190, "Longest request line in bytes (method, target, version); "
       "longer gets 414.", convert=to_int, validate=at_least(64), section="limits",
       metavar="BYTES"),
    _s("limit_request_fields", 100, "Most header fields in a request; more gets 431.",
       convert=to_int, validate=at_least(1), section="limits", metavar="N"),
    _s("limit_request_field_size", 8190, "Longest header field (name and value) in bytes; "
       "longer gets 431.", convert=to_int, validate=at_least(16), section="limits",
       metavar="BYTES", flags=("--limit-request-field-size", "--limit-request-field_size")),
    _s("limit_request_body", 1024 ** 3, "Largest request body in bytes; larger gets 413. "
       "0 disables the limit.", convert=to_int, validate=at_least(0), section="limits",
       metavar="BYTES"),
    # -------------------------------------------------------------- workers (supervisor/)
    _s("workers", 1, "Worker processes under a master that binds once, replaces dead or hung "
       "workers and reloads on HUP. Given from any source (or WEB_CONCURRENCY set), Gannet "
       "runs the master, even for 1; otherwise one process as before (docs/workers.md).",
       convert=to_int, validate=at_least(1), section="workers", metavar="N",
       flags=("-w", "--workers")),
    _s("timeout", 30.0, "Under the master: a worker whose event loop has not ticked for this "
       "many seconds is hung: its requests in flight and stacks are logged, then it is "
       "killed and replaced. 0 disables.", convert=to_float, validate=at_least(0),
       section="workers", metavar="SECONDS", flags=("-t", "--timeout")),
    _s("preload", False, "Import the app once in the master before forking (fails fast; "
       "workers share its memory; HUP then restarts workers on the same code).",
       convert=to_bool, negatable=True, section="workers"),
    _s("max_requests_jitter", 0, "Add a random 0..N to --max-requests per worker, so workers "
       "do not all retire at once.", convert=to_int, validate=at_least(0), section="workers",
       metavar="N", flags=("--max-requests-jitter", "--limit-max-requests-jitter")),
    # -------------------------------------------------------------- reload (supervisor/reload.py)
    _s("reload", False, "Development: watch files and, when one changes, start workers on the "
       "new code and stop the old ones once the new ones accept (code that cannot load keeps "
       "the old workers serving until the next change). Runs the master, with -w workers "
       "(default 1); not with --preload; --timeout is off unless given (docs/reload.md).",
       convert=to_bool, negatable=True, section="reload"),
    _s("reload_dir", [], "Directory to watch, recursively; repeatable. Default: --app-dir (the "
       "current directory).", convert=to_str_list, multiple=True, section="reload",
       metavar="DIR"),
    _s("reload_include", [], "Glob of file names that trigger a reload, besides the default "
       "'*.py'; repeatable. Naming a default exclude ('.*') lifts it.", convert=to_str_list,
       multiple=True, section="reload", metavar="GLOB"),
    _s("reload_exclude", [], "Glob of files, or a directory, whose changes never trigger a "
       "reload; repeatable. Defaults: '.*', '.py[cod]', '.sw.*', '~*', and any hidden, "
       "__pycache__, node_modules, site-packages or virtualenv directory.",
       convert=to_str_list, multiple=True, section="reload", metavar="GLOB"),
    _s("reload_delay", 0.25, "Seconds without a further change before reloading, so saving "
       "several files at once reloads once.", convert=to_float, validate=at_least(0),
       section="reload", metavar="SECONDS"),
    _s("reload_extra_file", [], "A file to watch besides the directories, whatever its name "
       "(a template, a config file); repeatable (gunicorn's).", convert=to_str_list,
       multiple=True, section="reload", metavar="PATH"),
    # -------------------------------------------------------------- the process (operations)
    _s("pidfile", None, "Write the process id (the master's, or the single process's) to "
       "this file once the sockets are bound; removed at exit. A file naming another live "
       "process stops the start (exit 1); a stale one is replaced.", convert=_opt_str,
       section="process", metavar="FILE", flags=("-p", "--pid")),
    _s("user", None, "Run the app as this user (name or number): started as root, Gannet "
       "binds first, then the workers (or the single process) switch before importing the "
       "app; the master stays root. A Unix socket file is given to the user.",
       convert=_opt_str, section="process", metavar="USER", flags=("-u", "--user")),
    _s("group", None, "Run the app with this group (name or number); with --user alone, "
       "the user's primary group.", convert=_opt_str, section="process", metavar="GROUP",
       flags=("-g", "--group")),
    _s("umask", None, "Set this umask at start (0o22, 022 or decimal, as gunicorn's -m): it "
       "applies to the files the server and the app create, and a Unix socket file's mode "
       "is 0o666 less it. Unset: the inherited umask (the socket file is 0o666).",
       convert=_optional(to_umask), section="process", metavar="UMASK",
       flags=("-m", "--umask")),
    # -------------------------------------------------------------- logging and headers
    _s("log_level", "info", "Log level of the gannet loggers.",
       choices=("critical", "error", "warning", "info", "debug", "trace"),
       convert=lambda v: to_str(v).lower(), section="logging"),
    _s("log_config", None, "Logging configuration file: dictConfig as .json/.yaml/.yml, or "
       "fileConfig as .ini/.conf.", convert=_opt_str, section="logging", metavar="PATH"),
    _s("access_log", True, "Log one line per request on the gannet.access logger.",
       convert=to_bool, negatable=True, section="logging"),
    _s("access_log_format", DEFAULT_ACCESS_LOG_FORMAT, "Access log line, with gunicorn's "
       "atoms: %(h)s %(r)s %(s)s %(b)s %(T)s %(M)s %(D)s %({header}i)s ...",
       validate=log_format, section="logging", metavar="FORMAT"),
    _s("server_header", True, "Send 'server: gannet' on every response.", convert=to_bool,
       negatable=True, section="logging"),
    _s("date_header", True, "Send a Date header on every response (refreshed once a second).",
       convert=to_bool, negatable=True, section="logging"),
    _s("header", [], "Send this header on every response Gannet writes (app responses, "
       "WebSocket handshakes, Gannet's own 4xx/5xx refusals) unless the app sets the same "
       "name; repeatable. A 'server' header replaces Gannet's. In GANNET_HEADER, one header "
       "a line (values may contain commas).", convert=to_header_list, multiple=True,
       section="logging", metavar="NAME:VALUE"),
    # -------------------------------------------------------------- WSGI
    _s("threads", 8, "WSGI: threads that run the app (the most WSGI calls in flight at once "
       "per worker).", convert=to_int, validate=at_least(1), section="wsgi", metavar="N"),
    _s("wsgi_body_buffer", 64 * 1024 * 1024, "WSGI: request bodies are read before the app "
       "is called and held in memory while all of this worker's bodies together fit in this "
       "many bytes; beyond it a body spools to a temporary file. As much again may be kept "
       "as idle buffers for later uploads.",
       convert=to_int, validate=at_least(0), section="wsgi", metavar="BYTES"),
    _s("wsgi_write_buffer", 256 * 1024, "WSGI: response bytes buffered per client before the "
       "app's thread waits for the client to read (the per-connection memory bound).",
       convert=to_int, validate=at_least(1024), section="wsgi", metavar="BYTES"),
    # -------------------------------------------------------------- WebSockets
    _s("ws", "auto", "WebSocket support: auto (on), websockets (the websockets sans-I/O "
       "layer), or none (Upgrade requests are served as plain HTTP).",
       choices=("auto", "websockets", "none"), section="websockets"),
    _s("ws_max_size", 16 * 1024 * 1024, "Largest incoming WebSocket message in bytes; larger "
       "closes the socket with 1009.", convert=to_int, validate=at_least(1),
       section="websockets", metavar="BYTES"),
    _s("ws_max_queue", 32, "Incoming WebSocket messages queued for the app before reading "
       "from that client pauses.", convert=to_int, validate=at_least(1),
       section="websockets", metavar="N"),
    _s("ws_ping_interval", 20.0, "Seconds between server pings on an open WebSocket; 0 "
       "disables pings.", convert=_opt_float, validate=at_least(0), section="websockets",
       metavar="SECONDS"),
    _s("ws_ping_timeout", 20.0, "Close a WebSocket whose peer has not answered a ping within "
       "this many seconds.", convert=_opt_float, validate=at_least(0), section="websockets",
       metavar="SECONDS"),
    _s("ws_per_message_deflate", True, "Offer permessage-deflate compression (RFC 7692).",
       convert=to_bool, negatable=True, section="websockets"),
)

BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
