"""An ASGI app for tests/e2e/test_review_access_log.py: a stream whose app swallows the
error its send raises once the client is gone (as some frameworks do) and returns."""
from __future__ import annotations

from plain_lifespan import handle_lifespan

PART = b"s" * 65536


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})
    try:
        for _ in range(100_000):  # 6.25 GiB at most: bounded, far beyond any buffer
            await send({"type": "http.response.body", "body": PART, "more_body": True})
    except OSError:
        print("swallowed the disconnect", flush=True)
        return  # no final body: the response is left unfinished
    await send({"type": "http.response.body", "body": b""})
