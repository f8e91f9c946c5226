"""Raw-socket WebSocket client pieces for tests that need to send what real clients won't."""
from __future__ import annotations

import base64
import os
import socket
import struct
import time


def handshake(server, path: str = "/echo", extra: bytes = b"", version: bytes = b"13",
              key: bytes | None = None) -> tuple[socket.socket, bytes, bytes]:
    """Open a socket, send a handshake, return (sock, response head, bytes after it)."""
    sock = server.connect()
    key = key if key is not None else base64.b64encode(os.urandom(16))
    request = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n")
    if version is not None:
        request += b"Sec-WebSocket-Version: " + version + b"\r\n"
    sock.sendall(request + extra + b"\r\n")
    head, rest = read_head(sock)
    return sock, head, rest


def read_head(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bytes]:
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data:
        if time.monotonic() > deadline:
            raise AssertionError(f"no response head: {data!r}")
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def read_all(sock: socket.socket, rest: bytes = b"", timeout: float = 5.0) -> bytes:
    data = rest
    deadline = time.monotonic() + timeout
    sock.settimeout(timeout)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    return data


def frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0, mask: bool = True) -> bytes:
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


class FrameReader:
    """Reads unmasked server frames from a socket, with a deadline per frame."""

    def __init__(self, sock: socket.socket, rest: bytes = b"") -> None:
        self.sock = sock
        self.buf = rest

    def _need(self, n: int, deadline: float) -> bool:
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("timed out waiting for a frame")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return False
            self.buf += chunk
        return True

    def next(self, timeout: float = 5.0) -> tuple[int, bool, bytes] | None:
        """(opcode, fin, payload), or None at EOF."""
        deadline = time.monotonic() + timeout
        if not self._need(2, deadline):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            self._need(4, deadline)
            n = struct.unpack_from("!H", self.buf, 2)[0]
            pos = 4
        elif n == 127:
            self._need(10, deadline)
            n = struct.unpack_from("!Q", self.buf, 2)[0]
            pos = 10
        assert not b1 & 0x80, "server frames must not be masked"
        if not self._need(pos + n, deadline):
            return None
        payload = self.buf[pos:pos + n]
        self.buf = self.buf[pos + n:]
        return b0 & 0x0F, bool(b0 & 0x80), payload

    def until_close(self, timeout: float = 5.0) -> tuple[int, str] | None:
        """Skip frames until a Close; its (code, reason), or None if the socket ended first."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.next(max(deadline - time.monotonic(), 0.01))
            if got is None:
                return None
            opcode, _, payload = got
            if opcode == 8:
                if len(payload) < 2:
                    return 1005, ""
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    def at_eof(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.next(max(deadline - time.monotonic(), 0.01)) is None:
                    return True
        except AssertionError:
            return False
