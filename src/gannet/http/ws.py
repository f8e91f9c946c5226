"""WebSocket wire protocol: handshake checks (RFC 6455 §4), framing (§5), closing (§7),
permessage-deflate (RFC 7692), over the ``websockets`` sans-I/O layer.

Theory of operation. h1 parses the handshake request and hands the transport over
(asgi/websocket.py). ``negotiate`` checks the request and negotiates extensions with
websockets' own ``ServerProtocol.process_request``; a bad handshake raises
``HandshakeError`` carrying its HTTP status (400, or 426 with ``Sec-WebSocket-Version: 13``
for a version we do not speak, §4.4). Once the app accepts, ``WSConnection`` owns the socket.

Framing. We find frame boundaries ourselves (a frame header is at most 14 bytes) and keep
the websockets ``Protocol`` always at a frame boundary, feeding it one whole frame at a
time. That gives us two things websockets alone does not:
- a lean hot path: a complete, final, unextended, masked text/binary frame outside a
  fragmented message is unmasked (websockets' C ``apply_mask``) and delivered right here;
  everything else (control frames, fragments, RSV bits, compressed frames, errors, oversized
  frames) goes through websockets, which answers pings, validates and fails with the
  right close code (1002 protocol error, 1009 too big, 1007 bad close reason);
- RFC 6455 §5.4 "control frames MAY be injected in the middle of a fragmented message":
  a Close inside a fragmented message is answered with a Close (websockets would fail the
  connection with 1002); the partial message is dropped.
Text is validated as it arrives, fragment by fragment, with an incremental UTF-8 decoder,
so invalid UTF-8 fails the connection with 1007 at the first bad fragment (§8.1).

Flow control. The ``handler`` (the ASGI cycle) returns True from ``on_message`` when its
queue is full: we stop parsing, keep the unparsed bytes and pause reading until it calls
``resume``. Writes: ``pause_writing`` / ``drain`` make the app's ``send`` wait.

Timeouts are not timers: ``check_timeouts`` (the server's once-a-second sweep) sends pings,
closes dead peers (1011), aborts sockets whose closing handshake did not finish, and aborts
sockets whose client accepted no bytes for ``--write-timeout`` while output waited. The ping
timeout holds in every state the peer controls: a Pong, bytes arriving while we hold reading
back (read ahead into a bounded buffer, which is scanned for the Pong), or bytes leaving our
write buffer all prove the peer alive; silence does not. Once that read-ahead buffer is full
and the app still takes nothing, the Pong cannot be seen and the app, not the peer, is the
bottleneck: the ping clock waits (memory stays bounded) and restarts when reading does.

Lifetime: once the transport is gone the connection drops its handler (the ASGI cycle), so
the two never form a reference cycle that only the cyclic GC could free, and its read-side
state (unparsed bytes, fragments, websockets' parser), which the app's task would otherwise
keep alive for as long as it runs.
This module knows nothing about ASGI.
"""
from __future__ import annotations

import asyncio
import codecs
import logging
import os
import struct
from typing import Any, Protocol as TypingProtocol

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode
from websockets.headers import parse_subprotocol
from websockets.http11 import Request
from websockets.protocol import CLOSED, OPEN, SERVER, Protocol
from websockets.server import ServerProtocol

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - pure-Python websockets build
    from websockets.utils import apply_mask

from .errors import ProtocolError
from .flow import FlowControl
from .headers import CUSTOM_DEFAULTS, defaults_without, fields_of

__all__ = ["HandshakeError", "Handshake", "negotiate", "WSConnection", "CLOSE_TIMEOUT",
           "sendable_close_code", "fit_reason", "Handler", "WSStream"]

logger = logging.getLogger("gannet.error")
# websockets logs every connection's open/close at INFO; keep that out of our log.
wire_logger = logging.getLogger("gannet.ws.wire")
if wire_logger.level == logging.NOTSET:
    wire_logger.setLevel(logging.WARNING)

