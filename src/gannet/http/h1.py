"""HTTP/1.1 over httptools (llhttp): keep-alive, pipelining, chunked, 100-continue, limits.

Theory of operation. One ``H1Protocol`` per connection. httptools calls ``on_*`` as it parses;
``on_headers_complete`` turns the request into a scope and an ``HTTPCycle`` (asgi/http.py),
which runs the app in a task. Pipelined requests queue behind the one being answered
(RFC 9112 §9.3.2: responses in request order) and reading pauses while any are queued.
The cycle calls back ``send_*`` to put its response on the wire; framing (Content-Length,
chunked, close-delimited) is decided here, once per response, when the head is written.

llhttp already refuses most ambiguous requests (CL+TE, repeated or non-numeric CL, TE not
ending in chunked, obs-fold, control characters, bare CR/LF, bad tokens); this module adds
the limits, Host rules (RFC 9112 §3.2), versions and transfer codings llhttp lets through.
Every refusal is a ``ProtocolError`` carrying its status, answered once in ``_refuse``.

Timeouts are not timers: the server sweeps connections once a second (``check_timeouts``),
so a request costs no TimerHandle. Hot path: kept flat and explicit for speed.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections import deque
from contextvars import Context
from typing import TYPE_CHECKING, Any

import httptools

from .body_sink import BodySink
from .errors import ProtocolError
from .flow import FlowControl
from .h1_stream import H1Stream
from .headers import STATUS_LINES, reason_phrase, refusal, status_line
from .identity import apply_forwarded
from .request import GOOD_HOSTS, NO_PARAMS, WSGI_ASGI_INFO, check_host, replace_host, request_line_length, split_target
from .tls_info import connection_tls

from ..asgi.http import NO_BODY, HTTPCycle
from ..logging import ABORTED, CLIENT_CLOSED_FIRST, CLIENT_GONE, request_clock

if TYPE_CHECKING:
    from ..server.state import ServerState

__all__ = ["H1Protocol"]

logger = logging.getLogger("gannet.error")
_Task = asyncio.Task  # called directly: no create_task lookup per request

HIGH_WATER = 64 * 1024  # request body buffered for an app before reading pauses
RAW_BODY_MIN = 64 * 1024  # Content-Length bodies larger than this bypass llhttp's copies
# A request body the app did not read is read and dropped after its response, up to this
# much, so the connection can be kept; past it the connection is closed (lingering, so
# the client still reads its response: RFC 9112 §9.6) instead.
DISCARD_MAX = 1024 * 1024
LINGER_TIME = 5.0  # seconds a closing connection keeps reading (and dropping) input

_METHODS = {m.encode(): m for m in (
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")}

# Request fields that need a look as they pass (one dict lookup per field).
_HOST, _EXPECT, _CL, _TE, _UPGRADE, _CONNECTION, _TE_ACCEPT, _FORWARDING = 1, 2, 3, 4, 5, 6, 7, 8
_REQUEST_SPECIAL = {b"host": _HOST, b"expect": _EXPECT, b"content-length": _CL,
                    b"transfer-encoding": _TE, b"upgrade": _UPGRADE, b"connection": _CONNECTION,
                    b"te": _TE_ACCEPT, b"x-forwarded-for": _FORWARDING,
                    b"x-forwarded-proto": _FORWARDING, b"x-forwarded-host": _FORWARDING,
                    b"x-forwarded-port": _FORWARDING, b"x-forwarded-prefix": _FORWARDING,
                    b"forwarded": _FORWARDING}

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")

_new_stream = object.__new__
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# The HTTP/2 prior-knowledge preface (RFC 9113 §3.4) on this HTTP/1.1-only port: llhttp
# stops on it with this error. It gets a 505 whose body says so in words (curl and h2
# clients show nothing useful either way; a person with nc or the log does).
_H2_PREFACE_ERROR = "Pause on PRI/Upgrade"
_H2_PREFACE_WHY = "client sent an HTTP/2 preface (prior knowledge); HTTP/2 is not enabled on this port"
_H2_PREFACE_BODY = (b"This server speaks HTTP/1.1 on this port; HTTP/2 with prior knowledge is "
                    b"not enabled. Send HTTP/1.1 requests.\n")


class H1Protocol(FlowControl, asyncio.Protocol):
    __slots__ = (
        "state", "loop", "transport", "parser", "client", "server", "scheme",
        "url", "headers", "hosts", "expect_continue", "content_length", "chunked_request",
        "upgrade", "te_trailers", "head_started", "head_bytes", "in_head", "body_received",
        "cycle", "parsing", "pipeline", "reading_paused", "write_paused", "drain_waiters",
        "idle_since", "closing", "dead", "lost", "pending_upgrade", "special_seen",
        "pending_refusal", "body_progress", "raw_body", "raw_body_next", "next_after_drain",
        "discard_until", "lingering", "write_mark", "write_since", "file_sending", "file_sent",
        "file_waiter", "half_closed", "half_sent", "spare_stream", "log_conn", "file_mark",
        "forwarding", "sender", "sender_trusted", "forwarded_fields", "forwarded_plan", "tls",
        "raw", "flush_close",
    )

    def __init__(self, state: "ServerState") -> None:
        self.state = state
        self.loop = state.loop
        self.transport: Any = None
        self.parser = httptools.HttpRequestParser(self)
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.scheme = state.scheme
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.hosts = 0
        self.special_seen = False
        self.expect_continue = False
        self.content_length: int | None = None
        self.chunked_request = False
        self.upgrade = False
        self.te_trailers = False
        self.head_started: float | None = None
        self.body_progress = 0.0
        self.raw_body = False  # the rest of a large Content-Length body bypasses the parser
        self.raw_body_next = False
        self.head_bytes = 0
        self.in_head = False
        self.body_received = 0
        self.cycle: HTTPCycle | None = None  # the request whose response is being written
        self.parsing: HTTPCycle | None = None  # the request whose body is being read
        self.pipeline: deque[HTTPCycle] | None = None
        self.reading_paused = False
        self.write_paused = False
        self.drain_waiters: list[asyncio.Future] | None = None
        self.idle_since: float | None = None
        self.closing = False
        self.dead = False  # no further request is parsed on this connection
        self.lost = False  # the connection is gone
        self.pending_upgrade: dict | None = None  # a WebSocket handshake awaiting hand-over
        self.pending_refusal: ProtocolError | None = None  # sent once earlier responses are out
        self.next_after_drain = False  # the next pipelined request waits for the output to drain
        self.discard_until: int | None = None  # dropping an answered request's unread body
        self.lingering: float | None = None  # closing: output is shut, input read and dropped
        self.write_mark: Any = None  # unsent output seen by the last sweep, and since when
        self.write_since = 0.0
        self.file_sending = 0  # file bodies in progress (their bytes bypass the transport)
        self.file_sent = 0
        self.file_mark = 0  # file_sent when the file body in progress began (H1Stream.sendfile)
        self.file_waiter: asyncio.Future | None = None  # a file body waiting for the socket
        self.half_closed: float | None = None  # when the client sent EOF with an answer due
        self.half_sent = -1  # the answer's bytes_sent when half_closed was last stamped
        # The stream of an ASGI request whose response completed and whose app returned:
        # nothing can reach the wire through it any more (a completed cycle ignores its
        # app's messages), so the next request on this connection reuses it.
        self.spare_stream: H1Stream | None = None
        self.log_conn = False  # connection open/close lines (--log-level debug), read once
        # This request's X-Forwarded-*/Forwarded fields, if it has any (http/identity.py).
        self.forwarding: list[tuple[bytes, bytes]] | None = None
        # Who wrote the request's headers (host; None for a Unix socket): the peer, or the
        # client a PROXY header or uwsgi vars name (a proxy that passes headers through
        # must not vouch for them). Whether it is in --forwarded-allow-ips is looked up
        # once, on the first forwarding header.
        self.sender: str | None = None
        self.sender_trusted: bool | None = None
        self.forwarded_fields: list[tuple[bytes, bytes]] | None = None  # the last ones seen,
        self.forwarded_plan: Any = None  # and what they did (http/identity.py)
        self.tls: Any = None  # Gannet's own TLS: its facts for the scope (http/tls_info.py)
        # Under Gannet's TLS, the socket's own transport (server/tls.py sets it): the TLS
        # layer encrypts a write at once and that transport buffers it, so its buffer is
        # output waiting for the client too (_pending, _close_transport).
        self.raw: Any = None
        self.flush_close = False  # a close waiting for ``raw`` to hand its output over

    # ================================================================ transport events
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self._socket_endpoints(transport)
        self._opened()

    def proxied_connection_made(self, transport: Any, client: tuple[str, int] | None,
                                server: tuple[str, int] | None, unix: bool | None = False,
                                scheme: str | None = None) -> None:
        """connection_made for a connection whose PROXY header (server/proxy.py) named the
        real endpoints: ``client``/``server`` replace the socket's; with ``unix`` the
        client was on a Unix socket (no address); ``None`` alone keeps the socket's.
        ``unix=None``: the header relayed a client it does not name (v1 UNKNOWN, v2
        UNSPEC): the socket's endpoints stand, but its bytes are that client's.
        ``scheme``: https when the header says the client used TLS (v2's SSL TLV)."""
        self.transport = transport
        self._socket_endpoints(transport)
        if client is not None or unix:
            self.client = client
            # The named client is also who wrote any X-Forwarded-* in the requests: a
            # layer-4 proxy (AWS NLB, HAProxy mode tcp) passes a client's own headers
            # through, so the proxy's trust must not vouch for them.
            self.sender = client[0] if client is not None else None
        if unix or unix is None:
            # A relayed client without an address: nobody vouches for its headers (not
            # the proxy, nor 'unix', which means Gannet's own Unix-socket peers).
            self.sender_trusted = False
        if server is not None:
            self.server = server
        if scheme is not None:
            self.scheme = scheme
        self._opened()

    def _socket_endpoints(self, transport: Any) -> None:
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.client = (str(peer[0]), int(peer[1]))
            self.sender = self.client[0]
        sock = transport.get_extra_info("sockname")
        if isinstance(sock, tuple) and sock:
            self.server = (str(sock[0]), int(sock[1]))
        elif isinstance(sock, str) and sock:
            self.server = (sock, None)  # type: ignore[assignment]

    def _opened(self) -> None:
        self.idle_since = self.loop.time()
        self.closing = self.state.shutting_down  # the drain sets it on every connection
        self.state.connections.add(self)
        if self.state.ssl_context is not None:  # a TLS listener's connection (server/tls.py)
            self.tls = connection_tls(self.transport)
        if logger.isEnabledFor(logging.DEBUG):  # once per connection, never per request
            self.log_conn = True
            logger.debug("%s - connection open", _peer(self.client))

    def connection_lost(self, exc: Exception | None) -> None:
        """Everything queued on the connection is released here: the request being
        answered, the one being read, and every pipelined one (a WSGI body waiting for a
        thread gives its share of the body budget back)."""
        self.dead = True
        self.lost = True
        self.state.connections.discard(self)
        if self.log_conn:
            logger.debug("%s - connection closed%s", _peer(self.client), f": {exc}" if exc else "")
        for cycle in (self.cycle, self.parsing):
            if cycle is not None and not cycle.disconnected:
                cycle.feed_disconnect()
        self._drop_pipeline()
        self.spare_stream = None  # it points back here: no cycle keeps a closed connection
        self._wake_drain()
        waiter = self.file_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.parser = None

    def data_received(self, data: bytes) -> None:
        if self.dead:
            return  # closing (after a "close" request, a refusal, or lingering): dropped
        if self.raw_body:
            self._raw_body_received(data)
            return
        if self.in_head:
            self.head_bytes += len(data)
            if self.head_bytes > self.state.max_head_bytes:
                self._refuse(ProtocolError(431, "request head too large"))
                return
        try:
            self.parser.feed_data(data)
            if self.raw_body_next:
                # A large Content-Length body is still arriving: from the next read on, its
                # bytes go to the app as they came off the socket (see _raw_body_received).
                self.raw_body_next = False
                parsing = self.parsing
                self.raw_body = parsing is not None and self.body_received < self.content_length
                if self.raw_body and parsing.takes_body_buffer and not self.dead \
                        and not parsing.complete:
                    view = parsing.body_buffer(self.content_length)
                    if view is not None:
                        self.transport.set_protocol(BodySink(self, view))
        except httptools.HttpParserUpgrade as exc:
            self._after_upgrade(data, exc.args[0] if exc.args else len(data))
        except httptools.HttpParserCallbackError as exc:
            if self.dead:
                return
            cause = exc.__context__
            if isinstance(cause, ProtocolError):
                if self.parsing is None and cause.status != 414:
                    # Raised by a field or the end of the head: the request line is whole.
                    cause.request = self._head_so_far()  # type: ignore[attr-defined]
                self._refuse(cause)
            else:
                logger.error("internal error while parsing a request", exc_info=cause)
                self._refuse(ProtocolError(500, "internal error"))
        except httptools.HttpParserInvalidMethodError:
            if self.dead:
                return
            # A well-formed method we do not know is 501; garbage in its place is 400.
            method = data.lstrip(b"\r\n").split(b" ", 1)[0][:32]
            if _TOKEN.match(method):
                self._refuse(ProtocolError(501, f"unknown method {method!r}"))
            else:
                self._refuse(ProtocolError(400, f"malformed request line near {method!r}"))
        except httptools.HttpParserError as exc:
            if self.dead:
                return  # bytes after a "Connection: close" request: not answered (RFC 9112 §9.6)
            if str(exc) == _H2_PREFACE_ERROR:
                error = ProtocolError(505, _H2_PREFACE_WHY)
                error.request = {"method": "PRI", "raw_path": b"*", "path": "*",  # type: ignore[attr-defined]
                                 "http_version": "2.0", "client": self.client}
                error.body = _H2_PREFACE_BODY  # type: ignore[attr-defined]
                self._refuse(error)
                return
            self._refuse(ProtocolError(400, str(exc) or "malformed request"))

    def eof_received(self) -> bool | None:
        """A half-close: answer what was fully received, drop what was cut short."""
        self.closing = True
        if self.lingering is not None:
            return None  # the client read its answer and is done: close
        parsing = self.parsing
        if parsing is not None:
            # The request in progress can never complete: its app sees the client go.
            self.parsing = None
            parsing.feed_disconnect()
            if parsing is self.cycle or self.cycle is None:
                return None  # nothing complete left to answer: close
            if self.pipeline and parsing in self.pipeline:
                self.pipeline.remove(parsing)
        if self.cycle is None:
            return None
        self.cycle.feed_eof()  # a long-polling app hears the client went away
        self.dead = True  # stop parsing; the responses still due go out, then we close
        self.half_closed = self.loop.time()
        self.half_sent = self.cycle.bytes_sent
        return True

    # ================================================================ parser callbacks
    def on_message_begin(self) -> None:
        if self.dead:
            # The connection started closing inside this very read (a lingering close
            # after an unread body): what follows is input to drop, not a request.
            raise ProtocolError(400, "input after the connection began closing")
        self.url = b""
        self.headers = []
        self.hosts = 0
        if self.special_seen:  # rarely set, so most requests skip the stores
            self.special_seen = False
            self.expect_continue = False
            self.content_length = None
            self.chunked_request = False
            self.upgrade = False
            self.te_trailers = False
        self.head_started = self.loop.time()
        self.head_bytes = 0
        self.in_head = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        # The whole line is checked once the method and version are known
        # (on_headers_complete); this bounds what a never-ending target can make us hold.
        if len(self.url) > self.state.limit_request_line:
            raise ProtocolError(414, f"request line longer than {self.state.limit_request_line} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        state = self.state
        if len(name) + len(value) > state.limit_request_field_size:
            raise ProtocolError(431, f"header field longer than {state.limit_request_field_size} bytes")
        if not self.in_head:
            return  # a chunked trailer field: bounded above, not passed to the app
        # Counted as they come: the head's byte limit alone would let a flood of tiny
        # fields build a list of hundreds of thousands of tuples first.
        if len(self.headers) >= state.limit_request_fields:
            raise ProtocolError(431, f"more than {state.limit_request_fields} header fields")
        name = name.lower()
        if value and (value[-1] == 32 or value[-1] == 9):
            value = value.rstrip(b" \t")  # trailing OWS is not part of the value (RFC 9110 §5.5)
        kind = _REQUEST_SPECIAL.get(name)
        if kind is not None:
            if kind == _HOST:
                self.hosts += 1
                if value not in GOOD_HOSTS:
                    check_host(value)
            elif kind == _FORWARDING:
                if self.forwarding is None:
                    self.forwarding = [(name, value)]
                else:
                    self.forwarding.append((name, value))
            else:
                self._special_header(kind, value)
        self.headers.append((name, value))

    def _special_header(self, kind: int, value: bytes) -> None:
        self.special_seen = True
        if kind == _CL:
            self.content_length = int(value)  # llhttp has checked it is all digits
            limit = self.state.limit_request_body
            if limit and self.content_length > limit:
                raise ProtocolError(413, f"Content-Length {self.content_length} exceeds the {limit}-byte limit")
        elif kind == _TE:
            # RFC 9112 §6.3: chunked must be the final coding, else 400. Codings before it
            # are ones we cannot decode (RFC 9112 §6.1: 501).
            codings = value.lower()
            if self.chunked_request or not codings.rstrip(b" \t").endswith(b"chunked"):
                raise ProtocolError(400, "chunked is not the final transfer coding")
            if codings != b"chunked":
                raise ProtocolError(501, f"unsupported transfer coding {value[:64]!r}")
            self.chunked_request = True
        elif kind == _EXPECT:
            if value.lower() == b"100-continue":
                self.expect_continue = True
            else:
                raise ProtocolError(417, f"unsupported expectation {value[:64]!r}")
        elif kind == _UPGRADE:
            self.upgrade = True
        elif kind == _TE_ACCEPT:
            # RFC 9110 §10.1.4: "TE: trailers" says the client takes trailer fields.
            if b"trailers" in value.lower():
                self.te_trailers = True

    def on_headers_complete(self) -> None:
        self.in_head = False
        state = self.state
        headers = self.headers
        parser = self.parser
        keep_alive = parser.should_keep_alive()
        if keep_alive and not self.special_seen:
            # llhttp takes only HTTP/0.9, 1.0, 1.1 and 2.0, and without a Connection field
            # only 1.1 is kept alive: so this is 1.1, without httptools formatting the
            # version string (190 ns a request).
            version = "1.1"
        else:
            version = parser.get_http_version()
        if version != "1.1":
            if version == "1.0":
                self.expect_continue = False  # RFC 9110 §10.1.1: ignore it from HTTP/1.0
                if self.chunked_request:
                    # RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
                    raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
            elif version.startswith("0."):
                raise ProtocolError(400, f"HTTP/{version} is not supported")
            else:
                raise ProtocolError(505, f"HTTP/{version} is not supported over HTTP/1.x")
        elif self.hosts != 1:
            raise ProtocolError(400, "HTTP/1.1 request without a Host header"
                                if not self.hosts else "more than one Host header")
        if self.hosts > 1:
            raise ProtocolError(400, "more than one Host header")
        raw_method = parser.get_method()
        try:
            method = _METHODS[raw_method]
        except KeyError:
            method = raw_method.decode("ascii")
        url = self.url
        if len(url) > state.limit_request_line - 32 \
                and request_line_length(method, url) > state.limit_request_line:
            raise ProtocolError(414, f"request line longer than {state.limit_request_line} bytes")

        # .get, not try/except: a miss (a new query string) must not cost an exception.
        target = state.targets.get(url)
        if target is None:
            target, authority = split_target(state, url, method)
            if authority is not None:
                replace_host(headers, authority)
        path, raw_path, query = target

        keep_alive = keep_alive and not self.closing
        if self.special_seen:
            more_body = self.chunked_request or bool(self.content_length)
            expect_continue = self.expect_continue
        else:
            more_body = expect_continue = False
        # request.http_scope, inlined (a call is 0.2 µs a request); tests/http/test_request.py
        # checks the two agree. The asgi and extensions dicts are fresh per request for an
        # ASGI app; a WSGI app never sees them (its environ derives from the rest), so
        # WSGI requests share read-only ones and skip the two allocations.
        asgi = state.wsgi is None
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"} if asgi else WSGI_ASGI_INFO,
            "http_version": version,
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "method": method,
            "root_path": state.root_path,
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": headers,
            "state": state.app_state.copy(),
            "extensions": {
                "http.response.trailers": NO_PARAMS,
                "http.response.pathsend": NO_PARAMS,
                "http.response.zerocopysend": NO_PARAMS,
                "http.response.early_hint": NO_PARAMS,
            } if asgi else NO_PARAMS,
        }
        if self.tls is not None:  # the one test a plain connection pays: http/tls_info.py
            self.tls.add_to(scope, asgi)
        forwarding = self.forwarding
        if forwarding is not None:
            self.forwarding = None
            if state.proxy_headers:
                plan = self.forwarded_plan
                # http/identity.py's per-connection hit, inlined (the call is ~1.5% of an
                # X-Forwarded-For request): a keep-alive client repeating its fields. A
                # plan is only kept once the sender was found trusted.
                if plan is not None and forwarding == self.forwarded_fields \
                        and plan[2] is None and state.forwarded_names is None:
                    scope["client"] = plan[0]
                    if plan[1] is not None:
                        scope["scheme"] = plan[1]
                else:
                    apply_forwarded(state, self, scope, forwarding)
        if self.upgrade or method == "CONNECT":
            # should_upgrade(): llhttp stops after this request only with Connection:
            # upgrade; without it the Upgrade is ignored (RFC 9110 §7.8).
            if self.upgrade and state.ws_upgrade is not None and self.cycle is None \
                    and method == "GET" and parser.should_upgrade() and _wants_websocket(headers):
                self.pending_upgrade = scope  # handed over in _after_upgrade, once llhttp stops
                return
            if method == "CONNECT" or parser.should_upgrade():
                keep_alive = False  # llhttp stops parsing after these; see _after_upgrade
        stream = self.spare_stream
        if stream is None:
            stream = _new_stream(H1Stream)  # built here, without an __init__ frame (hot path)
            stream.conn = self
            stream.transport = self.transport
        else:
            self.spare_stream = None
        stream.keep_alive = keep_alive
        stream.http10 = version == "1.0"
        stream.no_body = method == "HEAD"
        stream.te_trailers = self.te_trailers
        if asgi:
            # HTTPCycle.__init__, inlined for ASGI apps (no frame a request); kept equal by
            # tests/http/test_request.py::test_h1_cycle_and_stream_match_their_constructors.
            cycle = _new_stream(HTTPCycle)
            cycle.scope = scope
            cycle.conn = stream
            cycle.loop = self.loop
            cycle.body = NO_BODY
            cycle.more_body = more_body
            cycle.expect_continue = expect_continue
            cycle.body_size = 0
            cycle.delivered = cycle.disconnected = cycle.peer_gone = cycle.body_done = False
            cycle.waiter = cycle.task = None
            cycle.started = cycle.head_sent = cycle.complete = cycle.trailers_pending = False
            cycle.dispatched = cycle.late_logged = cycle.aborted = False
            cycle.status = cycle.bytes_sent = 0
            cycle.headers = ()
            cycle.start_time = 0.0
        else:
            cycle = state.cycle_class(scope, stream, self.loop, more_body, expect_continue)
        limit = state.limit_concurrency
        if limit is not None and state.active >= limit:
            raise ProtocolError(503, f"{state.active} requests in flight (--limit-concurrency)")
        self.parsing = cycle
        if more_body:
            self.body_received = 0
            self.body_progress = self.head_started  # the body clock starts with the head's
            if self.content_length is not None and self.content_length > RAW_BODY_MIN:
                self.raw_body_next = True
            if cycle.body_first and expect_continue:
                # The server itself reads a body-first (WSGI) request before the app runs,
                # so the client is told to go ahead now (RFC 9110 §10.1.1).
                cycle.expect_continue = False
                if self.cycle is None:
                    self.transport.write(_CONTINUE)
        self.head_started = None
        if self.cycle is None:
            self.cycle = cycle  # _activate, and _start for ASGI apps, inlined: 1.2% of a request
            if asgi and not state.access_log:
                cycle.dispatched = True
                state.active += 1
                state.total_requests += 1
                _Task(cycle.run(state.app), loop=self.loop, name="gannet-http")  # as _start
                return
            if state.access_log:  # the request's clock starts with its whole head
                cycle.start_time = request_clock()
            if not (more_body and cycle.body_first):
                self._start(cycle)
        else:
            if state.access_log:
                cycle.start_time = request_clock()
            if self.pipeline is None:
                self.pipeline = deque()
            self.pipeline.append(cycle)
            if not self.reading_paused:
                self.reading_paused = True
                self.transport.pause_reading()

    def _raw_body_received(self, data: bytes) -> None:
        """The body of a large Content-Length request, taken without llhttp: llhttp would
        copy every byte into a new object; here whole reads pass through untouched. The
        parser, which still expects those bytes, is replaced for the next request."""
        remaining = self.content_length - self.body_received
        try:
            if len(data) < remaining:
                self.on_body(data)
                return
            self.on_body(data[:remaining] if len(data) > remaining else data)
        except ProtocolError as error:
            self.raw_body = False
            self._refuse(error)
            return
        if self.dead:
            return  # the discard bound was passed: the connection is closing
        self.raw_body = False
        self.parser = self.next_parser()
        self.on_message_complete()
        if len(data) > remaining and not self.dead:
            self.data_received(data[remaining:])

    def body_sink_done(self) -> None:
        """The BodySink has the whole body: this protocol takes the connection back."""
        self.transport.set_protocol(self)
        self.raw_body = False
        self.parser = self.next_parser()
        self.on_message_complete()

    def next_parser(self) -> Any:
        """The parser for what follows a body that bypassed it (the wire protocol's own:
        http/uwsgi.py overrides this)."""
        return httptools.HttpRequestParser(self)

    def on_body(self, body: bytes) -> None:
        self.body_progress = self.loop.time()
        self.body_received += len(body)
        limit = self.state.limit_request_body
        if limit and self.body_received > limit:
            raise ProtocolError(413, f"request body exceeds the {limit}-byte limit")
        cycle = self.parsing
        if cycle is None or cycle.complete or cycle.disconnected:
            # The app answered without reading it: dropped, up to a bound.
            if self.discard_until is not None and self.body_received > self.discard_until:
                self.discard_until = None
                logger.debug("closing: more than %d bytes of an unread request body", DISCARD_MAX)
                self._linger()
            return
        cycle.feed_body(body)
        if cycle.body_size > HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        cycle = self.parsing
        self.parsing = None
        self.discard_until = None
        if cycle is not None and cycle.more_body:  # without a body there is nothing to end
            cycle.feed_end()
            if cycle is self.cycle and not cycle.dispatched:
                self._start(cycle)  # a body-first (WSGI) request whose body is now complete
        if cycle is not None and not cycle.conn.keep_alive:
            # A "close" (or HTTP/1.0) request is the last: what follows it is not parsed,
            # so it gets no unsolicited 400 (RFC 9112 §9.6).
            self.dead = True
        if self.cycle is None and not self.dead:
            self.idle_since = self.loop.time()
            if self.reading_paused:
                self.resume_reading()

    def _after_upgrade(self, data: bytes, offset: int) -> None:
        """llhttp stops after an Upgrade or CONNECT request. Until a protocol takes over
        (WebSocket), the Upgrade is ignored (RFC 9110 §7.8) and the connection closes once
        that response is out; nothing past it is parsed."""
        scope = self.pending_upgrade
        if scope is not None:
            self.pending_upgrade = None
            self.state.connections.discard(self)
            self.dead = True
            self.state.ws_upgrade(self, scope, data[offset:])
            return
        self.dead = True
        if not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    # ================================================================ request lifecycle
    def _activate(self, cycle: "HTTPCycle") -> None:
        """Make ``cycle`` the one whose response is next on the wire, and start it unless
        its app wants the whole body first (WSGI: started from on_message_complete)."""
        self.cycle = cycle
        if not (cycle.body_first and cycle.more_body):
            # Called from the previous request's task (or the ticker): a Task made here
            # would inherit that request's contextvars, so it gets a fresh server context.
            self._start(cycle, self.state.context.copy())

    def _start(self, cycle: "HTTPCycle", context: Context | None = None) -> None:
        state = self.state
        cycle.dispatched = True
        state.active += 1
        state.total_requests += 1
        if state.wsgi is None:
            # Not added to state.tasks (a set add and discard per request): the drain
            # finds HTTP tasks through asyncio.all_tasks() (see worker._http_tasks).
            if context is None:  # a copy of the current (server) context
                _Task(cycle.run(state.app), loop=self.loop, name="gannet-http")
            else:
                _Task(cycle.run(state.app), loop=self.loop, name="gannet-http", context=context)
        else:
            state.wsgi.submit(cycle)

    def response_complete(self, cycle: "HTTPCycle") -> None:
        """The stream wrote ``cycle``'s whole response: log it, then keep the connection
        for the next request, or close it."""
        cycle.complete = True
        waiter = cycle.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        state = self.state
        if state.access_log:
            state.access_logger.log(self, cycle, "" if self.half_closed is None else CLIENT_CLOSED_FIRST)
        if self.cycle is cycle:
            self.cycle = None
        if self.half_closed is not None:
            self.half_closed = self.loop.time()  # the next answer due gets its own time
            self.half_sent = 0
        if self.parsing is cycle:
            # Answered before its body was read: the body is dropped (up to DISCARD_MAX
            # more bytes, then the connection closes), so the connection does not freeze
            # with reading paused for an app that will never read.
            cycle.body = NO_BODY
            cycle.body_size = 0
            self.discard_until = self.body_received + DISCARD_MAX
        if self.dead:
            if self.pipeline:
                self._next_request()  # answered before we close
                return
            if self.pending_refusal is not None:
                self._write_refusal(self.pending_refusal)
                self.pending_refusal = None
                return
            self._close()
            return
        # A client still deciding whether to send a body (100-continue) cannot be kept.
        if not cycle.conn.keep_alive or self.closing or (cycle.more_body and cycle.expect_continue):
            self._close()
            return
        if self.pipeline or self.write_paused:
            self._next_request()
            return
        # _next_request's common end, inlined: an idle keep-alive connection reads on. Its
        # idle clock is stamped by the next sweep (0.0: idle, not yet stamped), so a request
        # reads no clock here; the keep-alive timeout gains at most a second.
        if self.parsing is None:
            self.idle_since = 0.0
        if self.reading_paused:
            self.resume_reading()

    def _next_request(self) -> None:
        """Start the next pipelined request, or read on; but never while the client has not
        taken the output already written (RFC 9112 §9.3.2 lets us wait): a pipelining
        client that does not read must not make us buffer every answer."""
        if self.lost or self.transport.is_closing():
            return  # closing: nothing more starts on this connection
        if self.write_paused:
            self.next_after_drain = True
            return
        pipeline = self.pipeline
        if pipeline:
            self._activate(pipeline.popleft())
            if not pipeline and not self.dead:
                self.resume_reading()
        elif self.dead:
            if self.pending_refusal is not None:
                self._write_refusal(self.pending_refusal)
                self.pending_refusal = None
            else:
                self._close()
        else:
            if self.parsing is None:
                self.idle_since = self.loop.time()
            if self.reading_paused:
                self.resume_reading()

    def pause_writing(self) -> None:
        # Reading stops too while the client does not take what we wrote: the output a
        # connection holds stays about one high-water mark plus one response block.
        self.write_paused = True
        if not self.reading_paused and not self.lost:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain()
        if self.next_after_drain:
            self.next_after_drain = False
            if self.cycle is None:
                self._next_request()
                return
        if self.reading_paused:
            self.resume_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and not self.pipeline and not self.write_paused \
                and not self.lost and (not self.dead or self.lingering is not None):
            parsing = self.parsing
            if parsing is None or parsing.body_size <= HIGH_WATER:
                self.reading_paused = False
                if self.head_started is not None:
                    # A head we stopped reading halfway: the stall was ours, so its clock
                    # starts again (the --header-read-timeout bounds the client, not us).
                    self.head_started = self.loop.time()
                self.transport.resume_reading()

    def _close(self) -> None:
        """End the connection after its last response; requests still queued behind it
        are dropped unanswered (the client retries them, RFC 9112 §9.3.1). If the client
        may still be sending (a request body we did not read), shut our side and read on,
        dropping input, for a bounded time: closing with unread input would reset the
        connection and could destroy the response before the client reads it (§9.6)."""
        self.dead = True
        self._drop_pipeline()
        if self.parsing is not None:
            self._linger()
        elif not self.transport.is_closing():
            self._close_transport()

    def _close_transport(self) -> None:
        """transport.close(); but under TLS, not while the socket's transport still holds
        output: closing starts the TLS shutdown, whose timer (server/tls.py's
        SHUTDOWN_TIMEOUT) aborts that transport, and what it buffered (most of a big
        response to a slow reader) would be lost. The sweep closes once it is handed to
        the kernel; meanwhile --write-timeout bounds a client that stops reading."""
        raw = self.raw
        if raw is not None and not self.lost and raw.get_write_buffer_size():
            self.flush_close = True
            return
        self.transport.close()

    def _drop_pipeline(self) -> None:
        pipeline = self.pipeline
        if pipeline:
            self.pipeline = None
            for queued in pipeline:
                if not queued.disconnected:
                    queued.feed_disconnect()

    def _linger(self) -> None:
        self.dead = True
        transport = self.transport
        if self.lingering is not None or transport.is_closing():
            return
        if self.cycle is not None:
            return  # an answer is still being written: response_complete closes after it
        self._drop_pipeline()
        if not transport.can_write_eof():
            self._close_transport()
            return
        self.lingering = self.loop.time()
        self.raw_body = False
        if self.parsing is not None and not self.parsing.disconnected:
            self.parsing.feed_disconnect()
        self.parsing = None
        transport.write_eof()
        self.resume_reading()

    # ================================================================ aborts and refusals
    def abort_response(self, cycle: "HTTPCycle", why: str = "") -> None:
        """Cut the connection under a response that cannot be finished properly; the
        stream has marked it complete. The access line says it was aborted."""
        self.dead = True
        if why:
            logger.info("aborting the response to %s: %s", _peer(self.client), why)
        state = self.state
        transport = self.transport
        if self.file_sending:
            # A file body cut short (--write-timeout): send_file credits a file only once
            # it is whole, so the part already written is added here.
            cycle.bytes_sent += self.file_sent - self.file_mark
        if not self.lost and transport is not None:
            # The bytes still in our buffer die with the abort: the line counts only body
            # bytes the kernel took (the head may be among those dropped: at most an
            # undercount by its size, never a claim of bytes the client cannot have had).
            cycle.bytes_sent = max(cycle.bytes_sent - transport.get_write_buffer_size(), 0)
        if state.access_log and cycle.dispatched:
            state.access_logger.log(self, cycle, ABORTED if cycle.head_sent else CLIENT_GONE)
        if not self.lost and transport is not None:
            transport.abort()  # connection_lost tells every cycle still queued here

    def log_abandoned(self, cycle: "HTTPCycle") -> None:
        """An app returned without finishing its response after its client left: the
        request still gets its access line, ``aborted`` if part of the response went out
        (an app that swallowed the error a send raised), else ``client gone``."""
        cycle.complete = True
        if self.state.access_log and cycle.dispatched:
            self.state.access_logger.log(self, cycle, ABORTED if cycle.head_sent else CLIENT_GONE)

    def _head_so_far(self) -> dict:
        """What the access line can show of a request refused before its scope was built:
        called once its request line is known (a field or the head's end refused it)."""
        parser = self.parser
        path, _, query = self.url.partition(b"?")
        return {"method": parser.get_method().decode("latin-1"), "raw_path": path,
                "path": path.decode("latin-1"), "query_string": query,
                "http_version": parser.get_http_version(), "headers": self.headers,
                "client": self.client}

    def _refuse(self, error: ProtocolError) -> None:
        """Answer a request that must not reach the app, then close (RFC 9112 §9.6)."""
        self.dead = True
        self.in_head = False
        parsing = self.parsing
        if self.state.access_log:
            self._note_refused(error, parsing)
        self.head_started = None
        if parsing is not None and parsing.complete and self.cycle is None:
            # Its answer is out already (the app did not read the body): the bad rest of
            # the body only ends the connection, without a second response, lingering so
            # the client still reads the first (RFC 9112 §9.6).
            logger.debug("closing the connection from %s: %d %s in a body nobody reads",
                         _peer(self.client), error.status, error.reason)
            self._linger()
            return
        logger.info("refused request from %s: %d %s", _peer(self.client), error.status, error.reason)
        if parsing is not None and not parsing.complete:
            parsing.feed_disconnect()  # a broken body: the app sees the client go
        current = self.cycle
        if current is not None and not current.complete:
            if parsing is not None and self.pipeline and parsing in self.pipeline:
                self.pipeline.remove(parsing)
            if current is not parsing:
                # Responses are still due for earlier requests: they go out first, then this
                # refusal, then the close (RFC 9112 §9.3.2 keeps responses in order).
                self.pending_refusal = error
                return
            if self.pipeline:
                self.pipeline.clear()
            if current.head_sent:
                current.conn.abort(current, f"request body refused: {error.reason}")
                return
            current.complete = True  # the app's own response, if any, is refused from now
            self.cycle = None
        elif self.pipeline or self.next_after_drain:
            # Answers are still due (waiting for the client to drain): the refusal goes
            # out after them, in order (RFC 9112 §9.3.2).
            if parsing is not None and self.pipeline and parsing in self.pipeline:
                self.pipeline.remove(parsing)
            self.pending_refusal = error
            if not self.pipeline:
                self.pipeline = None
            return
        self._write_refusal(error)

    def _note_refused(self, error: ProtocolError, parsing: "HTTPCycle | None") -> None:
        """Keep on ``error`` what its access line shows: the request as far as it is
        known ('-' for a request line that never parsed) and when it started."""
        if parsing is not None:
            error.request = parsing.scope  # type: ignore[attr-defined]
            error.start = parsing.start_time  # type: ignore[attr-defined]
            return
        if getattr(error, "request", None) is None:
            error.request = {"client": self.client}  # type: ignore[attr-defined]
        started = self.head_started
        error.start = request_clock() - (self.loop.time() - started if started else 0.0)  # type: ignore[attr-defined]

    def _write_refusal(self, error: ProtocolError) -> None:
        state = self.state
        body = getattr(error, "body", None)
        if body is None:
            self.transport.write(refusal(error.status, state.default_headers))
            sent = len(reason_phrase(error.status).encode())
        else:
            self.transport.write(b"%bcontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                                 b"connection: close\r\n%b\r\n%b" % (
                                     STATUS_LINES.get(error.status) or status_line(error.status),
                                     len(body), state.default_headers, body))
            sent = len(body)
        self._close_refused()
        if state.access_log:
            state.access_logger.log_answer(getattr(error, "request", None) or {"client": self.client},
                                           error.status, sent, getattr(error, "start", 0.0))

    def _close_refused(self) -> None:
        """After a refusal: close, but while the refused body may still be coming, read
        and drop it for up to LINGER_TIME first (RFC 9112 §9.6). A client, or nginx, which
        writes a whole request before reading, would otherwise get a reset for an answer:
        curl an error, nginx's client a 502 instead of the 413."""
        transport = self.transport
        length = self.content_length
        # Refused in its body (``parsing`` is that request): body_received counts it.
        # Refused at its head (``parsing`` is None): none of it was read, and
        # body_received still counts the previous request's body on this connection.
        more_input = self.chunked_request or (bool(length) and (
            self.parsing is None or self.body_received < length))
        if more_input and self.cycle is None and transport.get_protocol() is self:
            # _linger drops the refused request (its buffered body would keep reading
            # paused, and be held for the linger), or closes where write_eof cannot be.
            self._linger()
        else:
            self._close_transport()

    # ================================================================ timeouts
    def check_timeouts(self, now: float) -> None:
        """Called by the server's once-a-second sweep. Every state of a connection has a
        bound here: reading a head, reading a body, output the client does not take,
        idling between requests, a half-closed client, lingering before the close."""
        state = self.state
        transport = self.transport
        if self.lost or transport is None:
            return
        # Output waiting for a client that takes no bytes (RFC 9112 has no word on it;
        # every hardened server bounds it): the response is aborted.
        pending = transport.get_write_buffer_size()
        if self.raw is not None:  # under TLS: what the socket's transport holds, too
            pending += self.raw.get_write_buffer_size()
        if pending or self.file_sending:
            # Progress is the client taking bytes: the buffer shrinking or a file body
            # moving on. Our own writes growing the buffer are not.
            last = self.write_mark
            if last is None or pending < last[0] or self.file_sent != last[1]:
                self.write_since = now
            elif now - self.write_since > state.write_timeout:
                self._write_timed_out()
                return
            self.write_mark = (pending, self.file_sent)
        elif self.write_mark is not None:
            self.write_mark = None
        if self.flush_close:
            if not pending:  # handed to the kernel: the TLS shutdown may start now
                self.flush_close = False
                transport.close()
            return
        if self.lingering is not None:
            if now - self.lingering > LINGER_TIME:
                transport.close()
            return
        if self.half_closed is not None and self.cycle is not None:
            # The client sent EOF while its answer was due. It may still be reading, so the
            # socket stays; but a reset since then (the kernel reports it as the socket's
            # error) means it is gone, and an app that never starts answering must not hold
            # the socket past the write timeout: the clock restarts whenever the answer
            # moves on (a slow stream to an "nc -N" client goes on; a silent one is cut).
            sock = transport.get_extra_info("socket")
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if sock is not None else 0
            if error:
                logger.debug("client %s reset its half-closed connection: %s", _peer(self.client),
                             os.strerror(error))
                self.force_close()
            else:
                sent = self.cycle.bytes_sent
                if sent != self.half_sent:  # the answer moves on: its clock restarts
                    self.half_sent = sent
                    self.half_closed = now
                elif now - self.half_closed > state.write_timeout:
                    self._write_timed_out("client half-closed and its answer made no progress")
            return
        if self.head_started is not None:
            # Not while reading is paused by us (answers queued or output waiting to drain):
            # that stall is ours, and resume_reading restarts the clock.
            if now - self.head_started > state.header_read_timeout and self.cycle is None \
                    and not self.reading_paused and not self.pipeline:
                self._refuse(ProtocolError(408, "request head not received in time"))
        elif self.parsing is not None:
            # A stalled body, unless the stall is ours (reading paused for a slow app).
            if not self.reading_paused and now - self.body_progress > state.body_read_timeout:
                if self.parsing.complete:
                    self._close_transport()  # its answer is out: just close
                else:
                    self._refuse(ProtocolError(408, "request body stalled"))
        elif self.idle_since is not None and self.cycle is None and not self.dead \
                and not self.pipeline and not self.next_after_drain:
            if self.idle_since == 0.0:
                self.idle_since = now
            elif now - self.idle_since > state.timeout_keep_alive:
                if self.log_conn:
                    logger.debug("%s - closing: idle for --timeout-keep-alive (%gs)",
                                 _peer(self.client), state.timeout_keep_alive)
                self.dead = True
                self._close_transport()

    def _write_timed_out(self, why: str = "") -> None:
        reason = why or f"client accepted no bytes for {self.state.write_timeout:g} s (--write-timeout)"
        cycle = self.cycle
        if cycle is not None and not cycle.complete:
            cycle.conn.abort(cycle, reason)
        else:
            logger.info("closing the connection from %s: %s", _peer(self.client), reason)
            self.dead = True
            for queued in (self.parsing, *(self.pipeline or ())):
                if queued is not None and not queued.disconnected:
                    queued.feed_disconnect()
            self.transport.abort()

    def shutdown(self) -> None:
        """Graceful drain: close if idle, else let the current response finish with close."""
        self.closing = True
        if self.cycle is None and (self.parsing is None or self.parsing.complete):
            # Nothing has reached the app, or its answer is out and only an unread body
            # is still coming: nothing is owed to this client.
            self._close()
        elif self.cycle is not None:
            self.cycle.conn.keep_alive = False

    def force_close(self) -> None:
        self.dead = True
        if not self.lost and self.transport is not None:
            self.transport.abort()

    def awaiting_close_notify(self) -> bool:
        """Closed under TLS, its close_notify handed to the kernel, and only the client's
        answer awaited (up to server/tls.py's SHUTDOWN_TIMEOUT): nothing more is owed to
        the client. An idle pooled client (urllib3, httpx) reads nothing until it reuses
        the connection, so a drain that waited for it took 5 s more per SIGTERM."""
        raw = self.raw
        return (raw is not None and not self.lost and self.cycle is None
                and self.transport is not None and self.transport.is_closing()
                and not raw.get_write_buffer_size())


def _wants_websocket(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"upgrade" and b"websocket" in value.lower():
            return True
    return False


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unix socket"
