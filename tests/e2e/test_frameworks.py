"""Real framework apps served by Gannet unchanged: Starlette, FastAPI, and a Django project
generated at test time with ``django-admin startproject`` (ASGI and WSGI entry points)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import httpx
import pytest

from conftest import start_server


def _stop(srv) -> None:
    if srv.proc.poll() is None:
        srv.proc.send_signal(signal.SIGTERM)
        try:
            srv.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            srv.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def starlette_client():
    srv = start_server("fw_starlette:app")
    with httpx.Client(base_url=srv.url, timeout=5) as client:
        yield client
    _stop(srv)
    assert "Traceback" not in srv.log, srv.log


@pytest.fixture(scope="module")
def fastapi_client():
    srv = start_server("fw_fastapi:app")
    with httpx.Client(base_url=srv.url, timeout=5) as client:
        yield client
    _stop(srv)
    assert "Traceback" not in srv.log, srv.log


# ------------------------------------------------------------------------------ Starlette
def test_starlette_routes_and_json(starlette_client):
    home = starlette_client.get("/")
    assert home.status_code == 200
    assert home.text == "starlette home"
    assert home.headers["content-type"].startswith("text/plain")
    item = starlette_client.get("/items/42", params={"q": "caf\u00e9 & more"},
                                headers={"User-Agent": "gannet-tests"})
    assert item.status_code == 200
    assert item.json() == {"id": 42, "q": "caf\u00e9 & more", "ua": "gannet-tests"}
    assert starlette_client.get("/items/not-a-number").status_code == 404
    assert starlette_client.put("/form").status_code == 405


def test_starlette_streaming_response(starlette_client):
    with starlette_client.stream("GET", "/stream", params={"n": 200}) as response:
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        text = "".join(response.iter_text())
    assert text == "".join(f"line {i}\n" for i in range(200))


def test_starlette_reads_forms_and_bodies(starlette_client):
    urlencoded = starlette_client.post("/form", data={"name": "gannet", "kind": "seabird"})
    assert urlencoded.status_code == 200
    assert urlencoded.json() == {"name": "gannet", "kind": "seabird"}
    payload = bytes(range(256)) * 1024  # 256 KiB: more than one read, more than the buffer
    multipart = starlette_client.post("/form", data={"title": "upload"},
                                      files={"file": ("blob.bin", payload, "application/octet-stream")})
    assert multipart.status_code == 200
    assert multipart.json() == {"title": "upload", "file": {"filename": "blob.bin", "size": len(payload)}}
    document = {"numbers": list(range(1000)), "text": "\u00e9" * 100}
    raw = json.dumps(document).encode()
    body = starlette_client.post("/body", content=raw, headers={"content-type": "application/json"})
    assert body.status_code == 200
    assert body.json() == {"length": len(raw), "json": document}

    def chunked():  # no Content-Length: httpx sends it chunked
        for i in range(0, len(raw), 1000):
            yield raw[i:i + 1000]

    streamed = starlette_client.post("/body", content=chunked())
    assert streamed.status_code == 200
    assert streamed.json() == {"length": len(raw), "json": document}


def test_starlette_background_task_runs_after_the_response(starlette_client):
    token = uuid.uuid4().hex
    response = starlette_client.get("/background", params={"token": token})
    assert response.status_code == 200
    assert response.json() == {"scheduled": token}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if token in starlette_client.get("/done").json()["done"]:
            break
    else:
        pytest.fail("the background task never ran")


# -------------------------------------------------------------------------------- FastAPI
def test_fastapi_path_and_query_params(fastapi_client):
    response = fastapi_client.get("/users/7", params={"verbose": "true"})
    assert response.status_code == 200
    assert response.json() == {"user_id": 7, "verbose": True}
    assert fastapi_client.get("/users/7").json() == {"user_id": 7, "verbose": False}
    bad = fastapi_client.get("/users/seven")
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["path", "user_id"]


def test_fastapi_pydantic_body(fastapi_client):
    created = fastapi_client.post("/items", json={"name": "fish", "price": 2.5, "tags": ["food"]})
    assert created.status_code == 201
    assert created.json() == {"created": {"name": "fish", "price": 2.5, "tags": ["food"]}, "total": 3.0}
    invalid = fastapi_client.post("/items", json={"name": "", "price": -1})
    assert invalid.status_code == 422
    assert sorted(e["loc"][-1] for e in invalid.json()["detail"]) == ["name", "price"]
    malformed = fastapi_client.post("/items", content=b'{"name": "fish", "price":',
                                    headers={"content-type": "application/json"})
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["type"] == "json_invalid"


def test_fastapi_dependency_and_openapi(fastapi_client):
    assert fastapi_client.get("/me").status_code == 401
    assert fastapi_client.get("/me", headers={"X-Token": "wrong"}).json() == {"detail": "bad token"}
    me = fastapi_client.get("/me", headers={"X-Token": "secret"})
    assert me.status_code == 200
    assert me.json() == {"user": "alice"}
    schema = fastapi_client.get("/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "gannet-test"
    assert set(schema.json()["paths"]) == {"/users/{user_id}", "/items", "/me"}
    docs = fastapi_client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text


# --------------------------------------------------------------------------------- Django
VIEWS = '''
import json

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


def hello(request):
    return HttpResponse("hello from django, " + request.GET.get("name", "nobody"))


async def hello_async(request):
    return JsonResponse({"async": True, "path": request.path, "host": request.get_host()})


@csrf_exempt
@require_POST
def echo_json(request):
    data = json.loads(request.body)
    return JsonResponse({"received": data, "content_type": request.content_type}, status=201)


@require_POST
def protected(request):  # CSRF-protected: a POST without a token must get 403
    return HttpResponse("should not get here")
'''

URLS = '''
from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("hello/", views.hello),
    path("hello-async/", views.hello_async),
    path("api/echo/", views.echo_json),
    path("protected/", views.protected),
]
'''


@pytest.fixture(scope="module")
def django_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("django")
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(root)],
                   check=True, timeout=60, capture_output=True)
    package = root / "mysite"
    assert (package / "asgi.py").exists() and (package / "wsgi.py").exists()
    (package / "views.py").write_text(textwrap.dedent(VIEWS))
    (package / "urls.py").write_text(textwrap.dedent(URLS))
    return root


@pytest.mark.parametrize("entry", ["mysite.asgi:application", "mysite.wsgi:application"])
def test_django_project(django_project, entry):
    srv = start_server(entry, "--app-dir", str(django_project), cwd=django_project)
    try:
        interface = "WSGI" if ".wsgi:" in entry else "ASGI"
        srv.wait_for_log(rf"Detected the {interface}\S* interface for {entry}")
        with httpx.Client(base_url=srv.url, timeout=5) as client:
            hello = client.get("/hello/", params={"name": "gannet"})
            assert hello.status_code == 200
            assert hello.text == "hello from django, gannet"
            asynchronous = client.get("/hello-async/")
            assert asynchronous.status_code == 200
            assert asynchronous.json() == {"async": True, "path": "/hello-async/",
                                           "host": f"127.0.0.1:{srv.port}"}
            document = {"bird": "gannet", "wingspan_cm": 180, "tags": ["sea", "\u00e9"]}
            echo = client.post("/api/echo/", json=document)
            assert echo.status_code == 201
            assert echo.json() == {"received": document, "content_type": "application/json"}
            assert client.get("/api/echo/").status_code == 405
            assert client.post("/protected/", data={"x": "1"}).status_code == 403
            missing = client.get("/no/such/page/")
            assert missing.status_code == 404
            login = client.get("/admin/login/")
            assert login.status_code == 200
            assert "csrftoken" in login.cookies
    finally:
        _stop(srv)
    assert "Traceback" not in srv.log, srv.log
