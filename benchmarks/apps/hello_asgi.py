"""ASGI plaintext: every path answers 200 "Hello, world!" (the TechEmpower plaintext shape).

The response messages are built once: the benchmark measures the server, not the app.
"""
from _lifespan import handle_lifespan

BODY = b"Hello, world!"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(BODY)).encode())],
}
BODY_MESSAGE = {"type": "http.response.body", "body": BODY, "more_body": False}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    await send(START)
    await send(BODY_MESSAGE)
