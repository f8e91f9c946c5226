"""ASGI download: every path answers 10 MiB, streamed in 64 KiB `http.response.body`
messages with more_body=True (Content-Length set).

The chunk and the messages are built once: the benchmark measures the server, not the app.
"""
from _lifespan import handle_lifespan

CHUNK_SIZE = 64 * 1024
CHUNKS = 160  # 10 MiB
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/octet-stream"),
                (b"content-length", str(CHUNK_SIZE * CHUNKS).encode())],
}
CHUNK_MESSAGE = {"type": "http.response.body", "body": b"x" * CHUNK_SIZE, "more_body": True}
LAST_MESSAGE = {"type": "http.response.body", "body": b"", "more_body": False}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    await send(START)
    for _ in range(CHUNKS):
        await send(CHUNK_MESSAGE)
    await send(LAST_MESSAGE)
