"""ServerState: what every connection of one worker shares.

Limits are copied out of Config into plain attributes because connections read them on
every request; the Date header is rebuilt once a second by the server's ticker, never per
request.
"""
from __future__ import annotations

import asyncio
import contextvars
import time
from typing import TYPE_CHECKING, Any, Callable

from ..config.response_headers import header_lines
from ..http.headers import add_default_names, defaults_without, http_date

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["ServerState"]


class ServerState:
    def __init__(self, config: "Config", app: Callable, loop: asyncio.AbstractEventLoop,
                 access_logger: Any = None, on_max_requests: Callable[[], None] | None = None) -> None:
        self.config = config
        self.app = app
        self.loop = loop
        self.scheme = "http"
        self.connections: set[Any] = set()
        self.tasks: set[asyncio.Task] = set()
        self.app_state: dict[str, Any] = {}
        # The context every request task starts from (a copy each): the server's, never a
        # previous request's.
        self.context = contextvars.copy_context()
        self.active = 0
        self.total_requests = 0
        self.shutting_down = False
        self.root_path = config.root_path.rstrip("/") if config.root_path != "/" else ""
        self.raw_root_path = self.root_path.encode("utf-8")
        # Request targets already split for the scope (http/h1.py, bounded there).
        self.targets: dict[bytes, tuple[str, bytes, bytes]] = {}
        self.limit_concurrency = config.limit_concurrency
        self.limit_max_requests = config.limit_max_requests
        self.limit_request_line = config.limit_request_line
        self.limit_request_fields = config.limit_request_fields
        self.limit_request_field_size = config.limit_request_field_size
        self.limit_request_body = config.limit_request_body
        # A request head may not exceed its line plus every field at its limit.
        self.max_head_bytes = (config.limit_request_line + 4 +
                               config.limit_request_fields * (config.limit_request_field_size + 4))
        self.header_read_timeout = config.header_read_timeout
        self.body_read_timeout = config.body_read_timeout
        self.write_timeout = config.write_timeout
        self.timeout_keep_alive = config.timeout_keep_alive
        # Behind a proxy (http/identity.py, server/proxy.py, http/uwsgi.py).
        from ..http.trust import TrustedPeers

        self.proxy_headers = config.proxy_headers
        self.forwarded_trust = TrustedPeers(config.forwarded_allow_ips)
        self.forwarded_memo: dict[tuple, Any] = {}  # resolved forwarding fields, bounded
        names = frozenset(name.encode("ascii") for name in config.forwarded_headers.split(","))
        # None: all of them (the default), so a request pays no filtering.
        self.forwarded_names: frozenset[bytes] | None = None if len(names) == 6 else names
        self.proxy_protocol = config.proxy_protocol
        self.proxy_allow = TrustedPeers(config.proxy_allow_from)
        self.uwsgi_allow = TrustedPeers(config.uwsgi_allow_from + ",unix")  # as gunicorn
        # TLS (server/tls.py): one context per worker, built here, so a HUP's new workers
        # read the certificate and key again.
        self.ssl_context: Any = None
        if config.ssl_certfile:
            from ..config.tls import context_for

            self.ssl_context = context_for(config)
            self.scheme = "https"
        self.access_logger = access_logger
        self.access_log = access_logger is not None
        self._on_max_requests = on_max_requests
        # Extension points filled by the server: the cycle class per request, a WSGI runner
        # (None for ASGI apps), and the WebSocket hand-over (None when WebSockets are off).
        from ..asgi.http import HTTPCycle

        self.cycle_class: type = HTTPCycle
        self.wsgi: Any = None
        self.ws_upgrade: Callable[..., None] | None = None
        # --header lines, built once; a 'server' among them replaces Gannet's own. Their
        # names join server/date as defaults an app may set itself (then the app's wins).
        self.extra_headers = header_lines(config.header)
        self.server_line = b"" if not config.server_header or any(
            header.startswith("server:") for header in config.header) else b"server: gannet\r\n"
        if config.header:
            add_default_names(header.split(":", 1)[0].encode("latin-1")
                              for header in config.header)
        self.default_headers = b""
        self.refresh_date()

    def refresh_date(self, now: float | None = None) -> None:
        """Rebuild the default header block (once a second, by the server's ticker)."""
        date = b""
        if self.config.date_header:
            date = b"date: " + http_date(now if now is not None else time.time()) + b"\r\n"
        self.default_headers = self.server_line + date + self.extra_headers

    def default_headers_without(self, headers: Any) -> bytes:
        """The default headers the app did not set itself (slow path: app sent server/date)."""
        return defaults_without(self.default_headers, headers)

    def max_requests_reached(self) -> None:
        if self._on_max_requests is not None and not self.shutting_down:
            callback, self._on_max_requests = self._on_max_requests, None
            callback()
