"""Client-side HTTP/1.1 helpers for the e2e tests: a strict response reader over a raw
socket (interim 1xx, Content-Length, chunked with trailers, close-delimited), EOF
detection, and the server's RSS. Not an app: imported by tests/e2e/test_*.py."""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field


class WireError(AssertionError):
    """The bytes on the wire are not what a correct HTTP/1.1 server sends."""


@dataclass
class Response:
    status: int
    reason: bytes
    version: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    framing: str = ""  # "length", "chunked", "close", "none"
    head_raw: bytes = b""
    interim: list["Response"] = field(default_factory=list)

    def get(self, name: bytes) -> bytes | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def get_all(self, name: bytes) -> list[bytes]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]


class Reader:
    """Buffered reads from a blocking socket, each bounded by one overall deadline."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0) -> None:
        self.sock = sock
        self.buf = b""
        self.timeout = timeout
        self.eof = False
        self.reset = False

    def _fill(self, deadline: float) -> bool:
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WireError(f"timed out waiting for data; have {self.buf[:200]!r}")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1024 * 1024)
        except socket.timeout:
            raise WireError(f"timed out waiting for data; have {self.buf[:200]!r}") from None
        except ConnectionResetError:
            self.eof = self.reset = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_until(self, marker: bytes, deadline: float, limit: int = 1 << 20) -> bytes:
        while True:
            at = self.buf.find(marker)
            if at >= 0:
                data, self.buf = self.buf[:at + len(marker)], self.buf[at + len(marker):]
                return data
            if len(self.buf) > limit:
                raise WireError(f"no {marker!r} within {limit} bytes")
            if not self._fill(deadline):
                raise WireError(f"connection closed before {marker!r}; have {self.buf[:200]!r}")

    def read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise WireError(f"connection closed after {len(self.buf)} of {n} bytes")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_to_eof(self, deadline: float) -> bytes:
        while self._fill(deadline):
            pass
        data, self.buf = self.buf, b""
        return data

    def at_eof(self, timeout: float = 5.0) -> bool:
        """True when the peer closes (FIN or RST) with no further bytes within ``timeout``."""
        if self.buf:
            return False
        deadline = time.monotonic() + timeout
        try:
            return not self._fill(deadline)
        except WireError:
            return False


def _parse_head(raw: bytes) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]:
    lines = raw.split(b"\r\n")
    status_line = lines[0]
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise WireError(f"bad status line {status_line!r}")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if b":" not in line or line[:1] in (b" ", b"\t"):
            raise WireError(f"bad header line {line!r}")
        name, value = line.split(b":", 1)
        if name != name.strip() or not name:
            raise WireError(f"bad header name {name!r}")
        headers.append((name.lower(), value.strip(b" \t")))
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else b"", headers


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
    return response


def request_once(host: str, port: int, data: bytes, head_request: bool = False,
                 timeout: float = 10.0) -> Response:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_response(Reader(sock, timeout), head_request)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line")
