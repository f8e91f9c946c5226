"""The command line, built from config/settings.py; it parses, then hands over.

Exit statuses (the only place besides the supervisor that chooses them):
0 clean stop (also a stop requested during the app's lifespan startup) · 1 cannot listen
(address in use, permission) or an unexpected error · 2 bad option or config value ·
3 lifespan startup failed · 4 the app could not be imported or built.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Sequence

from . import __version__
from .config import Config, ConfigError
from .config.foreign_flags import hint_for
from .config.settings import SETTINGS, Setting

__all__ = ["main", "build_parser", "EXIT_ERROR", "EXIT_CONFIG", "EXIT_LIFESPAN", "EXIT_APP_LOAD"]

EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_LIFESPAN = 3
EXIT_APP_LOAD = 4

_SECTIONS = {
    "binding": "where to listen",
    "application": "the application",
    "timeouts": "timeouts",
    "limits": "limits (bad input gets 408/413/414/431/503)",
    "logging": "logging and default headers",
    "wsgi": "WSGI apps",
    "websockets": "WebSockets",
    "workers": "worker processes (the master: docs/workers.md)",
    "reload": "development reload (docs/reload.md)",
    "process": "the process: pid file, user, group, umask (docs/deployment.md)",
    "proxy": "behind a proxy: client identity, PROXY protocol, uwsgi (docs/deployment.md)",
    "tls": "TLS: HTTPS and WSS (docs/tls.md)",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for config errors
        self.exit(EXIT_CONFIG, f"gannet: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gannet",
        description="Gannet: an ASGI and WSGI application server. Every option also reads "
        "GANNET_<NAME> from the environment and <name> from the config file; "
        "precedence: defaults < config file < environment < command line.",
        argument_default=argparse.SUPPRESS,
        allow_abbrev=False,  # "--header 5" must not quietly mean --header-read-timeout
    )
    parser.add_argument("app", nargs="?", metavar="APP", help="the app: 'module:attribute' (e.g. main:app, mysite.wsgi:application, "
                        "pkg.mod:obj.attr), a bare 'module' to use its 'application' or "
                        "'app' (gunicorn tries 'application' alone), or a script file's "
                        "path as mod_wsgi takes it (site.wsgi, path/to/wsgi.py[:callable])")
    parser.add_argument("-c", "--config", dest="config_file", metavar="PATH",
                        help="config file: TOML (top-level keys, or [tool.gannet] in "
                        "pyproject.toml), or Python with gunicorn's setting names and "
                        "server hooks (gannet.conf.py, python:MODULE; docs/config-files.md)")
    parser.add_argument("--version", action="version", version=f"gannet {__version__}")
    groups = {key: parser.add_argument_group(title) for key, title in _SECTIONS.items()}
    for setting in SETTINGS:
        if setting.cli:
            _add(groups.get(setting.section, parser), setting)
    return parser


def _add(group: argparse._ActionsContainer, setting: Setting) -> None:
    help_text = f"{setting.help} [env {setting.env_var}; default {setting.default!r}]"
    help_text = help_text.replace("%", "%%")  # argparse %-formats help strings
    if setting.negatable:
        group.add_argument(*setting.flags, dest=setting.name, action="store_true", help=help_text)
        group.add_argument("--no-" + setting.flags[-1][2:], dest=setting.name, action="store_false",
                           help=argparse.SUPPRESS)
    elif setting.multiple:
        group.add_argument(*setting.flags, dest=setting.name, action="append",
                           metavar=setting.metavar, help=help_text)
    elif setting.const is not None:
        group.add_argument(*setting.flags, dest=setting.name, nargs="?", const=setting.const,
                           metavar=setting.metavar, help=help_text + (
                               f" {{{','.join(setting.choices)}}}" if setting.choices else ""))
    else:
        group.add_argument(*setting.flags, dest=setting.name, metavar=setting.metavar or
                           (None if setting.choices else setting.name.upper()),
                           choices=None, help=help_text + (f" {{{','.join(setting.choices)}}}"
                                                           if setting.choices else ""))


def config_from_args(argv: Sequence[str] | None = None) -> Config:
    parser = build_parser()
    namespace, extras = parser.parse_known_args(argv)
    args = vars(namespace)
    if extras:
        parser.error(_extras_message(parser, extras, args.get("app")))
    app = args.pop("app", None)
    config_file = args.pop("config_file", None)
    return Config(app, config_file=config_file, **args)


_BOOLEAN_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def _extras_message(parser: argparse.ArgumentParser, extras: list[str], app: str | None) -> str:
    """One line for what argparse could not place: an unknown flag with what to type
    instead (foreign_flags.py), or a second positional argument."""
    for item in extras:
        if item.startswith("-") and len(item) > 1:
            flag = item.split("=", 1)[0]
            known = [option for option in parser._option_string_actions if option[:2] == "--"]
            return f"unrecognized argument {flag}; {hint_for(flag, known)}"
    words = [word for word in [app, *extras] if word and word.lower() in _BOOLEAN_WORDS]
    if words:
        return (f"unexpected argument {words[0]!r}: boolean options take no value; use the "
                "flag or its --no- form (e.g. --ws-per-message-deflate / "
                "--no-ws-per-message-deflate)")
    return (f"unexpected argument {extras[0]!r}: APP was already given as {app!r}, and "
            "Gannet serves one application (options go before or after APP, each with a "
            "leading --)")


def main(argv: Sequence[str] | None = None) -> int:
    from .logging import configure_logging

    try:
        config = config_from_args(argv)
    except ConfigError as exc:
        sys.stderr.write(f"gannet: error: {exc}\n")
        return EXIT_CONFIG
    try:
        configure_logging(config.log_level, config.log_config,
                          config.sources["log_level"] != "default")
    except Exception as exc:  # noqa: BLE001 - whatever a broken --log-config file raises
        if not config.log_config:
            raise
        sys.stderr.write(f"gannet: error: {_log_config_problem(config.log_config, exc)}\n")
        return EXIT_CONFIG
    return serve(config)


def _log_config_problem(path: str, exc: BaseException) -> str:
    """One line: ``--log-config PATH: reason`` for any failure of logging.config (a .txt
    or broken .ini, bad JSON or YAML, a dictConfig that names a missing class...)."""
    if isinstance(exc, KeyError):
        reason = f"missing section or key {exc.args[0]!r} (is it a logging config file?)"
    else:
        reason = str(exc) or type(exc).__name__
        if exc.__cause__ is not None and str(exc.__cause__) not in reason:
            reason += f": {exc.__cause__}"
    reason = " ".join(reason.split())
    for prefix in ("--log-config: ", f"--log-config {path}: "):
        reason = reason.removeprefix(prefix)
    return f"--log-config {path}: {reason}"


def serve(config: Config) -> int:
    """Run the master and its workers when workers were asked for (supervisor/), else one
    worker in this process, and choose the exit status (see the module docstring)."""
    from .server.server import Server
    from .config.pyconfig import hooks_for
    from .supervisor import Arbiter, worker_count

    log = logging.getLogger("gannet.error")
    for warning in config.warnings:  # collected before logging was configured
        log.warning("%s", warning)
    for note in config.notes:
        log.info("%s", note)
    try:
        workers = worker_count(config)
    except ConfigError as exc:  # WEB_CONCURRENCY that is not a number
        log.error("%s", exc)
        return EXIT_CONFIG
    if config.ssl_certfile:  # a bad certificate or key stops the start here, exit 2
        from .config.tls import TLSConfigError, prepare_context

        try:  # as the user Gannet starts as: the files may be root's alone (nginx's way)
            prepare_context(config)
        except TLSConfigError as exc:
            log.error("%s", exc)
            return EXIT_CONFIG
    hooks = hooks_for(config)  # a Python config file's server hooks, or None
    if workers is None and hooks is not None:  # hooks run under a master, as in gunicorn
        workers = config.workers  # type: ignore[attr-defined]
    if workers is None and config.reload:  # --reload runs the master: -w workers, default 1
        workers = config.workers  # type: ignore[attr-defined]
    if workers is not None:
        return Arbiter(config, workers, hooks=hooks).run()
    server = Server(config)
    return run_server(server, server.serve(), config.loop)


def run_server(server: Any, main: Any, loop_name: str) -> int:
    """Run ``main`` (``server.serve()``, or a worker's wrapper of it) on a fresh loop and
    choose the exit status: each start-up phase fails with its own exception
    (server/server.py). The supervisor's workers exit with the same statuses."""
    from .asgi.lifespan import LifespanFailure
    from .loading import AppLoadError
    from .server.listeners import BindError
    from .server.server import run_loop
    from .server.worker import ListenerLost

    log = logging.getLogger("gannet.error")
    try:
        run_loop(main, loop_name)
    except ConfigError as exc:  # an option that only fails when used (e.g. --loop uvloop)
        log.error("%s", exc)
        return EXIT_CONFIG
    except AppLoadError as exc:
        log.error("Error loading app: %s", exc)
        return EXIT_APP_LOAD
    except LifespanFailure as exc:
        log.error("Application startup failed: %s", exc)
        return EXIT_LIFESPAN
    except BindError as exc:
        unexpected = getattr(exc, "unexpected", False)
        log.error("%s", exc, exc_info=exc.__cause__ if unexpected else None)
        return EXIT_ERROR
    except ListenerLost as exc:  # logged with its reason when it happened
        log.error("Exiting with status 1: %s", exc)
        return EXIT_ERROR
    except KeyboardInterrupt:  # an interrupt before the signal handlers were installed
        return 0
    except Exception:  # noqa: BLE001 - a bug of ours: say so, with the traceback
        phase = "while serving" if server.started else "during start-up"
        log.exception("Unexpected error %s", phase)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
