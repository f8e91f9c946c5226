"""The ASGI websocket spec, seen from real clients (websockets' sync client, httpx)."""
import json
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from ws_helpers import FrameReader, frame, handshake


def last_close(server, expect=None, timeout=5.0):
    """The app's record of its last websocket.disconnect, polled until it matches."""
    deadline = time.monotonic() + timeout
    while True:
        record = httpx.get(server.url + "/last-close").json()
        if expect is None or all(record.get(k) == v for k, v in expect.items()):
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"last close was {record}, expected {expect}")
        time.sleep(0.05)  # polling an observable state with a deadline


@pytest.fixture
def server(gannet_server):
    return gannet_server("ws_app:app")


def ws_url(server, path):
    return f"ws://{server.host}:{server.port}{path}"


def test_echo_text_bytes_fragmented_large(server):
    with connect(ws_url(server, "/echo")) as ws:
        ws.send("héllo ✓")
        assert ws.recv(timeout=5) == "héllo ✓"
        ws.send(b"\x00\xff\x10")
        assert ws.recv(timeout=5) == b"\x00\xff\x10"
        ws.send(["frag", "mented ", "text"])
        assert ws.recv(timeout=5) == "fragmented text"
        ws.send([b"a", b"b"])
        assert ws.recv(timeout=5) == b"ab"
        big = bytes(range(256)) * 4000
        ws.send(big)
        assert ws.recv(timeout=5) == big
        ws.send("")
        assert ws.recv(timeout=5) == ""
        ws.ping(b"p").wait(5)


def test_scope(server):
    with connect(ws_url(server, "/scope?x=1&y=%20"), subprotocols=["a", "b"],
                 additional_headers={"X-Test": "1"}) as ws:
        scope = json.loads(ws.recv(timeout=5))
    assert scope["type"] == "websocket"
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == "/scope"
    assert scope["query_string"] == "x=1&y=%20"
    assert scope["scheme"] == "ws"
    assert scope["http_version"] == "1.1"
    assert scope["subprotocols"] == ["a", "b"]
    assert scope["root_path"] == ""
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["asgi"]["version"] == "3.0"
    assert "websocket.http.response" in scope["extensions"]
    assert ["x-test", "1"] in scope["headers"]
    assert "method" not in scope


def test_root_path_and_state(gannet_server):
    server = gannet_server("ws_app:app", "--root-path", "/api")
    with connect(ws_url(server, "/scope")) as ws:
        scope = json.loads(ws.recv(timeout=5))
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/scope"


def test_accept_with_subprotocol_and_headers(server):
    with connect(ws_url(server, "/subproto"), subprotocols=["chat.v2", "chat.v1"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.response.headers["x-custom"] == "hello"
        assert ws.response.headers["server"] == "gannet"
        assert json.loads(ws.recv(timeout=5)) == ["chat.v2", "chat.v1"]


def test_close_before_accept_is_403(server):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, "/close-before"))
    assert info.value.response.status_code == 403


def test_http_response_extension_streamed(server):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, "/deny"))
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["x-denied"] == "yes"
    assert response.body == b"not allowed"
    assert response.headers["transfer-encoding"] == "chunked"


def test_http_response_extension_with_length(server):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, "/deny-cl"))
    assert info.value.response.status_code == 404
    assert info.value.response.body == b"no such"


def test_app_close_with_code_and_reason(server):
    with connect(ws_url(server, "/close-reason")) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd.code == 4001
    assert info.value.rcvd.reason == "custom reason"


def test_disconnect_carries_peer_code_and_reason(server):
    with connect(ws_url(server, "/echo")) as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
        ws.close(4002, "bye now")
    assert last_close(server, {"code": 4002}) == {"type": "websocket.disconnect", "code": 4002,
                                                  "reason": "bye now"}


def test_disconnect_without_close_frame_is_1006(server):
    sock, head, rest = handshake(server, "/echo")
    assert head.startswith(b"HTTP/1.1 101 ")
    sock.sendall(frame(1, b"x"))
    assert FrameReader(sock, rest).next() == (1, True, b"x")
    sock.close()  # no Close frame
    assert last_close(server, {"code": 1006})["code"] == 1006


def test_error_before_accept_is_500(server):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, "/error-before"))
    assert info.value.response.status_code == 500
    server.wait_for_log("Exception in ASGI application")


def test_error_after_accept_closes_1011(server):
    with connect(ws_url(server, "/error-after")) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd.code == 1011


def test_return_after_accept_closes_1000(server):
    with connect(ws_url(server, "/return")) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd.code == 1000


def test_plain_http_still_served(server):
    assert httpx.get(server.url + "/").status_code == 200


def test_ws_none_serves_upgrade_as_http(gannet_server):
    server = gannet_server("ws_app:app", "--ws", "none")
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, "/echo"))
    assert info.value.response.status_code == 200


def test_http_response_extension_large_streamed_body(server):
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    with httpx.stream("GET", server.url + "/deny-big", headers=headers, timeout=30) as response:
        assert response.status_code == 403
        body = b"".join(response.iter_bytes())
    assert len(body) == 200 * 65536
    assert body[:1] == b"A" and body[-1:] == bytes([65 + 199 % 26])


def test_subprotocol_not_offered_is_left_out(server):
    with connect(ws_url(server, "/wrong-subprotocol")) as ws:
        assert ws.subprotocol is None
        assert ws.recv(timeout=5) == "accepted"
    server.wait_for_log("which the client did not offer")


def test_still_upgrades_after_the_servers_ticks(server):
    # The once-a-second ticker refreshes shared state; the hand-over must survive it.
    first = httpx.get(server.url + "/").headers["date"]
    deadline = time.monotonic() + 5
    while httpx.get(server.url + "/").headers["date"] == first:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with connect(ws_url(server, "/echo")) as ws:
        ws.send("later")
        assert ws.recv(timeout=5) == "later"
