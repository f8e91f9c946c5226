"""Apps for the uwsgi wire-protocol tests (tests/e2e/test_uwsgi_socket.py).

``wsgi`` (PEP 3333, wrapped in wsgiref's validator so a breach fails the request) and
``asgi`` (ASGI 3) answer the same paths:

/            200 'hello' with a Content-Length
/info        the request as JSON: the ASGI scope's facts, or the WSGI environ's
/echo        the request body back
/upload      reads the body in blocks: "<byte count> <sha256>"
/stream      three blocks, no Content-Length (the response is close-delimited)
/head        200 with Content-Length 5 and a body (HEAD must not send it)

``asgi`` also accepts WebSockets on any path: it echoes each text message, prefixed
with the scope's client host and http_version ("127.0.0.9 1.1: hi").

``asgi_facts`` and ``wsgi_facts`` answer every path with the request's facts as JSON (the
scope's path, raw_path, root_path, scheme, http_version; the environ's strings): for the
mount-point (--root-path) tests, where the path the app sees is what is checked.
"""
from __future__ import annotations

import hashlib
import json
from wsgiref.validate import validator

_BLOCKS = (b"one,", b"two,", b"three")


def _wsgi(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/info":
        facts = {key: value for key, value in environ.items() if isinstance(value, str)}
        facts["wsgi.url_scheme"] = environ["wsgi.url_scheme"]
        body = json.dumps(facts).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/echo":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/upload":
        stream = environ["wsgi.input"]
        digest, count = hashlib.sha256(), 0
        while True:
            block = stream.read(65536)
            if not block:
                break
            digest.update(block)
            count += len(block)
        body = f"{count} {digest.hexdigest()}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter(_BLOCKS)
    if path == "/head":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hello"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


wsgi = validator(_wsgi)


async def _read_body(receive):
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _send(send, status, body, headers=(), more=False):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), *headers]})
    await send({"type": "http.response.body", "body": body, "more_body": more})


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await _websocket(scope, receive, send)
        return
    path = scope["path"]
    if path == "/info":
        facts = {key: scope[key] for key in ("http_version", "method", "scheme", "path",
                                             "root_path")}
        facts["raw_path"] = scope["raw_path"].decode("latin-1")
        facts["query_string"] = scope["query_string"].decode("latin-1")
        facts["client"] = list(scope["client"]) if scope["client"] else None
        facts["server"] = list(scope["server"]) if scope["server"] else None
        facts["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
        await _send(send, 200, json.dumps(facts).encode())
        return
    if path == "/echo":
        await _send(send, 200, await _read_body(receive))
        return
    if path == "/upload":
        digest, count = hashlib.sha256(), 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            block = message.get("body", b"")
            digest.update(block)
            count += len(block)
            if not message.get("more_body"):
                break
        await _send(send, 200, f"{count} {digest.hexdigest()}".encode())
        return
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for index, block in enumerate(_BLOCKS):
            await send({"type": "http.response.body", "body": block,
                        "more_body": index < len(_BLOCKS) - 1})
        return
    if path == "/head":
        await _send(send, 200, b"hello", [(b"content-length", b"5")])
        return
    await _send(send, 200, b"hello")


async def _websocket(scope, receive, send):
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    prefix = f"{scope['client'][0] if scope['client'] else '-'} {scope['http_version']}: "
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": prefix + message["text"]})


# The request as the app sees it, on every path (for mount-point tests: --root-path).
async def asgi_facts(scope, receive, send):
    if scope["type"] != "http":
        return
    facts = {key: scope[key] for key in ("path", "root_path", "scheme", "http_version")}
    facts["raw_path"] = scope["raw_path"].decode("latin-1")
    await _send(send, 200, json.dumps(facts).encode())


def _wsgi_facts(environ, start_response):
    facts = {key: value for key, value in environ.items() if isinstance(value, str)}
    facts["wsgi.url_scheme"] = environ["wsgi.url_scheme"]
    body = json.dumps(facts).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


wsgi_facts = validator(_wsgi_facts)
