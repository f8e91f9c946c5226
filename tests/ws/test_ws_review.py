"""Issue 9 review regressions for WebSockets (defects 3, 4, 5, 11, 14, 16, 20): each of these
failed on ddae8b1. App: tests/apps/ws_review.py (cyclic GC off, see its docstring)."""
import json
import socket
import struct
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from ws_helpers import FrameReader, frame, handshake

APP = "ws_review:app"


def ws_url(server, path):
    return f"ws://{server.host}:{server.port}{path}"


def stats(server):
    return httpx.get(server.url + "/stats", timeout=5).json()


def closed_with(server, path):
    """Connect, expect the server's Close; (code, reason) as the client saw them."""
    with connect(ws_url(server, path)) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None, "no Close frame from the server"
    return info.value.rcvd.code, info.value.rcvd.reason


# ------------------------------------------------------------------ defect 3
@pytest.mark.parametrize("code", [1006, 1005, 999, 5000, 1015, 2999])
def test_unsendable_close_code_becomes_1011_and_the_socket_closes(gannet_server, code):
    server = gannet_server(APP)
    assert closed_with(server, f"/close?code={code}&reason=bye") == (1011, "bye")
    server.wait_for_log(rf"websocket.close with code {code}, which may not be sent")
    server.wait_for_log(r"CLOSE SENT")
    assert "Exception in ASGI application" not in server.log


def test_long_reason_is_cut_on_a_utf8_boundary(gannet_server):
    server = gannet_server(APP)
    code, reason = closed_with(server, "/close?code=4000&reason=long")
    # "a" + 50 × "€" is 151 bytes; 123 fit: "a" and 40 whole "€" (121 bytes), not half of one.
    assert code == 4000
    assert reason == "a" + "€" * 40
    server.wait_for_log(r"CLOSE SENT")


def test_close_without_code_is_1000(gannet_server):
    server = gannet_server(APP)
    assert closed_with(server, "/close?reason=done") == (1000, "done")


# ------------------------------------------------------------------ defects 4 and 14
def test_each_scope_has_its_own_asgi_and_extensions_dicts(gannet_server):
    server = gannet_server(APP)
    seen = []
    for _ in range(2):
        with connect(ws_url(server, "/mutate")) as ws:
            seen.append(json.loads(ws.recv(timeout=5)))
    # The first app mutated both dicts after sending them; the second socket sees pristine ones.
    assert seen[0] == seen[1] == {"asgi": {"version": "3.0", "spec_version": "2.5"},
                                  "extensions": ["websocket.http.response"]}


# ------------------------------------------------------------------ defect 5 (and 14: reason)
def test_two_concurrent_receives_both_see_the_disconnect(gannet_server):
    server = gannet_server(APP)
    with connect(ws_url(server, "/two-receives")) as ws:
        ws.close(4001, "leaving")
    server.wait_for_log(r"TWO RECEIVES websocket.disconnect websocket.disconnect reason='leaving'")


# ------------------------------------------------------------------ defect 16 (WebSocket part)
def test_websockets_count_against_limit_concurrency(gannet_server):
    server = gannet_server(APP, "--limit-concurrency", "1")
    with connect(ws_url(server, "/hold")) as ws:
        with pytest.raises(InvalidStatus) as info:
            connect(ws_url(server, "/hold"))
        assert info.value.response.status_code == 503
        server.wait_for_log(r"refused WebSocket handshake from \S+: 503")
        assert httpx.get(server.url + "/stats").status_code == 503  # HTTP sees it too
        ws.close()
    deadline = time.monotonic() + 10
    while True:  # the first app ends once it has seen the disconnect
        try:
            with connect(ws_url(server, "/hold")) as ws:
                break
        except InvalidStatus as exc:
            assert exc.response.status_code == 503
            assert time.monotonic() < deadline, "the WebSocket's slot was never released"
            time.sleep(0.05)  # polling an observable state with a deadline


# ------------------------------------------------------------------ defect 20
def _tiny_receive_window(server):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect((server.host, server.port))
    return sock


