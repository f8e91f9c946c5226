"""What to type instead: uvicorn's and gunicorn's flags that Gannet spells differently or
does not have yet, and the closest Gannet option for a typo.

Gannet accepts most of both servers' spellings as they are (settings.py); this table covers
the rest, so a command line copied from a uvicorn or gunicorn deployment fails with a
pointer instead of a bare "unrecognized argument" (or a misleading closest match: gunicorn's
``--header-map`` is not ``--header``). Checked against ``uvicorn --help`` (0.54) and
``gunicorn --help`` (27.0). Data plus one lookup.
"""
from __future__ import annotations

import difflib
from typing import Iterable

__all__ = ["FOREIGN_FLAGS", "hint_for"]

_U, _G, _UG = "uvicorn's", "gunicorn's", "uvicorn's and gunicorn's"
_NOT_YET = "is not available yet"
_LOG_TO_FILE = "is --log-config in Gannet: route the gannet.{} logger to a file handler there"
_SYSLOG = "is --log-config in Gannet: a logging.handlers.SysLogHandler there"
_HTTP2 = f"{_NOT_YET} (HTTP/2 is planned); Gannet speaks HTTP/1.1"

# flag -> (whose flag, what to do instead); the message reads "<whose> <flag> <text>".
FOREIGN_FLAGS: dict[str, tuple[str, str]] = {
    # ------------------------------------------------------------ processes
    "--timeout-worker-healthcheck": (_U, ("is --timeout in Gannet: a worker whose event "
                                          "loop has not ticked for that long is killed and "
                                          "replaced")),
    "-k": (_G, ("is not needed: Gannet serves ASGI and WSGI apps itself (--interface "
               "chooses when detection is not enough)")),
    "--worker-class": (_G, ("is not needed: Gannet serves ASGI and WSGI apps itself "
                           "(--interface chooses when detection is not enough)")),
    "--worker-connections": (_G, ("has no exact equivalent: --limit-concurrency N answers 503 "
                                 "while N requests are in flight")),
    "--worker-tmp-dir": (_G, "is not needed: Gannet's heartbeat is a pipe, not a file"),
    "--keep-alive": (_G, "is --timeout-keep-alive in Gannet"),
    "-D": (_G, ("is not available: run Gannet under systemd or a container runtime "
               "(docs/deployment.md)")),
    "--daemon": (_G, ("is not available: run Gannet under systemd or a container runtime "
                     "(docs/deployment.md)")),
    "--initgroups": (_G, ("is not needed: with -u/--user, Gannet always sets the user's "
                         "supplementary groups (initgroups)")),
    "-n": (_G, "is not available"),
    "--name": (_G, "is not available"),
    "--reuse-port": (_G, _NOT_YET),
    "--spew": (_G, "is not available"),
    "--control-socket": (_G, "is not available"), "--no-control-socket": (_G, "is not needed"),
    "--control-socket-mode": (_G, "is not available"),
    "--dirty-app": (_G, "is not available"), "--dirty-workers": (_G, "is not available"),
    "--dirty-threads": (_G, "is not available"), "--dirty-timeout": (_G, "is not available"),
    "--dirty-graceful-timeout": (_G, "is not available"),
    "--check-config": (_G, f"{_NOT_YET}; a bad option already exits 2 before the app loads"),
    "--print-config": (_G, _NOT_YET),
    "-R": (_G, "is not available"),
    "--enable-stdio-inheritance": (_G, "is not available"),
    # ------------------------------------------------------------ development
    "--reload-engine": (_G, ("is not needed: Gannet's --reload always uses watchfiles "
                             "(inotify on Linux; WATCHFILES_FORCE_POLLING=1 polls)")),
    "--use-colors": (_U, ("is not available: Gannet's log lines are plain; set a formatter "
                         "with --log-config")),
    "--no-use-colors": (_U, "is not needed: Gannet's log lines are plain"),
    # ------------------------------------------------------------ the application
    "--chdir": (_G, ("is --app-dir in Gannet (it puts the directory first on sys.path; it "
                    "does not change the working directory)")),
    "--pythonpath": (_G, "is --app-dir in Gannet for one directory; set PYTHONPATH for more"),
    "-e": (_G, "is --env-file PATH in Gannet, or set the variable in the environment"),
    "--env": (_G, "is --env-file PATH in Gannet, or set the variable in the environment"),
    "--paste": (_G, "is not available"),
    "--paster": (_G, "is not available"),
    "--paste-global": (_G, "is not available"),
    "--reset-contextvars": (_U, ("is not needed: every request starts from a fresh copy of "
                                "the server's context")),
    "--asgi-loop": (_G, "is --loop in Gannet"),
    "--asgi-lifespan": (_G, "is --lifespan in Gannet"),
    # ------------------------------------------------------------ protocols and limits
    "--http": (_U, "is not needed: Gannet always parses HTTP/1.1 with httptools"),
    "--http2": (_U, _HTTP2),
    "--http-protocols": (_G, _HTTP2),
    "--h11-max-incomplete-event-size": (_U, ("is --limit-request-line, --limit-request-fields "
                                            "and --limit-request-field-size in Gannet (414 "
                                            "and 431 when exceeded)")),
    "--websocket-max-message-size": (_G, "is --ws-max-size in Gannet"),
    "--no-sendfile": (_G, "is not available"),
    "--protocol": (_G, ("is --uwsgi-socket ADDRESS in Gannet (repeatable; without an HTTP "
                        "listen option Gannet then listens for uwsgi only)")),
    "--forwarder-headers": (_G, ("is not needed: Gannet never takes SCRIPT_NAME or PATH_INFO "
                                 "from request headers; a trusted proxy's "
                                 "X-Forwarded-Prefix sets SCRIPT_NAME (--proxy-headers)")),
    "--header-map": (_G, ("is not available: request headers with an underscore are always "
                         "dropped from the WSGI environ (gunicorn's default, 'drop')")),
    "--http-parser": (_G, "is not needed: Gannet always parses HTTP/1.1 with httptools"),
    "--http2-cleartext": (_G, _HTTP2), "--http2-max-concurrent-streams": (_G, _HTTP2),
    "--http2-initial-window-size": (_G, _HTTP2), "--http2-max-frame-size": (_G, _HTTP2),
    "--http2-max-header-list-size": (_G, _HTTP2),
    "--permit-obsolete-folding": (_G, "is not available: Gannet refuses obsolete line folding"),
    "--strip-header-spaces": (_G, ("is not available: a space before the colon is refused "
                                  "(RFC 9112 §5.1)")),
    "--permit-unconventional-http-method": (_G, "is not available"),
    "--permit-unconventional-http-version": (_G, "is not available"),
    "--casefold-http-method": (_G, "is not available: methods are case-sensitive (RFC 9110 §9.1)"),
    "--asgi-disconnect-grace-period": (_G, "is not available"),
    # ------------------------------------------------------------ TLS
    "--ssl-version": (_UG, ("is --ssl-min-version in Gannet (TLSv1.2 or TLSv1.3; older "
                            "versions are not offered)")),
    "--suppress-ragged-eofs": (_G, ("is not needed: a TLS connection that ends without "
                                    "close_notify ends the request as a disconnect")),
    "--do-handshake-on-connect": (_G, ("is not needed: the handshake always completes "
                                       "before the first request is read, within "
                                       "--header-read-timeout")),
    # ------------------------------------------------------------ logging
    "--access-logfile": (_G, "is not needed: access lines go to stdout by default "
                             "(--no-access-log turns them off); for a file, "
                             + _LOG_TO_FILE.format("access").replace("is ", "use ", 1)),
    "--access-logformat": (_G, "is --access-log-format in Gannet (same atoms)"),
    "--error-logfile": (_G, "is not needed: errors go to stderr; for a file, "
                            + _LOG_TO_FILE.format("error").replace("is ", "use ", 1)),
    "--log-file": (_G, "is not needed: errors go to stderr; for a file, "
                       + _LOG_TO_FILE.format("error").replace("is ", "use ", 1)),
    "--log-config-json": (_G, "is --log-config in Gannet (it reads .json, .yaml and .ini)"),
    "--logger-class": (_G, "is --log-config in Gannet"),
    "--capture-output": (_G, "is not available"),
    "--log-syslog": (_G, _SYSLOG), "--log-syslog-to": (_G, _SYSLOG),
    "--log-syslog-prefix": (_G, _SYSLOG), "--log-syslog-facility": (_G, _SYSLOG),
    "--disable-redirect-access-to-syslog": (_G, ("is not needed: Gannet never logs to syslog "
                                                "by itself")),
    "--statsd-host": (_G, f"{_NOT_YET} (metrics are planned)"),
    "--statsd-prefix": (_G, f"{_NOT_YET} (metrics are planned)"),
    "--dogstatsd-tags": (_G, f"{_NOT_YET} (metrics are planned)"),
    "--enable-backlog-metric": (_G, f"{_NOT_YET} (metrics are planned)"),
    "-v": (_G, "is --version in Gannet"),
}


def hint_for(flag: str, known: Iterable[str]) -> str:
    """What to say about an unknown ``flag``: uvicorn's or gunicorn's equivalent from the
    table, else the closest of the ``known`` Gannet flags, else where to look."""
    name = flag.split("=", 1)[0]
    if name[:1] == "-" and name[1:2] != "-" and len(name) > 2 and name[:2] in FOREIGN_FLAGS:
        name = name[:2]  # a short flag with its value attached, as gunicorn allows: -w4
    if name in FOREIGN_FLAGS:
        whose, text = FOREIGN_FLAGS[name]
        return f"{whose} {name} {text}"
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]}?"
    return "see gannet --help for every option"
