"""Gannet: an application server for ASGI 3 and WSGI apps over HTTP/1.1 and WebSockets
(HTTP/2 and TLS are not there yet), with a uvicorn- and gunicorn-compatible command line."""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from .config import Config  # noqa: E402
from .server.server import Server  # noqa: E402

__all__ = ["run", "Config", "Server", "__version__"]


def run(app: Any, **options: Any) -> int:
    """Serve ``app`` (an object or "module:attr") until stopped; returns the exit status.

    ``options`` are the command-line options with underscores: ``run(app, port=0)``.
    """
    from .cli import serve
    from .logging import configure_logging

    config_file = options.pop("config_file", None)
    config = Config(app, config_file=config_file, **options)
    configure_logging(config.log_level, config.log_config,
                          config.sources["log_level"] != "default")
    return serve(config)
