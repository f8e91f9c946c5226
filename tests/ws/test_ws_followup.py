"""Follow-up review of issue 9's WebSocket changes: four findings, each test failed on the
commit before its fix (1c6eadc). App: tests/apps/ws_followup.py."""
import asyncio
import gc
import socket
import struct
import time
import weakref

import httpx

from gannet.http.ws import WSConnection
from ws_helpers import FrameReader, frame, handshake, read_head

APP = "ws_followup:app"
UPGRADE = (b"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def rss_kib(server):
    return httpx.get(server.url + "/stats", timeout=5).json()["rss_kib"]


def masked(payload: bytes, opcode: int = 2) -> bytes:
    """A client frame with an all-zero mask (the payload goes as is: fast for big ones)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + b"\0\0\0\0" + payload


# ------------------------------------------------------------------ 1: write timeout
def test_write_timeout_spares_a_client_that_reads_steadily(gannet_server):
    # The app sends 1 MiB messages as fast as it may; the client reads 2 MB/s, slower than
    # that, for eight times --write-timeout. Its buffer refills between sweeps, but bytes
    # keep leaving: it is not stalled. Before: aborted within a few seconds, because only
    # a buffer below the smallest size ever seen counted as progress.
    server = gannet_server(APP, "--write-timeout", "1", "--ws-ping-interval", "0")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(5)
    sock.connect((server.host, server.port))
    sock.sendall(b"GET /produce?size=1048576 HTTP/1.1\r\n" + UPGRADE)
    head, rest = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 ")
    rate, duration = 2_000_000, 8.0
    got = len(rest)
    start = time.monotonic()
    while time.monotonic() - start < duration:
        chunk = sock.recv(16384)
        assert chunk, f"the server closed a steadily reading client after {got} bytes"
        got += len(chunk)
        ahead = got / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)  # pacing the reader to `rate` (the scenario, not a sync)
    assert got > rate * duration / 2, f"only {got} bytes in {duration}s"
    assert "accepted no data" not in server.log
    sock.close()
    server.wait_for_log(r"PRODUCE ENDED: client gone", 15)


def test_write_timeout_spares_a_denial_body_read_steadily(gannet_server):
    # The same rule before the 101: the app's own refusal (16 MiB streamed in 1 MiB
    # chunks) read at 2 MB/s with --write-timeout 1 arrives whole.
    server = gannet_server(APP, "--write-timeout", "1")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(5)
    sock.connect((server.host, server.port))
    sock.sendall(b"GET /deny?chunk=1048576&count=16 HTTP/1.1\r\n" + UPGRADE)
    rate = 2_000_000
    data = bytearray()
    start = time.monotonic()
    while not data.endswith(b"\r\n0\r\n\r\n"):
        assert time.monotonic() - start < 30, "the denial body did not end"
        chunk = sock.recv(16384)
        assert chunk, f"the server closed a steadily reading client after {len(data)} bytes"
        data += chunk
        ahead = len(data) / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)  # pacing the reader to `rate` (the scenario, not a sync)
    assert data.startswith(b"HTTP/1.1 403 ")
    assert len(data) > 16 << 20
    assert "accepted no data" not in server.log
    sock.close()


# ------------------------------------------------------------------ 2: early frames
def test_frames_before_the_101_keep_backpressure(gannet_server):
    # 40 tiny frames in the handshake's packet fill the app's queue (32) before the 101;
    # reading must then stay paused. Before: accept resumed reading anyway and every
    # following byte was buffered (and re-copied) without bound.
    server = gannet_server(APP, "--ws-ping-interval", "0")
    baseline = rss_kib(server)
    sock = server.connect()
    sock.sendall(b"GET /never-read HTTP/1.1\r\n" + UPGRADE + b"".join(masked(b"x") for _ in range(40)))
    head, _ = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 ")
    big = masked(b"\0" * (1 << 20))
    sock.settimeout(2)
    sent = 0
    deadline = time.monotonic() + 15
    try:
        while sent < 48 and time.monotonic() < deadline:
            sock.sendall(big)
            sent += 1
    except socket.timeout:
        pass
    grown_mib = (rss_kib(server) - baseline) / 1024
    assert sent < 48, "the server never stopped reading"
    assert grown_mib < 16, f"{grown_mib:.0f} MiB held for one client whose app does not read"
    sock.close()


# ------------------------------------------------------------------ 3: ping while the app is busy
def test_ping_timeout_spares_a_live_peer_while_the_app_is_busy(gannet_server):
    # The client answers every Ping at once, but its Pongs sit behind 2000 messages the
    # busy app (7 s, past two ping timeouts) has not taken, more than Gannet reads ahead.
    # The app is the bottleneck: the peer must not be failed. Before: closed with 1011
    # "keepalive ping timeout".
    count = 2000
    server = gannet_server(APP, "--ws-ping-interval", "1", "--ws-ping-timeout", "1")
    sock, head, rest = handshake(server, f"/busy?sleep=7&count={count}")
    assert head.startswith(b"HTTP/1.1 101 ")
    sock.sendall(masked(b"first", 1) + b"".join(masked(b"m" * 100, 1) for _ in range(count)))
    reader = FrameReader(sock, rest)
    pings = 0
    deadline = time.monotonic() + 20
    while True:
        assert time.monotonic() < deadline, "no answer from the app"
        got = reader.next(timeout=max(deadline - time.monotonic(), 0.01))
        assert got is not None, "the server closed the connection"
        opcode, _, payload = got
        assert opcode != 8, f"closed: {payload!r}"
        if opcode == 9:
            pings += 1
            sock.sendall(frame(10, payload))
            continue
        assert (opcode, payload) == (1, f"got {count}".encode())
        break
    assert pings >= 2, "the server sent no pings while the app was busy"
    assert "no Pong" not in server.log
    sock.close()
    # The other side (a silent peer while the app holds reading back, with room left to
    # read ahead, is still failed):
    # test_ws_review.py::test_ping_timeout_holds_while_reading_is_paused.


# ------------------------------------------------------------------ 4: buffers of a closed socket
class _Transport:
    def write(self, data):
        pass

    def close(self):
        pass

    def abort(self):
        pass

    def is_closing(self):
        return False

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def get_write_buffer_size(self):
        return 0


class _State:
    def __init__(self, loop):
        self.loop = loop
        self.connections = set()


class _Handler:
    def __init__(self):
        self.closes = []

    def on_message(self, data):
        return False

    def backlog(self):
        return 0

    def on_close(self, code, reason):
        self.closes.append((code, reason))


def test_connection_lost_releases_the_buffers():
    # An app blocked elsewhere keeps its cycle, and the cycle its connection; a closed
    # connection must not keep a partial message (up to --ws-max-size), the fragments,
    # the UTF-8 decoder or the websockets parser. Before: all kept until the app ended.
    loop = asyncio.new_event_loop()
    handler = _Handler()
    conn = WSConnection(_State(loop), _Transport(), handler, [], 4 << 20, None, None)
    conn.start(b"")
    conn.data_received(frame(1, "début ".encode(), fin=False))  # a fragmented text message
    part = masked(b"a" * (1 << 20), 0)  # its next fragment, 1 MiB, half of it arrived
    conn.data_received(part[:len(part) // 2])
    assert conn.fragments and conn.decoder is not None and len(conn.buffer) > 500_000
    parser = weakref.ref(conn.ws)
    enabled = gc.isenabled()
    gc.disable()  # freed by reference counting, not by a cyclic collection
    try:
        conn.connection_lost(None)
        assert handler.closes == [(1006, "")]
        assert len(conn.buffer) == 0
        assert conn.fragments is None and conn.decoder is None
        assert parser() is None, "the websockets protocol of a closed connection is still alive"
        assert not conn.is_open
    finally:
        if enabled:
            gc.enable()
        loop.close()