def test_write_timeout_aborts_a_client_that_does_not_read(gannet_server):
    server = gannet_server(APP, "--write-timeout", "1", "--ws-ping-interval", "0")
    sock = _tiny_receive_window(server)
    sock.sendall(b"GET /flood HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    # Never read: the server's buffer fills, the app's send waits, then the write timeout.
    server.wait_for_log(r"the client accepted no data for \d+s \(--write-timeout\); closing", 15)
    server.wait_for_log(r"FLOOD ENDED: client gone", 5)
    sock.close()
    assert "Traceback" not in server.log


def test_ping_timeout_holds_while_reading_is_paused(gannet_server):
    server = gannet_server(APP, "--ws-ping-interval", "1", "--ws-ping-timeout", "1",
                           "--ws-max-queue", "1")
    sock, head, rest = handshake(server, "/never-read")
    assert head.startswith(b"HTTP/1.1 101 ")
    sock.sendall(frame(1, b"one") + frame(1, b"two") + frame(1, b"three"))  # queue full
    reader = FrameReader(sock, rest)
    # The app takes nothing, so Gannet holds reading back; a peer that answers no ping is
    # still found dead (before: never, the socket stayed open for good). (Once Gannet's
    # read-ahead buffer is full the app is the bottleneck and the peer is spared:
    # test_ws_followup.py::test_ping_timeout_spares_a_live_peer_while_the_app_is_busy.)
    assert reader.until_close(timeout=15) == (1011, "keepalive ping timeout")
    server.wait_for_log(r"no Pong within 1s; closing")
    sock.close()


def test_pongs_are_seen_while_reading_is_paused(gannet_server):
    server = gannet_server(APP, "--ws-ping-interval", "1", "--ws-ping-timeout", "1",
                           "--ws-max-queue", "1")
    sock, head, rest = handshake(server, "/never-read")
    sock.sendall(frame(1, b"one") + frame(1, b"two") + frame(1, b"three"))  # queue full
    reader = FrameReader(sock, rest)
    answered = 0
    while answered < 4:  # four pings in a row, each answered while Gannet is not reading
        opcode, _, payload = reader.next(timeout=10)
        assert opcode == 9, f"expected a Ping, got opcode {opcode} {payload!r}"
        sock.sendall(frame(10, payload))
        answered += 1
    assert "no Pong" not in server.log
    sock.close()


def test_closed_sockets_are_freed_without_the_cyclic_gc(gannet_server):
    server = gannet_server(APP)
    for i in range(3):
        with connect(ws_url(server, "/echo")) as ws:
            ws.send(f"hello {i}")
            assert ws.recv(timeout=5) == f"hello {i}"
    sock, head, _ = handshake(server, "/echo")  # and one that just goes away
    assert head.startswith(b"HTTP/1.1 101 ")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    deadline = time.monotonic() + 10
    while stats(server)["alive"]:
        assert time.monotonic() < deadline, f"{stats(server)['alive']} closed sockets still referenced"
        time.sleep(0.05)  # polling an observable state with a deadline


def test_memory_bounded_and_freed_with_clients_that_do_not_read(gannet_server):
    # Echo app, 2 MiB messages, clients that send but never read, then abort. Before: the
    # queue took 32 of them per socket (64 MiB each), and the cycle between the ASGI cycle
    # and the connection kept everything after the abort (this process has no cyclic GC).
    size = 2 << 20
    server = gannet_server(APP, "--ws-max-size", str(size), "--ws-ping-interval", "0")
    baseline = stats(server)["rss_kib"]
    masked = struct.pack("!BBQ", 0x82, 0x80 | 127, size) + b"\0\0\0\0" + b"z" * size
    clients = []
    for _ in range(2):
        sock = _tiny_receive_window(server)
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        sock.settimeout(2)
        sent = 0
        try:
            for _ in range(40):
                sock.sendall(masked)
                sent += 1
        except socket.timeout:
            pass
        assert sent < 40, "the server never stopped reading"
        clients.append(sock)
    assert stats(server)["alive"] == 2
    grown_mib = (stats(server)["rss_kib"] - baseline) / 1024
    assert grown_mib < 64, f"{grown_mib:.0f} MiB held for two clients that do not read"
    for sock in clients:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST
    deadline = time.monotonic() + 10
    while stats(server)["alive"]:
        assert time.monotonic() < deadline, "sockets still referenced after their clients left"
        time.sleep(0.05)  # polling an observable state with a deadline
    assert "Exception in ASGI application" not in server.log


# ------------------------------------------------------------------ defect 11 (WebSocket part)
def test_client_leaving_a_framework_ticker_is_not_an_app_error(gannet_server):
    pytest.importorskip("fastapi")
    server = gannet_server("ws_gone:app", "--log-level", "debug")
    sock, head, rest = handshake(server, "/ticker")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert FrameReader(sock, rest).next()[0] == 1  # it is ticking
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    server.wait_for_log(r"WebSocket client \S+ went away")
    assert "Exception in ASGI application" not in server.log
    assert "Traceback" not in server.log


def test_write_timeout_bounds_a_denial_body_nobody_reads(gannet_server):
    # Before the 101: the app's own refusal (websocket.http.response, 12.5 MiB streamed) to a
    # client that never reads is aborted by the write timeout too.
    server = gannet_server("ws_app:app", "--write-timeout", "1")
    sock = _tiny_receive_window(server)
    sock.sendall(b"GET /deny-big HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    server.wait_for_log(r"WebSocket handshake from \S+: the client accepted no data for \d+s "
                        r"\(--write-timeout\); closing", 15)
    sock.close()
    assert "Exception in ASGI application" not in server.log
