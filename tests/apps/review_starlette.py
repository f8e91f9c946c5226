"""Starlette app for the issue 9 review tests: a server-sent-events stream that never ends
on its own (the pattern of a dashboard tab the user closes).

/sse   text/event-stream, one event every 10 ms, forever (bounded: 100,000 events)
/      200 'ok'
"""
import asyncio

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route


async def _events():
    for number in range(100_000):
        yield f"data: event {number}\n\n"
        await asyncio.sleep(0.01)


async def sse(request):
    return StreamingResponse(_events(), media_type="text/event-stream")


async def home(request):
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/sse", sse), Route("/", home)])
