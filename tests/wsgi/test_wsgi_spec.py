"""PEP 3333 through a real server: environ, wsgi.input, start_response, write(), iterables,
file_wrapper, errors. The app is wrapped in wsgiref's validator (see tests/apps/wsgi_app.py),
so a breach by the server shows up as a 500 here."""
from __future__ import annotations

import json
import os
import random
import socket
import time

import pytest

from conftest import raw_request
from wsgi_helpers import get_json, request, wsgi_server  # noqa: F401 (fixture)


@pytest.fixture
def server(wsgi_server):
    return wsgi_server()


def test_hello_and_interface_detection(gannet_server):
    server = gannet_server("wsgi_app:auto_app")  # --interface auto
    server.wait_for_log(r"Detected the WSGI interface")
    status, headers, body = request(server, "GET", "/")
    assert (status, body) == (200, b"hello")
    assert headers["content-length"] == "5"


def test_environ_required_keys(server):
    env = get_json(server, "/environ?a=1&b=%20x", headers={"X-Custom": "v", "Cookie": "a=1"})
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1&b=%20x"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"].isdigit()
    assert env["HTTP_X_CUSTOM"] == "v"
    assert env["HTTP_HOST"] == f"{server.host}:{server.port}"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert env["has_file_wrapper"] is True
    assert env["input_methods"] == ["read", "readline", "readlines", "__iter__"]
    assert "CONTENT_LENGTH" not in env or env["CONTENT_LENGTH"] in ("", "0")


def test_environ_threads_one_is_not_multithread(wsgi_server):
    server = wsgi_server("--threads", "1")
    assert get_json(server, "/environ")["wsgi.multithread"] is False


def test_content_headers_and_repeated_headers(server):
    data = (b"POST /environ HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 3\r\nX-Many: a\r\nX-Many: b\r\nCookie: a=1\r\nCookie: b=2\r\n"
            b"X_Under: spoof\r\nConnection: close\r\n\r\nabc")
    response = raw_request(server, data)
    head, _, body = response.partition(b"\r\n\r\n")
    env = json.loads(body)
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["HTTP_X_MANY"] == "a, b"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_X_UNDER" not in env  # ambiguous with X-Under: dropped
    assert env["SERVER_NAME"] == "127.0.0.1"


def _raw_environ(server, target: bytes) -> dict:
    response = raw_request(server, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200"), response[:300]
    return json.loads(response.partition(b"\r\n\r\n")[2])


def test_path_info_is_latin1_bytes_as_str(server):
    # %C3%A9 is UTF-8 "é": PEP 3333 hands the app the decoded bytes read as latin-1, and
    # %2F becomes "/" in PATH_INFO (the raw form stays in nothing but the request line).
    env = _raw_environ(server, b"/environ/caf%C3%A9/a%2Fb?q=%C3%A9")
    assert env["PATH_INFO"] == "/environ/caf\u00c3\u00a9/a/b"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/environ/caf\u00e9/a/b"
    assert env["QUERY_STRING"] == "q=%C3%A9"
    env = _raw_environ(server, b"/environ/%FF")  # not UTF-8 at all: still one str per byte
    assert env["PATH_INFO"] == "/environ/\u00ff"
    env = _raw_environ(server, b"/environ/../x")  # passed as sent: no normalisation
    assert env["PATH_INFO"] == "/environ/../x"


def test_root_path_becomes_script_name(wsgi_server):
    server = wsgi_server("--root-path", "/m\u00fcnt")
    env = _raw_environ(server, b"/environ/caf%C3%A9")
    assert env["SCRIPT_NAME"] == "/m\u00fcnt".encode("utf-8").decode("latin-1")
    assert env["PATH_INFO"] == "/environ/caf\u00c3\u00a9"


def test_http10_and_unix_socket_environ(gannet_server, tmp_path):
    path = str(tmp_path / "g.sock")
    server = gannet_server("wsgi_app:app", "--interface", "wsgi", "--uds", path,
                           port_args=())
    assert server.uds == path  # the server reports listening on this Unix socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    sock.sendall(b"GET /environ HTTP/1.0\r\nHost: example.org:8080\r\n\r\n")
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    sock.close()
    env = json.loads(b"".join(chunks).partition(b"\r\n\r\n")[2])
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert env["SERVER_NAME"] == "example.org"
    assert env["SERVER_PORT"] == "8080"


# ---------------------------------------------------------------- wsgi.input
BODY = b"line one\nline two\r\nthird line without end"


# Past 64 KiB a Content-Length body is written by the kernel straight into one buffer
# (http/body_sink.py, wsgi/body.py): every read style must see the same bytes either way.
BIG_BODY = b"".join(b"line %d %s\r\n" % (i, b"z" * (i % 300)) for i in range(3000)) + b"no newline"


@pytest.mark.parametrize("body", [BODY, BIG_BODY], ids=["small", "buffered"])
@pytest.mark.parametrize("path", ["/echo", "/read-n?n=1", "/read-n?n=5", "/read-n?n=65536",
                                  "/read-n?n=1000000"])
def test_input_read(server, path, body):
    status, _, reply = request(server, "POST", path, body=body)
    assert (status, reply) == (200, body)


@pytest.mark.parametrize("body", [BODY, BIG_BODY], ids=["small", "buffered"])
@pytest.mark.parametrize("path", ["/readline", "/readlines", "/iter"])
def test_input_lines(server, path, body):
    status, _, reply = request(server, "POST", path, body=body)
    assert status == 200
    assert json.loads(reply) == [line.decode() for line in body.splitlines(keepends=True)]


@pytest.mark.parametrize("seed", range(3))
def test_large_bodies_in_pieces_with_pipelined_requests(server, seed):
    """Bodies received into one buffer stop at their last byte: whatever follows in the
    same read, here the next pipelined request, is parsed as a request, in order."""
    rng = random.Random(seed)
    bodies = [os.urandom(rng.choice([70_000, 300_000, 1_000_003])) for _ in range(3)]
    wire = b"".join(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body) for body in bodies)
    wire += b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        position = 0
        while position < len(wire):
            size = rng.choice([1, 100, 5000, 65536, 400_000])
            sock.sendall(wire[position:position + size])
            position += size
        replies = []
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            replies.append(chunk)
    reply = b"".join(replies)
    for body in bodies:
        head, _, rest = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"content-length: %d" % len(body) in head.lower()
        assert rest[:len(body)] == body
        reply = rest[len(body):]
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"hello")


