"""Issue 9, the ASGI cycle: what an app that misbehaves, or that a client leaves, can do
to the connection, the next request and the worker (defects 2, 4, 5, 11, 12, 19, 21, 22).

Black-box: a real server, raw sockets read by the strict reader in corpus/wire.py.
"""
from __future__ import annotations

import json
import re
import socket
import struct
import time
import uuid

import pytest

from corpus.wire import Reader, read_response

APP = "review_asgi:app"


def _req(target: str, extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    return b"GET %b HTTP/%b\r\nHost: test\r\n%b\r\n" % (target.encode(), version, extra)


def _token() -> str:
    return uuid.uuid4().hex[:12]


def _still_serving(server) -> None:
    """A fresh connection gets 200 and the process is alive: the worker survived."""
    with server.connect() as sock:
        sock.sendall(_req("/"))
        response = read_response(Reader(sock))
    assert response.status == 200 and response.body == b"ok"
    assert server.proc.poll() is None


def _error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "[ERROR]" in line or "Traceback" in line]


# ---------------------------------------------------------------- defect 2
@pytest.mark.parametrize("kind", ["body", "start", "body2"])
def test_message_after_complete_response_is_ignored_and_logged_once(gannet_server, kind):
    """issue 9 defect 2: a message sent after the response completed (another body, or
    http.response.start again) is ignored (ASGI: "any further messages on the channel
    will be ignored") and logged once as an app error; the keep-alive connection and the
    request pipelined behind it are unaffected."""
    server = gannet_server(APP)
    token = _token()
    with server.connect() as sock:
        reader = Reader(sock)
        # Pipelined: the second request is already waiting when the app misbehaves.
        sock.sendall(_req(f"/after-complete?k={kind}&t={token}") + _req("/"))
        first = read_response(reader)
        assert first.status == 200 and first.body == b"first"
        second = read_response(reader)
        assert second.status == 200 and second.body == b"ok"
        server.wait_for_log(rf"review-after-complete {token} ")
        # the connection is still usable afterwards
        sock.sendall(_req("/"))
        third = read_response(reader)
        assert third.status == 200 and third.body == b"ok"
    assert b"EXTRA-BYTES" not in first.body + second.body + third.body
    pattern = r"(?i)\[(error|warning)\][^\n]*http\.response\.(body|start)[^\n]*(complete|finished|ended|after)"
    server.wait_for_log(pattern)
    _still_serving(server)
    assert len(re.findall(pattern, server.log)) == 1, server.log


def test_error_log_lines_about_a_request_cannot_be_forged_by_its_path(gannet_server):
    """Review of issue 10: the error log's lines that name a request's path (a message
    after the response; a cancelled request) escape it as the access log does: a %0d%0a
    in the target decodes to CR LF in scope["path"] and must not start a forged line."""
    server = gannet_server(APP)
    token = _token()
    with server.connect() as sock:
        sock.sendall(_req(f"/after-complete/x%0d%0aFORGED-{token}%1b[2J?k=body&t={token}"))
        assert read_response(Reader(sock)).status == 200
    server.wait_for_log(rf"review-after-complete {token} ")
    server.wait_for_log(r"sent after the response to GET /after-complete/x\\x0d\\x0aFORGED")
    assert not any(line.startswith("FORGED") for line in server.log.splitlines()), server.log
    assert "\x1b" not in server.log


# ---------------------------------------------------------------- defect 4
def test_scope_asgi_and_extensions_dicts_are_fresh_per_request(gannet_server):
    """issue 9 defect 4: an app that mutates scope["asgi"], scope["extensions"] and a
    nested extension dict changes nothing the next request sees (same connection or a
    new one)."""
    server = gannet_server(APP)
    with server.connect() as sock:
        reader = Reader(sock)
        sock.sendall(_req("/scope-mutate"))
        first = json.loads(read_response(reader).body)
        sock.sendall(_req("/scope-mutate"))
        second = json.loads(read_response(reader).body)
    with server.connect() as sock:
        sock.sendall(_req("/scope-mutate"))
        third = json.loads(read_response(Reader(sock)).body)
    assert first["asgi"]["version"] == "3.0"
    assert "http.response.early_hint" in first["extensions"]
    for seen in (second, third):
        assert seen == first
        assert "mutated" not in seen["asgi"]
        assert "x.mutated" not in seen["extensions"]
        assert all("mutated" not in value for value in seen["extensions"].values())


