"""A script file whose ``application`` is ASGI 3: interface detection serves it as ASGI."""


async def application(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"asgi {scope['path']} from {__name__}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
