"""An ordinary Starlette app, served by Gannet unchanged (tests/e2e/test_frameworks.py)."""
import asyncio

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

DONE: list[str] = []  # what background tasks have recorded


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("starlette home")


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["item_id"],
                         "q": request.query_params.get("q"),
                         "ua": request.headers.get("user-agent", "")})


async def stream(request: Request) -> StreamingResponse:
    count = int(request.query_params.get("n", "3"))

    async def numbers():
        for i in range(count):
            yield f"line {i}\n".encode()
            await asyncio.sleep(0)

    return StreamingResponse(numbers(), media_type="text/plain")


async def form(request: Request) -> JSONResponse:
    async with request.form() as data:
        fields = {}
        for key, value in data.multi_items():
            if hasattr(value, "read"):
                fields[key] = {"filename": value.filename, "size": len(await value.read())}
            else:
                fields[key] = value
    return JSONResponse(fields)


async def body(request: Request) -> JSONResponse:
    raw = await request.body()
    return JSONResponse({"length": len(raw), "json": await request.json() if raw else None})


async def background(request: Request) -> JSONResponse:
    token = request.query_params["token"]

    async def record() -> None:
        DONE.append(token)

    return JSONResponse({"scheduled": token}, background=BackgroundTask(record))


async def done(request: Request) -> JSONResponse:
    return JSONResponse({"done": DONE})


app = Starlette(routes=[
    Route("/", home),
    Route("/items/{item_id:int}", item),
    Route("/stream", stream),
    Route("/form", form, methods=["POST"]),
    Route("/body", body, methods=["POST"]),
    Route("/background", background),
    Route("/done", done),
])
