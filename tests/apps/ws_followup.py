"""WebSocket app for the follow-up review of issue 9 (tests/ws/test_ws_followup.py).

/produce?size=N       accept, send N-byte binary messages until the client goes; logs
                      "PRODUCE ENDED: client gone after K messages"
/busy?sleep=S&count=C accept, take one message, be busy S seconds (a slow downstream call),
                      then take C more and answer "got C"; then wait for the disconnect
/deny?chunk=N&count=C  websocket.http.response: 403 with C body messages of N bytes
/never-read           accept, never call receive (until the client goes)
/stats                (HTTP) {"rss_kib": n}
"""
import asyncio
import json
from urllib.parse import parse_qs

from plain_lifespan import handle_lifespan

from gannet.http.errors import ClientDisconnected


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    if scope["type"] == "http":
        body = json.dumps({"rss_kib": _rss_kib()}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    assert (await receive())["type"] == "websocket.connect"
    if path == "/deny":
        chunk = b"d" * int(query.get("chunk", "1048576"))
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        for _ in range(int(query.get("count", "1"))):
            await send({"type": "websocket.http.response.body", "body": chunk, "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b""})
        return
    await send({"type": "websocket.accept"})
    if path == "/produce":
        payload = b"x" * int(query.get("size", "1048576"))
        sent = 0
        try:
            while True:
                await send({"type": "websocket.send", "bytes": payload})
                sent += 1
        except ClientDisconnected:
            print(f"PRODUCE ENDED: client gone after {sent} messages", flush=True)
        return
    if path == "/busy":
        count = int(query.get("count", "1"))
        first = await receive()
        print(f"BUSY got first {first['type']}", flush=True)
        await asyncio.sleep(float(query.get("sleep", "1")))
        taken = 0
        while taken < count:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                print(f"BUSY disconnect {message} after {taken}", flush=True)
                return
            taken += 1
        await send({"type": "websocket.send", "text": f"got {taken}"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    if path == "/never-read":
        await asyncio.Event().wait()
