"""Apps that answer what they were told about the client: tests/e2e/test_proxy_headers.py
and test_proxy_protocol.py compare it with what a front end said."""
import json


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    seen = {key: scope[key] for key in ("client", "scheme", "server", "root_path", "path")}
    seen["raw_path"] = scope["raw_path"].decode("latin-1")
    seen["host"] = [value.decode("latin-1") for name, value in scope["headers"] if name == b"host"]
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(seen)})
        await send({"type": "websocket.close"})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(seen).encode()})


_KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME",
         "SERVER_PORT", "SCRIPT_NAME", "PATH_INFO")


def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({key: environ.get(key) for key in _KEYS}).encode()]
