"""WSGI findings of the maintainer review of issue 9's change (defects 5, 6, 7, 9 and 11 of
that review). App: tests/apps/wsgi_followup.py."""
from __future__ import annotations

import json
import re
import signal
import socket
import struct
from pathlib import Path

from wsgi_helpers import request, stalled_client

APP = "wsgi_followup:app"
APP_SOURCE = (Path(__file__).parent.parent / "apps" / "wsgi_followup.py").read_bytes()


def _start(gannet_server, *args: str):
    return gannet_server(APP, "--interface", "wsgi", *args)


def test_file_wrapper_response_does_not_hold_up_shutdown(gannet_server):
    """Review defect 5: the sendfile task of a wsgi.file_wrapper response stayed in the
    set the graceful drain waits on, so after one such response every shutdown waited
    the whole --timeout-graceful-shutdown. Now it leaves the set when it ends."""
    server = _start(gannet_server, "--timeout-graceful-shutdown", "60")
    status, _, body = request(server, "GET", "/file")
    assert (status, body) == (200, APP_SOURCE)
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=20) == 0  # well under the 60 s grace: nothing was waited on
    assert "Graceful shutdown timed out" not in server.log


def test_stale_write_callable_cannot_reach_a_later_response(gannet_server):
    """Review defect 6: write() was one callable per worker, so a thread that kept the
    write() of a finished request wrote into the worker's next response, another client's.
    Now it raises, and the next client gets exactly its own body."""
    server = _start(gannet_server, "--threads", "1")
    assert request(server, "GET", "/stale-a")[::2] == (200, b"response A")
    # Another connection, the same (only) worker; the late write happens inside this request.
    status, _, body = request(server, "GET", "/stale-b")
    assert (status, body) == (200, b"response B")
    match = server.wait_for_log(r"app: late write (raised \w+|returned)")
    assert match.group(1) == "raised AssertionError"


def test_context_variables_do_not_leak_between_requests(gannet_server):
    """Review defect 7: the worker reused one contextvars.Context for every request it
    served, so a variable set (and never reset) by one request was seen by the next one,
    another client's. Each request now starts in a fresh context."""
    server = _start(gannet_server, "--threads", "1")
    assert request(server, "GET", "/ctx?set=alice")[::2] == (200, b"saw anonymous")
    assert request(server, "GET", "/ctx")[::2] == (200, b"saw anonymous")
    assert request(server, "GET", "/ctx?set=bob")[::2] == (200, b"saw anonymous")


def test_asterisk_form_under_root_path(gannet_server):
    """Review defect 9: ``OPTIONS *`` under --root-path got an empty PATH_INFO (the root's
    length was cut off a target that never carried it). The asterisk names the server, not
    a resource under the mount (RFC 9112 §3.2.4): SCRIPT_NAME is empty and PATH_INFO is
    "*", so SCRIPT_NAME + PATH_INFO is still the request-target (PEP 3333)."""
    server = _start(gannet_server, "--root-path", "/app")
    status, _, body = request(server, "OPTIONS", "*")
    assert status == 200, body
    assert json.loads(body) == {"SCRIPT_NAME": "", "PATH_INFO": "*"}
    status, _, body = request(server, "GET", "/app/x")  # a path under the mount is unchanged
    assert json.loads(body) == {"SCRIPT_NAME": "/app", "PATH_INFO": "/x"}


def test_stream_whose_client_leaves_gets_one_aborted_access_line(gannet_server):
    """Review defect 11: a streamed WSGI response whose client reset the connection got
    no access line at all (only a debug line). Now it gets one, marked aborted, as an ASGI
    response does; the iterable is closed and no ERROR is logged."""
    server = _start(gannet_server, "--threads", "1", "--access-log", "--log-level", "debug")
    sock = stalled_client(server, "/stream?tag=gone")
    try:
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 ")  # the stream is under way
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # an RST: the server learns at once that the client left
    server.wait_for_log(r"app: closed gone\b", timeout=15)
    server.wait_for_log(r'(?m)^.*"GET /stream\?tag=gone[^"]*".*\[aborted\]$', timeout=10)
    # A later request's access line comes after anything the first one could still log.
    assert request(server, "GET", "/ctx")[::2] == (200, b"saw anonymous")
    server.wait_for_log(r'"GET /ctx ')
    log = server.log
    assert len(re.findall(r'"GET /stream\?tag=gone', log)) == 1
    assert "[ERROR]" not in log and "Traceback" not in log


def test_parked_response_counts_against_limit_concurrency(gannet_server):
    """Review note 13 (documented, docs/wsgi.md "The memory bound"): a parked response and
    what its generator holds live until its client reads, leaves or times out, so
    --limit-concurrency is the cap to use: a parked response counts as in flight (a new
    request gets a 503) until it ends."""
    server = _start(gannet_server, "--threads", "1", "--limit-concurrency", "1", "--access-log")
    sock = stalled_client(server, "/stream?tag=parked")
    try:
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert request(server, "GET", "/ctx")[0] == 503
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    server.wait_for_log(r"app: closed parked\b", timeout=15)
    # Logged by the loop as the request ends, just before it stops counting as in flight.
    server.wait_for_log(r'"GET /stream\?tag=parked[^"]*".*\[aborted\]', timeout=10)
    assert request(server, "GET", "/ctx")[::2] == (200, b"saw anonymous")
