"""WebSocket test app: behaviour chosen by the path.

/echo            accept, echo every message (text as text, bytes as bytes); on disconnect
                 record the code/reason (readable via /last-close over HTTP)
/subproto        accept with the first offered subprotocol and a custom header
/scope           accept, send the scope as JSON text, then close 1000
/close-before    websocket.close before accept (→ 403)
/deny            websocket.http.response: 401 with own headers and a streamed body
/deny-cl         websocket.http.response: 404 with Content-Length and one body message
/deny-big        websocket.http.response: 403 with a 12.5 MiB body in 200 chunks
/wrong-subprotocol  accept with a subprotocol the client did not offer
/close-reason    accept, then close with 4001 "custom reason"
/error-before    raise before accept (→ 500)
/error-after     accept, raise (→ close 1011)
/return          accept, return (→ close 1000)
/slow            accept, never read (backpressure: the queue fills, reading pauses)
/flood?n=N&size=S  accept, send N binary messages of S bytes as fast as send allows; then
                 a text message "done N" and close
/wait-close      accept, wait for disconnect, record it
/last-close      (HTTP) the last recorded disconnect as JSON
/                (HTTP) an HTML page whose script echoes over a WebSocket (for Chromium)
"""
import asyncio
import json
from urllib.parse import parse_qs

from plain_lifespan import handle_lifespan

LAST_CLOSE = {}

PAGE = b"""<!doctype html><html><head><title>ws</title></head><body><div id="out">pending</div>
<script>
const out = document.getElementById("out");
const ws = new WebSocket("ws://" + location.host + "/echo");
const got = [];
ws.binaryType = "arraybuffer";
ws.onopen = () => { ws.send("hello from chromium"); ws.send(new Uint8Array([1, 2, 3])); };
ws.onmessage = (e) => {
  got.push(typeof e.data === "string" ? e.data : "bytes:" + new Uint8Array(e.data).join(","));
  if (got.length === 2) {
    const result = "RESULT " + got.join("|") + " ext=" + ws.extensions;
    out.textContent = result;
    ws.close(1000, "bye");
    fetch("/report?r=" + encodeURIComponent(result));  // the test reads it from the log
  }
};
ws.onerror = () => { out.textContent = "ERROR"; };
</script></body></html>"""


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


async def http(scope, receive, send):
    if scope["path"] == "/report":
        report = parse_qs(scope["query_string"].decode()).get("r", [""])[0]
        print(f"PAGE REPORT {report}", flush=True)
        body = b"ok"
        ctype = b"text/plain"
    elif scope["path"] == "/last-close":
        body = json.dumps(LAST_CLOSE).encode()
        ctype = b"application/json"
    else:
        body = PAGE
        ctype = b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    if scope["type"] == "http":
        await http(scope, receive, send)
        return
    path = scope["path"][len(scope["root_path"]):]
    query = parse_qs(scope["query_string"].decode())
    message = await receive()
    assert message["type"] == "websocket.connect", message
    if path == "/close-before":
        await send({"type": "websocket.close"})
        return
    if path == "/deny":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"x-denied", b"yes"), (b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"not ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"allowed"})
        return
    if path == "/deny-big":
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        for i in range(200):
            await send({"type": "websocket.http.response.body", "body": bytes([65 + i % 26]) * 65536,
                        "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b""})
        return
    if path == "/wrong-subprotocol":
        await send({"type": "websocket.accept", "subprotocol": "never-offered"})
        await send({"type": "websocket.send", "text": "accepted"})
        await receive()
        return
    if path == "/deny-cl":
        await send({"type": "websocket.http.response.start", "status": 404,
                    "headers": [(b"content-length", b"7")]})
        await send({"type": "websocket.http.response.body", "body": b"no such"})
        return
    if path == "/error-before":
        raise RuntimeError("boom before accept")
    if path == "/subproto":
        offered = scope["subprotocols"]
        await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None,
                    "headers": [(b"x-custom", b"hello")]})
        await send({"type": "websocket.send", "text": json.dumps(offered)})
        await receive()
        return
    await send({"type": "websocket.accept"})
    if path == "/scope":
        await send({"type": "websocket.send", "text": json.dumps(_jsonable(
            {k: v for k, v in scope.items() if k != "state"}))})
        await send({"type": "websocket.close", "code": 1000})
        return
    if path == "/close-reason":
        await send({"type": "websocket.close", "code": 4001, "reason": "custom reason"})
        message = await receive()
        LAST_CLOSE.clear()
        LAST_CLOSE.update(message)
        return
    if path == "/error-after":
        raise RuntimeError("boom after accept")
    if path == "/return":
        return
    if path == "/slow":
        await asyncio.sleep(3600)
        return
    if path == "/flood":
        n = int(query.get("n", ["100"])[0])
        size = int(query.get("size", ["1024"])[0])
        payload = b"x" * size
        for _ in range(n):
            await send({"type": "websocket.send", "bytes": payload})
        await send({"type": "websocket.send", "text": f"done {n}"})
        await send({"type": "websocket.close", "code": 1000})
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            LAST_CLOSE.clear()
            LAST_CLOSE.update(message)
            return
        if path == "/wait-close":
            continue
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
