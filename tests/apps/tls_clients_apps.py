"""Apps for the TLS tests (tests/tls/).

asgi_app (ASGI 3):
  GET  /            "hello over tls" (text/plain)
  POST /echo        the request body back (application/octet-stream)
  GET  /scope       JSON: the scope's scheme, client, server, http_version, path, and the
                    "tls" extension if any
  GET  /big?n=N     N bytes of "x" (for the close_notify test)
  GET  /pid         the worker's process id
  GET  /page        HTML whose script opens wss://<host>/ws, echoes a message, and reports
                    the outcome with GET /report?r=... (printed "PAGE REPORT ...")
  GET  /report      prints "PAGE REPORT <r>" (the test reads the server's log)
  GET  /internals   JSON, for the leak tests (after gc.collect() and glibc's malloc_trim(0),
                    so that RSS counts what is held, not what malloc keeps for reuse):
                    "connections" (the sum of
                    len(state.connections) over the process's ServerState objects; this
                    request's own connection is one), "gates" (TLSGate objects alive),
                    "tasks" (asyncio tasks), "ssl_protocols" (the loop's SSLProtocol objects)
  WS   /ws          accept; first a JSON text message with the scope's scheme; then echo
wsgi_app (WSGI):
  any path          JSON: wsgi.url_scheme, HTTPS, REMOTE_ADDR, REMOTE_PORT, SERVER_PORT,
                    the request method and body length
"""
import asyncio
import gc
import json
import os
from urllib.parse import parse_qs

from plain_lifespan import handle_lifespan

PAGE = b"""<!doctype html><html><head><title>pending</title></head><body><div id="out">pending</div>
<script>
const out = document.getElementById("out");
function report(result) {
  document.title = result;
  out.textContent = result;
  fetch("/report?r=" + encodeURIComponent(result));  // the test reads it from the log
}
let ws;
try {
  ws = new WebSocket("wss://" + location.host + "/ws");
} catch (e) {
  report("ERROR constructing: " + e);
}
const got = [];
ws.onopen = () => { ws.send("hello from chromium over wss"); };
ws.onmessage = (e) => {
  got.push(e.data);
  if (got.length === 2) {  // the scope message, then the echo
    const scheme = JSON.parse(got[0]).scheme;
    report("RESULT page=" + location.protocol + " scheme=" + scheme + " echo=" + got[1]);
    ws.close(1000, "bye");
  }
};
ws.onerror = () => { report("ERROR websocket"); };
</script></body></html>"""


def _text(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [_text(v) for v in value]
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    return value


async def _read_body(receive):
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return bytes(body)
        body += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(body)


async def _respond(send, body, ctype=b"text/plain"):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    if scope["type"] == "websocket":
        await _websocket(scope, receive, send)
        return
    path = scope["path"]
    body = await _read_body(receive)
    if path == "/echo":
        await _respond(send, body, b"application/octet-stream")
    elif path == "/scope":
        info = {"scheme": scope["scheme"], "client": scope.get("client"),
                "server": scope.get("server"), "http_version": scope["http_version"],
                "path": path, "tls": scope.get("extensions", {}).get("tls")}
        await _respond(send, json.dumps(_text(info)).encode(), b"application/json")
    elif path == "/big":
        n = int(parse_qs(scope["query_string"].decode()).get("n", ["1000"])[0])
        await _respond(send, b"x" * n)
    elif path == "/pid":
        await _respond(send, str(os.getpid()).encode())
    elif path == "/internals":
        await _respond(send, json.dumps(_internals()).encode(), b"application/json")
    elif path == "/page":
        await _respond(send, PAGE, b"text/html; charset=utf-8")
    elif path == "/report":
        report = parse_qs(scope["query_string"].decode()).get("r", [""])[0]
        print(f"PAGE REPORT {report}", flush=True)
        await _respond(send, b"ok")
    else:
        await _respond(send, b"hello over tls")


def _malloc_trim():
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _internals():
    gc.collect()
    _malloc_trim()
    counts = {"connections": 0, "gates": 0, "ssl_protocols": 0}
    for obj in gc.get_objects():
        kind = type(obj)
        if kind.__name__ == "ServerState" and kind.__module__.startswith("gannet."):
            counts["connections"] += len(obj.connections)
        elif kind.__name__ == "TLSGate":
            counts["gates"] += 1
        elif kind.__name__ == "SSLProtocol":
            counts["ssl_protocols"] += 1
    counts["tasks"] = len(asyncio.all_tasks())
    return counts


async def _websocket(scope, receive, send):
    message = await receive()
    assert message["type"] == "websocket.connect", message
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(
        {"scheme": scope["scheme"], "client": _text(scope.get("client"))})})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


def wsgi_app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    info = {key: environ.get(key) for key in ("wsgi.url_scheme", "HTTPS", "REMOTE_ADDR",
                                               "REMOTE_PORT", "SERVER_PORT", "REQUEST_METHOD")}
    info["body_length"] = len(body)
    data = json.dumps(info).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]
