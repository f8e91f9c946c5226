"""Real frameworks, unchanged: a Django project made at test time, Flask, Bottle.
Each is served wrapped in wsgiref's validator, and Django also exactly as a user types it
(``gannet mysite.wsgi:application``)."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import uuid

import pytest

from wsgi_helpers import request, stalled_client

VIEWS = '''
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def form(request):
    return JsonResponse({"name": request.POST.get("name"), "items": request.POST.getlist("item"),
                         "method": request.method, "path": request.path,
                         "script_name": request.META.get("SCRIPT_NAME")})


@csrf_exempt
def body(request):
    return HttpResponse(str(len(request.body)).encode())


def stream(request):
    return StreamingHttpResponse((f"row {i}\\n".encode() for i in range(100)),
                                 content_type="text/plain")


def download(request):
    return FileResponse(open(request.GET["path"], "rb"), as_attachment=True, filename="data.bin")
'''

URLS = '''
from django.urls import path
from . import views

urlpatterns = [
    path("form/", views.form),
    path("body/", views.body),
    path("stream/", views.stream),
    path("download/", views.download),
]
'''

VALIDATED = '''
from wsgiref.validate import validator
from mysite.wsgi import application

app = validator(application)
'''


@pytest.fixture(scope="module")
def django_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("django")
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(root)],
                   check=True, timeout=60)
    (root / "mysite" / "views.py").write_text(VIEWS)
    (root / "mysite" / "urls.py").write_text(URLS)
    (root / "validated.py").write_text(VALIDATED)
    return root


@pytest.mark.parametrize("target", ["mysite.wsgi:application", "validated:app"])
def test_django(gannet_server, django_project, tmp_path, target):
    if target.startswith("mysite"):  # exactly what a user types: --interface auto
        server = gannet_server(target, cwd=django_project)
        server.wait_for_log(r"Detected the WSGI interface")
    else:  # validator() hides the signature auto-detection looks at
        server = gannet_server(target, "--interface", "wsgi", cwd=django_project)
    status, _, body = request(server, "POST", "/form/", body=b"name=gannet&item=1&item=2",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    assert json.loads(body) == {"name": "gannet", "items": ["1", "2"], "method": "POST",
                                "path": "/form/", "script_name": ""}
    # past the 1 MiB in-memory buffer (read from the spool), under Django's 2.5 MiB cap
    big = os.urandom(2 * 1024 * 1024)
    status, _, body = request(server, "POST", "/body/", body=big,
                              headers={"Content-Type": "application/octet-stream"})
    assert (status, body) == (200, str(len(big)).encode())
    status, headers, body = request(server, "GET", "/stream/")
    assert status == 200 and body == b"".join(f"row {i}\n".encode() for i in range(100))
    data_file = tmp_path / "data.bin"
    data = os.urandom(2 * 1024 * 1024 + 5)
    data_file.write_bytes(data)
    status, headers, body = request(server, "GET", f"/download/?path={data_file}")
    assert status == 200 and body == data
    assert "attachment" in headers["content-disposition"]


def test_django_root_path(gannet_server, django_project):
    server = gannet_server("validated:app", "--interface", "wsgi", "--root-path", "/app",
                           cwd=django_project)
    status, _, body = request(server, "POST", "/form/", body=b"name=x",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    reply = json.loads(body)
    assert reply["script_name"] == "/app" and reply["path"] == "/app/form/"


def test_django_root_path_prefix_kept_by_the_proxy(gannet_server, django_project):
    """A proxy that passes /app/form/ through to an app mounted at /app: Django routes
    PATH_INFO (/form/) and builds URLs with SCRIPT_NAME (issue 9, defect 15)."""
    server = gannet_server("mysite.wsgi:application", "--root-path", "/app", cwd=django_project)
    status, _, body = request(server, "POST", "/app/form/", body=b"name=y",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    reply = json.loads(body)
    assert reply["script_name"] == "/app" and reply["path"] == "/app/form/"
    assert reply["name"] == "y"


@pytest.fixture
def download_file(tmp_path):
    path = tmp_path / "download.bin"
    path.write_bytes(os.urandom(5 * 1024 * 1024 + 3))
    return path


@pytest.mark.parametrize("target", ["wsgi_flask:app", "wsgi_flask:raw_app"])
def test_flask(gannet_server, download_file, target):
    server = gannet_server(target, "--interface", "wsgi",
                           env={"FLASK_DOWNLOAD": str(download_file)})
    status, _, body = request(server, "GET", "/")
    assert (status, body) == (200, b"flask says hi")
    payload = os.urandom(2 * 1024 * 1024)
    boundary = uuid.uuid4().hex
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"up.bin\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + payload + \
        f"\r\n--{boundary}--\r\n".encode()
    status, _, body = request(server, "POST", "/upload", body=form,
                              headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, body
    assert json.loads(body) == {"name": "up.bin", "size": len(payload), "field": "value",
                                "sha256": hashlib.sha256(payload).hexdigest()}
    status, headers, body = request(server, "GET", "/download")
    assert status == 200 and body == download_file.read_bytes()
    assert headers["content-length"] == str(len(body))
    status, headers, body = request(server, "GET", "/stream")
    assert status == 200 and body == b"".join(f"part {i}\n".encode() for i in range(5))
    assert headers.get("transfer-encoding") == "chunked"
    status, _, body = request(server, "POST", "/json?x=1", body=b'{"a": [1, 2]}',
                              headers={"Content-Type": "application/json"})
    assert status == 200 and json.loads(body) == {"got": {"a": [1, 2]}, "args": {"x": "1"}}


def test_flask_stream_with_context_survives_a_park(gannet_server):
    """Flask's stream_with_context to clients that stop reading: each parked stream keeps
    its request context on whichever thread resumes it (it reads the request in every
    block and pops the context at the end), and requests served meanwhile by the same
    threads never see a request context they did not push."""
    server = gannet_server("wsgi_flask:probe_app", "--interface", "wsgi", "--threads", "2")
    socks = [stalled_client(server, f"/big-stream?tag=s{i}") for i in range(4)]
    try:
        for _ in range(6):
            status, _, body = request(server, "GET", "/probe")
            assert (status, body) == (200, b"clean")
        for i, sock in enumerate(socks):
            response = http.client.HTTPResponse(sock)
            response.begin()
            body = response.read()
            assert response.status == 200
            assert body == b"".join((f"s{i} {n} ".encode() * 8192)[:65536] for n in range(64))
    finally:
        for sock in socks:
            sock.close()
    assert request(server, "GET", "/probe")[2] == b"clean"
    assert "Traceback" not in server.log and "Exception" not in server.log, server.log


def test_flask_chunked_upload(gannet_server, download_file):
    server = gannet_server("wsgi_flask:app", "--interface", "wsgi",
                           env={"FLASK_DOWNLOAD": str(download_file)})
    body = b'{"chunked": true}'
    raw = (b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           + b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body))
    from conftest import raw_request
    response = raw_request(server, raw)
    assert response.startswith(b"HTTP/1.1 200"), response[:300]
    assert json.loads(response.partition(b"\r\n\r\n")[2]) == {"got": {"chunked": True}, "args": {}}


def test_bottle(gannet_server):
    server = gannet_server("wsgi_bottle:app", "--interface", "wsgi")
    status, _, body = request(server, "GET", "/hello/world")
    assert (status, body) == (200, b"hello world")
    status, _, body = request(server, "POST", "/form", body=b"a=1&b=2",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and json.loads(body) == {"a": "1", "length": 7}
    status, _, body = request(server, "GET", "/gen")
    assert (status, body) == (200, b"0;1;2;")
    status, _, _ = request(server, "GET", "/missing")
    assert status == 404
