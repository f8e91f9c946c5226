"""Lifespan apps for tests/e2e/test_lifespan_auto.py.

exits_in_startup     takes lifespan.startup, then sys.exit("database unreachable")
http_only            knows nothing of lifespan: reads one message and answers as HTTP
reads_body_first     knows nothing of lifespan: reads message["body"] first (KeyError)
"""
import sys


async def exits_in_startup(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        sys.exit("database unreachable")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served"})


async def http_only(scope, receive, send):
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served"})


async def reads_body_first(scope, receive, send):
    message = await receive()
    body = message["body"]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served" + body[:0]})
