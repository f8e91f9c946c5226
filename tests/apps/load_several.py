"""Two callables that look like apps (an ASGI function and a WSGI object) and a factory:
a missing attribute lists the two apps."""


async def api(scope, receive, send):
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


class Site:
    def __call__(self, environ, start_response):
        start_response("204 No Content", [])
        return []


site = Site()


def create_app():
    return api
