"""Class-style apps for interface detection (tests/wsgi/test_wsgi_threads.py).

``WSGIClass`` is the PEP 3333 example: calling the class with (environ, start_response)
returns an iterable instance. ``ASGI2Class`` is class-style ASGI 2: instantiated with the
scope, then awaited with (receive, send).
"""
from __future__ import annotations


class WSGIClass:
    def __init__(self, environ, start_response):
        self.environ = environ
        self.start = start_response

    def __iter__(self):
        body = b"wsgi class " + self.environ["PATH_INFO"].encode("latin-1")
        self.start("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        yield body


class ASGI2Class:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b"asgi2 class " + self.scope["path"].encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})
