"""Apps that say who they think the client is: for Gannet behind real front ends (issue 12).

Every app answers the same paths, so one test can drive the ASGI and the WSGI variant:

/who (any other path too)   JSON of what the server told the app about the request:
                            ASGI: client, scheme, server, root_path, path, host header and
                            the forwarding headers; WSGI: REMOTE_ADDR, REMOTE_PORT,
                            wsgi.url_scheme, HTTP_HOST, SERVER_NAME, SERVER_PORT, SCRIPT_NAME,
                            PATH_INFO and the forwarding headers. ``instance`` is the
                            ``IDENTITY_INSTANCE`` environment variable (which Gannet answered).
/health                     200 "ok" (front-end health checks)
/stream?token=T&parts=N     a chunked response (no Content-Length) of N parts; after each part
                            but the last the app waits until ``/release?token=T`` is requested,
                            so a client that reads part k before releasing it proves the parts
                            really travel one by one (a buffering front end would deadlock the
                            client's read, which has a deadline). A release that never comes
                            ends the stream after 20 s with a part saying so.
/release?token=T            wakes the stream T (any instance of this module in this process)
/upload                     reads the whole body, answers {"size", "sha256", "reads"}
/ws  (ASGI only)            WebSocket: sends {"client", "scheme", "server", "host",
                            "root_path", "path"} as JSON text, then echoes every message

``asgi_app`` and ``wsgi_app`` are the two interface variants. ``flask_app`` and
``make_django`` (a factory: ``--factory proxy_identity:make_django``) are the same API
written with the frameworks people put behind nginx's uwsgi_pass: /who, /upload (a
multipart form with a ``file`` field and a ``field`` field), /upload-raw (any body),
/stream, /release, /health.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from urllib.parse import parse_qs

INSTANCE = os.environ.get("IDENTITY_INSTANCE", "")
FORWARDING = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port",
              b"x-forwarded-prefix", b"x-forwarded-server", b"forwarded", b"x-real-ip")
RELEASE_TIMEOUT = 20.0


# ---------------------------------------------------------------------------- ASGI

_async_releases: dict[str, asyncio.Event] = {}


def _async_release_event(token: str) -> asyncio.Event:
    event = _async_releases.get(token)
    if event is None:
        event = _async_releases[token] = asyncio.Event()
    return event


def _scope_identity(scope: dict) -> dict:
    headers = {}
    host = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1")
        if name in FORWARDING:
            headers.setdefault(name.decode(), []).append(value.decode("latin-1"))
    return {
        "interface": "asgi",
        "instance": INSTANCE,
        "type": scope["type"],
        "client": list(scope["client"]) if scope.get("client") else None,
        "scheme": scope.get("scheme"),
        "server": list(scope["server"]) if scope.get("server") else None,
        "root_path": scope.get("root_path", ""),
        "path": scope["path"],
        "host": host,
        "forwarding": headers,
    }


async def _json(send, payload: dict, status: int = 200) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _websocket(scope, receive, send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(_scope_identity(scope))})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def asgi_app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "websocket":
        await _websocket(scope, receive, send)
        return
    # The path relative to the mount point (ASGI: path includes root_path).
    path = scope["path"][len(scope.get("root_path", "")):] or "/"
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if path == "/health":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
    elif path == "/upload":
        digest = hashlib.sha256()
        size = reads = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            digest.update(chunk)
            size += len(chunk)
            reads += 1
            if not message.get("more_body", False):
                break
        await _json(send, {"instance": INSTANCE, "size": size, "sha256": digest.hexdigest(),
                           "reads": reads})
    elif path == "/stream":
        token = query.get("token", [""])[0]
        parts = int(query.get("parts", ["3"])[0])
        event = _async_release_event(token)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for index in range(parts):
            last = index == parts - 1
            await send({"type": "http.response.body", "more_body": not last,
                        "body": f"part {index} from {INSTANCE}\n".encode()})
            if last:
                break
            try:
                await asyncio.wait_for(event.wait(), RELEASE_TIMEOUT)
            except asyncio.TimeoutError:
                await send({"type": "http.response.body", "body": b"never released\n"})
                break
            event.clear()
        _async_releases.pop(token, None)
    elif path == "/release":
        _async_release_event(query.get("token", [""])[0]).set()
        await _json(send, {"released": True, "instance": INSTANCE})
    else:
        await _json(send, _scope_identity(scope))


# ---------------------------------------------------------------------------- WSGI

_thread_releases: dict[str, threading.Event] = {}
_thread_lock = threading.Lock()

ENVIRON_KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME",
                "SERVER_PORT", "SCRIPT_NAME", "PATH_INFO", "HTTPS", "REQUEST_SCHEME")


def _thread_release_event(token: str) -> threading.Event:
    with _thread_lock:
        event = _thread_releases.get(token)
        if event is None:
            event = _thread_releases[token] = threading.Event()
        return event


def _environ_identity(environ: dict) -> dict:
    forwarding = {}
    for name in FORWARDING:
        key = "HTTP_" + name.decode().upper().replace("-", "_")
        if key in environ:
            forwarding[name.decode()] = [environ[key]]
    identity = {key: environ.get(key) for key in ENVIRON_KEYS}
    identity.update(interface="wsgi", instance=INSTANCE, forwarding=forwarding)
    return identity


def _wsgi_json(start_response, payload: dict) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def wsgi_app(environ, start_response):
    path = environ.get("PATH_INFO", "") or "/"
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/health":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    if path == "/upload":
        stream = environ["wsgi.input"]
        digest = hashlib.sha256()
        size = reads = 0
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            reads += 1
        return _wsgi_json(start_response, {"instance": INSTANCE, "size": size,
                                           "sha256": digest.hexdigest(), "reads": reads})
    if path == "/stream":
        token = query.get("token", [""])[0]
        parts = int(query.get("parts", ["3"])[0])
        event = _thread_release_event(token)
        start_response("200 OK", [("Content-Type", "text/plain")])

        def generate():
            try:
                for index in range(parts):
                    yield f"part {index} from {INSTANCE}\n".encode()
                    if index == parts - 1:
                        break
                    if not event.wait(RELEASE_TIMEOUT):
                        yield b"never released\n"
                        break
                    event.clear()
            finally:
                with _thread_lock:
                    _thread_releases.pop(token, None)
        return generate()
    if path == "/release":
        _thread_release_event(query.get("token", [""])[0]).set()
        return _wsgi_json(start_response, {"released": True, "instance": INSTANCE})
    return _wsgi_json(start_response, _environ_identity(environ))


# ---------------------------------------------------------------------------- Flask

def _make_flask():
    from flask import Flask, Response, jsonify, request, stream_with_context

    app = Flask("proxy_identity_flask")
    app.config["MAX_CONTENT_LENGTH"] = None

    @app.get("/who")
    def who():
        return jsonify(framework="flask", remote_addr=request.remote_addr, scheme=request.scheme,
                       is_secure=request.is_secure, host=request.host, url=request.url,
                       environ={key: request.environ.get(key) for key in ENVIRON_KEYS})

    @app.get("/health")
    def health():
        return "ok"

    @app.post("/upload")
    def upload():
        stored = request.files["file"]
        data = stored.read()
        return jsonify(framework="flask", name=stored.filename, size=len(data),
                       sha256=hashlib.sha256(data).hexdigest(), field=request.form.get("field"))

    @app.post("/upload-raw")
    def upload_raw():
        data = request.get_data()
        return jsonify(framework="flask", size=len(data), sha256=hashlib.sha256(data).hexdigest())

    @app.get("/stream")
    def stream():
        token = request.args.get("token", "")
        parts = int(request.args.get("parts", "3"))
        event = _thread_release_event(token)

        def generate():
            for index in range(parts):
                yield f"part {index} from flask\n"
                if index == parts - 1:
                    break
                if not event.wait(RELEASE_TIMEOUT):
                    yield "never released\n"
                    break
                event.clear()
        return Response(stream_with_context(generate()), mimetype="text/plain")

    @app.get("/release")
    def release():
        _thread_release_event(request.args.get("token", "")).set()
        return jsonify(released=True)

    return app


def __getattr__(name: str):
    # Flask is imported only when the flask app is asked for (PEP 562), so the plain apps
    # load without it.
    if name == "flask_app":
        app = _make_flask()
        globals()["flask_app"] = app
        return app
    raise AttributeError(name)


# ---------------------------------------------------------------------------- Django

def make_django():
    """A one-file Django project: settings configured here, no database, the URLconf an
    object with ``urlpatterns`` (Django accepts one in place of a module name)."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="proxy-identity-tests",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=_DjangoUrlconf,
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            DATABASES={},
            USE_TZ=True,
            DATA_UPLOAD_MAX_MEMORY_SIZE=None,
        )
        django.setup()
        _DjangoUrlconf.urlpatterns = _django_urlpatterns()
    from django.core.wsgi import get_wsgi_application
    return get_wsgi_application()