def test_large_body_client_gone_midway_frees_its_buffer(wsgi_server):
    """A client that leaves halfway through a buffered body gives its share of the memory
    budget back: with a budget of one body, the next upload is still served in memory."""
    server = wsgi_server("--wsgi-body-buffer", "600000", "--log-level", "debug")
    for attempt in range(3):
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n")
            sock.sendall(b"a" * 200_000)
        deadline = time.monotonic() + 10
        while server.log.count("client went away after") <= attempt:
            assert time.monotonic() < deadline, server.log
            time.sleep(0.01)
        status, _, body = request(server, "POST", "/echo", body=BIG_BODY)
        assert (status, body) == (200, BIG_BODY)
    assert "spooling" not in server.log
    assert server.log.count("client went away after 200000 bytes") == 3, server.log


def test_input_empty_body(server):
    status, _, body = request(server, "POST", "/echo", body=b"")
    assert (status, body) == (200, b"")
    status, _, body = request(server, "GET", "/read-n?n=10")
    assert (status, body) == (200, b"")
    status, _, body = request(server, "GET", "/readlines")
    assert (status, json.loads(body)) == (200, [])


def test_chunked_request_body_gets_content_length(server):
    data = (b"POST /environ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    env = json.loads(raw_request(server, data).partition(b"\r\n\r\n")[2])
    assert env["CONTENT_LENGTH"] == "11"
    data = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert raw_request(server, data).endswith(b"\r\n\r\nhello world")


def test_body_spooled_past_buffer(wsgi_server):
    server = wsgi_server("--wsgi-body-buffer", "1000")
    body = os.urandom(300_000)
    status, _, reply = request(server, "POST", "/read-n?n=4096", body=body)
    assert status == 200 and reply == body
    status, _, reply = request(server, "POST", "/echo", body=body)
    assert status == 200 and reply == body


def test_limit_request_body_413(wsgi_server):
    server = wsgi_server("--limit-request-body", "1000")
    status, _, _ = request(server, "POST", "/upload", body=b"x" * 1001)
    assert status == 413
    data = (b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"100\r\n" + b"y" * 256 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n")
    assert raw_request(server, data).startswith(b"HTTP/1.1 413")
    status, _, body = request(server, "POST", "/upload", body=b"x" * 1000)
    assert status == 200 and body.startswith(b"1000 ")


def test_expect_100_continue(server):
    with server.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"ping")
        reply = b""
        deadline = time.monotonic() + 5
        while not reply.endswith(b"ping") and time.monotonic() < deadline:
            reply += sock.recv(1024)
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"ping")


