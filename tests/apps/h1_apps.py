"""ASGI app for the HTTP/1.1 and ASGI e2e tests (tests/e2e/test_h1_protocol.py & co).

Behaviour is chosen by the request path (after root_path). Query parameters steer some
routes; every route that the tests wait on prints a marker line (the server's stdout is
the log the tests read with ``wait_for_log``).

/                    200 'hello' (Content-Length)
/scope...            any unknown path: the scope as JSON (bytes shown as latin-1 strings)
/echo                echoes the request body
/body-info           reads the body; JSON {messages, total, sha256, more_body flags}
/stream              streamed in 3 parts, no Content-Length
/cl                  Content-Length set by the app, body in 3 parts
/own-server          sets its own 'server' header
/expect-deny         401 without reading the body
/expect-gated?f=PATH waits (bounded) until PATH exists, then reads and echoes the body
/wait-disconnect?t=T reads until http.disconnect, then prints 'h1-disconnect T'
/state-mutate        returns scope['state'] as JSON, then mutates it
/trailers            trailers=True, streamed body, then http.response.trailers
/trailers-oneshot    trailers=True, whole body in one message, then trailers
/pathsend?p=PATH     http.response.pathsend
/zerocopy?p=&o=&c=   http.response.zerocopysend with offset/count (omitted when absent)
/zerocopy-parts?p=   two zerocopysend parts with more_body, then an empty body
/body-then-zerocopy?p= 16 MiB body block, then the file with zerocopysend
/early-hint          start, http.response.early_hint with two links, then the 200's body
/early-hint-bad      an early hint link containing CR/LF
/trailers-bad        a trailer value containing CR/LF
/error-before        raises before http.response.start
/error-after         raises after the first body part went out
/noresponse          returns without responding
/status?s=N          status N with a body (for 204/304: the body must not be sent)
/cl-short, /cl-long  Content-Length 10 with 5 bytes / Content-Length 3 with 5 bytes
/body-before-start   sends http.response.body first
/start-twice         sends http.response.start twice
/crlf-value?k=KIND   a header value containing CR/LF/NUL (KIND: crlf, lf, cr, nul)
/head-shape?k=KIND   one header list in another shape (KIND: tuple, lists, iter, dup-cl,
                     conflict-cl, shared: one module-level list whose value changes per call)
/never-read          never calls receive(); prints 'h1-never-read started'; waits 20 s
/big?mib=N           N MiB streamed in 1 MiB parts; prints progress and 'h1-big done'
"""
import asyncio
import hashlib
import json
import os
from urllib.parse import parse_qs


def say(text):
    print(text, flush=True)


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


async def _read_body(receive):
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def _respond(send, status, body, content_type=b"text/plain", extra=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), *extra]})
    await send({"type": "http.response.body", "body": body})


def _query(scope):
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}


