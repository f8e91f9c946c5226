"""RFC 6455 on the wire: handshakes, malformed frames, close codes, pings, backpressure,
graceful shutdown. Raw sockets, so we can send what real clients never would."""
import os
import signal
import socket
import struct
import time

import httpx
import pytest
from websockets.sync.client import connect

from conftest import raw_request
from ws_helpers import FrameReader, close_payload, frame, handshake


@pytest.fixture
def server(gannet_server):
    return gannet_server("ws_app:app")


def open_ws(server, path="/echo"):
    sock, head, rest = handshake(server, path)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock, FrameReader(sock, rest)


def still_serving(server):
    assert httpx.get(server.url + "/last-close").status_code == 200
    with connect(f"ws://{server.host}:{server.port}/echo") as ws:
        ws.send("alive")
        assert ws.recv(timeout=5) == "alive"


# ------------------------------------------------------------------ handshakes
def test_handshake_accept_key(server):
    sock, head, _ = handshake(server, key=b"dGhlIHNhbXBsZSBub25jZQ==")  # RFC 6455 §1.3
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols")
    assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    sock.close()


def test_wrong_version_is_426(server):
    sock, head, _ = handshake(server, version=b"8")
    assert head.startswith(b"HTTP/1.1 426 ")
    assert b"sec-websocket-version: 13" in head.lower()
    sock.close()
    still_serving(server)


@pytest.mark.parametrize("request_bytes", [
    # no Sec-WebSocket-Key
    b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n",
    # a key that is not 16 bytes of base64
    b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",
    # no Sec-WebSocket-Version
    b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    # two keys
    b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n",
    # a malformed extensions header
    b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Extensions: ;;;\r\n\r\n",
], ids=["no-key", "short-key", "no-version", "two-keys", "bad-extensions"])
def test_bad_handshake_is_400(server, request_bytes):
    reply = raw_request(server, request_bytes)
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    still_serving(server)


# ------------------------------------------------------------------ frames
def expect_close(reader, code):
    got = reader.until_close()
    assert got is not None and got[0] == code, got
    assert reader.at_eof()


@pytest.mark.parametrize("bad, code", [
    (frame(2, b"abc", mask=False), 1002),                     # unmasked client frame (§5.1)
    (frame(3, b"abc"), 1002),                                 # reserved opcode (§5.2)
    (frame(1, b"abc", rsv=2), 1002),                          # RSV bit, no extension (§5.2)
    (frame(9, b"x" * 126), 1002),                             # control frame > 125 bytes (§5.5)
    (frame(9, b"x", fin=False), 1002),                        # fragmented control frame (§5.5)
    (frame(0, b"abc"), 1002),                                 # continuation with nothing to continue
    (frame(1, b"a", fin=False) + frame(1, b"b"), 1002),       # new message inside a fragmented one
    (frame(1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), 1007),  # invalid UTF-8
    (frame(8, close_payload(1000, "") + b"\xff"), 1007),      # invalid UTF-8 close reason
    (frame(8, close_payload(999)), 1002),                     # invalid close code
    (frame(8, b"\x03"), 1002),                                # 1-byte close payload
])
def test_protocol_errors_close_with_the_rfc_code(server, bad, code):
    sock, reader = open_ws(server)
    sock.sendall(bad)
    expect_close(reader, code)
    sock.close()
    still_serving(server)


def test_invalid_utf8_fails_fast_in_first_fragment(server):
    sock, reader = open_ws(server)
    sock.sendall(frame(1, "ok".encode(), fin=False) + frame(0, b"\xff\xfe", fin=False))
    # The message is not finished, yet the bad fragment already fails it (§8.1).
    expect_close(reader, 1007)
    sock.close()


def test_fragments_with_interleaved_control_frames(server):
    sock, reader = open_ws(server)
    sock.sendall(frame(1, "frag".encode(), fin=False) + frame(9, b"ping-1")
                 + frame(0, "men".encode(), fin=False) + frame(10, b"unsolicited")
                 + frame(9, b"ping-2") + frame(0, "ted ✓".encode()))
    assert reader.next() == (10, True, b"ping-1")
    assert reader.next() == (10, True, b"ping-2")
    assert reader.next() == (1, True, "fragmented ✓".encode())
    sock.sendall(frame(8, close_payload(1000, "done")))
    assert reader.next() == (8, True, close_payload(1000, "done"))
    assert reader.at_eof()


