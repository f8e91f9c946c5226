"""Client-side HTTP/1.1 helpers for the e2e tests: a strict response reader over a raw
socket (interim 1xx, Content-Length, chunked with trailers, close-delimited), EOF
detection, and the request corpus (load cases, send them in chunks).

Imported as ``corpus.wire`` (``tests/`` is on ``sys.path``, as for ``conftest``) by
tests/e2e/test_corpus.py, test_fuzz.py and the HTTP/1.1 wire tests. Kept deliberately
strict: a response that does not parse is a WireError (an AssertionError), because the
server under test wrote it.
"""
from __future__ import annotations

import json
import random
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parent
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) [^\r\n]*\r\n")


# ---------------------------------------------------------------- the request corpus
@dataclass
class Case:
    name: str
    data: bytes
    expect: dict


def load(kind: str) -> list[Case]:
    cases = []
    for path in sorted((CORPUS / kind).glob("*.http")):
        expect = json.loads(path.with_suffix(".json").read_text())
        cases.append(Case(path.stem, path.read_bytes(), expect))
    return cases


def chunks(data: bytes, mode: str, seed: str) -> list[bytes]:
    """``whole``: one send; ``bytewise``: one byte per send; ``random``: sizes 1..97 from a
    generator seeded by ``seed`` (the case name), so a failure replays the same split."""
    if mode == "whole":
        return [data]
    if mode == "bytewise":
        return [data[i:i + 1] for i in range(len(data))]
    rng = random.Random(seed)
    out, at = [], 0
    while at < len(data):
        size = rng.randint(1, 97)
        out.append(data[at:at + size])
        at += size
    return out


def send_chunks(sock: socket.socket, parts: list[bytes]) -> bool:
    """Send every part; stop quietly (returning False) once the server has closed."""
    for part in parts:
        try:
            sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            return False
    return True


def connect(host: str, port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


# ---------------------------------------------------------------- reading responses
def small_window_socket(host: str, port: int, rcvbuf: int = 16 * 1024,
                        timeout: float = 10.0) -> socket.socket:
    """A client with a small receive window (set before connect), for clients that read
    slowly or not at all."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((host, port))
    return sock


class WireError(AssertionError):
    """The bytes on the wire are not what a correct HTTP/1.1 server sends (or not in time)."""


@dataclass
class Response:
    status: int
    reason: bytes
    version: bytes
    headers: list[tuple[bytes, bytes]]  # lowercased names, in order
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    framing: str = ""  # "length", "chunked", "close", "none"
    head_raw: bytes = b""
    interim: list["Response"] = field(default_factory=list)

    def get(self, name: bytes) -> bytes | None:
        """The first value of field ``name``, or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def get_all(self, name: bytes) -> list[bytes]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]


