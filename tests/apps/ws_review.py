"""WebSocket app for the issue 9 review regressions (tests/ws/test_ws_review.py).

The cyclic garbage collector is off in this process: anything that only a reference cycle
keeps alive stays alive, so /stats shows it (a per-socket marker hangs off each scope, which
the server's per-socket objects hold).

/close?code=C&reason=R  accept, websocket.close with that code (``none``: no code) and reason
                        (``long``: "a" + 50 × "€", 151 bytes); logs what close did
/mutate                 accept, send scope["asgi"] and scope["extensions"] as JSON, then
                        mutate both; close
/two-receives           accept, await two receive() at once; log both message types
/hold                   accept, wait for the disconnect
/flood                  accept, send 64 KiB binary messages until the client goes; log it
/never-read             accept, never call receive (until the client goes)
/echo                   accept, echo every message until the client goes
/stats                  (HTTP) {"alive": sockets whose scope is still referenced, "rss_kib": n}
"""
import asyncio
import gc
import json
import weakref
from urllib.parse import parse_qs

from plain_lifespan import handle_lifespan

from gannet.http.errors import ClientDisconnected

gc.disable()
ALIVE = weakref.WeakSet()


class Marker:
    """Lives as long as the scope that carries it."""


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def http(scope, receive, send):
    body = json.dumps({"alive": len(ALIVE), "rss_kib": _rss_kib()}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    if scope["type"] == "http":
        await http(scope, receive, send)
        return
    marker = scope["marker"] = Marker()
    ALIVE.add(marker)
    del marker
    path = scope["path"]
    query = parse_qs(scope["query_string"].decode())
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    if path == "/close":
        message = {"type": "websocket.close"}
        code = query.get("code", ["none"])[0]
        if code != "none":
            message["code"] = int(code)
        reason = query.get("reason", [""])[0]
        message["reason"] = "a" + "€" * 50 if reason == "long" else reason
        try:
            await send(message)
        except Exception as exc:
            print(f"CLOSE RAISED {exc!r}", flush=True)
            raise
        print(f"CLOSE SENT code={code}", flush=True)
        return
    if path == "/mutate":
        await send({"type": "websocket.send", "text": json.dumps(
            {"asgi": scope["asgi"], "extensions": sorted(scope["extensions"])})})
        scope["asgi"]["spec_version"] = "mutated"
        scope["asgi"]["version"] = "mutated"
        scope["extensions"]["mutated.by.app"] = {}
        scope["extensions"].pop("websocket.http.response", None)
        await send({"type": "websocket.close", "code": 1000})
        return
    if path == "/two-receives":
        first, second = await asyncio.gather(receive(), receive())
        print(f"TWO RECEIVES {first['type']} {second['type']} reason={second.get('reason')!r}",
              flush=True)
        return
    if path == "/hold":
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    if path == "/flood":
        payload = b"x" * 65536
        try:
            while True:
                await send({"type": "websocket.send", "bytes": payload})
        except ClientDisconnected:
            print("FLOOD ENDED: client gone", flush=True)
        return
    if path == "/never-read":
        try:
            await asyncio.Event().wait()
        finally:
            print("NEVER-READ ENDED", flush=True)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            await send({"type": "websocket.send", "text": message["text"]})