async def _lifespan(scope, receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["greeting"] = "from-lifespan"
            scope["state"]["number"] = 1
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


_SHARED_HEADERS = [(b"content-type", b"text/plain"), (b"x-call", b"0")]
_SHARED_CALLS = [0]


async def _head_shape(send, kind):
    """The same response head in the shapes an app may pass it in."""
    body = b"shape " + kind.encode()
    length = str(len(body)).encode()
    if kind == "tuple":
        headers = ((b"content-type", b"text/plain"), (b"content-length", length))
    elif kind == "lists":
        headers = [[b"content-type", b"text/plain"], [b"content-length", length]]
    elif kind == "iter":
        headers = iter([(b"content-type", b"text/plain"), (b"content-length", length)])
    elif kind == "dup-cl":
        headers = [(b"content-length", length), (b"content-type", b"text/plain"),
                   (b"content-length", length)]
    elif kind == "conflict-cl":
        headers = [(b"content-length", length), (b"content-length", b"1")]
    else:  # shared: the app mutates one list in place between responses
        _SHARED_CALLS[0] += 1
        _SHARED_HEADERS[1] = (b"x-call", str(_SHARED_CALLS[0]).encode())
        headers = _SHARED_HEADERS
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
        return
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    query = _query(scope)

    if path == "/":
        await _respond(send, 200, b"hello")
    elif path == "/echo":
        body = await _read_body(receive)
        await _respond(send, 200, body or b"")
    elif path == "/body-info":
        messages = 0
        total = 0
        flags = []
        digest = hashlib.sha256()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                say(f"h1-body-info unexpected {message['type']}")
                return
            messages += 1
            body = message.get("body", b"")
            total += len(body)
            digest.update(body)
            flags.append(bool(message.get("more_body", False)))
            if not message.get("more_body", False):
                break
        info = {"messages": messages, "total": total, "sha256": digest.hexdigest(),
                "more_body": flags}
        await _respond(send, 200, json.dumps(info).encode(), b"application/json")
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/cl":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/own-server":
        await _respond(send, 200, b"custom", extra=[(b"server", b"custom-server/1.0")])
    elif path == "/expect-deny":
        await _respond(send, 401, b"denied", extra=[(b"www-authenticate", b"Basic")])
    elif path == "/expect-gated":
        gate = query["f"]
        say(f"h1-expect-gated waiting {gate}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not os.path.exists(gate) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        body = await _read_body(receive)
        await _respond(send, 200, body or b"")
    elif path == "/wait-disconnect":
        token = query.get("t", "?")
        say(f"h1-wait-disconnect waiting {token}")
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                say(f"h1-disconnect {token}")
                return
            say(f"h1-wait-disconnect got {len(message.get('body', b''))} bytes {token}")
    elif path == "/state-mutate":
        state = scope["state"]
        snapshot = dict(state)
        state["greeting"] = "mutated"
        state["added"] = query.get("v", "x")
        await _respond(send, 200, json.dumps(_jsonable(snapshot)).encode(), b"application/json")
    elif path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send({"type": "http.response.trailers", "more_trailers": False,
                    "headers": [(b"x-checksum", b"c0ffee")]})
    elif path == "/trailers-oneshot":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum")]})
        await send({"type": "http.response.body", "body": b"abcdef", "more_body": False})
        await send({"type": "http.response.trailers", "more_trailers": False,
                    "headers": [(b"x-checksum", b"c0ffee")]})
    elif path == "/pathsend":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": query["p"]})
    elif path == "/zerocopy":
        with open(query["p"], "rb") as file:
            message = {"type": "http.response.zerocopysend", "file": file}
            if "o" in query:
                message["offset"] = int(query["o"])
            if "c" in query:
                message["count"] = int(query["c"])
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/octet-stream")]})
            await send(message)
    elif path == "/zerocopy-parts":
        with open(query["p"], "rb") as file:
            size = os.fstat(file.fileno()).st_size
            half = size // 2
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/octet-stream")]})
            await send({"type": "http.response.zerocopysend", "file": file, "offset": 0,
                        "count": half, "more_body": True})
            await send({"type": "http.response.zerocopysend", "file": file, "offset": half,
                        "count": size - half, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif path == "/body-then-zerocopy":
        # A large in-memory block first, so the transport still holds bytes when the
        # zero-copy part starts: the file must come strictly after them.
        with open(query["p"], "rb") as file:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/octet-stream")]})
            await send({"type": "http.response.body", "body": b"m" * (16 * 1024 * 1024),
                        "more_body": True})
            await send({"type": "http.response.zerocopysend", "file": file, "more_body": False})
    elif path == "/early-hint":
        # The extension's window: after http.response.start, before the final body.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.early_hint",
                    "links": [b"</style.css>; rel=preload; as=style",
                              b"</script.js>; rel=preload; as=script"]})
        await send({"type": "http.response.body", "body": b"after hints"})
    elif path == "/early-hint-bad":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.early_hint",
                    "links": [b"</a.css>; rel=preload\r\nx-injected: yes"]})
        await send({"type": "http.response.body", "body": b"should not be sent"})
    elif path == "/trailers-bad":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send({"type": "http.response.trailers",
                    "headers": [(b"x-checksum", b"1\r\nx-injected: yes")]})
    elif path == "/error-before":
        raise RuntimeError("h1 boom before start")
    elif path == "/error-after":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("h1 boom after start")
    elif path == "/error-after-cl":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("h1 boom after start with length")
    elif path == "/status":
        await _respond(send, int(query["s"]), b"body-for-no-body-status")
    elif path == "/cl-short":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"12345"})
    elif path == "/cl-long":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"3")]})
        await send({"type": "http.response.body", "body": b"12345"})
    elif path == "/noresponse":
        return
    elif path == "/body-before-start":
        await send({"type": "http.response.body", "body": b"too early"})
    elif path == "/start-twice":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"twice"})
    elif path == "/crlf-value":
        kind = query.get("k", "crlf")
        bad = {"crlf": b"ok\r\nx-injected: yes", "lf": b"ok\nx-injected: yes",
               "cr": b"ok\rx-injected: yes", "nul": b"ok\x00x-injected: yes"}[kind]
        await _respond(send, 200, b"should not be sent", extra=[(b"x-bad", bad)])
    elif path == "/head-shape":
        await _head_shape(send, query.get("k", "tuple"))
    elif path == "/crlf-name":
        await _respond(send, 200, b"should not be sent",
                       extra=[(b"x-bad\r\nx-injected", b"yes")])
    elif path == "/never-read":
        say("h1-never-read started")
        await asyncio.sleep(20)
        await _respond(send, 200, b"late")
    elif path == "/big":
        mib = int(query.get("mib", "128"))
        block = b"x" * (1024 * 1024)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"),
                                (b"content-length", str(mib * len(block)).encode())]})
        for i in range(mib):
            await send({"type": "http.response.body", "body": block, "more_body": True})
            if i % 8 == 7:
                say(f"h1-big progress {i + 1}")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        say("h1-big done")
    else:
        await _respond(send, 200, json.dumps(_jsonable(scope)).encode(), b"application/json")
