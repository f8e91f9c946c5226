"""Echo app for the request corpus and the fuzzer.

Every request is answered 200 with JSON describing exactly what the app saw::

    {"call": N, "method": ..., "path": ..., "raw_path": ..., "query_string": ...,
     "http_version": ..., "headers": [[name, value], ...], "body": ...}

Bytes are shown as latin-1 strings, so every byte value survives the round trip.
``N`` counts the requests the app received whole, body included (this one too).
``GET /__calls`` answers ``{"calls": N, "started": S}`` without counting itself, where ``S``
counts every call of the app, also those whose body then broke off (http.disconnect). A
test reads both before and after sending a request that must be refused: a request refused
in its head must change neither; one refused in its body may have started the app (ASGI
streams bodies) but must never be received whole.
"""
import json

from plain_lifespan import handle_lifespan

CALLS = 0
STARTED = 0


def _text(value: bytes) -> str:
    return value.decode("latin-1")


async def app(scope, receive, send):
    global CALLS, STARTED
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/__calls" and scope["method"] == "GET":
        await _reply(send, {"calls": CALLS, "started": STARTED})
        return
    STARTED += 1
    body = b""
    disconnected = False
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected = True
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    if disconnected:
        return
    CALLS += 1
    call = CALLS
    await _reply(send, {
        "call": call,
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": _text(scope.get("raw_path") or b""),
        "query_string": _text(scope["query_string"]),
        "http_version": scope["http_version"],
        "headers": [[_text(n), _text(v)] for n, v in scope["headers"]],
        "body": _text(body),
    })


async def _reply(send, data):
    payload = json.dumps(data).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
