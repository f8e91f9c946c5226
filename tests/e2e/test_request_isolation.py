"""What an app can observe about the task and context it runs in: a fresh contextvars
context per request (also on one keep-alive connection), one current task from start to
end, cancellations that do not leak into the next request, and no request waiting for the
previous app's after-response work. Any change to how requests are started (an eager
first step, a task per connection) must keep these."""
from __future__ import annotations

import json

from corpus.wire import Reader, read_response

APP = "isolation_app:app"


def _get(sock, reader: Reader, path: str) -> bytes:
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
    response = read_response(reader)
    assert response.status == 200, response
    return response.body


def test_each_request_gets_a_fresh_context_on_one_connection(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        reader = Reader(sock)
        assert _get(sock, reader, "/ctx-set") == b"unset"
        assert _get(sock, reader, "/ctx-get") == b"unset"
        assert _get(sock, reader, "/ctx-set") == b"unset"
        # pipelined: both in one read
        sock.sendall(b"GET /ctx-set HTTP/1.1\r\nHost: t\r\n\r\nGET /ctx-get HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(reader).body == b"unset"
        assert read_response(reader).body == b"unset"


def test_one_current_task_across_a_suspension(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        reader = Reader(sock)
        for _ in range(3):
            seen = json.loads(_get(sock, reader, "/task"))
            assert seen == {"task": True, "same_after_await": True, "cancelling_at_start": 0}


def test_cancellations_stay_inside_their_request(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        reader = Reader(sock)
        assert _get(sock, reader, "/timeout") == b"timed out"
        assert _get(sock, reader, "/anyio-scope") == b"moved on"
        assert json.loads(_get(sock, reader, "/task"))["cancelling_at_start"] == 0
        assert _get(sock, reader, "/timeout") == b"timed out"


def test_next_request_does_not_wait_for_work_after_the_response(gannet_server):
    """/bg keeps running after its response until /release, sent on the same connection,
    sets it free: if the second request waited for the first app, this would hang."""
    server = gannet_server(APP)
    with server.connect(timeout=10) as sock:
        reader = Reader(sock)
        assert _get(sock, reader, "/bg") == b"bg answered"
        assert _get(sock, reader, "/release") == b"released"
    server.wait_for_log("isolation-bg-finished")