class _DjangoUrlconf:
    urlpatterns: list = []


def _django_urlpatterns() -> list:
    from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    def who(request):
        return JsonResponse({
            "framework": "django", "remote_addr": request.META.get("REMOTE_ADDR"),
            "scheme": request.scheme, "is_secure": request.is_secure(),
            "host": request.get_host(), "url": request.build_absolute_uri(),
            "environ": {key: request.META.get(key) for key in ENVIRON_KEYS},
        })

    def health(request):
        return HttpResponse("ok", content_type="text/plain")

    @csrf_exempt
    def upload(request):
        stored = request.FILES["file"]
        data = stored.read()
        return JsonResponse({"framework": "django", "name": stored.name, "size": len(data),
                             "sha256": hashlib.sha256(data).hexdigest(),
                             "field": request.POST.get("field")})

    @csrf_exempt
    def upload_raw(request):
        data = request.body
        return JsonResponse({"framework": "django", "size": len(data),
                             "sha256": hashlib.sha256(data).hexdigest()})

    def stream(request):
        token = request.GET.get("token", "")
        parts = int(request.GET.get("parts", "3"))
        event = _thread_release_event(token)

        def generate():
            for index in range(parts):
                yield f"part {index} from django\n"
                if index == parts - 1:
                    break
                if not event.wait(RELEASE_TIMEOUT):
                    yield "never released\n"
                    break
                event.clear()
        return StreamingHttpResponse(generate(), content_type="text/plain")

    def release(request):
        _thread_release_event(request.GET.get("token", "")).set()
        return JsonResponse({"released": True})

    return [path("who", who), path("health", health), path("upload", upload),
            path("upload-raw", upload_raw), path("stream", stream), path("release", release)]
