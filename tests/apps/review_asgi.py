"""ASGI app for the issue 9 review tests (tests/e2e/test_review_*.py).

Behaviour is chosen by the path (after root_path); ``t`` in the query is a token the app
prints in its marker lines so a test waits for its own request. Every wait is bounded.

/                      200 'ok' (Content-Length)
/scope...              the scope as JSON (bytes as latin-1 strings)
/after-complete?k=K    a complete response 'first', then more messages (K: body, start,
                       body2 = two more bodies); prints 'review-after-complete T <outcome>'
/scope-mutate          answers scope['asgi'] and scope['extensions'] as JSON, then
                       mutates both (and a nested extension dict)
/double-receive?t=T    reads the body, then two concurrent receive() calls; prints
                       'review-double-receive T <type> <type>' (or 'timeout')
/hop?h=NAME:VALUE,...  200 'hop' with those extra response headers (repeatable)
/hop-stream?h=...      the same, body in two parts (more_body)
/trailers?bad=1        trailers=True, body in two parts, then trailers (x-checksum, plus
                       prohibited fields with bad=1)
/status?s=N&cl=V       status N with an app Content-Length V and an empty body
/hint?when=W           early hint: W=before (before start), inside (after start, before
                       the first body), after-body (after a first body part)
/blob                  1 MiB in one message (a new bytes object per response)
/reject                401 without reading the body
/bg-send?t=T           answers 'A', then a background task waits for /bg-b, sends another
                       body and a start on A's send, prints 'review-bg-send T <outcome>'
/bg-b?t=T              wakes the background task of /bg-send, waits for it, then streams a
                       chunked 'B1B2B3'
/raise?e=E             raises E (sysexit, kbint, cancelled) before responding
/str-body?k=K          http.response.body with a str body (K: oneshot, stream = with
                       more_body, cl = with the app's Content-Length)
/slow?t=T&s=S&w=W      prints 'review-slow started T', sleeps S seconds, answers; with
                       W=1 (default) a receive() watcher prints 'review-slow T disconnect'
/stream-forever?t=T    streams 64 KiB parts until send raises; prints
                       'review-stream-ended T <outcome>'
"""
import asyncio
import json
from urllib.parse import parse_qs

from plain_lifespan import handle_lifespan

BLOB = b"b" * (1024 * 1024)
PART = b"s" * (64 * 1024)
BG: dict = {}


def say(text: str) -> None:
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


def _query(scope) -> dict:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}


async def _respond(send, status: int, body: bytes, headers=()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive) -> bytes | None:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


def _extra_headers(query: dict) -> list:
    out = []
    for item in query.get("h", "").split(","):
        if ":" in item:
            name, value = item.split(":", 1)
            out.append((name.encode(), value.encode()))
    return out


async def _try_send(send, message) -> str:
    try:
        await send(message)
    except Exception as exc:  # noqa: BLE001 - the outcome is what the test reads
        return f"raised-{type(exc).__name__}"
    return "ok"


async def _after_complete(send, query) -> None:
    await _respond(send, 200, b"first")
    kind = query.get("k", "body")
    outcomes = []
    if kind in ("body", "body2"):
        outcomes.append(await _try_send(send, {"type": "http.response.body", "body": b"EXTRA-BYTES"}))
    if kind == "body2":
        outcomes.append(await _try_send(send, {"type": "http.response.body", "body": b"EXTRA-BYTES"}))
    if kind == "start":
        outcomes.append(await _try_send(send, {"type": "http.response.start", "status": 200,
                                               "headers": [(b"x-second", b"start")]}))
    say(f"review-after-complete {query.get('t', '-')} {' '.join(outcomes)}")


async def _double_receive(receive, query) -> None:
    token = query.get("t", "-")
    await _read_body(receive)
    both = asyncio.ensure_future(asyncio.wait_for(asyncio.gather(receive(), receive()), 10))
    await asyncio.sleep(0.05)  # both receive() calls are waiting before the test is told
    say(f"review-double-receive waiting {token}")
    try:
        first, second = await both
    except asyncio.TimeoutError:
        say(f"review-double-receive {token} timeout")
        return
    say(f"review-double-receive {token} {first['type']} {second['type']}")


async def _trailers(send, query) -> None:
    await send({"type": "http.response.start", "status": 200, "trailers": True,
                "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum")]})
    await send({"type": "http.response.body", "body": b"part1-", "more_body": True})
    await send({"type": "http.response.body", "body": b"part2", "more_body": False})
    trailers = [(b"x-checksum", b"abc123")]
    if query.get("bad"):
        # RFC 9110 §6.5.1: framing, routing, authentication, response controls and
        # content format are never allowed in trailers.
        trailers += [(b"content-length", b"5"), (b"transfer-encoding", b"chunked"),
                     (b"host", b"evil.test"), (b"authorization", b"Basic eDp5"),
                     (b"content-type", b"text/evil"), (b"content-encoding", b"gzip"),
                     (b"cache-control", b"no-store"), (b"trailer", b"x-more")]
    await send({"type": "http.response.trailers", "headers": trailers, "more_trailers": False})


