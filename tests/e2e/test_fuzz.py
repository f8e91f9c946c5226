"""Mangled requests against one running server (corpus_echo:app).

Hypothesis takes a valid request from tests/corpus/valid and mangles it: flips, inserts
and deletes bytes, duplicates field lines, injects CR, LF, NUL and framing fields, and
swaps numbers for huge or malformed ones. Each example uses its own connection with its
own timeout, so no example depends on another's leftovers.

Oracles, per example:
* ``test_mangled_request_is_answered_or_closed``: the client sends, half-closes, and the
  server must then answer with status lines and/or close, within the timeout; never hang.
* ``test_mangled_request_never_breaks_the_server``: without the half-close (the server may
  legitimately wait for more bytes), whatever comes back must be well-formed responses,
  and never a 500 (a 500 at the parser means an exception inside h1.py).
After each run the server must still answer a good request with 200 and its log must show
no internal error.
"""
from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import start_server
from corpus.wire import STATUS_LINE, Reader, connect, load, read_response, send_chunks

# The long cases are ~8 KB and add nothing a short one does not; keep examples quick.
SEEDS = [case.data for case in load("valid") if len(case.data) < 2048]
STATUS_ANYWHERE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")

INJECT = [b"\r", b"\n", b"\r\n", b"\x00", b"\x01", b"\x7f", b"\xff", b" ", b"\t", b":", b";",
          b"\r\n\r\n", b"\r\n ", b"0\r\n\r\n", b"%", b"%00", b"?", b"#", b"/../"]
FIELDS = [b"Content-Length: 5", b"Content-Length: 0", b"Content-Length: -1",
          b"Content-Length: 99999999999999999999", b"Transfer-Encoding: chunked",
          b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked, identity",
          b"Host: evil.example", b"Expect: 100-continue", b"Connection: close",
          b"Connection: keep-alive", b"Upgrade: websocket", b"Transfer-Encoding:\x0bchunked",
          b"Content-Length:\t7", b" Transfer-Encoding: chunked"]
NUMBERS = [b"99999999999999999999", b"18446744073709551616", b"4294967296", b"-1", b"+1",
           b"0x10", b"1e3", b"1_0", b"", b"00000000000000000000000000000001", b"ffffffffffffffff"]

# Where a mutation applies, as a fraction of the request's length: spreads mutations over
# the request line, the fields and the body alike (small integers would crowd the start).
WHERE = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)

mutation = st.one_of(
    st.tuples(st.just("flip"), WHERE, st.integers(1, 255)),
    st.tuples(st.just("insert"), WHERE, st.sampled_from(INJECT) | st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), WHERE, st.integers(1, 16)),
    st.tuples(st.just("dup_line"), WHERE, st.integers(1, 3)),
    st.tuples(st.just("add_field"), WHERE, st.sampled_from(FIELDS)),
    st.tuples(st.just("number"), WHERE, st.sampled_from(NUMBERS)),
    st.tuples(st.just("truncate"), WHERE, st.just(b"")),
)


def mangle(data: bytes, ops: list[tuple]) -> bytes:
    for kind, where, arg in ops:
        at = min(int(where * (len(data) + 1)), len(data))
        if kind == "flip" and data:
            at %= len(data)
            data = data[:at] + bytes([data[at] ^ arg]) + data[at + 1:]
        elif kind == "insert":
            data = data[:at] + arg + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + arg:]
        elif kind == "dup_line":
            lines = data.split(b"\r\n")
            i = min(int(where * len(lines)), len(lines) - 1)
            lines[i:i + 1] = [lines[i]] * (arg + 1)
            data = b"\r\n".join(lines)
        elif kind == "add_field":
            end = data.find(b"\r\n")
            if end >= 0:
                data = data[:end + 2] + arg + b"\r\n" + data[end + 2:]
        elif kind == "number":
            numbers = list(re.finditer(rb"\d+", data))
            if numbers:
                m = numbers[min(int(where * len(numbers)), len(numbers) - 1)]
                data = data[:m.start()] + arg + data[m.end():]
        elif kind == "truncate":
            data = data[:at]
    return data


mangled = st.builds(mangle, st.sampled_from(SEEDS), st.lists(mutation, min_size=1, max_size=4))


@pytest.fixture(scope="module")
def server():
    srv = start_server("corpus_echo:app", "--timeout-graceful-shutdown", "1")
    yield srv
    if srv.proc.poll() is None:
        srv.proc.send_signal(signal.SIGTERM)
        try:
            srv.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            srv.proc.wait(timeout=5)


def check_responses(received: bytes) -> None:
    """Whatever the server sent must be status-line-led responses, and never a 500."""
    if not received:
        return
    assert STATUS_LINE.match(received), f"reply does not start with a status line: {received[:200]!r}"
    statuses = [int(s) for s in STATUS_ANYWHERE.findall(received)]
    assert 500 not in statuses, f"the server failed internally on this request: {received[:300]!r}"


def read_while_arriving(sock: socket.socket) -> bytes:
    """Read until the server closes or goes quiet (0.2 s before the first byte, 0.05 s
    after). Going quiet is not judged: a server may legitimately wait for more input."""
    received = b""
    for _ in range(1000):
        sock.settimeout(0.05 if received else 0.2)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not data:
            break
        received += data
    return received


def good_request_still_works(srv) -> None:
    with connect(srv.host, srv.port) as sock:
        sock.sendall(b"GET /after-fuzz HTTP/1.1\r\nHost: fuzz\r\n\r\n")
        response = read_response(Reader(sock, timeout=5.0))
    assert response.status == 200
    assert json.loads(response.body)["path"] == "/after-fuzz"
    assert srv.proc.poll() is None
    assert "internal error" not in srv.log, srv.log[-3000:]


FUZZ = dict(max_examples=200, deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def test_mangled_request_is_answered_or_closed(server):
    # Shrinking re-runs hanging examples at 2 s each; the failing input is printed as is.
    @settings(**FUZZ, phases=[Phase.explicit, Phase.generate])
    @given(data=mangled)
    def run(data: bytes) -> None:
        with connect(server.host, server.port, timeout=2) as sock:
            send_chunks(sock, [data])
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            reader = Reader(sock)
            received = reader.read_to_eof(time.monotonic() + 2)
            assert reader.eof, (
                f"server neither answered nor closed within 2 s of the half-close; "
                f"sent {data!r}, received {received[:200]!r}")
            check_responses(received)

    run()
    good_request_still_works(server)


def test_mangled_request_never_breaks_the_server(server):
    @settings(**FUZZ)
    @given(data=mangled)
    def run(data: bytes) -> None:
        with connect(server.host, server.port, timeout=2) as sock:
            send_chunks(sock, [data])
            check_responses(read_while_arriving(sock))

    run()
    good_request_still_works(server)
