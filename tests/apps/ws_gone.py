"""A FastAPI WebSocket endpoint that sends until its client leaves, with no error handling
of its own (the common ticker/SSE-like pattern): the client leaving must not be logged as
an application error (tests/ws/test_ws_review.py)."""
import asyncio

from fastapi import FastAPI, WebSocket

app = FastAPI()


@app.websocket("/ticker")
async def ticker(websocket: WebSocket):
    await websocket.accept()
    n = 0
    while True:  # Starlette turns the failed send into WebSocketDisconnect and re-raises it
        await websocket.send_text(f"tick {n}")
        n += 1
        await asyncio.sleep(0.01)  # pacing the app, not synchronising the test