# ---------------------------------------------------------------- defect 5
def test_two_concurrent_receives_both_get_disconnect(gannet_server):
    """issue 9 defect 5: two receive() calls waiting at once (asyncio.gather) both get
    http.disconnect when the client leaves; neither is left waiting forever."""
    server = gannet_server(APP)
    token = _token()
    sock = server.connect()
    sock.sendall(_req(f"/double-receive?t={token}"))
    server.wait_for_log(rf"review-double-receive waiting {token}")
    sock.close()
    match = server.wait_for_log(rf"review-double-receive {token} (\S+)(?: (\S+))?", timeout=8)
    assert match.group(0) == f"review-double-receive {token} http.disconnect http.disconnect"
    _still_serving(server)


# ---------------------------------------------------------------- defect 11
def _rst_close(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# An access line for the request that says it was aborted (the word, or nginx's 499).
ABORTED_ACCESS = r'(?im)^(?=.*"GET {path}[^"]*")(?=.*(abort|\b499\b)).*$'


@pytest.mark.parametrize("route", ["pathsend", "zerocopy"])
def test_client_leaving_during_file_send_is_not_an_app_error(gannet_server, tmp_path, route):
    """issue 9 defect 11: a client that closes in the middle of a large
    http.response.pathsend / zerocopysend is not logged as an app error with a traceback:
    an access line marked as aborted, no ERROR line."""
    path = tmp_path / "big.bin"
    with open(path, "wb") as handle:
        handle.truncate(256 * 1024 * 1024)  # sparse: costs no disk
    server = gannet_server("h1_apps:app", "--log-level", "debug")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    sock.settimeout(10)
    sock.connect((server.host, server.port))
    sock.sendall(_req(f"/{route}?p={path}"))
    reader = Reader(sock)
    head = reader.read_until(b"\r\n\r\n", time.monotonic() + 10)
    assert head.startswith(b"HTTP/1.1 200 ")
    reader.read_exact(64 * 1024, time.monotonic() + 10)  # the transfer is under way
    _rst_close(sock)
    server.wait_for_log(ABORTED_ACCESS.format(path=f"/{route}"), timeout=10)
    with server.connect() as again:  # h1_apps answers / with 'hello'
        again.sendall(_req("/"))
        assert read_response(Reader(again)).body == b"hello"
    assert _error_lines(server.log) == []


def test_starlette_sse_client_leaving_is_not_an_app_error(gannet_server):
    """issue 9 defect 11: a Starlette StreamingResponse (SSE, never ends on its own) whose
    client closes the tab: no "Exception in ASGI application", no traceback, an access line
    marked as aborted."""
    server = gannet_server("review_starlette:app", "--log-level", "debug")
    with server.connect() as sock:
        sock.sendall(_req("/sse"))
        reader = Reader(sock)
        head = reader.read_until(b"\r\n\r\n", time.monotonic() + 10)
        assert head.startswith(b"HTTP/1.1 200 ")
        reader.read_until(b"data: event 2\n\n", time.monotonic() + 10)
    # the socket is closed here (FIN, then RST for any further bytes)
    server.wait_for_log(ABORTED_ACCESS.format(path="/sse"), timeout=10)
    with server.connect() as sock:
        sock.sendall(_req("/"))
        assert read_response(Reader(sock)).status == 200
    assert "Exception in ASGI application" not in server.log
    assert _error_lines(server.log) == []


# ---------------------------------------------------------------- defect 12
def test_early_hint_inside_the_window_is_sent(gannet_server):
    """issue 9 defect 12: the early-hint extension's window is after http.response.start
    and before the final body; a hint sent there (head not yet written) goes out as a
    103 before the 200."""
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req("/hint?when=inside"))
        reader = Reader(sock)
        response = read_response(reader)
        assert response.status == 200 and response.body == b"hint-done"
        assert [r.status for r in response.interim] == [103]
        assert response.interim[0].get_all(b"link") == [b"</hint.css>; rel=preload; as=style"]
        sock.sendall(_req("/"))
        assert read_response(reader).status == 200


