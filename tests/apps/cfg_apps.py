"""Apps for the CLI / config / lifespan / shutdown / limits / logging e2e tests.

``app`` answers by path:
/                 200 'cfg ok'
/info             JSON: root_path, path, state, http_version, client/server present
/wait?file=PATH   logs 'cfg waiting <PATH>' and answers 200 'released' once PATH exists
                  (polled every 20 ms, for at most 15 s; then 200 'gave up')
/hang             logs 'cfg hanging' and never answers (until cancelled; logs 'cfg cancelled')
/echo             the request body
anything else     200 with the path as body

``create_app`` is a factory (use --factory), ``namespace.app`` a dotted attribute.
Lifespan: startup puts ``token`` in the state dict and prints 'cfg startup ran';
shutdown prints 'cfg shutdown ran'.
"""
import asyncio
import json
import os
from urllib.parse import parse_qs


def say(text):
    print(text, flush=True)


async def _read_body(receive):
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def _respond(send, status, body, content_type=b"text/plain"):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def lifespan(scope, receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["token"] = "tok-123"
            say("cfg startup ran")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            say("cfg shutdown ran")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def http(scope, receive, send, tag=b""):
    path = scope["path"]
    query = parse_qs(scope["query_string"].decode("latin-1"))
    if path == "/info" or path.endswith("/info"):
        body = json.dumps({
            "root_path": scope.get("root_path"),
            "path": path,
            "state": dict(scope.get("state") or {}),
            "http_version": scope["http_version"],
            "tag": tag.decode(),
            "pid": os.getpid(),
        }).encode()
        await _respond(send, 200, body, b"application/json")
    elif path.endswith("/wait"):
        target = query["file"][0]
        say(f"cfg waiting {target}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while not os.path.exists(target) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        await _respond(send, 200, b"released" if os.path.exists(target) else b"gave up")
    elif path.endswith("/hang"):
        say("cfg hanging")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            say("cfg cancelled")
            raise
    elif path.endswith("/echo"):
        await _respond(send, 200, await _read_body(receive))
    elif path == "/":
        await _respond(send, 200, b"cfg ok" + tag)
    else:
        await _respond(send, 200, path.encode())


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
    else:
        await http(scope, receive, send)


class _Namespace:
    async def app(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await lifespan(scope, receive, send)
        else:
            await http(scope, receive, send, tag=b" (dotted)")


namespace = _Namespace()


def create_app():
    say("cfg factory called")

    async def built(scope, receive, send):
        if scope["type"] == "lifespan":
            await lifespan(scope, receive, send)
        else:
            await http(scope, receive, send, tag=b" (factory)")

    return built
