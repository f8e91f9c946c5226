"""One WebSocket's ASGI cycle (ASGI websocket spec 2.5, with ``websocket.http.response``).

Theory of operation. The wire owns the handshake (``http/ws_h1.py`` on HTTP/1.1): it checks
the request, refuses a bad one itself, and hands us a ``WSStream`` with the request's scope.
A ``WebSocketCycle`` runs the app in a task (in ``state.tasks``, so the graceful drain waits
for it; counted in ``state.active``, so ``--limit-concurrency`` covers WebSockets) and turns
its messages into the stream's operations; nothing is sent until the app answers
``websocket.connect``:
- ``websocket.accept``   → ``stream.accept`` (the 101 on HTTP/1.1); from then on a
  ``WSConnection`` (http/ws.py) carries messages and feeds incoming ones back here;
- ``websocket.close``    → ``stream.refuse(403)`` (the spec's answer to a refusal);
- ``websocket.http.response.start/body`` → ``stream.deny`` / ``deny_body``: the app's own
  HTTP response, then the stream ends;
- an exception or a return before any of these → ``stream.refuse(500)``.
Whenever the app ends, the socket is closed (1000 on a return, 1011 on an error).

Incoming messages wait in a deque bounded by ``--ws-max-queue`` messages and, for large
ones, by ``--ws-max-size`` bytes: when full, the wire stops reading (backpressure) until
``receive`` takes from it. ``send`` waits for the client's buffer to drain, so a slow
reader slows the app, never grows memory.

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
from ..http.ws import WSConnection, WSStream, fit_reason, sendable_close_code
from ..http.ws_h1 import upgrade
from ..logging import ABORTED, CLIENT_GONE, request_clock

__all__ = ["install_websocket", "WebSocketCycle", "SPEC_VERSION"]

logger = logging.getLogger("gannet.error")
_REFUSAL_BYTES = {403: len(b"Forbidden"), 500: len(b"Internal Server Error")}  # refusal()'s bodies

# 2.5: websocket.disconnect carries ``reason`` (2.3: in websocket.close; 2.4: send raises
# an OSError once the socket is closed) — all of which Gannet does.
SPEC_VERSION = "2.5"
_CONNECT = {"type": "websocket.connect"}
# Messages larger than this count against the queue's byte bound (--ws-max-size).
_BIG = 65536

# Cycle states
_HANDSHAKE, _OPEN, _CLOSED_BY_APP, _RESPONSE, _DONE = range(5)


def install_websocket(state: Any, config: Any) -> None:
    """Set ``state.ws_upgrade`` to the WebSocket hand-over h1 calls."""
    settings = (config.ws_max_size, config.ws_max_queue, config.ws_ping_interval,
                config.ws_ping_timeout, bool(config.ws_per_message_deflate))

    def start_app(stream: WSStream, scope: dict, subprotocols: list) -> None:
        WebSocketCycle(state, stream, scope, subprotocols, settings).start()

    def ws_upgrade(h1conn: Any, scope: dict, trailing: bytes) -> None:
        upgrade(state, settings, h1conn, scope, trailing, start_app)

    state.ws_upgrade = ws_upgrade


class WebSocketCycle:
    """The ASGI side of one WebSocket: message checks, the state machine, the queue."""

    __slots__ = (
        "state", "loop", "stream", "scope", "queue", "max_queue", "max_bytes", "big",
        "waiter", "waiters", "status", "conn", "disconnect", "response_start", "started_at",
        "denial_status", "denial_sent", "__weakref__",
    )

    def __init__(self, state: Any, stream: WSStream, scope: dict, subprotocols: list,
                 settings: tuple) -> None:
        self.state = state
        self.loop = state.loop
        self.stream: WSStream | None = stream  # until the app's answer
        self.queue: deque = deque()
        self.max_queue = settings[1]
        self.max_bytes = settings[0]
        self.big = 0  # bytes of queued messages over _BIG
        self.waiter: asyncio.Future | None = None
        self.waiters: list[asyncio.Future] | None = None  # more receive() calls at once
        self.status = _HANDSHAKE
        # Set by _accept; only read once status is _OPEN (typed for that case).
        self.conn: WSConnection = None  # type: ignore[assignment]
        self.disconnect: dict | None = None  # set once the socket is gone or closing
        self.response_start: tuple | None = None
        self.started_at = request_clock() if state.access_log else 0.0
        self.denial_status = 0  # the status of a websocket.http.response, and its body bytes
        self.denial_sent = 0
        self.scope = {
            "type": "websocket",
            # Fresh dicts per socket: an app that mutates them changes no other scope.
            "asgi": {"version": "3.0", "spec_version": SPEC_VERSION},
            "http_version": scope["http_version"],
            "scheme": "wss" if scope["scheme"] == "https" else "ws",
            "server": scope["server"],
            "client": scope["client"],
            "root_path": scope["root_path"],
            "path": scope["path"],
            "raw_path": scope["raw_path"],
            "query_string": scope["query_string"],
            "headers": scope["headers"],
            "subprotocols": subprotocols,
            "state": scope["state"],
            "extensions": {"websocket.http.response": {}},
        }
        tls = scope["extensions"].get("tls")
        if tls is not None:
            # Gannet's own TLS (http/tls_info.py): the fresh dict h1 made for this request.
            self.scope["extensions"]["tls"] = tls
        self.queue.append(_CONNECT)
        stream.handler = self

    def start(self) -> None:
        state = self.state
        state.active += 1  # released when the app ends (run)
        task = self.loop.create_task(self.run(state.app))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)

    # ------------------------------------------------ fed by the wire
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
            if self.waiters is not None:
                self._wake_others()
        if len(data) > _BIG:
            self.big += len(data)
            return self.big >= self.max_bytes or len(queue) >= self.max_queue
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
            if self.waiters is not None:
                self._wake_others()

    def _wake_others(self) -> None:
        waiters, self.waiters = self.waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------ the app's callables
    async def receive(self) -> dict:
        queue = self.queue
        while not queue:
            if self.disconnect is not None:
                return self.disconnect
            # Several receive() calls may wait at once: each gets its own future, and every
            # one is woken by a message or the disconnect (then looks again).
            waiter = self.loop.create_future()
            if self.waiter is None:
                self.waiter = waiter
            else:
                if self.waiters is None:
                    self.waiters = []
                self.waiters.append(waiter)
            try:
                await waiter
            finally:
                # Common case: the wake-up already cleared self.waiter; nothing to forget.
                if self.waiter is waiter or self.waiters is not None:
                    self._forget(waiter)
        message = queue.popleft()
        if self.big:
            data = message.get("bytes") or message.get("text") or b""
            if len(data) > _BIG:
                self.big -= len(data)
        conn = self.conn
        if conn is not None and conn.paused and len(queue) < self.max_queue and self.big < self.max_bytes:
            conn.resume()
        return message

    def _forget(self, waiter: asyncio.Future) -> None:
        """A receive() is done waiting (woken or cancelled): keep the others reachable."""
        if self.waiter is waiter:
            waiters = self.waiters
            self.waiter = waiters.pop(0) if waiters else None
            if not waiters:
                self.waiters = None
        elif self.waiters is not None and waiter in self.waiters:
            self.waiters.remove(waiter)
            if not self.waiters:
                self.waiters = None

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
                self._log_access(403, _REFUSAL_BYTES[403])
                stream, self.stream = self.stream, None
                stream.refuse(403)  # type: ignore[union-attr]
                code = message.get("code")
                self.on_close(code if type(code) is int else 1000, "")
            elif mtype == "websocket.http.response.start":
                self._response_start(message)
            else:
                raise RuntimeError(f"unexpected ASGI message {mtype!r} before the WebSocket "
                                   "was accepted (expected websocket.accept, websocket.close or "
                                   "websocket.http.response.start)")
            return
        if status == _OPEN:
            if mtype == "websocket.close":
                code, reason = _close_args(message)
                conn = self.conn
                if conn.is_open and self.disconnect is None:
                    conn.close(code, reason)
                self.status = _CLOSED_BY_APP  # only once the Close is on its way
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

    # ------------------------------------------------ accept, respond
    def _accept(self, message: dict) -> None:
        stream = self.stream
        conn = stream.accept(message.get("subprotocol"),  # type: ignore[union-attr]
                             list(message.get("headers") or ()))
        self.conn = conn
        self.stream = None
        self.status = _OPEN
        self._log_access(101, 0)

    def _log_access(self, status: int, sent: int, note: str = "") -> None:
        """The handshake's one access line, through the same AccessLogger and format as
        HTTP: the Upgrade request's line, then 101, a refusal or the app's own denial."""
        state = self.state
        if state.access_log:
            state.access_logger.log_answer({**self.scope, "method": "GET"}, status, sent,
                                           self.started_at, note)

    def _response_start(self, message: dict) -> None:
        status = message["status"]
        if type(status) is not int or not 200 <= status <= 999:
            raise RuntimeError(f"invalid status {status!r} for websocket.http.response.start")
        self.status = _RESPONSE
        self.response_start = (status, list(message.get("headers") or ()))
        self.denial_status = status

    async def _response_body(self, message: dict) -> None:
        body = message.get("body", b"")
        more = message.get("more_body", False)
        stream = self.stream
        if self.disconnect is not None or stream is None:
            raise ClientDisconnected("client went away")
        start = self.response_start
        if start is not None:
            self.response_start = None
            stream.deny(start[0], start[1], body, more)
        else:
            stream.deny_body(body, more)
        self.denial_sent += len(body)
        if not more:
            self.status = _DONE
            self.stream = None
            self._log_access(self.denial_status, self.denial_sent)
            self.on_close(1000, "")
        else:
            await stream.drain()

    # ------------------------------------------------ the task
    async def run(self, app: Callable) -> None:
        code = 1011
        try:
            result = await app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            logger.debug("WebSocket client %s went away", _client(self.scope))
        except asyncio.CancelledError:
            code = 1001  # the graceful drain ran out of time
        except BaseException as exc:  # noqa: BLE001 - the app's errors must not kill the worker
            # SystemExit and KeyboardInterrupt too: an app error, never the server's exit.
            if _caused_by_client(exc):
                logger.debug("WebSocket client %s went away; the app ended with %r",
                             _client(self.scope), exc)
            else:
                logger.error("Exception in ASGI application", exc_info=exc)
        else:
            code = 1000
            if result is not None:
                logger.error("ASGI callable returned %r instead of None", result)
            if self.status == _HANDSHAKE:
                logger.error("ASGI app returned without accepting or refusing the WebSocket")
            elif self.status == _RESPONSE:
                logger.error("ASGI app returned without completing its HTTP response")
        finally:
            self.state.active -= 1
            self._end(code)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s - WebSocket %s closed", _client(self.scope), _path(self.scope))

    def _end(self, code: int) -> None:
        """The app is done: whatever the state, the socket gets closed (500 before any
        answer, an abort midway through a response, a Close with ``code`` once open)."""
        status = self.status
        self.status = _DONE
        stream = self.stream
        if stream is not None:
            self.stream = None
            if status == _HANDSHAKE:
                if self.disconnect is not None:
                    self._log_access(0, 0, CLIENT_GONE)
                else:
                    self._log_access(500, _REFUSAL_BYTES[500])
                stream.refuse(500)
            else:
                self._log_access(self.denial_status, self.denial_sent, ABORTED)
                stream.abort()
        conn = self.conn
        if conn is not None and conn.is_open:
            conn.close(code, "")  # the app is done with it (§7.1.2)
        self.on_close(code if conn is not None else 1006, "")


def _close_args(message: dict) -> tuple[int, str]:
    """The code and reason of a ``websocket.close``, made sendable: any reason string is
    allowed by the spec (cut to fit, §5.5); a code RFC 6455 §7.4 reserves becomes 1011."""
    code = message.get("code")
    if code is None:
        code = 1000
    elif not sendable_close_code(code):
        logger.warning("websocket.close with code %r, which may not be sent (RFC 6455 §7.4); "
                       "closing with 1011", code)
        code = 1011
    reason = message.get("reason")
    if reason is None:
        reason = ""
    elif reason.__class__ is not str:
        logger.warning("websocket.close with a reason that is not a string (%s); sent without",
                       type(reason).__name__)
        reason = ""
    else:
        reason = fit_reason(reason)
    return code, reason


def _caused_by_client(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a send() to a client that had gone (frameworks re-raise
    it as their own, e.g. Starlette's WebSocketDisconnect from an OSError)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ClientDisconnected):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _client(scope: dict) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


def _path(scope: dict) -> str:
    path = quote(scope["path"])
    query = scope["query_string"]
    return f"{path}?{query.decode('ascii', 'replace')}" if query else path
