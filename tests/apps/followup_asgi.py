"""ASGI app for the follow-up review regressions (tests/e2e/test_review_followup.py).

/                    200 "ok"
/trickle?t=T         streams 16 KiB parts for ever (no receive watcher, like a
                     StreamingResponse); prints 'followup-trickle-ended T <exception>'
/close-first         200 "closing" with the app's own Connection: close
/reject              413 at once, never reads the body
/next                prints 'followup-next-ran', 200 "next"
/big?n=N             N bytes of 'x' in one body
/echo-path           200 with the path as body
/upgrade426          426 with Upgrade: TLS/1.2, HTTP/1.1
/bad-cl              200 with Content-Length: abc
/slow-stream?n=N&d=D N chunks "part\n", D seconds apart
/silent-stream       the head and one chunk, then silence (30 s), never reading receive()
/h1-count?gcoff=1    the number of live H1Protocol objects (gcoff=1 first turns the cyclic
                     garbage collector off for this process)
/bytes-like?k=K      a bytearray (K=bytearray) or memoryview (K=memoryview) body, one
                     message; &stream=1 sends it in two messages
"""
import asyncio
from urllib.parse import parse_qs

from plain_lifespan import handle_lifespan


def say(text: str) -> None:
    print(text, flush=True)


async def _respond(send, status, body, headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), *headers]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if path == "/trickle":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"t" * 16384, "more_body": True})
                await asyncio.sleep(0.01)
        except BaseException as exc:
            say(f"followup-trickle-ended {query.get('t')} {type(exc).__name__}")
            raise
    elif path == "/close-first":
        await _respond(send, 200, b"closing", [(b"connection", b"close")])
    elif path == "/reject":
        await _respond(send, 413, b"too large")
    elif path == "/next":
        say("followup-next-ran")
        await _respond(send, 200, b"next")
    elif path == "/big":
        await _respond(send, 200, b"x" * int(query["n"]))
    elif path == "/slow-stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(int(query["n"])):
            await send({"type": "http.response.body", "body": b"part\n", "more_body": True})
            await asyncio.sleep(float(query["d"]))
        await send({"type": "http.response.body", "body": b""})
    elif path == "/silent-stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
        await asyncio.sleep(30)
        await send({"type": "http.response.body", "body": b""})
    elif path == "/h1-count":
        import gc
        from gannet.http.h1 import H1Protocol
        if query.get("gcoff"):
            gc.collect()
            gc.disable()
        count = sum(1 for obj in gc.get_objects() if type(obj) is H1Protocol)
        await _respond(send, 200, str(count).encode())
    elif path == "/bad-cl":
        await _respond(send, 200, b"abc", [(b"content-length", b"abc")])
    elif path == "/upgrade426":
        await _respond(send, 426, b"upgrade", [(b"upgrade", b"TLS/1.2, HTTP/1.1")])
    elif path == "/bytes-like":
        data = b"hello bytes-like" * 5000 if query.get("big") else b"hello bytes-like"
        body = bytearray(data) if query.get("k") == "bytearray" else memoryview(data)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if query.get("stream"):
            await send({"type": "http.response.body", "body": body[:5], "more_body": True})
            await send({"type": "http.response.body", "body": body[5:]})
        else:
            await send({"type": "http.response.body", "body": body})
    else:
        await _respond(send, 200, path.encode() if path != "/" else b"ok")
