"""The uwsgi wire protocol (nginx ``uwsgi_pass``, Apache ``mod_proxy_uwsgi``) on h1's machinery.

Theory of operation. A uwsgi request is one packet and a body: a 4-byte header
(``modifier1`` u8, which must be 0 = a WSGI request; ``datasize`` u16 little-endian;
``modifier2`` u8, 0), then ``datasize`` bytes of CGI-style vars, each a u16-LE-sized key and
a u16-LE-sized value, then ``CONTENT_LENGTH`` bytes of body on the stream (the front end
de-chunks: nginx buffers a chunked client body and sends its length). The response is
plain HTTP/1.x, delimited by its Content-Length or by our close: uwsgi has no keep-alive,
and nginx passes a uwsgi response body through raw, so it must never be chunked.

So a uwsgi connection is an HTTP/1.1 connection with another request parser.
``UwsgiRequestParser`` offers H1Protocol what ``httptools.HttpRequestParser`` does
(``feed_data``, ``get_method``, ``get_http_version``, ``should_keep_alive`` (False),
``should_upgrade``) and calls the same callbacks: ``on_message_begin`` at the first byte
(the --header-read-timeout then bounds a dribbled packet), ``on_url`` (REQUEST_URI),
``on_header`` for each ``HTTP_*`` var and for CONTENT_TYPE/CONTENT_LENGTH,
``on_headers_complete``, ``on_body``, ``on_message_complete``. Limits, timeouts, flow
control, the body paths (raw and BodySink), WSGI and ASGI cycles, refusals and the access
log are all h1's, unchanged; the vars are decoded only as far as one field past
--limit-request-fields (h1 refuses that one), as llhttp stops there. A malformed packet raises ``httptools.HttpParserError`` (h1
answers 400 and closes); an exception from a callback is re-raised as
``HttpParserCallbackError`` inside the ``except`` block, so its ``__context__`` is the
callback's error, exactly as httptools delivers it.

What the vars say, and how much we believe them (the peer is a trusted front end:
``--uwsgi-allow-from``, checked at connect). Framing vars refuse the request when they do
not parse (400): sizes, REQUEST_METHOD (a token), REQUEST_URI (visible ASCII), CONTENT_LENGTH
(digits), SERVER_PROTOCOL, an ``HTTP_*`` name that is not a token once turned into a field
name (``HTTP_X_FOO`` -> ``x-foo``: a field name llhttp would refuse is refused here too,
rather than silently dropped), a field value with control characters. Identity vars that do
not parse are ignored with a debug line, keeping the socket's values: REMOTE_ADDR/PORT ->
``client``, SERVER_NAME/PORT -> ``server``, UWSGI_SCHEME, else HTTPS (on|1: https, else
http), else REQUEST_SCHEME -> ``scheme`` (uWSGI's order: it never reads REQUEST_SCHEME, so
``uwsgi_param HTTPS on`` behind a TLS-terminating balancer wins over nginx's own
``REQUEST_SCHEME http``). REMOTE_ADDR is also the ``sender`` h1 asks --forwarded-allow-ips
about: the client's X-Forwarded-* fields arrive among the vars as it sent them (nginx adds
none), so they count only when the client is itself a trusted proxy, as over HTTP.
``HTTP_CONTENT_LENGTH``/``HTTP_CONTENT_TYPE`` (nginx sends the client's own fields there
too) give way to the CGI vars, and ``HTTP_TRANSFER_ENCODING`` is dropped: on this hop the
body is framed by CONTENT_LENGTH alone. Repeated CGI vars: the last wins (as in uWSGI),
but two different CONTENT_LENGTHs are refused (smuggling). SCRIPT_NAME is not a mount
point here (that is --root-path's job; WSGI's SCRIPT_NAME comes from it): one that differs
from --root-path is logged once, as a hint. REQUEST_URI, the path the client sent, carries
the mount point (no front end strips it on this hop), so an ASGI scope under --root-path
has it once, not twice (``UwsgiProtocol._client_scope``).

Versions. The scope says what the client spoke (SERVER_PROTOCOL: ``HTTP/1.1`` -> "1.1",
``HTTP/2.0`` -> "2"), but h1 must frame the response close-delimited, never chunked: it
does that for HTTP/1.0 (``stream.http10``). So ``get_http_version`` answers "1.0" while h1
builds the request (``on_headers_complete``: framing, no Host requirement, no 100-continue
of ours, no trailers, no 103), and ``UwsgiProtocol`` writes the real version into the scope
before any app can read it: in ``_start`` (a WSGI request is queued for a pool thread there)
and right after ``on_headers_complete`` returns (an ASGI task made there has not run yet).

WebSockets. nginx's uwsgi module tunnels a ``101`` answer to a client that asked for an
Upgrade (``u->upgrade``), so ``should_upgrade`` is llhttp's rule (``Connection: upgrade``
plus ``Upgrade``) and the parser stops with ``HttpParserUpgrade`` after such a request:
h1's own hand-over to the WebSocket layer follows.
"""
from __future__ import annotations