async def _hint(send, query) -> None:
    when = query.get("when", "inside")
    hint = {"type": "http.response.early_hint", "links": [b"</hint.css>; rel=preload; as=style"]}
    if when == "before":
        await send(hint)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    if when == "inside":
        await send(hint)
    await send({"type": "http.response.body", "body": b"hint-", "more_body": True})
    if when == "after-body":
        await send(hint)
    await send({"type": "http.response.body", "body": b"done"})


async def _bg_send_later(send, token: str) -> None:
    event = BG.setdefault("wake", asyncio.Event())
    try:
        await asyncio.wait_for(event.wait(), 10)
    except asyncio.TimeoutError:
        say(f"review-bg-send {token} never-woken")
        return
    outcomes = [
        await _try_send(send, {"type": "http.response.body", "body": b"LEAKED-FROM-A", "more_body": True}),
        await _try_send(send, {"type": "http.response.start", "status": 200, "headers": []}),
        await _try_send(send, {"type": "http.response.body", "body": b"LEAKED-AGAIN"}),
    ]
    say(f"review-bg-send {token} {' '.join(outcomes)}")
    BG.setdefault("done", asyncio.Event()).set()


async def _bg_b(send) -> None:
    BG.setdefault("wake", asyncio.Event()).set()
    try:
        await asyncio.wait_for(BG.setdefault("done", asyncio.Event()).wait(), 10)
    except asyncio.TimeoutError:
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    for part in (b"B1", b"B2"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
        await asyncio.sleep(0)
    await send({"type": "http.response.body", "body": b"B3"})


async def _slow(receive, send, query) -> None:
    token = query.get("t", "-")
    seconds = float(query.get("s", "15"))

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                say(f"review-slow {token} disconnect")
                return

    watcher = asyncio.ensure_future(watch() if query.get("w", "1") == "1" else asyncio.sleep(0))
    say(f"review-slow started {token}")
    await asyncio.sleep(seconds)  # a long computation that does not look at the client
    watcher.cancel()
    try:
        await _respond(send, 200, b"slow done")
    finally:
        say(f"review-slow finished {token}")


async def _stream_forever(send, query) -> None:
    token = query.get("t", "-")
    outcome = "completed"
    try:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        for _ in range(200_000):  # 12.5 GiB at most: bounded, and far beyond any buffer
            await send({"type": "http.response.body", "body": PART, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except BaseException as exc:
        outcome = f"raised-{type(exc).__name__}"
        raise
    finally:
        say(f"review-stream-ended {token} {outcome}")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and path != root:
        path = path[len(root):]
    query = _query(scope)

    if path == "/":
        await _respond(send, 200, b"ok")
    elif path == "/after-complete" or path.startswith("/after-complete/"):
        await _after_complete(send, query)
    elif path == "/scope-mutate":
        seen = json.dumps({"asgi": _jsonable(scope["asgi"]),
                           "extensions": _jsonable(scope.get("extensions"))}).encode()
        scope["asgi"]["version"] = "9.9"
        scope["asgi"]["mutated"] = True
        extensions = scope.get("extensions")
        if extensions is not None:
            extensions["x.mutated"] = {"by": "app"}
            for value in extensions.values():
                if isinstance(value, dict):
                    try:
                        value["mutated"] = True
                    except TypeError:
                        pass  # Gannet's shared extension parameters are read-only
            extensions.pop("http.response.early_hint", None)
        await _respond(send, 200, seen, [(b"content-type", b"application/json")])
    elif path == "/double-receive":
        await _double_receive(receive, query)
        await _respond(send, 200, b"after double receive")
    elif path == "/hop":
        await _respond(send, 200, b"hop", _extra_headers(query))
    elif path == "/hop-stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), *_extra_headers(query)]})
        await send({"type": "http.response.body", "body": b"ho", "more_body": True})
        await send({"type": "http.response.body", "body": b"p"})
    elif path == "/trailers":
        await _trailers(send, query)
    elif path == "/status":
        headers = [(b"content-length", query["cl"].encode())] if "cl" in query else []
        await send({"type": "http.response.start", "status": int(query.get("s", "204")),
                    "headers": headers})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/hint":
        await _hint(send, query)
    elif path == "/blob":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.body", "body": BLOB[:-1] + b"\n"})  # fresh bytes each time
    elif path == "/reject":
        await _respond(send, 401, b"no upload for you")
    elif path == "/bg-send":
        BG.clear()
        BG["task"] = asyncio.ensure_future(_bg_send_later(send, query.get("t", "-")))
        await _respond(send, 200, b"A")
    elif path == "/bg-b":
        await _bg_b(send)
    elif path == "/raise":
        kind = query.get("e")
        if kind == "sysexit":
            raise SystemExit(3)
        if kind == "kbint":
            raise KeyboardInterrupt
        if kind == "cancelled":
            raise asyncio.CancelledError()
        raise RuntimeError("review: unknown kind")
    elif path == "/str-body":
        kind = query.get("k", "oneshot")
        headers = [(b"content-type", b"text/plain")]
        if kind == "cl":
            headers.append((b"content-length", b"15"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": "text, not bytes",
                    "more_body": kind == "stream"})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/slow":
        await _slow(receive, send, query)
    elif path == "/stream-forever":
        await _stream_forever(send, query)
    else:
        body = json.dumps(_jsonable({k: v for k, v in scope.items() if k != "state"})).encode()
        await _respond(send, 200, body, [(b"content-type", b"application/json")])
