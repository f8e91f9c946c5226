"""ASGI upload: reads the whole request body through receive() and answers its byte count.

The answer is 400 when the count differs from the request's Content-Length, so a server
that loses body bytes shows up as errors in the benchmark instead of as speed.
"""
from _lifespan import handle_lifespan

HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    count = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        count += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
    status = 200 if declared is None or int(declared) == count else 400
    body = str(count).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [*HEADERS, (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
