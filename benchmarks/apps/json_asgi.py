"""ASGI JSON: serialises a small dict on every request (the TechEmpower json shape)."""
import json

from _lifespan import handle_lifespan


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    body = json.dumps({"message": "Hello, world!"}).encode()
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
