"""Apps that show what a request learns about its TLS connection (tests/tls).

``asgi_app`` (HTTP and WebSocket):
/            JSON: {"has_tls", "tls" (the extension; the chain as a list), "scheme",
             "client", "extension_names", "count" (requests the app has seen, this one included)}
/mutate      the same, after changing every field of its own tls dict and the chain's
             container (an app may: the next request must not see it)
WebSocket:   accept, send the same JSON as one text message, close 1000

``wsgi_app``: JSON: {"keys": every environ key HTTPS or SSL_* with its value,
"scheme": wsgi.url_scheme, "count"}.
"""
from __future__ import annotations

import json
import threading

from plain_lifespan import handle_lifespan

_count = 0
_lock = threading.Lock()


def _seen() -> int:
    global _count
    with _lock:
        _count += 1
        return _count


def _report(scope: dict) -> bytes:
    extensions = scope.get("extensions") or {}
    tls = extensions.get("tls")
    shown = None
    if tls is not None:
        shown = dict(tls)
        shown["client_cert_chain"] = list(tls["client_cert_chain"])
        shown["chain_type"] = type(tls["client_cert_chain"]).__name__
    return json.dumps({
        "has_tls": "tls" in extensions,
        "tls": shown,
        "scheme": scope["scheme"],
        "client": scope.get("client"),
        "extension_names": sorted(extensions),
        "count": _seen(),
    }).encode()


async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    if scope["type"] == "websocket":
        message = await receive()
        assert message["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": _report(scope).decode()})
        await send({"type": "websocket.close", "code": 1000})
        return
    body = _report(scope)
    if scope["path"] == "/mutate":
        tls = scope["extensions"].get("tls")
        if tls is not None:
            for key in list(tls):
                tls[key] = "changed by the app"
            tls["added"] = True
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ, start_response):
    body = json.dumps({
        "keys": {key: value for key, value in environ.items()
                 if key == "HTTPS" or key.startswith("SSL_")},
        "scheme": environ["wsgi.url_scheme"],
        "count": _seen(),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