@pytest.mark.parametrize("when", ["before", "after-body"])
def test_early_hint_outside_the_window_is_not_sent(gannet_server, when):
    """issue 9 defect 12: a hint before http.response.start (outside the extension's
    window) or after the head went out with the first body part (a 103 cannot follow a
    final response) never reaches the wire; the response and the connection are intact."""
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req(f"/hint?when={when}"))
        reader = Reader(sock)
        response = read_response(reader)
        assert response.interim == []
        assert b" 103 " not in response.head_raw and b"</hint.css>" not in response.body
        if response.status == 200:
            assert response.body == b"hint-done"
            sock.sendall(_req("/"))
            assert read_response(reader).status == 200
    _still_serving(server)


# ---------------------------------------------------------------- defect 19
def test_leftover_task_never_writes_into_the_next_response(gannet_server):
    """issue 9 defect 19: request A's background task calls send() after A's response
    completed, while request B runs on the same keep-alive connection: nothing of it
    reaches the wire, and B's chunked response parses strictly."""
    server = gannet_server(APP)
    token = _token()
    with server.connect() as sock:
        reader = Reader(sock)
        sock.sendall(_req(f"/bg-send?t={token}"))
        first = read_response(reader)
        assert first.status == 200 and first.body == b"A"
        sock.sendall(_req("/bg-b"))
        second = read_response(reader)
        assert second.status == 200
        assert second.framing == "chunked"
        assert second.body == b"B1B2B3"
        server.wait_for_log(rf"review-bg-send {token} ")
        sock.sendall(_req("/"))
        third = read_response(reader)
        assert third.status == 200 and third.body == b"ok"
        assert reader.buffer == b""
    assert b"LEAKED" not in second.head_raw + second.body + third.head_raw + third.body
    _still_serving(server)


# ---------------------------------------------------------------- defect 21
@pytest.mark.parametrize("kind", ["sysexit", "kbint"])
def test_systemexit_and_keyboardinterrupt_in_app_are_app_errors(gannet_server, kind):
    """issue 9 defect 21: SystemExit / KeyboardInterrupt raised inside an ASGI request is
    an app error: 500 to that client, and the server keeps serving."""
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req(f"/raise?e={kind}"))
        response = read_response(Reader(sock))
    assert response.status == 500
    _still_serving(server)
    _still_serving(server)  # twice: the worker did not exit after the first answer


# ---------------------------------------------------------------- defect 22 (ASGI)
@pytest.mark.parametrize("kind", ["oneshot", "stream", "cl"])
def test_str_body_gives_500_and_a_log_line(gannet_server, kind):
    """issue 9 defect 22: http.response.body with a str body (alone, with more_body, or
    with the app's Content-Length): the client gets a 500 (not an empty reply) and a log
    line names the problem."""
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req(f"/str-body?k={kind}"))
        reader = Reader(sock)
        response = read_response(reader)
    assert response.status == 500
    assert b"text, not bytes" not in response.body
    # a record naming the body and the type, or the TypeError at the end of a traceback
    server.wait_for_log(r"(?im)\[(error|warning)\][^\n]*body[^\n]*\b(str|bytes)\b"
                        r"|^TypeError:[^\n]*\b(str|bytes)\b")
    _still_serving(server)


def test_app_raising_cancelled_error_gets_500_log_and_access_line(gannet_server):
    """issue 9 defect 22: an app raising CancelledError (not cancelled by the server) gets
    a log line and an access line, and the client a 500 since nothing was sent."""
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req("/raise?e=cancelled"))
        response = read_response(Reader(sock))
    assert response.status == 500
    server.wait_for_log(r"(?im)(\[(error|warning|info)\][^\n]*cancel|^[\w.]*CancelledError)")
    server.wait_for_log(r'"GET /raise\?e=cancelled HTTP/1\.1" 500')
    _still_serving(server)
