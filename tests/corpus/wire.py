"""Client-side helpers shared by test_corpus.py and test_fuzz.py: load the corpus, send
bytes in chunks, read HTTP/1.1 responses off a socket with a deadline.

Kept deliberately small and strict: a response that does not parse is an error here,
because the server under test wrote it.
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


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    informational: list[int] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n == name]
        return ",".join(values) if values else None

    def json(self):
        return json.loads(self.body)


class Reader:
    """Reads responses from one socket; bytes past one response stay for the next."""

    def __init__(self, sock: socket.socket, timeout: float = 5.0) -> None:
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
            raise TimeoutError(f"no complete response within {self.timeout}s; have {self.buffer[:300]!r}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
            self.reset = True
        except socket.timeout:
            raise TimeoutError(f"no complete response within {self.timeout}s; "
                               f"have {self.buffer[:300]!r}") from None
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def _need(self, n: int, deadline: float) -> None:
        while len(self.buffer) < n:
            if not self._fill(deadline):
                raise EOFError(f"connection closed inside a response; have {self.buffer[:300]!r}")

    def _line(self, deadline: float) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill(deadline):
                raise EOFError(f"connection closed inside a response; have {self.buffer[:300]!r}")
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def response(self, head_only: bool = False) -> Response:
        """The next final response (1xx responses are collected and skipped)."""
        deadline = time.monotonic() + self.timeout
        informational = []
        while True:
            while b"\r\n\r\n" not in self.buffer:
                if not self._fill(deadline):
                    raise EOFError(f"connection closed before a full response head; "
                                   f"have {self.buffer[:300]!r}")
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            match = STATUS_LINE.match(head + b"\r\n")
            assert match, f"not a status line: {head[:200]!r}"
            status = int(match.group(1))
            headers = []
            for line in head.split(b"\r\n")[1:]:
                name, sep, value = line.partition(b":")
                assert sep and name and name == name.strip(), f"bad response field {line!r}"
                headers.append((name.decode("latin-1").lower(), value.strip().decode("latin-1")))
            if 100 <= status < 200:
                informational.append(status)
                continue
            break
        response = Response(status, headers, b"", informational)
        if head_only or status in (204, 304):
            return response
        length = response.header("content-length")
        if response.header("transfer-encoding"):
            body = b""
            while True:
                size = int(self._line(deadline).split(b";")[0], 16)
                if size == 0:
                    while self._line(deadline):
                        pass
                    break
                self._need(size + 2, deadline)
                body += self.buffer[:size]
                assert self.buffer[size:size + 2] == b"\r\n", "chunk not followed by CRLF"
                self.buffer = self.buffer[size + 2:]
            response.body = body
        elif length is not None:
            self._need(int(length), deadline)
            response.body, self.buffer = self.buffer[:int(length)], self.buffer[int(length):]
        else:
            while self._fill(deadline):
                pass
            response.body, self.buffer = self.buffer, b""
        return response

    def read_until_close(self) -> bool:
        """Read whatever arrives until the server closes (True) or the timeout (False)."""
        deadline = time.monotonic() + self.timeout
        while not self.eof:
            try:
                self._fill(deadline)
            except TimeoutError:
                return False
        return True

    def closed(self) -> bool:
        """True once the server closes (FIN or RST) with nothing more sent, within the
        timeout; raises if more bytes arrive or the connection stays open."""
        deadline = time.monotonic() + self.timeout
        while not self.eof:
            try:
                self._fill(deadline)
            except TimeoutError:
                return False
        assert not self.buffer, f"bytes after the last response: {self.buffer[:300]!r}"
        return True


def connect(host: str, port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def app_counts(host: str, port: int) -> dict:
    """corpus_echo:app's counters: requests received whole, and calls started."""
    with connect(host, port) as sock:
        sock.sendall(b"GET /__calls HTTP/1.1\r\nHost: corpus\r\nConnection: close\r\n\r\n")
        response = Reader(sock).response()
    assert response.status == 200, response
    return response.json()


def app_calls(host: str, port: int) -> int:
    """How many requests corpus_echo:app received whole (GET /__calls is not counted)."""
    return app_counts(host, port)["calls"]