import logging
import re
import socket
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

import httptools

from .h1 import H1Protocol
from .request import DEFAULT_PORTS

if TYPE_CHECKING:
    from ..asgi.http import HTTPCycle
    from ..server.state import ServerState

__all__ = ["MAX_PACKET", "UwsgiProtocol", "UwsgiRequestParser"]

logger = logging.getLogger("gannet.error")

HEADER_SIZE = 4
MAX_PACKET = HEADER_SIZE + 0xFFFF  # datasize is a u16: the whole head is bounded by the format

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^`|~0-9a-z]+\Z")  # lowered, '_' already turned into '-'
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # HTAB is allowed in a field value
_TARGET = re.compile(rb"[\x21-\x7e]+\Z")  # what llhttp lets through in a request target
_ADDRESS = re.compile(r"[0-9A-Za-z.:%_\-]{1,100}\Z")  # an IP (v6 zone ids), nginx's "unix:"
_HOST = re.compile(r"[0-9A-Za-z.:\-_\[\]]{1,255}\Z")
_PORT = re.compile(rb"[0-9]{1,5}\Z")
_LENGTH = re.compile(rb"[0-9]{1,18}\Z")  # 18 digits: no int() blow-up, far past any limit

_VERSIONS = {b"HTTP/1.1": "1.1", b"HTTP/1.0": "1.0", b"HTTP/2.0": "2", b"HTTP/2": "2",
             b"HTTP/3.0": "3", b"HTTP/3": "3", b"": "1.0"}
_SCHEMES = {b"http": "http", b"https": "https", b"HTTP": "http", b"HTTPS": "https"}
# HTTP_* vars that do not become fields: the CGI vars say these, and on this hop the
# body is framed by CONTENT_LENGTH alone.
_NOT_FIELDS = frozenset((b"content-length", b"content-type", b"transfer-encoding"))
_PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986 pchar and '/', left as they are

# Parser states
_IDLE, _HEAD, _BODY, _DONE, _FAILED = 0, 1, 2, 3, 4
_script_name_noted = False  # the SCRIPT_NAME advice is logged once per process


class UwsgiRequestParser:
    """httptools.HttpRequestParser's interface, for one uwsgi request (see the module doc)."""

    __slots__ = ("protocol", "state", "buffer", "remaining", "method", "http_version",  # noqa: RUF023
                 "framing", "upgrade", "script_name", "field_limit")

    def __init__(self, protocol: Any, field_limit: int | None = None) -> None:
        self.protocol = protocol
        # --limit-request-fields: decoding stops one field past it (h1 refuses that one),
        # so thousands of tiny client headers cost no more than over HTTP.
        self.field_limit = field_limit
        self.state = _IDLE
        self.buffer = bytearray()  # the packet so far, while it arrives in pieces
        self.remaining = 0  # body bytes still to come
        self.method = b""
        self.http_version = "1.0"  # the client's, from SERVER_PROTOCOL
        self.framing = False  # True while h1 builds the request: it frames as for HTTP/1.0
        self.upgrade = False
        self.script_name = b""

    # ------------------------------------------------------------ httptools' interface
    def get_method(self) -> bytes:
        return self.method

    def get_http_version(self) -> str:
        """Says 1.0 while h1 builds the request (close-delimited framing), else the client's."""
        return "1.0" if self.framing else self.http_version

    def should_keep_alive(self) -> bool:
        return False  # one request per uwsgi connection

    def should_upgrade(self) -> bool:
        return self.upgrade

    def feed_data(self, data: bytes) -> None:
        """Parse ``data``; callbacks run as their parts complete. Raises HttpParserError
        for a malformed packet, HttpParserCallbackError (``__context__``: the callback's
        error) when a callback raised, HttpParserUpgrade(offset) after an Upgrade request."""
        state = self.state
        if state == _BODY:
            self._body(data, 0)
            return
        if state == _DONE:
            return  # one request per connection: nothing after it is parsed
        if state == _FAILED:
            raise httptools.HttpParserError("the uwsgi parser already failed")
        if state == _IDLE:
            if not data:
                return
            self.state = _HEAD
            self._call(self.protocol.on_message_begin)
        buffer = self.buffer
        packet: bytes | bytearray
        if buffer:
            buffer += data
            packet = buffer
        else:
            packet = data  # the usual case: the whole packet in one read, not copied
        if len(packet) < HEADER_SIZE:
            if not buffer:
                buffer += data
            return
        modifier1, size, modifier2 = packet[0], packet[1] | packet[2] << 8, packet[3]
        if modifier1 != 0:
            self._fail(_modifier_reason(modifier1))
        if modifier2 != 0:
            self._fail(f"uwsgi modifier2 {modifier2} is not supported (a WSGI request has 0)")
        end = HEADER_SIZE + size
        if len(packet) < end:
            if not buffer:
                buffer += data
            return
        consumed_before = len(packet) - len(data)  # bytes of this packet from earlier reads
        variables = bytes(packet[HEADER_SIZE:end])
        self.buffer = bytearray()
        self._head(variables)
        if self.state == _BODY:
            self._body(data, end - consumed_before)
        else:
            self._finish(data, end - consumed_before)

    # ------------------------------------------------------------ the packet
    def _head(self, variables: bytes) -> None:
        """Decode the vars, set the connection's identity, then run h1's head callbacks."""
        fields: list[tuple[bytes, bytes]] = []
        cgi: dict[bytes, bytes] = {}
        content_length: bytes | None = None
        kinds = _KINDS
        field_limit = self.field_limit
        position, end = 0, len(variables)
        try:
            while position < end:
                # A size cut short raises IndexError; a value cut short is checked below.
                key_size = variables[position] | variables[position + 1] << 8
                if not key_size:
                    self._fail("empty uwsgi var name")  # uWSGI refuses it too
                position += 2
                key = variables[position:position + key_size]
                position += key_size
                value_size = variables[position] | variables[position + 1] << 8
                position += 2
                value = variables[position:position + value_size]
                position += value_size
                kind = kinds.get(key)
                if kind is None:
                    kind = _classify(key)
                    if kind is None:
                        self._fail(f"uwsgi var {key[:64]!r} is not a valid header name")
                if kind.__class__ is bytes:  # an HTTP_* var: a field, or b"" (dropped)
                    if kind:
                        if _CONTROL.search(value):
                            self._fail(f"uwsgi var {key[:64]!r} has a control character in its value")
                        if value and (value[0] == 32 or value[0] == 9):
                            value = value.lstrip(b" \t")  # not part of a value (RFC 9110 §5.5)
                        fields.append((kind, value))  # type: ignore[arg-type]
                        if field_limit is not None and len(fields) > field_limit:
                            break  # h1's on_header refuses this one (431): nothing more to read
                elif kind == _CGI:
                    cgi[key] = value  # the last one wins, as in uWSGI
                elif kind == _CONTENT_LENGTH:
                    if value == b"":
                        continue  # nginx sends $content_length empty for a request without a body
                    if not _LENGTH.match(value):
                        self._fail(f"invalid CONTENT_LENGTH {value[:32]!r}")
                    if content_length is not None and int(value) != int(content_length):
                        self._fail("two different CONTENT_LENGTH vars")
                    if content_length is None:
                        fields.append((b"content-length", value))
                    content_length = value
                elif value:  # CONTENT_TYPE; nginx sends it empty without a body
                    if _CONTROL.search(value):
                        self._fail("uwsgi var CONTENT_TYPE has a control character in its value")
                    fields.append((b"content-type", value.lstrip(b" \t")))
        except IndexError:
            self._fail("truncated uwsgi var (a size)")
        if position > end:
            self._fail("truncated uwsgi var (value)")

        method = cgi.get(b"REQUEST_METHOD")
        if not method:
            self._fail("uwsgi request without REQUEST_METHOD")
        if not _TOKEN.match(method):
            self._fail(f"invalid REQUEST_METHOD {method[:32]!r}")
        self.method = method
        version = _VERSIONS.get(cgi.get(b"SERVER_PROTOCOL", b""))
        if version is None:
            self._fail(f"unsupported SERVER_PROTOCOL {cgi[b'SERVER_PROTOCOL'][:32]!r}")
        self.http_version = version
        url = self._target(cgi)
        self.script_name = cgi.get(b"SCRIPT_NAME", b"")
        self._identity(cgi)
        if method != b"CONNECT":
            self.upgrade = _wants_upgrade(fields)

        protocol = self.protocol
        self.framing = True
        try:
            protocol.on_url(url)
            on_header = protocol.on_header
            for name, value in fields:
                on_header(name, value)
            protocol.on_headers_complete()
        except Exception:  # noqa: BLE001 - delivered as httptools does (see feed_data)
            self.state = _FAILED
            raise httptools.HttpParserCallbackError("User callback error")
        finally:
            self.framing = False
        self.remaining = int(content_length) if content_length is not None else 0
        self.state = _BODY if self.remaining else _DONE
        if self.state == _DONE:
            self._call(protocol.on_message_complete)

    def _target(self, cgi: dict[bytes, bytes]) -> bytes:
        """REQUEST_URI, as the client sent it; without one, PATH_INFO (decoded by the front
        end, so quoted again) and QUERY_STRING."""
        url = cgi.get(b"REQUEST_URI", b"")
        if not url:
            path = cgi.get(b"PATH_INFO")
            if path is None:
                self._fail("uwsgi request without REQUEST_URI or PATH_INFO")
            if path[:1] != b"/":
                path = b"/" + path
            url = quote(path, safe=_PATH_SAFE).encode("ascii")
            query = cgi.get(b"QUERY_STRING")
            if query:
                url += b"?" + query
        if not _TARGET.match(url):
            # llhttp refuses these in a request line too (spaces, controls, raw non-ASCII)
            self._fail(f"invalid request target {url[:64]!r}")
        return url

    def _identity(self, cgi: dict[bytes, bytes]) -> None:
        """``client``, ``server`` and ``scheme`` on the protocol, from the vars; a var that
        does not parse is ignored (debug), and the socket's value stays."""
        protocol = self.protocol
        # The HTTP_* vars are the client's own fields, passed through (nginx's uwsgi module
        # writes no X-Forwarded-* of its own): so the client, not the front end, decides
        # whether --proxy-headers believes them, as the peer of an HTTP hop would. Without
        # a usable REMOTE_ADDR nobody vouches for them ("" is never a trusted address).
        sender: str | None = ""
        address = cgi.get(b"REMOTE_ADDR")
        if address:
            client = address.decode("latin-1")
            if _ADDRESS.match(client):
                remote_port = cgi.get(b"REMOTE_PORT", b"")
                protocol.client = (client, int(remote_port) if _PORT.match(remote_port)
                                   and int(remote_port) <= 0xFFFF else 0)
                sender = None if client == "unix:" else client  # nginx's Unix-socket client
            else:
                logger.debug("uwsgi: ignoring REMOTE_ADDR %r", address[:64])
        protocol.sender = sender
        protocol.sender_trusted = None
        # uWSGI's order: UWSGI_SCHEME, else HTTPS (on/1: https; any other value: http);
        # REQUEST_SCHEME only when neither is there (uWSGI never reads it). A front end
        # behind a TLS-terminating balancer says "uwsgi_param HTTPS on" while the stock
        # uwsgi_params still send its own REQUEST_SCHEME, http. Empty values are absent.
        scheme: str | None = _SCHEMES.get(cgi.get(b"UWSGI_SCHEME") or b"")
        if scheme is None:
            https = cgi.get(b"HTTPS")
            if https:
                scheme = "https" if https.lower() == b"on" or https == b"1" else "http"
            else:
                scheme = _SCHEMES.get(cgi.get(b"REQUEST_SCHEME") or b"")
        if scheme is not None:
            protocol.scheme = scheme
        host: str | None = None
        port: int | None = None
        name = cgi.get(b"SERVER_NAME")
        if name:
            text = name.decode("latin-1")
            if _HOST.match(text):
                host = text
            else:
                logger.debug("uwsgi: ignoring SERVER_NAME %r", name[:64])
        number = cgi.get(b"SERVER_PORT")
        if number:
            if _PORT.match(number) and int(number) <= 0xFFFF:
                port = int(number)
            else:
                logger.debug("uwsgi: ignoring SERVER_PORT %r", number[:16])
        if host is not None or port is not None:
            # Half of it given: the other half from the socket, except that the listener's
            # port means nothing next to the front end's name: that one gets its scheme's.
            server = protocol.server
            if host is None:
                host = server[0] if server else "localhost"
            elif port is None:
                port = DEFAULT_PORTS.get(protocol.scheme, 80)
            protocol.server = (host, port)

    # ------------------------------------------------------------ the body
    def _body(self, data: bytes, start: int) -> None:
        available = len(data) - start
        if available <= 0:
            return
        remaining = self.remaining
        count = min(available, remaining)
        chunk = data if start == 0 and count == len(data) else data[start:start + count]
        self.remaining = remaining - count
        self._call(self.protocol.on_body, chunk)
        if self.remaining == 0:
            self.state = _DONE
            self._call(self.protocol.on_message_complete)
            self._finish(data, start + count)

    def _finish(self, data: bytes, offset: int) -> None:
        """After the message: an Upgrade request stops the parser, as llhttp does, so h1
        hands the connection (and what followed the request) to the WebSocket layer."""
        if self.upgrade:
            raise httptools.HttpParserUpgrade(offset)

    # ------------------------------------------------------------ errors
    def _call(self, callback: Any, *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - delivered as httptools does (see feed_data)
            self.state = _FAILED
            raise httptools.HttpParserCallbackError("User callback error")

    def _fail(self, reason: str) -> NoReturn:
        self.state = _FAILED
        raise httptools.HttpParserError(reason)


_CGI, _CONTENT_LENGTH, _CONTENT_TYPE = 0, 1, 2
# What each var name is, memoised (a front end sends the same few names every time):
# an int for a CGI var, the field name for an HTTP_* var (b"" for one that is dropped).
_KINDS: dict[bytes, int | bytes] = {b"CONTENT_LENGTH": _CONTENT_LENGTH, b"CONTENT_TYPE": _CONTENT_TYPE}
_KINDS_MAX = 1024


def _classify(key: bytes) -> int | bytes | None:
    """A var name's kind (see _KINDS), or None for an HTTP_* name that is not a field
    name once turned into one (``HTTP_X_FOO`` -> ``x-foo``): refused, as llhttp would."""
    if key[:5] == b"HTTP_":
        name = key[5:].lower().replace(b"_", b"-")
        if not _FIELD_NAME.match(name):
            return None
        kind: int | bytes = b"" if name in _NOT_FIELDS else name
    else:
        kind = _CGI
    if len(_KINDS) >= _KINDS_MAX:
        _KINDS.clear()
        _KINDS[b"CONTENT_LENGTH"], _KINDS[b"CONTENT_TYPE"] = _CONTENT_LENGTH, _CONTENT_TYPE
    _KINDS[key] = kind
    return kind


def _modifier_reason(modifier1: int) -> str:
    if modifier1 == 30:
        return ("uwsgi modifier1 30 is not supported (only 0, a WSGI request): remove "
                "uwsgi_modifier1 from the front end and mount the app with --root-path")
    return f"uwsgi modifier1 {modifier1} is not supported (only 0, a WSGI request)"


def _wants_upgrade(fields: list[tuple[bytes, bytes]]) -> bool:
    """llhttp's rule: an Upgrade field and ``upgrade`` among the Connection options."""
    upgrade = connection = False
    for name, value in fields:
        if name == b"upgrade":
            upgrade = True
        elif name == b"connection" and b"upgrade" in (
                option.strip(b" \t") for option in value.lower().split(b",")):
            connection = True
    return upgrade and connection


class UwsgiProtocol(H1Protocol):
    """One uwsgi connection: H1Protocol with the uwsgi parser, for allowed peers only."""

    __slots__ = ("client_scope", "http_version")

    parser: Any  # ours while the request is parsed (h1 swaps in httptools' after a raw body)

    def __init__(self, state: ServerState) -> None:
        super().__init__(state)
        self.parser = UwsgiRequestParser(self, state.limit_request_fields)
        self.http_version = "1.0"
        # The vars say the client's scheme; without them it is http: a uwsgi socket is
        # never TLS, even when --ssl-certfile makes the HTTP listeners https.
        self.scheme = "http"
        self.client_scope: dict | None = None  # the scope _client_scope has seen to

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._check_peer(transport)

    def proxied_connection_made(self, transport: Any, client: Any, server: Any,
                                unix: bool | None = False, scheme: str | None = None) -> None:
        """Behind a PROXY header the peer that speaks uwsgi is the client it relays, so that
        client must be in --uwsgi-allow-from, whatever the listener (on a Unix listener the
        socket's permissions vouch for the proxy, not for who it relays). A relayed client
        the header gives no address (v1 UNKNOWN, v2 UNSPEC: ``unix`` None; a client on the
        proxy's own Unix socket: ``unix`` True) cannot be checked: refused unless the list
        is ``*``. LOCAL (the proxy's own connection, no client) is the proxy speaking."""
        super().proxied_connection_made(transport, client, server, unix, scheme)
        unnamed = unix or unix is None
        if client is None and not unnamed:
            self._check_peer(transport)  # LOCAL: the proxy is the peer
            return
        allow = getattr(self.state, "uwsgi_allow", None)
        if allow is None or allow.trust_all or (client is not None and allow.is_trusted(client[0])):
            return
        proxy = transport.get_extra_info("peername")
        relay = f" relayed by {proxy[0]}" if isinstance(proxy, tuple) and proxy else ""
        if client is None:
            logger.info("closing the uwsgi connection%s: its PROXY header names no client "
                        "address, so --uwsgi-allow-from cannot allow it ('*' allows any)", relay)
        else:
            logger.info("closing the uwsgi connection from %s%s: not in --uwsgi-allow-from",
                        client[0], relay)
        self.dead = True
        transport.close()

    def next_parser(self) -> Any:
        """After a body that bypassed the parser (h1's raw body path): the request is
        complete, and a uwsgi connection carries one; whatever follows is not parsed."""
        parser = UwsgiRequestParser(self, self.state.limit_request_fields)
        parser.state = _DONE
        parser.http_version = self.http_version
        return parser

    def _check_peer(self, transport: Any) -> None:
        """The uwsgi vars say who the client is: only --uwsgi-allow-from peers may speak.
        Unix-socket peers are always allowed (the socket's permissions guard it)."""
        allow = getattr(self.state, "uwsgi_allow", None)
        if allow is None or self.client is None:
            return  # no allow-list, or a Unix-socket peer
        sock = transport.get_extra_info("socket")
        if sock is not None and getattr(sock, "family", None) == socket.AF_UNIX:
            return
        host = self.client[0]
        if not allow.is_trusted(host):
            logger.info("closing the uwsgi connection from %s: not in --uwsgi-allow-from", host)
            self.dead = True
            transport.close()

    def on_headers_complete(self) -> None:
        """h1 builds the request as HTTP/1.0 (close-delimited framing); the scope then says
        the client's version, and has its path mounted once, before any app reads it (see
        the module docstring)."""
        parser = self.parser
        self.http_version = parser.http_version
        super().on_headers_complete()
        scope = self.pending_upgrade
        if scope is None:
            cycle = self.parsing
            scope = cycle.scope if cycle is not None else None
        if scope is not None:
            self._client_scope(scope)
        if parser.script_name:
            _note_script_name(parser.script_name, self.state.root_path)

    def _start(self, cycle: HTTPCycle, context: Any = None) -> None:
        # A WSGI request may reach a pool thread from here, inside on_headers_complete.
        self._client_scope(cycle.scope)
        super()._start(cycle, context)

    def _client_scope(self, scope: dict) -> None:
        """The scope as the client's request says: its HTTP version, and its path with the
        mount point once. REQUEST_URI is the whole path the client sent (nginx's
        $request_uri, Apache's original URI: no front end strips a prefix on this hop),
        so under --root-path it already starts with the mount point that h1 puts in front
        of every path: for an ASGI app the second copy goes. A WSGI app's environ is built
        from the scope as it is (wsgi/environ.py takes the mount point off up to twice,
        which is right for this doubled form). Runs once per scope."""
        if scope is self.client_scope:
            return
        self.client_scope = scope
        scope["http_version"] = self.http_version
        state = self.state
        root = state.root_path
        if not root or state.wsgi is not None or scope["root_path"] != root:
            return  # no mount point, a WSGI app, or a trusted X-Forwarded-Prefix replaced it
        raw_root = state.raw_root_path
        raw_path, path = scope["raw_path"], scope["path"]
        size, raw_size = len(root), len(raw_root)
        if raw_path[raw_size:2 * raw_size] == raw_root and raw_path[2 * raw_size:2 * raw_size + 1] in (b"", b"/") \
                and path[size:2 * size] == root and path[2 * size:2 * size + 1] in ("", "/"):
            scope["raw_path"] = raw_path[raw_size:]
            scope["path"] = path[size:]


def _note_script_name(script_name: bytes, root_path: str) -> None:
    global _script_name_noted
    if _script_name_noted or script_name.decode("latin-1").rstrip("/") == root_path:
        return
    _script_name_noted = True
    logger.warning("the uwsgi front end sends SCRIPT_NAME=%r, which Gannet ignores; the mount "
                   "point comes from --root-path (now %r)", script_name.decode("latin-1"),
                   root_path or "")
