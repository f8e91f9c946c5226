"""Only a factory: a missing attribute suggests it with --factory."""


def create_app():
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    return app
