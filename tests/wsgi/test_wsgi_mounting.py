"""Where a WSGI app is mounted (--root-path → SCRIPT_NAME/PATH_INFO, issue 9 defect 15)
and what counts as a WSGI app (a class, PEP 3333; defect 16). Apps:
tests/apps/wsgi_flow_app.py, tests/apps/wsgi_classes.py."""
from __future__ import annotations

import json

import pytest

from wsgi_helpers import request


def _mount(server, path: str) -> tuple[str, str]:
    sep = "&" if "?" in path else "?"
    status, _, body = request(server, "GET", f"{path}{sep}env=1")
    assert status == 200, body
    env = json.loads(body)
    return env["SCRIPT_NAME"], env["PATH_INFO"]


@pytest.mark.parametrize("path,expected", [
    ("/app/x", ("/app", "/x")),            # the proxy kept the prefix (gunicorn's SCRIPT_NAME)
    ("/app/x/y%20z", ("/app", "/x/y z")),
    ("/app", ("/app", "")),                # the mount point itself (PEP 3333: may be empty)
    ("/app/", ("/app", "/")),
    ("/app/app/x", ("/app", "/app/x")),    # only one prefix is taken off
    ("/x", ("/app", "/x")),                # the proxy stripped it already (uvicorn)
    ("/application/x", ("/app", "/application/x")),  # not under /app: a segment boundary
])
def test_root_path_splits_script_name_and_path_info(gannet_server, path, expected):
    server = gannet_server("wsgi_flow_app:app", "--interface", "wsgi", "--root-path", "/app")
    assert _mount(server, path) == expected


def test_no_root_path_leaves_path_info_whole(gannet_server):
    server = gannet_server("wsgi_flow_app:app", "--interface", "wsgi")
    assert _mount(server, "/app/x") == ("", "/app/x")


@pytest.mark.parametrize("target,interface,body", [
    ("wsgi_classes:WSGIClass", "WSGI", b"wsgi class /hello"),
    ("wsgi_classes:ASGI2Class", "ASGI2", b"asgi2 class /hello"),
])
def test_class_apps_are_detected(gannet_server, target, interface, body):
    """PEP 3333 allows a class as the app (called with environ and start_response, it
    returns the iterable); class-style ASGI 2 (instantiated with the scope) stays ASGI 2."""
    server = gannet_server(target)
    server.wait_for_log(rf"Detected the {interface} interface")
    status, _, reply = request(server, "GET", "/hello")
    assert (status, reply) == (200, body)
