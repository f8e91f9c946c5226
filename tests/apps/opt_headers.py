"""Apps for the --header and --env-file tests (tests/e2e/test_cli_options.py).

ASGI ``app``: ``/`` plain; ``/own`` sets x-frame-options and server itself; ``/env/NAME``
answers os.environ[NAME] (or 404); ``/ws`` accepts a WebSocket; ``/ws-deny`` denies it with
a websocket.http.response. ``wsgi``: a WSGI app answering "wsgi ok".
"""
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        if scope["path"] == "/ws-deny":
            await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
            await send({"type": "websocket.http.response.body", "body": b"denied"})
            return
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    path = scope["path"][len(scope["root_path"]):]
    headers = [(b"content-type", b"text/plain")]
    status, body = 200, b"ok"
    if path == "/own":
        headers += [(b"x-frame-options", b"SAMEORIGIN"), (b"server", b"app-server")]
    elif path.startswith("/env/"):
        value = os.environ.get(path[len("/env/"):])
        status, body = (404, b"unset") if value is None else (200, value.encode())
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "7")])
    return [b"wsgi ok"]