class Reader:
    """Buffered reads from a blocking socket, each bounded by one overall deadline; bytes
    past one response stay in ``buffer`` for the next."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0) -> None:
        self.sock = sock
        self.buffer = b""
        self.timeout = timeout
        self.eof = False
        self.reset = False

    def _fill(self, deadline: float) -> bool:
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WireError(f"timed out waiting for data; have {self.buffer[:300]!r}")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1024 * 1024)
        except socket.timeout:
            raise WireError(f"timed out waiting for data; have {self.buffer[:300]!r}") from None
        except ConnectionResetError:
            self.eof = self.reset = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def read_until(self, marker: bytes, deadline: float, limit: int = 1 << 20) -> bytes:
        while True:
            at = self.buffer.find(marker)
            if at >= 0:
                data, self.buffer = self.buffer[:at + len(marker)], self.buffer[at + len(marker):]
                return data
            if len(self.buffer) > limit:
                raise WireError(f"no {marker!r} within {limit} bytes")
            if not self._fill(deadline):
                raise WireError(f"connection closed before {marker!r}; have {self.buffer[:300]!r}")

    def read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buffer) < n:
            if not self._fill(deadline):
                raise WireError(f"connection closed after {len(self.buffer)} of {n} bytes")
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_to_eof(self, deadline: float) -> bytes:
        """Everything until the peer closes (FIN or RST) or ``deadline`` passes, whichever
        comes first; ``eof`` tells which."""
        try:
            while self._fill(deadline):
                pass
        except WireError:  # the deadline passed with the connection still open
            pass
        data, self.buffer = self.buffer, b""
        return data

    def at_eof(self, timeout: float = 5.0) -> bool:
        """True when the peer closes (FIN or RST) within ``timeout``, False if it keeps the
        connection open; bytes after the last response read are a WireError."""
        extra = self.read_to_eof(time.monotonic() + timeout)
        if extra:
            raise WireError(f"bytes after the last response: {extra[:300]!r}")
        return self.eof


def _parse_head(raw: bytes) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]:
    lines = raw.split(b"\r\n")
    status_line = lines[0]
    if not STATUS_LINE.fullmatch(status_line + b"\r\n"):
        raise WireError(f"bad status line {status_line!r}")
    version, status, reason = status_line.split(b" ", 2)  # the match ensures all three
    headers = []
    for line in lines[1:]:
        if b":" not in line or line[:1] in (b" ", b"\t"):
            raise WireError(f"bad header line {line!r}")
        name, value = line.split(b":", 1)
        if name != name.strip() or not name:
            raise WireError(f"bad header name {name!r}")
        headers.append((name.lower(), value.strip(b" \t")))
    return version, int(status), reason, headers


def read_response(reader: Reader, head_request: bool = False, timeout: float | None = None) -> Response:
    """Read one final response (collecting interim 1xx ones) and its whole body."""
    deadline = time.monotonic() + (timeout if timeout is not None else reader.timeout)
    interim = []
    while True:
        raw = reader.read_until(b"\r\n\r\n", deadline)
        if b"\n" in raw.replace(b"\r\n", b""):
            raise WireError(f"bare LF in response head {raw!r}")
        version, status, reason, headers = _parse_head(raw[:-4])
        response = Response(status, reason, version, headers, head_raw=raw)
        if 100 <= status < 200:
            interim.append(response)
            continue
        break
    response.interim = interim
    te = [v.lower() for k, v in headers if k == b"transfer-encoding"]
    cls = [v for k, v in headers if k == b"content-length"]
    if head_request or status in (204, 304):
        response.framing = "none"
    elif te:
        if te[-1] != b"chunked" or cls:
            raise WireError(f"bad framing: transfer-encoding {te} content-length {cls}")
        response.framing = "chunked"
        body = []
        while True:
            size_line = reader.read_until(b"\r\n", deadline)[:-2]
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                break
            body.append(reader.read_exact(size, deadline))
            if reader.read_exact(2, deadline) != b"\r\n":
                raise WireError("chunk not followed by CRLF")
        while True:
            line = reader.read_until(b"\r\n", deadline)[:-2]
            if not line:
                break
            name, _, value = line.partition(b":")
            response.trailers.append((name.strip().lower(), value.strip()))
        response.body = b"".join(body)
    elif cls:
        if len(set(cls)) != 1:
            raise WireError(f"conflicting content-length {cls}")
        response.framing = "length"
        response.body = reader.read_exact(int(cls[0]), deadline)
    else:
        response.framing = "close"
        response.body = reader.read_to_eof(deadline)
        if not reader.eof:
            raise WireError(f"timed out before the close that ends the body; have {response.body[:300]!r}")
    return response


# ---------------------------------------------------------------- corpus_echo:app
def app_counts(host: str, port: int) -> dict:
    """corpus_echo:app's counters: requests received whole, and calls started."""
    with connect(host, port) as sock:
        sock.sendall(b"GET /__calls HTTP/1.1\r\nHost: corpus\r\nConnection: close\r\n\r\n")
        response = read_response(Reader(sock, timeout=5.0))
    assert response.status == 200, response
    return json.loads(response.body)


def app_calls(host: str, port: int) -> int:
    """How many requests corpus_echo:app received whole (GET /__calls is not counted)."""
    return app_counts(host, port)["calls"]
