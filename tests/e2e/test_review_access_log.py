"""Review of issue 10's access log, black-box against a real server:

- no client-sent byte can forge an access line or drive a terminal: control characters
  from a Basic-auth user, a decoded path or a header are written as \\xHH, and '\\' and
  '"' are escaped (Apache's rule), so every line stays one line with whole quoted fields;
- any format accepted at start-up formats every line (widths, %r, unknown names give
  '-', as gunicorn), never a traceback per request;
- a file body cut short (client reset, --write-timeout) counts the part that went out;
- an app that swallows the error of a send after its client left is marked [aborted]
  once part of its response went out, not [client gone].
"""
from __future__ import annotations

import base64
import re
import socket
import struct
import time

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)

GUNICORN = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
FILE_SIZE = 256 * 1024 * 1024  # sparse: far beyond every socket buffer, no disk written
READ_FIRST = 2 * 1024 * 1024


def _answer(server, request: bytes) -> bytes:
    """Send one request on a fresh connection and read until the server closes (bounded)."""
    with server.connect() as sock:
        sock.sendall(request)
        chunks = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _read_body_at_least(sock: socket.socket, count: int) -> int:
    """Read a response until ``count`` body bytes came; returns the body bytes read."""
    data = b""
    deadline = time.monotonic() + 10
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    got = len(body)
    while got < count and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += len(chunk)
    assert got >= count, got
    return got


def _reset_close(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a killed client does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# ------------------------------------------------------------------ log injection


def test_basic_auth_user_cannot_forge_a_line(gannet_server):
    """The user of a Basic Authorization header is base64: it can hold CR, LF and ESC.
    Before, it was written raw and the forged text below became a line of its own."""
    server = gannet_server("cfg_apps:app", "--access-log-format", GUNICORN)
    forged = b'127.0.0.1 - forged [01/Jan/2026 "GET /admin HTTP/1.1" 200 1 "-" "-"'
    user = base64.b64encode(b"evil\r\n" + forged + b"\x1b[2J:password").decode()
    reply = _answer(server, b"GET /auth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                            b"Authorization: Basic " + user.encode() + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 "), reply
    line = server.wait_for_log(r'(?m)^.*"GET /auth HTTP/1\.1" 200 .*$').group(0)
    assert line.startswith("127.0.0.1 - evil\\x0d\\x0a127.0.0.1 - forged [01/Jan/2026 \\\"GET /admin"), line
    assert "\\x1b[2J" in line, line
    assert "\x1b" not in server.log
    assert not re.search(r"(?m)^127\.0\.0\.1 - forged", server.log), server.log


def test_decoded_path_and_quoted_fields_stay_whole(gannet_server):
    """%(U)s is the percent-decoded path: %0d%0a there was a raw CR LF in the log. A '\\'
    before a '"' in a header used to end the quoted field early ('\\\\"')."""
    server = gannet_server("cfg_apps:app", "--access-log-format", 'U=%(U)s R="%(f)s" END')
    reply = _answer(server, b"GET /p%0d%0aU=forged%1b%5b31m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                            b'Referer: a\\" b\r\n\r\n')
    assert reply.startswith(b"HTTP/1.1 200 "), reply
    line = server.wait_for_log(r"(?m)^U=/p.*$").group(0)
    assert line == 'U=/p\\x0d\\x0aU=forged\\x1b[31m R="a\\\\\\" b" END', line
    assert not re.search(r"(?m)^U=forged", server.log), server.log


# ------------------------------------------------------------------ formats


def test_any_accepted_format_gives_the_line(gannet_server):
    """Widths, %r and names outside gunicorn's atoms pass the start-up check; before, each
    request logged a KeyError traceback instead of its line."""
    server = gannet_server("cfg_apps:app", "--access-log-format", "F|%(s)5s|%(h)r|%(no-such)s|%(U)-6s|")
    assert httpx.get(server.url + "/fmt").status_code == 200
    server.wait_for_log(r"(?m)^F\|  200\|'127\.0\.0\.1'\|-\|/fmt  \|$")
    assert "cannot format" not in server.log


# ------------------------------------------------------------------ bytes of a file cut short


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "big.bin"
    with open(path, "wb") as file:
        file.truncate(FILE_SIZE)
    return path


@pytest.mark.parametrize("route", ["zerocopy", "pathsend"])
def test_file_body_cut_by_the_client_counts_what_went_out(gannet_server, big_file, route):
    """A file body is credited to the line only once whole: a client that reset mid-file
    was logged with 0 bytes after it had read megabytes."""
    server = gannet_server("h1_apps:app")
    sock = server.connect()
    sock.sendall(f"GET /{route}?p={big_file}&t=rst HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got = _read_body_at_least(sock, READ_FIRST)
    _reset_close(sock)
    line = server.wait_for_log(rf'(?m)^.*"GET /{route}\?p=\S+&t=rst HTTP/1\.1" .*$').group(0)
    match = re.search(r'" 200 (\d+) \d+\.\d{6}s \[aborted\]$', line)
    assert match, line
    assert got <= int(match.group(1)) < FILE_SIZE, (got, line)


def test_file_body_cut_by_the_write_timeout_counts_what_went_out(gannet_server, big_file):
    server = gannet_server("h1_apps:app", "--write-timeout", "1")
    with server.connect() as sock:
        sock.sendall(f"GET /zerocopy?p={big_file}&t=stall HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = _read_body_at_least(sock, READ_FIRST)
        # The client stops reading: the sweep aborts the response after --write-timeout.
        line = server.wait_for_log(r'(?m)^.*"GET /zerocopy\?p=\S+&t=stall HTTP/1\.1" .*$').group(0)
    assert "--write-timeout" in server.log
    match = re.search(r'" 200 (\d+) \d+\.\d{6}s \[aborted\]$', line)
    assert match, line
    assert got <= int(match.group(1)) < FILE_SIZE, (got, line)


# ------------------------------------------------------------------ markers


def test_app_that_swallows_the_disconnect_is_marked_aborted(gannet_server):
    """The response had started (head and megabytes of body went out) when the client
    left; the app caught its send's error and returned. Before: '[client gone]', which
    says nothing of the response was sent."""
    server = gannet_server("review_access_log_app:app")
    sock = server.connect()
    sock.sendall(b"GET /swallow HTTP/1.1\r\nHost: x\r\n\r\n")
    got = _read_body_at_least(sock, READ_FIRST)
    _reset_close(sock)
    server.wait_for_log("swallowed the disconnect")
    line = server.wait_for_log(r'(?m)^.*"GET /swallow HTTP/1\.1" .*$').group(0)
    match = re.search(r'" 200 (\d+) \d+\.\d{6}s \[aborted\]$', line)
    assert match, line
    assert int(match.group(1)) >= got
