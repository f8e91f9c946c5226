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
import re
from collections import deque
from contextvars import Context
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httptools

from ..asgi.http import ASGI_INFO, EXTENSIONS, HTTPCycle
from .body_sink import BodySink
from .errors import ProtocolError
from .flow import FlowControl
from .h1_head import build_head, fields_of
from .headers import STATUS_LINES, check_field_name, reason_phrase, status_line
from .sendfile import send_file

if TYPE_CHECKING:
    from ..server.state import ServerState

__all__ = ["H1Protocol"]

logger = logging.getLogger("gannet.error")
_Task = asyncio.Task  # called directly: no create_task lookup per request

HIGH_WATER = 64 * 1024  # request body buffered for an app before reading pauses
RAW_BODY_MIN = 64 * 1024  # Content-Length bodies larger than this bypass llhttp's copies

_METHODS = {m.encode(): m for m in (
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")}

# Request fields that need a look as they pass (one dict lookup per field).
_HOST, _EXPECT, _CL, _TE, _UPGRADE, _CONNECTION = 1, 2, 3, 4, 5, 6
_REQUEST_SPECIAL = {b"host": _HOST, b"expect": _EXPECT, b"content-length": _CL,
                    b"transfer-encoding": _TE, b"upgrade": _UPGRADE, b"connection": _CONNECTION}
# Response fields the framing depends on.

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# RFC 9112 §3.2 / RFC 3986 §3.2.2: uri-host [ ":" port ]; an IP literal in brackets.
_HOST_VALUE = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?\Z")
_GOOD_HOSTS: set[bytes] = set()  # Host values already checked (bounded)
# Origin-form request targets already split into (path, raw_path, query_string) are kept
# in state.targets (per server: root_path is folded in), so a repeated target costs one
# dict lookup. Cleared when full; long targets are not kept.
_TARGET_CACHE_MAX = 1024
_TARGET_CACHE_URL_MAX = 256


def _check_host(value: bytes) -> None:
    if not _HOST_VALUE.match(value):
        raise ProtocolError(400, f"invalid Host header {value[:64]!r}")
    if len(_GOOD_HOSTS) < 256:
        _GOOD_HOSTS.add(value)



_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_PLAIN_TEXT = ((b"content-type", b"text/plain; charset=utf-8"),)  # the server's own answers
_LAST_CHUNK = b"0\r\n\r\n"


class H1Protocol(FlowControl, asyncio.Protocol):
    __slots__ = (
        "state", "loop", "transport", "parser", "client", "server", "scheme",
        "url", "headers", "hosts", "expect_continue", "content_length", "chunked_request",
        "upgrade", "head_started", "head_bytes", "in_head", "body_received",
        "cycle", "parsing", "pipeline", "reading_paused", "write_paused", "drain_waiters",
        "idle_since", "closing", "dead", "lost", "pending_upgrade", "special_seen", "pending_refusal",
        "body_progress", "raw_body", "raw_body_next",
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
        self.dead = False  # the parser failed or the transport closed: ignore further input
        self.lost = False  # the connection is gone
        self.pending_upgrade: dict | None = None  # a WebSocket handshake awaiting hand-over
        self.pending_refusal: ProtocolError | None = None  # sent once earlier responses are out

    # ================================================================ transport events
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.client = (str(peer[0]), int(peer[1]))
        sock = transport.get_extra_info("sockname")
        if isinstance(sock, tuple) and sock:
            self.server = (str(sock[0]), int(sock[1]))
        elif isinstance(sock, str) and sock:
            self.server = (sock, None)  # type: ignore[assignment]
        self.idle_since = self.loop.time()
        self.closing = self.state.shutting_down  # the drain sets it on every connection
        self.state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.dead = True
        self.lost = True
        self.state.connections.discard(self)
        for cycle in (self.cycle, self.parsing):
            if cycle is not None and not cycle.complete:
                cycle.feed_disconnect()
        if self.pipeline:
            self.pipeline.clear()
        self._wake_drain()
        self.parser = None

    def data_received(self, data: bytes) -> None:
        if self.dead:
            return
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
                if self.raw_body and parsing.takes_body_buffer and not self.dead:
                    view = parsing.body_buffer(self.content_length)
                    if view is not None:
                        self.transport.set_protocol(BodySink(self, view))
        except httptools.HttpParserUpgrade as exc:
            self._after_upgrade(data, exc.args[0] if exc.args else len(data))
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, ProtocolError):
                self._refuse(cause)
            else:
                logger.error("internal error while parsing a request", exc_info=cause)
                self._refuse(ProtocolError(500, "internal error"))
        except httptools.HttpParserInvalidMethodError:
            # A well-formed method we do not know is 501; garbage in its place is 400.
            method = data.lstrip(b"\r\n").split(b" ", 1)[0][:32]
            if _TOKEN.match(method):
                self._refuse(ProtocolError(501, f"unknown method {method!r}"))
            else:
                self._refuse(ProtocolError(400, f"malformed request line near {method!r}"))
        except httptools.HttpParserError as exc:
            self._refuse(ProtocolError(400, str(exc) or "malformed request"))

    def eof_received(self) -> bool | None:
        """A half-close: answer what was fully received, drop what was cut short."""
        self.closing = True
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
        return True

    # ================================================================ parser callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.hosts = 0
        if self.special_seen:  # rarely set, so most requests skip four stores
            self.special_seen = False
            self.expect_continue = False
            self.content_length = None
            self.chunked_request = False
            self.upgrade = False
        self.head_started = self.loop.time()
        self.head_bytes = 0
        self.in_head = True

    def on_url(self, url: bytes) -> None:
        self.url += url
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
                if value not in _GOOD_HOSTS:
                    _check_host(value)
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

        # .get, not try/except: a miss (a new query string) must not cost an exception.
        target = state.targets.get(self.url)
        if target is None:
            target = self._parse_target(method)
        path, raw_path, query = target

        keep_alive = keep_alive and not self.closing
        if self.special_seen:
            more_body = self.chunked_request or bool(self.content_length)
            expect_continue = self.expect_continue
        else:
            more_body = expect_continue = False
        scope = {
            "type": "http",
            "asgi": ASGI_INFO,
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
            "extensions": EXTENSIONS,
        }
        if self.upgrade or method == "CONNECT":
            # should_upgrade(): llhttp stops after this request only with Connection:
            # upgrade; without it the Upgrade is ignored (RFC 9110 §7.8).
            if self.upgrade and state.ws_upgrade is not None and self.cycle is None \
                    and method == "GET" and parser.should_upgrade() and _wants_websocket(headers):
                self.pending_upgrade = scope  # handed over in _after_upgrade, once llhttp stops
                return
            if method == "CONNECT" or parser.should_upgrade():
                keep_alive = False  # llhttp stops parsing after these; see _after_upgrade
        cycle = state.cycle_class(scope, self, self.loop, more_body, expect_continue)
        if method == "HEAD":
            cycle.no_body = True
        if version == "1.0":
            cycle.http10 = True
        if not keep_alive:
            cycle.keep_alive = False
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
            if state.wsgi is None and not state.access_log:
                cycle.dispatched = True
                state.active += 1
                state.total_requests += 1
                _Task(cycle.run(state.app), loop=self.loop, name="gannet-http")  # as _start
            elif not (more_body and cycle.body_first):
                self._start(cycle)
        else:
            if self.pipeline is None:
                self.pipeline = deque()
            self.pipeline.append(cycle)
            if not self.reading_paused:
                self.reading_paused = True
                self.transport.pause_reading()

    def _parse_target(self, method: str) -> tuple[str, bytes, bytes]:
        """The scope's path, raw_path and query_string from the request target; origin-form
        targets are remembered (bounded), since most requests repeat a few."""
        url = self.url
        if url[:1] == b"/":
            query_at = url.find(b"?")
            if query_at < 0:
                raw_path, query = url, b""
            else:
                raw_path, query = url[:query_at], url[query_at + 1:]
            fragment_at = query.find(b"#") if query else raw_path.find(b"#")
            if fragment_at >= 0:
                if query:
                    query = query[:fragment_at]
                else:
                    raw_path = raw_path[:fragment_at]
            cache = True
        elif url == b"*" and method == "OPTIONS":
            raw_path, query = b"*", b""
            cache = False
        else:
            raw_path, query = self._parse_other_target(url, method)
            cache = False
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        state = self.state
        if state.root_path:
            path = state.root_path + path
            raw_path = state.raw_root_path + raw_path
        target = (path, raw_path, query)
        if cache and len(url) <= _TARGET_CACHE_URL_MAX:
            targets = state.targets
            if len(targets) >= _TARGET_CACHE_MAX:
                targets.clear()
            targets[url] = target
        return target

    def _parse_other_target(self, url: bytes, method: str) -> tuple[bytes, bytes]:
        """Absolute-form (RFC 9112 §3.2.2) and authority-form (CONNECT) targets."""
        if method == "CONNECT":
            return url, b""
        try:
            parsed = httptools.parse_url(url)
        except httptools.HttpParserInvalidURLError:
            raise ProtocolError(400, "invalid request target") from None
        if not parsed.schema or parsed.schema.lower() not in (b"http", b"https"):
            raise ProtocolError(400, "invalid request target")
        return parsed.path or b"/", parsed.query or b""

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
        self.raw_body = False
        self.parser = httptools.HttpRequestParser(self)
        self.on_message_complete()
        if len(data) > remaining and not self.dead:
            self.data_received(data[remaining:])

    def body_sink_done(self) -> None:
        """The BodySink has the whole body: this protocol takes the connection back."""
        self.transport.set_protocol(self)
        self.raw_body = False
        self.parser = httptools.HttpRequestParser(self)
        self.on_message_complete()

    def on_body(self, body: bytes) -> None:
        self.body_progress = self.loop.time()
        self.body_received += len(body)
        limit = self.state.limit_request_body
        if limit and self.body_received > limit:
            raise ProtocolError(413, f"request body exceeds the {limit}-byte limit")
        cycle = self.parsing
        if cycle is None or cycle.complete or cycle.disconnected:
            return  # the app answered without reading it: discard
        cycle.feed_body(body)
        if cycle.body_size > HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        cycle = self.parsing
        self.parsing = None
        if cycle is not None and cycle.more_body:  # without a body there is nothing to end
            cycle.feed_end()
            if cycle is self.cycle and not cycle.dispatched:
                self._start(cycle)  # a body-first (WSGI) request whose body is now complete
        if self.cycle is None and not self.dead:
            self.idle_since = self.loop.time()

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
    def _activate(self, cycle: HTTPCycle) -> None:
        """Make ``cycle`` the one whose response is next on the wire, and start it unless
        its app wants the whole body first (WSGI: started from on_message_complete)."""
        self.cycle = cycle
        if not (cycle.body_first and cycle.more_body):
            # Called from the previous request's task (or the ticker): a Task made here
            # would inherit that request's contextvars, so it gets a fresh server context.
            self._start(cycle, self.state.context.copy())

    def _start(self, cycle: HTTPCycle, context: Context | None = None) -> None:
        state = self.state
        cycle.dispatched = True
        state.active += 1
        state.total_requests += 1
        if state.access_log:
            cycle.start_time = self.loop.time()
        if state.wsgi is None:
            # Not added to state.tasks (a set add and discard per request): the drain
            # finds HTTP tasks through asyncio.all_tasks() (see server._http_tasks).
            if context is None:  # a copy of the current (server) context
                _Task(cycle.run(state.app), loop=self.loop, name="gannet-http")
            else:
                _Task(cycle.run(state.app), loop=self.loop, name="gannet-http", context=context)
        else:
            state.wsgi.submit(cycle)

    def cycle_done(self, cycle: HTTPCycle) -> None:
        state = self.state
        state.active -= 1
        if state.limit_max_requests is not None and state.total_requests >= state.limit_max_requests:
            state.max_requests_reached()

    def _response_complete(self, cycle: HTTPCycle) -> None:
        cycle.complete = True
        waiter = cycle.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        state = self.state
        if state.access_log:
            state.log_access(self, cycle)
        if self.cycle is cycle:
            self.cycle = None
        if self.dead:
            if self.pipeline:
                self._activate(self.pipeline.popleft())  # answered before we close
                return
            if self.pending_refusal is not None:
                self._write_refusal(self.pending_refusal)
                self.pending_refusal = None
            self.transport.close()
            return
        # A client still deciding whether to send a body (100-continue) cannot be kept.
        if not cycle.keep_alive or self.closing or (cycle.more_body and cycle.expect_continue):
            self.dead = True
            self.transport.close()
            return
        pipeline = self.pipeline
        if pipeline:
            self._activate(pipeline.popleft())
            if not pipeline:
                self.resume_reading()
        else:
            if self.parsing is None:
                self.idle_since = self.loop.time()
            if self.reading_paused:
                self.resume_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and not self.pipeline and not self.dead:
            parsing = self.parsing
            if parsing is None or parsing.body_size <= HIGH_WATER:
                self.reading_paused = False
                self.transport.resume_reading()

    # ================================================================ writing responses
    def send_response(self, cycle: HTTPCycle, body: bytes) -> None:
        """A whole response in one ASGI message: the common case, built and written in one
        step here; anything unusual (flags in the head, trailers, no body, a length that
        disagrees, close) takes send_head_and_body. Hot path: flat on purpose."""
        block, declared, flags = fields_of(cycle.headers)
        status = cycle.status
        size = len(body)
        if flags or cycle.trailers_pending or cycle.no_body or status == 204 or status == 304 \
                or not cycle.keep_alive or self.closing or cycle.http10 or size >= 65536 \
                or (declared is not None and declared != size):
            self.send_head_and_body(cycle, body, False)
            return
        line = STATUS_LINES.get(status) or status_line(status)
        if declared is None:
            self.transport.write(b"".join((line, block, b"content-length: %d\r\n" % size,
                                           self.state.default_headers, b"\r\n", body)))
        else:
            self.transport.write(b"".join((line, block, self.state.default_headers, b"\r\n", body)))
        cycle.head_sent = True
        cycle.bytes_sent = size
        self._response_complete(cycle)

    def send_head_and_body(self, cycle: HTTPCycle, body: bytes, more_body: bool,
                           length: int | None = None) -> None:
        head = build_head(self, cycle, body, more_body, length)
        cycle.head_sent = True
        transport = self.transport
        if cycle.no_body:
            transport.write(head)
        elif cycle.chunked:
            if body:
                transport.write(b"%b%x\r\n%b\r\n" % (head, len(body), body))
            else:
                transport.write(head)
            if not more_body and not cycle.trailers_pending:
                transport.write(_LAST_CHUNK)
        elif len(body) < 65536:
            transport.write(head + body)
        else:
            transport.write(head)
            transport.write(body)
        cycle.bytes_sent = 0 if cycle.no_body else len(body)
        if not more_body and not cycle.trailers_pending:
            self._response_complete(cycle)

    def send_body(self, cycle: HTTPCycle, body: bytes, more_body: bool) -> None:
        if body and not cycle.no_body:
            if cycle.chunked:
                self.transport.write(b"%x\r\n%b\r\n" % (len(body), body))
            else:
                remaining = cycle.remaining
                if remaining is not None:
                    remaining -= len(body)
                    if remaining < 0:
                        raise RuntimeError("response body longer than its Content-Length")
                    cycle.remaining = remaining
                self.transport.write(body)
            cycle.bytes_sent += len(body)
        if not more_body:
            if cycle.remaining and not cycle.no_body:
                self.abort(cycle)
                raise RuntimeError(f"response ended {cycle.remaining} bytes short of its Content-Length")
            if cycle.chunked and not cycle.trailers_pending:
                self.transport.write(_LAST_CHUNK)
            if not cycle.trailers_pending:
                self._response_complete(cycle)

    def send_trailers(self, cycle: HTTPCycle, headers: list, more: bool) -> None:
        if cycle.chunked and not cycle.no_body:
            parts = []
            if cycle.trailers_pending is True:
                parts.append(b"0\r\n")
                cycle.trailers_pending = 2  # the last chunk is out; fields follow
            for name, value in headers:
                check_field_name(name)
                if b"\r" in value or b"\n" in value or b"\0" in value:
                    raise ValueError(f"invalid trailer value for {name!r}")
                parts.append(b"%b: %b\r\n" % (name, value))
            if not more:
                parts.append(b"\r\n")
            self.transport.write(b"".join(parts))
        if not more:
            cycle.trailers_pending = False
            self._response_complete(cycle)

    def send_early_hint(self, cycle: HTTPCycle, links: list) -> None:
        if cycle.scope["http_version"] != "1.1" or self.dead:
            return
        parts = [b"HTTP/1.1 103 Early Hints\r\n"]
        for link in links:
            if isinstance(link, str):
                link = link.encode("latin-1")
            if b"\r" in link or b"\n" in link or b"\0" in link:
                raise ValueError("invalid Link value in early hint")
            parts.append(b"link: %b\r\n" % link)
        parts.append(b"\r\n")
        self.transport.write(b"".join(parts))

    def send_continue(self, cycle: HTTPCycle) -> None:
        if cycle is self.cycle and not self.dead:
            self.transport.write(_CONTINUE)

    def sendfile(self, cycle: HTTPCycle, file: Any, offset: int | None, count: int | None,
                 more_body: bool) -> Any:
        return send_file(self, cycle, file, offset, count, more_body)

    def send_error(self, cycle: HTTPCycle, status: int) -> None:
        if self.dead and self.transport.is_closing():
            return
        cycle.keep_alive = cycle.keep_alive and not cycle.more_body
        self._write_simple(cycle, status, reason_phrase(status).encode())

    def _write_simple(self, cycle: HTTPCycle, status: int, body: bytes) -> None:
        cycle.status = status
        cycle.headers = _PLAIN_TEXT
        cycle.trailers_pending = False
        cycle.chunked = False
        self.send_head_and_body(cycle, body, False)

    def abort(self, cycle: HTTPCycle) -> None:
        self.dead = True
        cycle.keep_alive = False
        if self.cycle is cycle:
            self.cycle = None
        if self.transport is not None:
            self.transport.abort()

    # ================================================================ refusals and timeouts
    def _refuse(self, error: ProtocolError) -> None:
        """Answer a request that must not reach the app, then close (RFC 9112 §9.6)."""
        self.dead = True
        self.in_head = False
        self.head_started = None
        logger.info("refused request from %s: %d %s", _peer(self.client), error.status, error.reason)
        parsing = self.parsing
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
                self.abort(current)
                return
            current.complete = True  # the app's own response, if any, is refused from now
            self.cycle = None
        self._write_refusal(error)

    def _write_refusal(self, error: ProtocolError) -> None:
        body = reason_phrase(error.status).encode()
        self.transport.write(
            b"%bcontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n%b\r\n%b"
            % (STATUS_LINES.get(error.status) or status_line(error.status), len(body),
               self.state.default_headers, body))
        self.transport.close()

    def check_timeouts(self, now: float) -> None:
        """Called by the server's once-a-second sweep."""
        state = self.state
        if self.head_started is not None:
            if now - self.head_started > state.header_read_timeout and self.cycle is None:
                self._refuse(ProtocolError(408, "request head not received in time"))
        elif self.parsing is not None:
            # A stalled body, unless the stall is ours (reading paused for a slow app).
            if not self.reading_paused and now - self.body_progress > state.body_read_timeout:
                self._refuse(ProtocolError(408, "request body stalled"))
        elif self.idle_since is not None and self.cycle is None:
            if now - self.idle_since > state.timeout_keep_alive:
                self.dead = True
                self.transport.close()

    def shutdown(self) -> None:
        """Graceful drain: close if idle, else let the current response finish with close."""
        self.closing = True
        if self.cycle is None and self.parsing is None:  # nothing has reached the app
            self.dead = True
            self.transport.close()
        elif self.cycle is not None:
            self.cycle.keep_alive = False

    def force_close(self) -> None:
        self.dead = True
        if self.transport is not None:
            self.transport.abort()


def _wants_websocket(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"upgrade" and b"websocket" in value.lower():
            return True
    return False


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unix socket"