def test_close_inside_fragmented_message_is_answered(server):
    sock, reader = open_ws(server)
    sock.sendall(frame(2, b"part", fin=False) + frame(8, close_payload(4005, "mid")))
    got = reader.until_close()
    assert got == (4005, "mid")  # echoed (§5.5.1), not failed with 1002
    assert reader.at_eof()
    assert httpx.get(server.url + "/last-close").json() == {
        "type": "websocket.disconnect", "code": 4005, "reason": "mid"}


def test_empty_close_gives_1005(server):
    sock, reader = open_ws(server)
    sock.sendall(frame(8, b""))
    assert reader.next() == (8, True, b"")
    assert reader.at_eof()
    deadline = time.monotonic() + 5
    while httpx.get(server.url + "/last-close").json().get("code") != 1005:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_frames_sent_with_the_handshake(server):
    sock = server.connect()
    sock.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                 + frame(1, b"early") + frame(2, b"bird"))
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    reader = FrameReader(sock, rest)
    assert reader.next() == (1, True, b"early")
    assert reader.next() == (2, True, b"bird")
    sock.close()


def test_max_size_closes_1009(gannet_server):
    server = gannet_server("ws_app:app", "--ws-max-size", "1000")
    sock, reader = open_ws(server)
    sock.sendall(frame(2, b"x" * 1000))
    assert reader.next() == (2, True, b"x" * 1000)
    sock.sendall(frame(2, b"x" * 600, fin=False) + frame(0, b"x" * 600))  # 1200 in fragments
    expect_close(reader, 1009)
    sock.close()
    sock, reader = open_ws(server)
    # Only the header of a huge frame: refused from its declared length, nothing buffered.
    sock.sendall(struct.pack("!BBQ", 0x82, 0xFF, 1 << 40) + os.urandom(4))
    expect_close(reader, 1009)
    sock.close()


# ------------------------------------------------------------------ pings
def test_server_pings_and_closes_dead_peer(gannet_server):
    server = gannet_server("ws_app:app", "--ws-ping-interval", "1", "--ws-ping-timeout", "1")
    sock, reader = open_ws(server, "/wait-close")
    opcode, _, payload = reader.next(timeout=5)
    assert opcode == 9
    sock.sendall(frame(10, payload))  # answered: the socket stays open
    opcode, _, payload2 = reader.next(timeout=5)
    assert opcode == 9 and payload2 != payload
    # Now play dead: no Pong. The server gives up with 1011.
    assert reader.until_close(timeout=10) == (1011, "keepalive ping timeout")
    sock.close()
    deadline = time.monotonic() + 5
    while httpx.get(server.url + "/last-close").json().get("code") != 1011:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_ping_is_answered_with_pong(server):
    sock, reader = open_ws(server)
    sock.sendall(frame(9, b"are you there"))
    assert reader.next() == (10, True, b"are you there")
    sock.close()