CLOSE_TIMEOUT = 10.0  # seconds to wait for the peer's Close once ours is sent (§7.1.1)
_TEXT, _BINARY, _CONT, _CLOSE, _PING, _PONG = (
    Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.CLOSE, Opcode.PING, Opcode.PONG)
_utf8_decoder = codecs.getincrementaldecoder("utf-8")
_pack_short = struct.Struct("!BB").pack
_pack_medium = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_unpack_medium = struct.Struct("!H").unpack_from
_unpack_long = struct.Struct("!Q").unpack_from
# While we hold reading back and a Pong is due, read ahead at most this much to find it.
PEEK_LIMIT = 65536
# Close codes an endpoint may send (RFC 6455 §7.4.1, §7.4.2, and the IANA registry):
# 1004-1006 and 1015 are reserved, 1016-2999 belong to future revisions of the protocol.
_SENDABLE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                             1013, 1014))


def sendable_close_code(code: Any) -> bool:
    """Whether ``code`` may go in a Close frame we send (RFC 6455 §7.4)."""
    return type(code) is int and (code in _SENDABLE_CODES or 3000 <= code <= 4999)


def fit_reason(reason: str) -> str:
    """``reason`` cut to the 123 bytes a Close frame has room for (§5.5: control frame
    payloads are at most 125 bytes, two of them the code), on a UTF-8 character boundary."""
    try:
        raw = reason.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates are not UTF-8 (§5.5.1): dropped
        raw = reason.encode("utf-8", "surrogatepass").decode("utf-8", "ignore").encode("utf-8")
    else:
        if len(raw) <= 123:
            return reason
    # "ignore" drops the character cut in half at the end, if any.
    return raw[:123].decode("utf-8", "ignore")


