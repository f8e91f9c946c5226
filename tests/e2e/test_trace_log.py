"""--log-level trace shows the ASGI conversation, as uvicorn's does: every scope, receive
and send of each app call (HTTP request, lifespan), numbered per call, with bodies and
headers abbreviated to their sizes. Below trace nothing of it is logged (the app is not
even wrapped)."""
from __future__ import annotations

import re
import signal

import httpx
import pytest

pytestmark = pytest.mark.timeout(30)

SECRET_BODY = b"body-that-must-not-be-logged"
SECRET_HEADER = "token-that-must-not-be-logged"


def _call_number(log: str, pattern: str) -> str:
    match = re.search(r"\[TRACE\] ASGI \[(\d+)\] " + pattern, log)
    assert match, f"no trace line matching {pattern!r} in:\n{log}"
    return match.group(1)


def test_trace_logs_each_asgi_message_abbreviated(gannet_server):
    server = gannet_server("basic:app", "--log-level", "trace")
    response = httpx.post(server.url + "/echo?q=1", content=SECRET_BODY,
                          headers={"authorization": f"Bearer {SECRET_HEADER}"})
    assert response.content == SECRET_BODY
    server.wait_for_log(r"ASGI \[\d+\] Completed")  # the request's (the lifespan runs on)
    log = server.log
    number = _call_number(log, r"Started scope=\{'type': 'http'.*'method': 'POST'.*'path': '/echo'")
    request = rf"\[TRACE\] ASGI \[{number}\] "
    assert re.search(request + r"Started scope=.*'headers': '<\d+ headers>'", log)
    assert re.search(request + rf"Receive \{{'type': 'http\.request', 'body': '<{len(SECRET_BODY)} bytes>'", log)
    assert re.search(request + r"Send \{'type': 'http\.response\.start', 'status': 200, "
                     r"'headers': '<\d+ headers>'", log)
    assert re.search(request + rf"Send \{{'type': 'http\.response\.body', 'body': '<{len(SECRET_BODY)} bytes>'", log)
    assert re.search(request + "Completed", log)
    assert SECRET_BODY.decode() not in log and SECRET_HEADER not in log
    # The lifespan is traced too, under its own number.
    lifespan = _call_number(log, r"Started scope=\{'type': 'lifespan'")
    assert lifespan != number
    assert re.search(rf"ASGI \[{lifespan}\] Receive \{{'type': 'lifespan\.startup'\}}", log)
    assert re.search(rf"ASGI \[{lifespan}\] Send \{{'type': 'lifespan\.startup\.complete'\}}", log)
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=15) == 0
    assert re.search(rf"ASGI \[{lifespan}\] Receive \{{'type': 'lifespan\.shutdown'\}}", server.log)


def test_trace_logs_an_app_exception(gannet_server):
    server = gannet_server("basic:app", "--log-level", "trace")
    assert httpx.get(server.url + "/error").status_code == 500
    match = server.wait_for_log(r"ASGI \[(\d+)\] Raised (\w+)")
    number = _call_number(server.log, r"Started scope=\{'type': 'http'.*'path': '/error'")
    assert match.group(1) == number
    assert f"ASGI [{number}] Completed" not in server.log


def test_debug_level_logs_no_asgi_messages(gannet_server):
    server = gannet_server("basic:app", "--log-level", "debug")
    assert httpx.post(server.url + "/echo", content=b"x").status_code == 200
    server.wait_for_log(r'"POST /echo HTTP/1\.1" 200')  # the request's access line is out
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=15) == 0
    assert "ASGI [" not in server.log
