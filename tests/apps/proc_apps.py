"""Apps for the worker/process tests (tests/e2e/test_worker_*.py, test_lifespan.py).

``scope_probe``   lifespan records its scope's "asgi" dict and then mutates it; HTTP answers
                  JSON {"lifespan_asgi": ..., "request_asgi": ...}
``startup_hangs`` lifespan startup logs 'proc startup hanging' and never completes; when
                  cancelled it logs 'proc startup cancelled' and lets the cancellation through
``startup_stubborn`` like startup_hangs, but swallows cancellation ('proc startup ignoring
                  cancellation') and keeps hanging
``request_stubborn`` an HTTP handler that never answers and swallows cancellation
``startup_exits`` lifespan startup calls sys.exit(7)
"""
import asyncio
import json

_seen = {}


def say(text):
    print(text, flush=True)


async def _json(send, data):
    body = json.dumps(data).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def scope_probe(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _seen["lifespan_asgi"] = dict(scope["asgi"])
                scope["asgi"]["spec_version"] = "mutated by lifespan"
                scope["asgi"]["extra"] = True
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await _json(send, {"lifespan_asgi": _seen.get("lifespan_asgi"), "request_asgi": scope["asgi"]})


async def startup_hangs(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        say("proc startup hanging")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            say("proc startup cancelled")
            raise
    await _json(send, {})


async def startup_stubborn(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        say("proc startup hanging")
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                say("proc startup ignoring cancellation")
    await _json(send, {})


async def request_stubborn(scope, receive, send):
    """A request handler that swallows every cancellation ('proc request ignoring
    cancellation') and never answers: only a bounded exit gets past it."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    say("proc request hanging")
    while True:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            say("proc request ignoring cancellation")


async def startup_exits(scope, receive, send):
    """Lifespan startup calls sys.exit(7): the app's failure, not the server's exit status."""
    if scope["type"] == "lifespan":
        import sys

        await receive()
        sys.exit(7)
    await _json(send, {})
