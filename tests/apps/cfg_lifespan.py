"""Lifespan behaviours for tests/e2e/test_lifespan.py."""
import json


def say(text):
    print(text, flush=True)


async def _ok(send, body=b"served"):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def failing(scope, receive, send):
    """Answers lifespan.startup with lifespan.startup.failed and a message."""
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": "database unreachable (cfg)"})
        return
    await _ok(send)


async def raising(scope, receive, send):
    """Raises on the lifespan scope (an app that does not implement lifespan)."""
    if scope["type"] == "lifespan":
        raise RuntimeError("lifespan exploded (cfg)")
    await _ok(send, b"served without lifespan")


async def recording(scope, receive, send):
    """Prints a marker whenever it is called with the lifespan scope."""
    if scope["type"] == "lifespan":
        say("cfg lifespan called")
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["seen"] = True
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await _ok(send, json.dumps(dict(scope.get("state") or {})).encode())


async def shutdown_fails(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.failed", "message": "flush failed (cfg)"})
                return
    await _ok(send)


async def shutdown_hangs(scope, receive, send):
    """Completes startup, then never finishes its shutdown."""
    if scope["type"] == "lifespan":
        import asyncio

        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        say("cfg shutdown hanging")
        await asyncio.Event().wait()
    await _ok(send)


def raising_factory():
    raise RuntimeError("factory blew up (cfg)")
