"""One WebSocket's ASGI cycle (ASGI websocket spec 2.4, with ``websocket.http.response``).

Theory of operation. h1 parses a ``GET`` with ``Upgrade: websocket`` and, on the loop
thread, calls ``state.ws_upgrade(h1conn, scope, trailing_bytes)`` (installed here). We check
the handshake (``http/ws.negotiate``): a bad one is answered on the spot with its HTTP
status. A good one becomes a ``WebSocketCycle`` that takes the transport over and runs the
app in a task (in ``state.tasks``, so the graceful drain waits for it). Nothing is sent
until the app answers ``websocket.connect``:
- ``websocket.accept``   → the 101 (with the app's subprotocol and headers), then a
  ``WSConnection`` (http/ws.py) owns the socket and feeds messages back here;
- ``websocket.close``    → 403 (the spec's answer to a refusal before accept);
- ``websocket.http.response.start/body`` → the app's own HTTP response, streamed
  (Content-Length for a one-shot body, else chunked), then the connection closes;
- an exception or a return before any of these → 500.
Incoming messages wait in a deque bounded by ``--ws-max-queue``: when full, the wire stops
reading (backpressure) until ``receive`` takes from it. ``send`` waits for the transport to
drain, so a slow reader slows the app, never grows memory.

Hot path (``receive`` with a message waiting, ``send`` of ``websocket.send``) is flat on
purpose: no task, no asyncio.Queue, no Event per message.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Callable
from urllib.parse import quote

from ..http.errors import ClientDisconnected
from ..http.headers import STATUS_LINES, reason_phrase, status_line
from ..http.ws import HandshakeError, Handshake, WSConnection, check_header, filter_defaults, negotiate
from .http import ASGI_INFO

__all__ = ["install_websocket", "WebSocketCycle"]

logger = logging.getLogger("gannet.error")
access_logger = logging.getLogger("gannet.access")

WS_EXTENSIONS: dict[str, dict[str, Any]] = {"websocket.http.response": {}}
_CONNECT = {"type": "websocket.connect"}

# Cycle states
_HANDSHAKE, _OPEN, _CLOSED_BY_APP, _RESPONSE, _DONE = range(5)


def install_websocket(state: Any, config: Any) -> None:
    """Set ``state.ws_upgrade`` to the WebSocket hand-over h1 calls."""
    settings = (config.ws_max_size, config.ws_max_queue, config.ws_ping_interval,
                config.ws_ping_timeout, bool(config.ws_per_message_deflate))

    def ws_upgrade(h1conn: Any, scope: dict, trailing: bytes) -> None:
        upgrade(state, settings, h1conn, scope, trailing)

    state.ws_upgrade = ws_upgrade


def upgrade(state: Any, settings: tuple, h1conn: Any, scope: dict, trailing: bytes) -> None:
    transport = h1conn.transport
    if transport is None or transport.is_closing():
        return
    try:
        handshake = negotiate(scope["headers"], scope["http_version"], settings[4])
    except HandshakeError as exc:
        logger.info("refused WebSocket handshake from %s: %d %s",
                    _client(scope), exc.status, exc.reason)
        body = reason_phrase(exc.status).encode()
        extra = b"".join(b"%b: %b\r\n" % pair for pair in exc.headers)
        if exc.status == 426:
            extra += b"upgrade: websocket\r\n"
        transport.write(b"%bcontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                        b"connection: close\r\n%b%b\r\n%b"
                        % (STATUS_LINES.get(exc.status) or status_line(exc.status), len(body),
                           extra, state.default_headers, body))
        transport.close()
        return
    cycle = WebSocketCycle(state, settings, transport, scope, handshake, h1conn.client, trailing)
    transport.set_protocol(cycle)
    # h1 may have paused reading; until the app answers we read on, buffering what
    # arrives (bounded: see WebSocketCycle.data_received) so a client that goes away is noticed.
    try:
        transport.resume_reading()
    except RuntimeError:  # pragma: no cover - already reading on some loops
        pass
    cycle.start()


class WebSocketCycle:
    """The ASGI side of one WebSocket; also the transport's protocol until the 101 is out."""

    __slots__ = (
        "state", "loop", "settings", "transport", "scope", "handshake", "client", "pending",
        "queue", "max_queue", "waiter", "status", "conn", "task", "disconnect",
        "response_head", "chunked", "remaining", "app_done", "shutdown_asked", "drain_waiter",
    )

    def __init__(self, state: Any, settings: tuple, transport: Any, scope: dict,
                 handshake: Handshake, client: Any, pending: bytes) -> None:
        self.state = state
        self.loop = state.loop
        self.settings = settings
        self.transport = transport
        self.handshake = handshake
        self.client = client
        self.pending = pending
        self.queue: deque = deque()
        self.max_queue = settings[1]
        self.waiter: asyncio.Future | None = None
        self.status = _HANDSHAKE
        # Set by _accept; only read once status is _OPEN (typed for that case).
        self.conn: WSConnection = None  # type: ignore[assignment]
        self.task: asyncio.Task | None = None
        self.disconnect: dict | None = None  # set once the socket is gone or closing
        self.response_head: list | None = None
        self.chunked = False
        self.remaining: int | None = None
        self.app_done = False
        self.shutdown_asked = False
        self.drain_waiter: asyncio.Future | None = None
        http = scope["scheme"] == "https"
        self.scope = {
            "type": "websocket",
            "asgi": ASGI_INFO,
            "http_version": scope["http_version"],
            "scheme": "wss" if http else "ws",
            "server": scope["server"],
            "client": scope["client"],
            "root_path": scope["root_path"],
            "path": scope["path"],
            "raw_path": scope["raw_path"],
            "query_string": scope["query_string"],
            "headers": scope["headers"],
            "subprotocols": handshake.subprotocols,
            "state": scope["state"],
            "extensions": WS_EXTENSIONS,
        }
        self.queue.append(_CONNECT)

    def start(self) -> None:
        state = self.state
        state.connections.add(self)
        task = self.task = self.loop.create_task(self.run(state.app))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)

    # ------------------------------------------------ the transport, before the 101
    # Until the app accepts, this object is the transport's protocol (so a client that
    # goes away is noticed); from the 101 on, the WSConnection is.
    def connection_made(self, transport: Any) -> None:  # pragma: no cover - set_protocol
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        # Frames sent before our 101: keep them for the WSConnection, but never more than
        # one message's worth (then stop reading until the app decides).
        self.pending += data
        if len(self.pending) > min(self.settings[0] + 14, 1 << 20):
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self.resume_writing()
        if self.disconnect is None:
            self.on_close(1006, "")

    def pause_writing(self) -> None:
        # Only an app's own HTTP response (websocket.http.response) is written before the
        # 101; its streamed body waits on this like any response body.
        self.drain_waiter = self.loop.create_future()

    def resume_writing(self) -> None:
        waiter, self.drain_waiter = self.drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------ the server's sweep (before the 101)
    def check_timeouts(self, now: float) -> None:
        pass

    def shutdown(self) -> None:
        self.shutdown_asked = True  # the app is still deciding; a 101 will close at once

    def force_close(self) -> None:
        self.transport.abort()

    # ------------------------------------------------ fed by the WSConnection
    def on_message(self, data: Any) -> bool:
        message = {"type": "websocket.receive", "text": data} if data.__class__ is str \
            else {"type": "websocket.receive", "bytes": data}
        queue = self.queue
        queue.append(message)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return len(queue) >= self.max_queue

    def backlog(self) -> int:
        return len(self.queue)

    def on_close(self, code: int, reason: str) -> None:
        if self.disconnect is not None:
            return
        self.disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------ the app's callables
    async def receive(self) -> dict:
        queue = self.queue
        if not queue:
            if self.disconnect is not None:
                return self.disconnect
            waiter = self.waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self.waiter = None
            if not queue:
                return self.disconnect or {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        message = queue.popleft()
        conn = self.conn
        if conn is not None and conn.paused and len(queue) < self.max_queue:
            conn.resume()
        return message

    async def send(self, message: dict) -> None:
        mtype = message["type"]
        if mtype == "websocket.send" and self.status == _OPEN:
            conn = self.conn
            if conn.lost or self.disconnect is not None:
                raise ClientDisconnected("WebSocket closed")
            data = message.get("bytes")
            if data is not None:
                conn.send_message(data, False)
            else:
                text = message.get("text")
                if text is None:
                    raise RuntimeError("websocket.send needs 'bytes' or 'text'")
                conn.send_message(text.encode("utf-8"), True)
            if conn.write_paused:
                await conn.drain()
                if conn.lost or self.disconnect is not None:
                    raise ClientDisconnected("WebSocket closed")
            return
        status = self.status
        if status == _HANDSHAKE:
            if self.disconnect is not None and mtype != "websocket.http.response.start":
                raise ClientDisconnected("client went away during the handshake")
            if mtype == "websocket.accept":
                self._accept(message)
            elif mtype == "websocket.close":
                self.status = _DONE
                self._log_access(403)
                self._write_simple(403)
                self.on_close(message.get("code") or 1000, message.get("reason") or "")
            elif mtype == "websocket.http.response.start":
                self._response_start(message)
            else:
                raise RuntimeError(f"unexpected ASGI message {mtype!r} before the WebSocket "
                                   "was accepted (expected websocket.accept, websocket.close or "
                                   "websocket.http.response.start)")
            return
        if status == _OPEN:
            if mtype == "websocket.close":
                conn = self.conn
                code = message.get("code")
                code = 1000 if code is None else code
                reason = message.get("reason") or ""
                self.status = _CLOSED_BY_APP
                if conn.is_open and self.disconnect is None:
                    conn.close(code, reason)
                self.on_close(code, reason)
                return
            if mtype == "websocket.send":
                raise ClientDisconnected("WebSocket closed")
            raise RuntimeError(f"unexpected ASGI message {mtype!r} on an open WebSocket")
        if status == _RESPONSE and mtype == "websocket.http.response.body":
            await self._response_body(message)
            return
        if status == _CLOSED_BY_APP and mtype in ("websocket.send", "websocket.close"):
            raise ClientDisconnected("WebSocket already closed")
        raise RuntimeError(f"unexpected ASGI message {mtype!r} "
                           f"({'after the response' if status == _DONE else 'in this state'})")

    # ------------------------------------------------ accept, refuse, respond
    def _accept(self, message: dict) -> None:
        state = self.state
        transport = self.transport
        settings = self.settings
        head = self.handshake.response_head(message.get("subprotocol"),
                                            list(message.get("headers") or ()),
                                            state.default_headers)
        self.status = _OPEN
        conn = self.conn = WSConnection(state, transport, self, self.handshake.extensions,
                                        settings[0], settings[2], settings[3], self.client)
        self.handshake = None  # type: ignore[assignment]  # free what only the 101 needed
        transport.write(head)
        state.connections.discard(self)
        transport.set_protocol(conn)
        pending, self.pending = self.pending, b""
        conn.start(pending)
        if not transport.is_closing():
            try:
                transport.resume_reading()
            except RuntimeError:  # pragma: no cover
                pass
        if self.shutdown_asked or state.shutting_down:
            conn.shutdown()
        if state.access_log:
            self._log_access(101)

    def _log_access(self, status: int) -> None:
        if self.state.access_log:
            access_logger.info('%s - "WebSocket %s" %d', _client(self.scope), _path(self.scope), status)

    def _write_simple(self, status: int) -> None:
        body = reason_phrase(status).encode()
        transport = self.transport
        if not transport.is_closing():
            transport.write(b"%bcontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                            b"connection: close\r\n%b\r\n%b"
                            % (STATUS_LINES.get(status) or status_line(status), len(body),
                               self.state.default_headers, body))
            transport.close()

    def _response_start(self, message: dict) -> None:
        status = message["status"]
        if type(status) is not int or not 200 <= status <= 999:
            raise RuntimeError(f"invalid status {status!r} for websocket.http.response.start")
        self.status = _RESPONSE
        self.response_head = [status, list(message.get("headers") or ())]
        self._log_access(status)

    async def _response_body(self, message: dict) -> None:
        body = message.get("body", b"")
        more = message.get("more_body", False)
        transport = self.transport
        if self.disconnect is not None or transport.is_closing():
            raise ClientDisconnected("client went away")
        if self.response_head is not None:
            status, headers = self.response_head
            self.response_head = None
            parts = [STATUS_LINES.get(status) or status_line(status)]
            names = set()
            length = None
            for name, value in headers:
                name = bytes(name).lower()
                value = bytes(value)
                check_header(name, value)
                if name == b"transfer-encoding" or name == b"connection":
                    continue  # we frame the body and close after it
                if name == b"content-length":
                    length = int(value)
                names.add(name)
                parts += [name, b": ", value, b"\r\n"]
            if length is None:
                if more:
                    self.chunked = True
                    parts.append(b"transfer-encoding: chunked\r\n")
                else:
                    parts.append(b"content-length: %d\r\n" % len(body))
            else:
                self.remaining = length
            parts.append(b"connection: close\r\n")
            parts.append(filter_defaults(self.state.default_headers, names))
            parts.append(b"\r\n")
            transport.write(b"".join(parts))
        if self.chunked:
            if body:
                transport.write(b"%x\r\n%b\r\n" % (len(body), body))
            if not more:
                transport.write(b"0\r\n\r\n")
        else:
            if self.remaining is not None:
                self.remaining -= len(body)
                if self.remaining < 0:
                    transport.abort()
                    raise RuntimeError("response body longer than its Content-Length")
            if body:
                transport.write(body)
        if not more:
            self.status = _DONE
            self.on_close(1000, "")
            transport.close()
        elif self.drain_waiter is not None:
            await self.drain_waiter

    # ------------------------------------------------ the task
    async def run(self, app: Callable) -> None:
        try:
            result = await app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            logger.debug("WebSocket client went away")
        except asyncio.CancelledError:
            self._abandon(1001)
        except BaseException as exc:  # noqa: BLE001 - the app's errors must not kill the worker
            logger.error("Exception in ASGI application", exc_info=exc)
            self._abandon(1011)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            if result is not None:
                logger.error("ASGI callable returned %r instead of None", result)
            if self.status == _HANDSHAKE:
                logger.error("ASGI app returned without accepting or refusing the WebSocket")
                self._abandon(1000)
            elif self.status == _OPEN:
                conn = self.conn
                if conn.is_open and self.disconnect is None:
                    conn.close(1000, "")  # the app is done with it (§7.1.2)
                self.on_close(1000, "")
            elif self.status == _RESPONSE:
                logger.error("ASGI app returned without completing its HTTP response")
                self.transport.abort()
        finally:
            self.app_done = True

    def _abandon(self, code: int) -> None:
        """The app failed: 500 before any answer, close ``code`` once open, abort midway."""
        status = self.status
        self.status = _DONE
        if status == _HANDSHAKE:
            self._write_simple(500)
        elif status == _OPEN:
            conn = self.conn
            if conn.is_open and self.disconnect is None:
                conn.close(code, "")
        elif status == _RESPONSE:
            self.transport.abort()
        self.on_close(code if status == _OPEN else 1006, "")


def _client(scope: dict) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


def _path(scope: dict) -> str:
    path = quote(scope["path"])
    query = scope["query_string"]
    return f"{path}?{query.decode('ascii', 'replace')}" if query else path