# ---------------------------------------------------------------- responses
def test_streamed_response_is_chunked_on_http11(server):
    response = raw_request(server, b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == b"4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n"


def test_streamed_response_close_delimited_on_http10(server):
    response = raw_request(server, b"GET /stream HTTP/1.0\r\n\r\n")
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower() and b"content-length" not in head.lower()
    assert body == b"one,two,three"


def test_write_callable(server):
    status, _, body = request(server, "GET", "/write")
    assert (status, body) == (200, b"written,twice")


def test_head_request_has_no_body(server):
    response = raw_request(server, b"HEAD /head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"content-length: 5" in head.lower() and body == b""


def test_keep_alive_and_pipelining(server):
    request_bytes = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                     b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = raw_request(server, request_bytes)
    assert response.count(b"HTTP/1.1 200 OK") == 3
    first = response.index(b"abc")
    assert first < response.index(b"hello") < response.index(b"three")


def test_file_wrapper_sendfile(server, tmp_path):
    path = tmp_path / "data.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    status, headers, body = request(server, "GET", f"/file?path={path}")
    assert status == 200 and body == data
    assert headers["content-length"] == str(len(data))
    # HEAD gets the length, no body
    response = raw_request(server, f"HEAD /file?path={path} HTTP/1.1\r\nHost: x\r\n"
                                   f"Connection: close\r\n\r\n".encode())
    assert response.endswith(b"\r\n\r\n") and f"{len(data)}".encode() in response


def test_file_wrapper_block_fallback(server):
    status, _, body = request(server, "GET", "/filelike?size=300001")
    expected = (bytes(range(256)) * (300001 // 256 + 1))[:300001]
    assert status == 200 and body == expected


def test_wsgi_errors_go_to_the_log(server):
    status, _, _ = request(server, "GET", "/errors")
    assert status == 200
    server.wait_for_log(r"first line from the app")
    server.wait_for_log(r"second line from the app")


# ---------------------------------------------------------------- errors
def test_error_before_start_is_500(server):
    status, _, body = request(server, "GET", "/error")
    assert status == 500
    server.wait_for_log(r"Exception in WSGI application")
    server.wait_for_log(r"boom before start")
    assert request(server, "GET", "/")[0] == 200  # the pool survived


def test_error_after_start_aborts(server):
    response = raw_request(server, b"GET /error-after HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200")
    assert b"partial" in response
    assert not response.endswith(b"0\r\n\r\n")  # no clean end of the chunked body
    server.wait_for_log(r"boom after start")
    assert request(server, "GET", "/")[0] == 200


def test_exc_info_replaces_headers_before_sending(server):
    status, _, body = request(server, "GET", "/exc-info")
    assert (status, body) == (500, b"handled")


def test_content_length_mismatch_streamed_aborts(server):
    # Through the validator the body is an iterator: the head is out before the server
    # can know, so the connection is cut short (the client sees 5 of 10 bytes and EOF).
    response = raw_request(server, b"GET /len-short HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"\r\n\r\nshort")
    server.wait_for_log(r"Content-Length")
    assert request(server, "GET", "/")[0] == 200


def test_content_length_mismatch_list_is_500(wsgi_server):
    server = wsgi_server(app="wsgi_app:bad_app")
    response = raw_request(server, b"GET /len-short-list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 500") and b"short" not in response
    server.wait_for_log(r"Content-Length")


@pytest.mark.parametrize("path,reason", [
    ("/bad-status-int", r"status must be a str"),
    ("/bad-status-text", r"3-digit code"),
    ("/bad-status-crlf", r"control character"),
    ("/bad-header-crlf", r"control character"),
    ("/bad-header-name", r"(?i)invalid|token|name"),
    ("/bad-header-latin1", r"not latin-1"),
    ("/bad-header-bytes", r"must be str"),
    ("/bad-headers-tuple", r"must be a list"),
    ("/bad-body-str", r"must be bytes"),
    ("/no-start", r"without calling start_response|before calling start_response"),
    ("/twice", r"start_response\(\) called again"),
])
def test_invalid_responses_are_refused(wsgi_server, path, reason):
    server = wsgi_server(app="wsgi_app:bad_app")
    response = raw_request(server, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert response.startswith(b"HTTP/1.1 500"), response[:200]
    assert b"X-Injected" not in response and b"should never be sent" not in response
    assert b"\xe2\x98\x83" not in response and b"snowman" not in response
    server.wait_for_log(reason)
    assert request(server, "GET", "/")[0] == 200


def test_still_wsgi_after_the_server_ticks(server):
    """The once-a-second ticker rebuilds shared state; WSGI dispatch must survive it."""
    _, first, _ = request(server, "GET", "/")
    deadline = time.monotonic() + 5
    while True:
        status, headers, body = request(server, "GET", "/")
        assert (status, body) == (200, b"hello")
        if headers["date"] != first["date"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # polling pace only: the loop ends on the Date change
    assert headers["date"] != first["date"]
    assert request(server, "POST", "/echo", body=b"after tick")[2] == b"after tick"
