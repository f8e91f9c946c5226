"""ASGI app for tests/e2e/test_request_isolation.py: what an app can observe about the task
and the context it runs in.

/ctx-set            sets a ContextVar for this request, answers what it saw before
/ctx-get            answers the ContextVar's value (must be unset on every request)
/task               JSON: is there a current task, is it the same one after a suspension,
                    and its cancelling() count when the request started
/bg                 answers at once, then keeps running until /release is requested
/release            lets /bg finish
/timeout            asyncio.timeout() expires inside the app; answers 'timed out'
/anyio-scope        anyio.move_on_after() cancels a sleep; answers 'moved on'
"""
import asyncio
import contextvars
import json

import anyio

from plain_lifespan import handle_lifespan

VAR: contextvars.ContextVar = contextvars.ContextVar("gannet_test_var", default="unset")
RELEASE: dict = {}


async def _answer(send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    path = scope["path"]
    if path == "/ctx-set":
        before = VAR.get()
        VAR.set("set by an earlier request")
        await _answer(send, before.encode())
    elif path == "/ctx-get":
        await _answer(send, VAR.get().encode())
    elif path == "/task":
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else -1
        await asyncio.sleep(0.01)  # a real suspension: the rest runs in whatever continues it
        same = asyncio.current_task() is task
        await _answer(send, json.dumps({"task": task is not None, "same_after_await": same,
                                        "cancelling_at_start": cancelling}).encode())
    elif path == "/bg":
        event = RELEASE.setdefault("event", asyncio.Event())
        await _answer(send, b"bg answered")
        await asyncio.wait_for(event.wait(), 10)  # work after the response, as BackgroundTasks do
        print("isolation-bg-finished", flush=True)
    elif path == "/release":
        RELEASE.setdefault("event", asyncio.Event()).set()
        await _answer(send, b"released")
    elif path == "/timeout":
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(5)
            body = b"not timed out"
        except TimeoutError:
            body = b"timed out"
        await _answer(send, body)
    elif path == "/anyio-scope":
        with anyio.move_on_after(0.01) as scope_:
            await anyio.sleep(5)
        await _answer(send, b"moved on" if scope_.cancelled_caught else b"not cancelled")
    else:
        await _answer(send, b"?")