# ------------------------------------------------------------------ backpressure
def server_rss_kib(server):
    with open(f"/proc/{server.proc.pid}/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0])


def test_incoming_flood_is_bounded_by_the_queue(gannet_server):
    server = gannet_server("ws_app:app", "--ws-max-queue", "4")
    sock, reader = open_ws(server, "/slow")
    before = server_rss_kib(server)
    sock.setblocking(False)
    message = frame(2, b"z" * 65536)
    sent = 0
    # The app never reads: after 4 queued messages the server stops reading, the kernel
    # buffers fill, and our sends stop going through. Bounded: at most 256 MiB offered.
    stalled_since = None
    while sent < 256 * 1024 * 1024:
        try:
            sent += sock.send(message)
            stalled_since = None
        except BlockingIOError:
            now = time.monotonic()
            stalled_since = stalled_since or now
            if now - stalled_since > 1.0:
                break
            time.sleep(0.01)
    assert sent < 64 * 1024 * 1024, f"server kept reading ({sent} bytes)"
    assert server_rss_kib(server) - before < 48 * 1024
    sock.close()
    still_serving(server)


def test_slow_reader_makes_send_wait(gannet_server):
    server = gannet_server("ws_app:app")
    n, size = 2000, 65536  # 125 MiB that the client does not read at first
    sock, reader = open_ws(server, f"/flood?n={n}&size={size}")
    before = server_rss_kib(server)
    # Wait (with a deadline) until the server's writes are stuck behind our full buffers.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    deadline = time.monotonic() + 3
    samples = []
    while time.monotonic() < deadline:
        samples.append(server_rss_kib(server))
        time.sleep(0.1)
    assert max(samples) - before < 48 * 1024, "the app's sends were buffered, not awaited"
    count = 0
    while True:
        got = reader.next(timeout=30)
        assert got is not None
        if got[0] == 1:
            assert got[2] == f"done {n}".encode()
            break
        assert len(got[2]) == size
        count += 1
    assert count == n
    assert reader.until_close() == (1000, "")
    sock.close()


# ------------------------------------------------------------------ graceful shutdown
def test_graceful_shutdown_closes_1001(gannet_server):
    server = gannet_server("ws_app:app", "--timeout-graceful-shutdown", "5")
    sock, reader = open_ws(server, "/wait-close")
    sock.sendall(frame(1, b"hi"))
    server.signal(signal.SIGTERM)
    assert reader.until_close() == (1001, "server shutting down")
    sock.sendall(frame(8, close_payload(1001)))
    assert reader.at_eof()
    assert server.wait(timeout=10) == 0


def test_graceful_shutdown_with_unresponsive_peer(gannet_server):
    server = gannet_server("ws_app:app", "--timeout-graceful-shutdown", "2")
    socks = [open_ws(server, "/wait-close") for _ in range(3)]
    server.signal(signal.SIGTERM)
    for sock, reader in socks:
        assert reader.until_close() == (1001, "server shutting down")  # never answered
    assert server.wait(timeout=10) == 0
    for sock, reader in socks:
        assert reader.at_eof()
        sock.close()


def test_upgrade_header_without_connection_upgrade_is_answered(server):
    """Without 'Connection: Upgrade' the Upgrade is ignored: the app answers plain HTTP."""
    reply = raw_request(server, b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                b"Sec-WebSocket-Version: 13\r\n\r\n", timeout=3)
    assert reply.startswith(b"HTTP/1.1 ")


@pytest.mark.parametrize("bad", [frame(1, b"bad", rsv=1), frame(5, b""), frame(0, b"nothing to continue")],
                         ids=["rsv", "reserved-opcode", "stray-continuation"])
def test_messages_before_a_bad_frame_are_answered_first(server, bad):
    sock, reader = open_ws(server)
    sock.sendall(frame(1, b"first") + frame(2, b"second") + bad + frame(9, b"never answered"))
    assert reader.next() == (1, True, b"first")
    assert reader.next() == (2, True, b"second")
    expect_close(reader, 1002)
    sock.close()


def test_invalid_utf8_fails_fast_inside_one_frame(server):
    sock, reader = open_ws(server)
    whole = frame(1, "valid ✓ then ".encode() + b"\xff" + b"x" * 100)
    # Header and the valid start, then the bad byte; the rest of the frame never comes.
    sock.sendall(whole[:20])
    sock.sendall(whole[20:6 + 16])
    expect_close(reader, 1007)
    sock.close()


def test_shutdown_releases_an_app_waiting_on_a_slow_reader(gannet_server):
    server = gannet_server("ws_app:app", "--timeout-graceful-shutdown", "60")
    sock, reader = open_ws(server, "/flood?n=100000&size=65536")  # we never read
    server.signal(signal.SIGTERM)
    # The app's send is released at once (ClientDisconnected); the socket is dropped when
    # our Close never comes (close timeout), long before the 60 s graceful limit.
    assert server.wait(timeout=30) == 0
    assert "Graceful shutdown timed out" not in server.log
    sock.close()
