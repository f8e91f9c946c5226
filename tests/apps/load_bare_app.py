"""Only ``app`` (ASGI): a bare ``gannet load_bare_app`` falls back to it."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"load bare: app (asgi)"})
