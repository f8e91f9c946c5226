"""A FastAPI app with a Starlette WebSocket endpoint, served unchanged."""
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.websocket("/ws/{room}")
async def room(websocket: WebSocket, room: str):
    await websocket.accept(subprotocol=(websocket.scope["subprotocols"] or [None])[0])
    try:
        while True:
            data = await websocket.receive_json()
            await websocket.send_json({"room": room, "echo": data})
    except WebSocketDisconnect as exc:
        app.state.last_code = exc.code


@app.websocket("/bytes")
async def raw_bytes(websocket: WebSocket):
    await websocket.accept()
    data = await websocket.receive_bytes()
    await websocket.send_bytes(data[::-1])
    await websocket.close(code=4000, reason="reversed")


@app.websocket("/refuse")
async def refuse(websocket: WebSocket):
    await websocket.close(code=1008)


@app.get("/")
async def index():
    return {"ok": True}
