"""The access log tells the truth (issue 10), black-box against a real server:

- times in microseconds (uvloop's clock moves in milliseconds);
- every response gets a line: refusals before the app, an HTTP/2 preface, WebSocket
  handshakes, responses cut short ([aborted]) and requests whose client left ([client gone]);
- the default line shows the client as host:port; a custom format is printed exactly as
  formatted, so gunicorn's recipe gives gunicorn's line byte for byte;
- --log-level debug shows connections open and close.
"""
from __future__ import annotations

import base64
import re
import socket
import struct
import time

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

pytestmark = pytest.mark.timeout(40)

GUNICORN = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
CLF_TIME = r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"


def _access_lines(server, marker: str) -> list[str]:
    return [line for line in server.log.splitlines() if marker in line]


def _send_and_read(server, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` without half-closing, read until the server closes (bounded)."""
    with server.connect(timeout) as sock:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


# ------------------------------------------------------------------ times


def test_durations_have_microsecond_resolution(gannet_server):
    """With a millisecond clock every %(D)s was a multiple of 1000 (and %(L)s .000000 or
    .001000); twenty requests all landing on whole milliseconds is then impossible."""
    server = gannet_server("cfg_apps:app", "--access-log-format", "DUR %(D)s %(L)s %(U)s")
    with httpx.Client(base_url=server.url) as client:
        for i in range(20):
            assert client.get(f"/dur-{i}").status_code == 200
    server.wait_for_log(r"DUR \d+ \S+ /dur-19\b")
    values = re.findall(r"(?m)DUR (\d+) (\d+\.\d{6}) /dur-\d+$", server.log)
    assert len(values) == 20, server.log
    assert any(int(micros) % 1000 for micros, _ in values), values
    for micros, seconds in values:  # %(L)s and %(D)s are the same duration
        assert f"{int(micros) // 1_000_000}.{int(micros) % 1_000_000:06d}" == seconds


# ------------------------------------------------------------------ formats


def test_default_line_shows_host_and_port_with_the_time_prefix(gannet_server):
    server = gannet_server("cfg_apps:app")
    with httpx.Client(base_url=server.url) as client:
        client.get("/default-line")
        port = client.get("/default-line-2").extensions  # same connection: same port
    assert port is not None
    line = server.wait_for_log(r"(?m)^.*/default-line-2 .*$").group(0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \[\d+\] \[INFO\] "
                        r'127\.0\.0\.1:\d+ - "GET /default-line-2 HTTP/1\.1" 200 \d+ \d+\.\d{6}s', line), line


def test_gunicorn_recipe_gives_gunicorns_line(gannet_server):
    """The recipe in docs/migrating.md: no prefix, gunicorn's atoms exactly (u from Basic
    auth, b is 0 for an empty body, '"' escaped inside quoted fields)."""
    server = gannet_server("h1_apps:app", "--access-log-format", GUNICORN)
    auth = "Basic " + base64.b64encode(b"alice:secret").decode()
    with httpx.Client(base_url=server.url) as client:
        client.get("/?x=1", headers={"user-agent": 'agent "quoted"/1.0', "referer": "http://ref/",
                                     "authorization": auth})
        client.get("/status?s=204", headers={"user-agent": "ua-204"})
    first = server.wait_for_log(r'(?m)^.*"GET /\?x=1 HTTP/1\.1".*$').group(0)
    second = server.wait_for_log(r'(?m)^.*"GET /status\?s=204 HTTP/1\.1".*$').group(0)
    stamp = re.search(CLF_TIME, first)
    assert stamp, first
    assert first == (f'127.0.0.1 - alice {stamp.group(0)} "GET /?x=1 HTTP/1.1" 200 5 '
                     f'"http://ref/" "agent \\"quoted\\"/1.0"')
    assert re.fullmatch(rf'127\.0\.0\.1 - - {CLF_TIME} "GET /status\?s=204 HTTP/1\.1" 204 0 "-" "ua-204"',
                        second), second


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("request_bytes, expected", [
    (b"GET /fields HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(8)) + b"\r\n",
     r'"GET /fields HTTP/1\.1" 431 \d+'),
    (b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n",
     r'"POST /big HTTP/1\.1" 413 \d+'),
    (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n", r'"-" 414 \d+'),
    (b"\x01\x02garbage\r\n\r\n", r'"-" 400 \d+'),
    (b"GET /nohost HTTP/1.1\r\n\r\n", r'"GET /nohost HTTP/1\.1" 400 \d+'),
])
def test_refusals_get_an_access_line(gannet_server, request_bytes, expected):
    server = gannet_server("cfg_apps:app", "--limit-request-fields", "4", "--limit-request-line", "200",
                           "--limit-request-body", "1000")
    reply = _send_and_read(server, request_bytes)
    status = re.match(rb"HTTP/1\.1 (\d{3}) ", reply)
    assert status, reply
    line = server.wait_for_log(r'(?m)^.*127\.0\.0\.1:\d+ - ' + expected + r' \d+\.\d{6}s$').group(0)
    sent = int(re.search(r'" \d{3} (\d+) ', line).group(1))
    assert reply.endswith(b"\r\n\r\n" + reply.split(b"\r\n\r\n", 1)[1])
    assert sent == len(reply.split(b"\r\n\r\n", 1)[1]) > 0  # the bytes the client got
    assert status.group(1).decode() in line


def test_head_timeout_gets_an_access_line(gannet_server):
    server = gannet_server("cfg_apps:app", "--header-read-timeout", "1")
    reply = _send_and_read(server, b"GET /half HTTP/1.1\r\n", timeout=10)
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    server.wait_for_log(r'(?m)^.*127\.0\.0\.1:\d+ - "-" 408 \d+ \d+\.\d{6}s$')


def test_http2_preface_is_answered_in_words(gannet_server):
    server = gannet_server("cfg_apps:app")
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")  # + SETTINGS
    reply = _send_and_read(server, preface)
    assert reply.startswith(b"HTTP/1.1 505 "), reply
    assert b"HTTP/2" in reply.split(b"\r\n\r\n", 1)[1] and b"HTTP/1.1" in reply.split(b"\r\n\r\n", 1)[1]
    server.wait_for_log(r"HTTP/2 preface .*HTTP/2 is not enabled")
    server.wait_for_log(r'(?m)^.*127\.0\.0\.1:\d+ - "PRI \* HTTP/2\.0" 505 \d+ ')
    assert "Pause on PRI" not in server.log


def test_upgrade_h2c_is_served_as_http11(gannet_server):
    server = gannet_server("cfg_apps:app")
    reply = _send_and_read(server, b"GET /h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                                   b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 "), reply
    server.wait_for_log(r'"GET /h2c HTTP/1\.1" 200 ')


# ------------------------------------------------------------------ cut short, client gone


def _reset_close(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a killed client or a dropped network does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_client_gone_before_the_response(gannet_server):
    """The app was still working when its client vanished: one line, marked, no status
    (nothing was sent), zero bytes."""
    server = gannet_server("review_asgi:app")
    sock = server.connect()
    sock.sendall(b"GET /slow?t=gone1&s=0.5&w=0 HTTP/1.1\r\nHost: x\r\n\r\n")
    server.wait_for_log(r"review-slow started gone1")
    _reset_close(sock)
    server.wait_for_log(r"review-slow finished gone1")
    line = server.wait_for_log(r'(?m)^.*"GET /slow\?t=gone1[^"]*".*$').group(0)
    assert re.search(r'" - 0 \d+\.\d{6}s \[client gone\]$', line), line
    assert len(_access_lines(server, "/slow?t=gone1")) == 1


def test_client_that_closed_first_is_marked(gannet_server):
    """A client that closed its side (FIN) before the answer: the answer is written (a
    half-closing client may still read it), and the line says the client closed first."""
    server = gannet_server("review_asgi:app")
    with server.connect() as sock:
        sock.sendall(b"GET /slow?t=fin1&s=0.3&w=0 HTTP/1.1\r\nHost: x\r\n\r\n")
        server.wait_for_log(r"review-slow started fin1")
        sock.shutdown(socket.SHUT_WR)
        server.wait_for_log(r"review-slow finished fin1")
    line = server.wait_for_log(r'(?m)^.*"GET /slow\?t=fin1[^"]*".*$').group(0)
    assert re.search(r'" 200 9 \d+\.\d{6}s \[client closed first\]$', line), line


def test_abandoned_stream_gets_a_line(gannet_server):
    """An app that hears http.disconnect and returns without any response: before, no
    access line at all."""
    server = gannet_server("h1_apps:app")
    with server.connect() as sock:
        sock.sendall(b"POST /wait-disconnect?t=ab1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        server.wait_for_log(r"h1-wait-disconnect waiting ab1")
    server.wait_for_log(r"h1-disconnect ab1")
    server.wait_for_log(r'(?m)^.*"POST /wait-disconnect\?t=ab1 HTTP/1\.1" - 0 \d+\.\d{6}s \[client gone\]$')
    assert len(_access_lines(server, "wait-disconnect?t=ab1")) == 1


def test_response_cut_short_counts_only_bytes_sent(gannet_server):
    """An app error after the first body part: marked aborted, with the bytes of that part."""
    server = gannet_server("h1_apps:app")
    with httpx.Client(base_url=server.url) as client:
        with pytest.raises(httpx.HTTPError):
            client.get("/error-after")
    line = server.wait_for_log(r'(?m)^.*"GET /error-after HTTP/1\.1".*$').group(0)
    assert re.search(r'" 200 \d+ \d+\.\d{6}s \[aborted\]$', line), line


def test_note_atom_puts_the_marker_where_the_format_says(gannet_server):
    server = gannet_server("review_asgi:app", "--access-log-format", "N %(s)s %(note)s %(U)s")
    httpx.get(server.url + "/")
    sock = server.connect()
    sock.sendall(b"GET /slow?t=gone2&s=0.3&w=0 HTTP/1.1\r\nHost: x\r\n\r\n")
    server.wait_for_log(r"review-slow started gone2")
    _reset_close(sock)
    server.wait_for_log(r"(?m)^N - client gone /slow$")
    assert re.search(r"(?m)^N 200 - /$", server.log), server.log
    assert "[client gone]" not in server.log


# ------------------------------------------------------------------ WebSockets


def test_websocket_lines_use_the_same_format(gannet_server):
    server = gannet_server("ws_app:app")
    ws_url = server.url.replace("http://", "ws://")
    with connect(ws_url + "/echo?x=1", open_timeout=5) as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
    with pytest.raises(InvalidStatus):
        connect(ws_url + "/close-before", open_timeout=5)
    with pytest.raises(InvalidStatus):
        connect(ws_url + "/deny-cl", open_timeout=5)
    server.wait_for_log(r'(?m)^.* \[INFO\] 127\.0\.0\.1:\d+ - "GET /echo\?x=1 HTTP/1\.1" 101 0 \d+\.\d{6}s$')
    server.wait_for_log(r'(?m)^.* 127\.0\.0\.1:\d+ - "GET /close-before HTTP/1\.1" 403 9 \d+\.\d{6}s$')
    server.wait_for_log(r'(?m)^.* 127\.0\.0\.1:\d+ - "GET /deny-cl HTTP/1\.1" 404 [1-9]\d* \d+\.\d{6}s$')
    assert '"WebSocket ' not in server.log


def test_websocket_refused_before_the_app_gets_a_line(gannet_server):
    server = gannet_server("ws_app:app")
    reply = _send_and_read(server, b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                   b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 "), reply
    server.wait_for_log(r'(?m)^.* 127\.0\.0\.1:\d+ - "GET /echo HTTP/1\.1" 400 \d+ \d+\.\d{6}s$')


# ------------------------------------------------------------------ debug


def test_debug_logs_connections_open_and_closed(gannet_server):
    server = gannet_server("cfg_apps:app", "--log-level", "debug", "--timeout-keep-alive", "1")
    with server.connect() as sock:
        port = sock.getsockname()[1]
        sock.sendall(b"GET /dbg-conn HTTP/1.1\r\nHost: x\r\n\r\n")
        server.wait_for_log(r'"GET /dbg-conn HTTP/1\.1" 200')
        server.wait_for_log(rf"\[DEBUG\] 127\.0\.0\.1:{port} - closing: idle for --timeout-keep-alive", timeout=10)
    server.wait_for_log(rf"\[DEBUG\] 127\.0\.0\.1:{port} - connection open")
    server.wait_for_log(rf"\[DEBUG\] 127\.0\.0\.1:{port} - connection closed")


def test_info_level_has_no_connection_lines(gannet_server):
    server = gannet_server("cfg_apps:app")
    assert httpx.get(server.url + "/info-conn").status_code == 200
    server.wait_for_log(r'"GET /info-conn HTTP/1\.1" 200')
    assert "connection open" not in server.log