# ====================================================================== the handshake
class HandshakeError(ProtocolError):
    """A handshake we refuse; ``status`` and ``headers`` form the HTTP answer."""

    def __init__(self, status: int, reason: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(status, reason)
        self.headers = headers or []


class Handshake:
    """What a valid handshake negotiated; the 101 is sent only once the app accepts."""

    __slots__ = ("accept_key", "extensions", "extensions_header", "subprotocols")

    def __init__(self, accept_key: str, extensions: list, extensions_header: str | None,
                 subprotocols: list[str]) -> None:
        self.accept_key = accept_key
        self.extensions = extensions
        self.extensions_header = extensions_header
        self.subprotocols = subprotocols

    def response_head(self, subprotocol: str | None, extra: list[tuple[bytes, bytes]],
                      default_headers: bytes) -> bytes:
        """The 101 response (RFC 6455 §4.2.2), with the app's headers and ours."""
        parts = [b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
                 b"sec-websocket-accept: ", self.accept_key.encode(), b"\r\n"]
        if self.extensions_header:
            parts += [b"sec-websocket-extensions: ", self.extensions_header.encode(), b"\r\n"]
        if subprotocol:
            if subprotocol in self.subprotocols:
                parts += [b"sec-websocket-protocol: ", subprotocol.encode(), b"\r\n"]
            else:
                # RFC 6455 §4.2.2: the server selects one of the client's offers; a client
                # fails a handshake naming another (§4.1), so we leave it out.
                logger.warning("WebSocket accepted with subprotocol %r, which the client did "
                               "not offer (offered: %s); sent without a subprotocol",
                               subprotocol, self.subprotocols)
        fields = tuple((bytes(name), bytes(value)) for name, value in extra)
        for name, _ in fields:
            if name.lower() in _RESERVED_RESPONSE_HEADERS:
                raise ValueError(f"the app may not set {name.decode('latin-1')!r} on a WebSocket accept")
        block, _length, flags = fields_of(fields)  # the one response-field normaliser
        parts.append(block)
        parts.append(defaults_without(default_headers, fields) if flags & CUSTOM_DEFAULTS
                     else default_headers)
        parts.append(b"\r\n")
        return b"".join(parts)


_RESERVED_RESPONSE_HEADERS = {b"upgrade", b"connection", b"sec-websocket-accept",
                              b"sec-websocket-extensions", b"sec-websocket-protocol",
                              b"content-length", b"transfer-encoding"}
class _Negotiator(ServerProtocol):
    """One per worker: only its ``process_request`` (checks + extension negotiation) is
    used, synchronously, so sharing it is safe; connections never use it for frames."""


_negotiators: dict[bool, _Negotiator] = {}


def _negotiator(deflate: bool) -> _Negotiator:
    negotiator = _negotiators.get(deflate)
    if negotiator is None:
        # Same window and memory settings as websockets' own default (and uvicorn's):
        # 4 KiB windows and memLevel 5 keep a compressed socket's zlib state small.
        extensions = [ServerPerMessageDeflateFactory(
            server_max_window_bits=12, client_max_window_bits=12,
            compress_settings={"memLevel": 5})] if deflate else None
        negotiator = _negotiators[deflate] = _Negotiator(extensions=extensions, logger=wire_logger)
    return negotiator


def negotiate(headers: list[tuple[bytes, bytes]], http_version: str, deflate: bool) -> Handshake:
    """Check a handshake request (RFC 6455 §4.2.1) and negotiate its extensions."""
    if http_version != "1.1":
        raise HandshakeError(400, f"a WebSocket handshake needs HTTP/1.1, not HTTP/{http_version}")
    versions = [value for name, value in headers if name == b"sec-websocket-version"]
    if len(versions) != 1:
        raise HandshakeError(400, "missing Sec-WebSocket-Version" if not versions
                             else "more than one Sec-WebSocket-Version")
    if versions[0].strip() != b"13":
        # §4.4: tell the client which versions we speak.
        raise HandshakeError(426, f"unsupported WebSocket version {versions[0][:16]!r}",
                             [(b"sec-websocket-version", b"13")])
    raw = Headers()
    for name, value in headers:
        raw[name.decode("latin-1")] = value.decode("latin-1")
    subprotocols: list[str] = []
    try:
        for offer in raw.get_all("Sec-WebSocket-Protocol"):
            subprotocols.extend(parse_subprotocol(offer))
        negotiator = _negotiator(deflate)
        accept_key, extensions_header, _ = negotiator.process_request(Request("/", raw))
        extensions = negotiator.extensions
        negotiator.extensions = []
    except InvalidHandshake as exc:
        raise HandshakeError(400, f"invalid WebSocket handshake: {exc}") from None
    return Handshake(accept_key, extensions, extensions_header, subprotocols)


# ====================================================================== the connection
class Handler(TypingProtocol):
    """What a WSConnection (or a handshake stream) reports to: the ASGI cycle."""

    def on_message(self, data: Any) -> bool: ...  # str or bytes; True = queue full
    def backlog(self) -> int: ...  # messages the app has not taken yet
    def on_close(self, code: int, reason: str) -> None: ...


class WSStream(TypingProtocol):
    """A WebSocket handshake waiting for the app's answer, on whatever wire carries it
    (HTTP/1.1 Upgrade today: ``ws_h1.H1Handshake``; HTTP/2 extended CONNECT, RFC 8441,
    later). The ASGI cycle drives only these operations, never a transport."""

    handler: Handler

    def accept(self, subprotocol: str | None, headers: list) -> "WSConnection":
        """Answer yes (the 101 on HTTP/1.1); the returned connection carries messages."""
        ...

    def refuse(self, status: int) -> None:
        """Answer no with a plain ``status`` response (or drop a response already begun)."""
        ...

    def deny(self, status: int, headers: list, body: bytes, more: bool) -> None:
        """Answer with an HTTP response instead; ``more``: body messages follow."""
        ...

    def deny_body(self, body: bytes, more: bool) -> None:
        """More of that response's body; the last one (``more`` False) ends the stream."""
        ...

    async def drain(self) -> None:
        """Wait while the client's buffer is full."""
        ...

    def abort(self) -> None:
        """Drop the stream (a broken response: the client must not take it as whole)."""
        ...


class WSConnection(FlowControl, asyncio.Protocol):
    """One open WebSocket. Created with the transport already taken over and its 101
    written; ``start(pending)`` begins parsing (bytes the client sent early included)."""

    __slots__ = (
        "state", "loop", "transport", "ws", "handler", "buffer", "fast", "max_size",
        "paused", "reading_paused", "write_paused", "drain_waiters",
        "fragments", "fragment_text", "decoder", "notified", "lost",
        "close_deadline", "ping_interval", "ping_timeout", "next_ping", "ping_payload",
        "ping_sent", "client", "deferred", "needed", "stall_since", "stall_size", "drained",
    )

    def __init__(self, state: Any, transport: Any, handler: Handler, extensions: list,
                 max_size: int, ping_interval: float | None, ping_timeout: float | None,
                 client: Any = None) -> None:
        self.state = state
        self.loop = state.loop
        self.transport = transport
        self.handler = handler
        ws = self.ws = Protocol(SERVER, state=OPEN, max_size=max_size, logger=wire_logger)
        ws.extensions = extensions
        self.fast = not extensions  # the inline fast path needs unextended frames
        self.max_size = max_size
        self.buffer: Any = b""
        self.needed = 0  # bytes the incomplete frame at the start of buffer needs in all
        self.paused = False  # the handler's queue is full: stop parsing
        self.deferred = False  # paused before a frame that fails, until the app catches up
        self.reading_paused = False
        self.write_paused = False
        self.drain_waiters: list[asyncio.Future] | None = None
        self.fragments: list | None = None
        self.fragment_text = False
        self.decoder: Any = None
        self.notified = False  # the handler has had its on_close
        self.lost = False
        self.close_deadline: float | None = None
        self.ping_interval = ping_interval or None
        self.ping_timeout = ping_timeout or None
        now = self.loop.time()
        self.next_ping = now + ping_interval if ping_interval else None
        self.ping_payload: bytes | None = None
        self.ping_sent = 0.0
        self.client = client
        self.stall_since: float | None = None  # the sweep that saw output waiting, unmoved
        self.stall_size = 0  # the write buffer's size at the last sweep
        self.drained = False  # resume_writing since the last sweep: the client took bytes

    def start(self, pending: bytes) -> None:
        """Parse the frames that came before the 101, then read on, unless they filled the
        handler's queue: this connection alone decides when its transport reads (the
        handshake may have paused it, to bound ``pending``)."""
        self.state.connections.add(self)
        if pending:
            self.data_received(pending)
        if not self.reading_paused and not self.lost and not self.transport.is_closing():
            try:
                self.transport.resume_reading()
            except RuntimeError:  # pragma: no cover - already reading on some loops
                pass

    # ------------------------------------------------------------ transport events
    def connection_made(self, transport: Any) -> None:  # pragma: no cover - set_protocol
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.state.connections.discard(self)
        ws = self.ws
        if ws.state is not CLOSED:
            ws.receive_eof()
            ws.data_to_send()
        if not self.notified:
            self.notified = True
            rcvd = ws.close_rcvd
            if rcvd is not None:
                self.handler.on_close(rcvd.code, rcvd.reason)
            else:
                self.handler.on_close(1006, "")
        self._wake_drain()
        # Nothing reaches the handler once the socket is gone: drop it, so the cycle and
        # this connection do not keep each other alive (freed by refcount, not the GC).
        self.handler = _GONE
        # The cycle (so this connection) lives as long as the app's task, which may be
        # blocked elsewhere: let go of the read side now, a partial message (up to
        # --ws-max-size), its fragments and decoder, and websockets' parser and zlib
        # state. The protocol refers to itself through its parser generator and through
        # the traceback of the exception that stopped the parser: without both links,
        # refcounting frees it.
        self.buffer = b""
        self.needed = 0
        self.fragments = None
        self.decoder = None
        ws.parser.close()
        ws.parser_exc = None
        self.ws = _CLOSED_WS

    def eof_received(self) -> bool | None:
        # A TCP close without a Close frame: §7.1.5 "abnormal closure" (1006).
        return None

    # ------------------------------------------------------------ reading
    def data_received(self, data: Any) -> None:
        buffer = self.buffer
        if buffer:
            if self.needed:
                # A large frame still incomplete: gather into one bytearray, parse once it is
                # whole (re-joining on every read would copy a 16 MiB frame hundreds of times).
                if buffer.__class__ is not bytearray:
                    buffer = self.buffer = bytearray(buffer)
                buffer += data
                if len(buffer) < self.needed:
                    return
                self.needed = 0
                data = buffer
            else:
                data = buffer + data
            self.buffer = b""
        if self.paused:
            self.buffer = data
            if not self.reading_paused:  # reading ahead for a Pong (check_timeouts)
                self._peeked(data)
            return
        ws = self.ws
        if ws.state is not OPEN or self.notified:
            # Closing: websockets reads the peer's Close and discards the rest (§1.4).
            ws.receive_data(data)
            self._after_websockets()
            return
        size = len(data)
        pos = 0
        max_size = self.max_size
        handler = self.handler
        while pos < size:
            # --- one frame header (RFC 6455 §5.2); frames are fed whole or not at all
            if size - pos < 2:
                break
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            if length < 126:
                head = pos + 6
            elif length == 126:
                if size - pos < 4:
                    break
                length = _unpack_medium(data, pos + 2)[0]
                head = pos + 8
            else:
                if size - pos < 10:
                    break
                length = _unpack_long(data, pos + 2)[0]
                head = pos + 14
            if length > max_size or not b1 & 0x80:
                # Too big (1009) or unmasked (1002): websockets fails it from the header.
                ws.receive_data(data[pos:])
                self._after_websockets()
                return
            end = head + length
            opcode = b0 & 0x0F
            if end > size:
                if end - pos > 65536:
                    self.needed = end - pos
                elif self.fast and size > head and not b0 & 0x70 and (
                        opcode == 1 or (opcode == 0 and self.decoder is not None)):
                    # Part of a text frame: check its UTF-8 now, not when the frame ends (§8.1).
                    # (Not with an extension: continuation frames of a compressed message
                    # carry no RSV1, and their bytes are only UTF-8 once inflated.)
                    if not self._partial_text_ok(data[head:size], data[head - 4:head], opcode):
                        return
                break
            if self.fast and (b0 & 0xF0) == 0x80 and opcode < 3 and opcode and ws.current_size is None:
                # Hot path: a whole unfragmented message, no extension (see module doc).
                payload: Any = apply_mask(data[head:end], data[head - 4:head])
                pos = end
                if opcode == 1:
                    try:
                        payload = payload.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        self.fail(1007, f"invalid UTF-8 at byte {exc.start}")
                        return
                if handler.on_message(payload):
                    self._pause()
                    if pos < size:
                        self.buffer = data[pos:]
                    return
                continue
            if self._doomed(b0, length, opcode) and handler.backlog():
                # This frame will fail the connection, but messages before it still wait
                # for the app: let the app have them (and answer them) first. Autobahn
                # calls failing at once "non-strict" (3.2, 4.1.3, 5.15, …).
                self.deferred = True
                self.buffer = data[pos:]
                self._pause()
                return
            if opcode == 8 and ws.current_size is not None:
                # §5.4: a Close may come inside a fragmented message; answer it (§5.5.1)
                # and drop the partial message instead of failing with 1002.
                ws.current_size = None
                self.fragments = None
                self.decoder = None
            ws.receive_data(data[pos:end])
            pos = end
            if not self._after_websockets():
                if pos < size and ws.state is not CLOSED:
                    ws.receive_data(data[pos:])  # discarded by websockets after a close
                    self._after_websockets()
                return
            if self.paused:
                if pos < size:
                    self.buffer = data[pos:]
                return
        if pos < size:
            self.buffer = data[pos:] if pos else data

    def _after_websockets(self) -> bool:
        """Handle what websockets made of the bytes fed to it; False once closing."""
        ws = self.ws
        frame: Any
        for frame in ws.events_received():  # only Frames once open
            opcode = frame.opcode
            if opcode is _PONG:
                if self.ping_payload is not None and frame.data == self.ping_payload:
                    self.ping_payload = None
            elif opcode is _TEXT or opcode is _BINARY or opcode is _CONT:
                if ws.close_sent is None and not self.notified:
                    if not self._data_frame(frame):
                        return False
            # PING: websockets queued the Pong; CLOSE: handled below.
        self._flush()
        if ws.state is OPEN:
            return True
        if not self.notified:
            self.notified = True
            if ws.parser_exc is not None and ws.close_sent is not None:
                # We failed the connection (1002/1007/1009/1011): the app learns our code.
                logger.info("WebSocket from %s failed: %d %s", _peer(self.client),
                            ws.close_sent.code, ws.close_sent.reason)
                self.handler.on_close(ws.close_sent.code, ws.close_sent.reason)
            elif ws.close_rcvd is not None:
                self.handler.on_close(ws.close_rcvd.code, ws.close_rcvd.reason)
            else:
                self.handler.on_close(1006, "")
        if self.close_deadline is None:
            self.close_deadline = self.loop.time() + CLOSE_TIMEOUT
        return False

    def _data_frame(self, frame: Frame) -> bool:
        """A data frame websockets parsed (fragment, compressed, …): assemble the message."""
        opcode = frame.opcode
        data: Any = frame.data
        if opcode is not _CONT:
            self.fragment_text = text = opcode is _TEXT
            if frame.fin:
                if text:
                    try:
                        data = bytes(data).decode("utf-8")
                    except UnicodeDecodeError as exc:
                        self.fail(1007, f"invalid UTF-8 at byte {exc.start}")
                        return False
                else:
                    data = bytes(data)
                if self.handler.on_message(data):
                    self._pause()
                return True
            self.fragments = []
            self.decoder = _utf8_decoder() if text else None
        fragments = self.fragments
        if fragments is None:  # pragma: no cover - websockets checks continuation order
            return True
        if self.decoder is not None:
            try:
                fragments.append(self.decoder.decode(data, frame.fin))  # fail fast (§8.1)
            except UnicodeDecodeError:
                self.fail(1007, "invalid UTF-8 in a text message")
                return False
        else:
            fragments.append(bytes(data))
        if frame.fin:
            message = ("" if self.decoder is not None else b"").join(fragments)
            self.fragments = None
            self.decoder = None
            if self.handler.on_message(message):
                self._pause()
        return True

    def _partial_text_ok(self, part: Any, mask: Any, opcode: int) -> bool:
        decoder = _utf8_decoder()
        if opcode == 0:  # a continuation: carry on from where the message's decoder is
            decoder.setstate(self.decoder.getstate())
        try:
            decoder.decode(apply_mask(part, mask), False)
        except UnicodeDecodeError:
            self.fail(1007, "invalid UTF-8 in a text message")
            return False
        return True

    def _doomed(self, b0: int, length: int, opcode: int) -> bool:
        """Whether websockets will fail this frame from its header alone (§5.2, §5.4, §5.5)."""
        if b0 & 0x70 and not self.ws.extensions:
            return True  # RSV bits without an extension
        if 2 < opcode < 8 or opcode > 10:
            return True  # reserved opcode
        if opcode >= 8:
            return length > 125 or not b0 & 0x80  # control frames: short and unfragmented
        in_message = self.ws.current_size is not None
        return in_message if opcode else not in_message

    def _pause(self) -> None:
        self.paused = True
        if not self.reading_paused and not self.lost:
            self.reading_paused = True
            self.transport.pause_reading()

    def _peek(self) -> None:
        """A Pong is due while we hold reading back (the app is not taking messages): read
        ahead, bounded, so the Pong behind the messages can be seen (``_peeked``)."""
        if self.reading_paused and len(self.buffer) < PEEK_LIMIT and not self.lost:
            self.reading_paused = False
            self.transport.resume_reading()

    def _peeked(self, data: Any) -> None:
        """Bytes read ahead while paused: the Pong among them, or as much as we read ahead
        (the peer is evidently there, its Pong further on), counts as an answer."""
        if len(data) >= PEEK_LIMIT or _pong_in(data, self.ping_payload):
            self.ping_payload = None
            self.reading_paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        """The handler's queue has room again: parse what we kept, then read again."""
        if not self.paused or self.lost:
            return
        if self.deferred:
            if self.handler.backlog():
                return
            self.deferred = False
            # One more loop turn: the app answers the message it has just taken first.
            self.loop.call_soon(self.resume)
            return
        self.paused = False
        if self.buffer and not self.lost:
            data, self.buffer = self.buffer, b""
            self.data_received(data)
        if not self.paused and self.reading_paused and not self.lost:
            self.reading_paused = False
            self.transport.resume_reading()

    # ------------------------------------------------------------ writing
    def resume_writing(self) -> None:
        """The client took bytes (the buffer fell below its low-water mark): progress for
        the write timeout's sweep, and the app's ``send`` may go on."""
        self.write_paused = False
        self.drained = True
        self._wake_drain()

    def send_message(self, data: bytes, text: bool) -> None:
        """One whole message; the caller checked the connection is open."""
        ws = self.ws
        if self.fast and ws.state is OPEN:
            n = len(data)
            opcode = 0x81 if text else 0x82
            if n < 126:
                head = _pack_short(opcode, n)
            elif n < 65536:
                head = _pack_medium(opcode, 126, n)
            else:
                head = _pack_long(opcode, 127, n)
            if n < 16384:
                self.transport.write(head + data)
            else:
                self.transport.write(head)
                self.transport.write(data)
            return
        if text:
            ws.send_text(data)
        else:
            ws.send_binary(data)
        self._flush()

    @property
    def is_open(self) -> bool:
        return self.ws.state is OPEN and not self.lost

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (§7.1.2); the peer has CLOSE_TIMEOUT to answer."""
        ws = self.ws
        if ws.state is OPEN and not self.lost:
            ws.send_close(code, reason)
            self._flush()
            self._wake_drain()  # a send waiting on a slow reader has nothing left to wait for
            self.notified = True  # the caller tells its side itself
            self.close_deadline = self.loop.time() + CLOSE_TIMEOUT
            if self.paused:  # read on: the peer's Close must get through
                self.paused = False
                self.deferred = False
                data, self.buffer = self.buffer, b""
                if data:  # websockets is at a frame boundary: it finds a Close in there
                    ws.receive_data(data)
                    self._after_websockets()
                if self.reading_paused and not self.lost:
                    self.reading_paused = False
                    self.transport.resume_reading()

    def fail(self, code: int, reason: str) -> None:
        """Fail the connection (§7.1.7): send our Close and drop the TCP connection."""
        if self.lost:
            return  # nothing to send it on (and self.ws is the shared closed stand-in)
        ws = self.ws
        if ws.state is not CLOSED:
            ws.fail(code, reason)
        if ws.parser_exc is None:
            ws.parser_exc = RuntimeError(reason)
        self._after_websockets()

    def _flush(self) -> None:
        writes = self.ws.data_to_send()
        if not writes:
            return
        transport = self.transport
        for chunk in writes:
            if chunk:
                transport.write(chunk)
            else:  # SEND_EOF: a server closes the TCP connection first (§7.1.1)
                transport.close()

    # ------------------------------------------------------------ the server's sweep
    def check_timeouts(self, now: float) -> None:
        if self.lost:
            return
        if self.deferred:  # the app is not reading: fail the doomed frame now
            self.deferred = False
            self.resume()
        # Bytes left our write buffer since the last sweep: a drain (resume_writing), or
        # a buffer smaller than it was then. Our own writes growing it are not progress,
        # and neither is the smallest size ever seen: a steady reader slower than the app
        # refills between sweeps (the same rule as H1Protocol.check_timeouts).
        alive = self.drained
        self.drained = False
        if self.write_paused:
            # Output waits on the client; no progress for --write-timeout and it is dropped.
            size = self.transport.get_write_buffer_size()
            if self.stall_since is None or alive or size < self.stall_size:
                alive = alive or self.stall_since is not None
                self.stall_since = now
            elif now - self.stall_since >= self.state.write_timeout:
                logger.info("WebSocket from %s: the client accepted no data for %.0fs "
                            "(--write-timeout); closing", _peer(self.client), now - self.stall_since)
                self.transport.abort()
                return
            self.stall_size = size
        elif self.stall_since is not None:
            self.stall_since = None
        if self.close_deadline is not None:
            if now >= self.close_deadline:
                logger.info("WebSocket from %s: closing handshake timed out", _peer(self.client))
                self.transport.abort()
            return
        if self.next_ping is None:
            return
        if self.ping_payload is not None:
            if alive:
                self.ping_sent = now  # its TCP takes our bytes: the Pong is queued behind them
            elif self.paused and len(self.buffer) >= PEEK_LIMIT:
                # The app holds reading back and we have read ahead all we may: the Pong
                # is behind messages the app has not taken. The app is the bottleneck, not
                # the peer, and memory is bounded; the clock restarts when reading does.
                self.ping_sent = now
            elif self.ping_timeout is not None and now - self.ping_sent > self.ping_timeout:
                logger.info("WebSocket from %s: no Pong within %.0fs; closing",
                            _peer(self.client), self.ping_timeout)
                self.fail(1011, "keepalive ping timeout")
                self.close_deadline = now + 1.0  # a dead peer will not read our Close
            elif self.paused:
                self._peek()
            return
        if now >= self.next_ping:
            self.ping_payload = os.urandom(4)
            self.ping_sent = now
            self.next_ping = now + self.ping_interval  # type: ignore[operator]
            self.ws.send_ping(self.ping_payload)
            self._flush()
            if self.paused:
                self._peek()

    def shutdown(self) -> None:
        """Graceful drain: close with 1001 Going Away (§7.4.1) and tell the handler."""
        if self.ws.state is OPEN and not self.lost:
            notified = self.notified
            self.close(1001, "server shutting down")
            if not notified:
                self.handler.on_close(1001, "server shutting down")

    def force_close(self) -> None:
        if not self.lost:
            self.transport.abort()


class _Gone:
    """The handler of a connection whose socket is gone: nothing more to report."""

    __slots__ = ()

    def on_message(self, data: Any) -> bool:
        return True

    def backlog(self) -> int:
        return 0

    def on_close(self, code: int, reason: str) -> None:
        pass


_GONE = _Gone()
# What a connection whose socket is gone keeps as its protocol: closed, shared, never fed.
_CLOSED_WS = Protocol(SERVER, state=CLOSED, logger=wire_logger)


def _pong_in(data: Any, payload: bytes | None) -> bool:
    """Whether the client frames at the start of ``data`` (a frame boundary) include a Pong
    carrying ``payload``; stops at the first incomplete frame."""
    if payload is None:
        return True
    pos = 0
    size = len(data)
    while size - pos >= 6:
        b1 = data[pos + 1]
        if not b1 & 0x80:
            return False  # unmasked: websockets fails it once parsed
        length = b1 & 0x7F
        head = pos + 6
        if length == 126:
            if size - pos < 8:
                return False
            length = _unpack_medium(data, pos + 2)[0]
            head = pos + 8
        elif length == 127:
            if size - pos < 14:
                return False
            length = _unpack_long(data, pos + 2)[0]
            head = pos + 14
        end = head + length
        if end > size:
            return False
        if data[pos] & 0x0F == 0x0A and apply_mask(data[head:end], data[head - 4:head]) == payload:
            return True
        pos = end
    return False


def _peer(client: Any) -> str:
    return f"{client[0]}:{client[1]}" if client else "unix socket"


def close_frame(code: int, reason: str = "") -> bytes:
    """An unmasked Close frame (used by tests and by the ASGI layer's error paths)."""
    return Frame(Opcode.CLOSE, Close(code, reason).serialize()).serialize(mask=False)
