"""The ASGI http scope and receive() as an app sees them (ASGI 3, HTTP spec 2.4)."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import uuid

import httpx
import pytest

from corpus.wire import Reader, read_response

APP = "h1_apps:app"


def _scope(server, request: bytes) -> tuple[dict, socket.socket]:
    with server.connect() as sock:
        sock.sendall(request)
        response = read_response(Reader(sock))
        local = sock.getsockname()
    assert response.status == 200
    return json.loads(response.body), local


def test_full_http_scope(gannet_server):
    server = gannet_server(APP)
    scope, local = _scope(server, b"GET /scope/x?a=1&b=%20 HTTP/1.1\r\nHost: test\r\n\r\n")
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert isinstance(scope["asgi"].get("spec_version"), str)
    assert scope["asgi"]["spec_version"].startswith("2.")
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope/x"
    assert scope["raw_path"] == "/scope/x"
    assert scope["query_string"] == "a=1&b=%20"
    assert scope["root_path"] == ""
    assert scope["client"] == [local[0], local[1]]
    assert scope["server"] == ["127.0.0.1", server.port]
    assert isinstance(scope["state"], dict)


def test_scope_method_and_http10(gannet_server):
    server = gannet_server(APP)
    scope, _ = _scope(server, b"DELETE /scope/m HTTP/1.0\r\n\r\n")
    assert scope["method"] == "DELETE"
    assert scope["http_version"] == "1.0"


def test_path_percent_decoded_utf8_and_raw_path_kept(gannet_server):
    server = gannet_server(APP)
    scope, _ = _scope(server, b"GET /caf%C3%A9/a%2Fb%20c?q=caf%C3%A9 HTTP/1.1\r\nHost: test\r\n\r\n")
    # JSON carries bytes as latin-1 and str as itself
    assert scope["path"] == "/café/a/b c"
    assert scope["raw_path"] == "/caf%C3%A9/a%2Fb%20c"
    assert scope["query_string"] == "q=caf%C3%A9"


def test_headers_lowercased_in_order_with_duplicates(gannet_server):
    server = gannet_server(APP)
    scope, _ = _scope(server, b"GET /scope/h HTTP/1.1\r\nHost: test\r\nX-Dup: 1\r\n"
                              b"X-Upper-CASE: Mixed Value\r\nx-dup: 2\r\nAccept: */*\r\n\r\n")
    assert scope["headers"] == [["host", "test"], ["x-dup", "1"], ["x-upper-case", "Mixed Value"],
                                ["x-dup", "2"], ["accept", "*/*"]]


def test_root_path(gannet_server):
    server = gannet_server(APP, "--root-path", "/api")
    scope, _ = _scope(server, b"GET /scope/r?z HTTP/1.1\r\nHost: test\r\n\r\n")
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/scope/r"
    assert scope["path"].startswith(scope["root_path"])
    assert scope["query_string"] == "z"
    # routes still resolve below the prefix
    assert httpx.get(server.url + "/").text == "hello"


def test_extensions_advertised(gannet_server):
    server = gannet_server(APP)
    scope, _ = _scope(server, b"GET /scope/e HTTP/1.1\r\nHost: test\r\n\r\n")
    extensions = scope["extensions"]
    for name in ("http.response.trailers", "http.response.pathsend",
                 "http.response.zerocopysend", "http.response.early_hint"):
        assert name in extensions, name
        assert isinstance(extensions[name], dict)


def test_lifespan_state_copied_per_request(gannet_server):
    server = gannet_server(APP)
    with httpx.Client(base_url=server.url) as client:
        first = client.get("/state-mutate", params={"v": "one"}).json()
        second = client.get("/state-mutate", params={"v": "two"}).json()
    with httpx.Client(base_url=server.url) as other:
        third = other.get("/state-mutate", params={"v": "three"}).json()
    for seen in (first, second, third):
        assert seen == {"greeting": "from-lifespan", "number": 1}


# ---------------------------------------------------------------- receive()
def test_big_upload_streamed_in_several_messages(gannet_server):
    server = gannet_server(APP)
    size = 5 * 1024 * 1024
    payload = os.urandom(size)
    with httpx.Client(base_url=server.url, timeout=15) as client:
        info = client.post("/body-info", content=payload).json()
    assert info["total"] == size
    assert info["sha256"] == hashlib.sha256(payload).hexdigest()
    assert info["messages"] > 1
    assert info["more_body"][-1] is False
    assert all(info["more_body"][:-1])


def test_big_chunked_upload_streamed_in_several_messages(gannet_server):
    server = gannet_server(APP)
    block = os.urandom(64 * 1024)
    blocks = 80  # 5 MiB

    def generate():
        for _ in range(blocks):
            yield block

    with httpx.Client(base_url=server.url, timeout=15) as client:
        info = client.post("/body-info", content=generate()).json()
    digest = hashlib.sha256()
    for _ in range(blocks):
        digest.update(block)
    assert info["total"] == len(block) * blocks
    assert info["sha256"] == digest.hexdigest()
    assert info["messages"] > 1
    assert info["more_body"][-1] is False


def test_empty_body_is_one_message(gannet_server):
    server = gannet_server(APP)
    info = httpx.get(server.url + "/body-info").json()
    assert info == {"messages": 1, "total": 0, "sha256": hashlib.sha256(b"").hexdigest(),
                    "more_body": [False]}


def test_disconnect_while_app_waits_for_body(gannet_server):
    """Client sends part of a Content-Length body, then closes: the app blocked in
    receive() must get http.disconnect."""
    server = gannet_server(APP)
    token = uuid.uuid4().hex
    sock = server.connect()
    sock.sendall(b"POST /wait-disconnect?t=%b HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n"
                 b"0123456789" % token.encode())
    server.wait_for_log(rf"h1-wait-disconnect got 10 bytes {token}")
    sock.close()
    server.wait_for_log(rf"h1-disconnect {token}", timeout=5)


def test_disconnect_after_body_while_app_waits(gannet_server):
    """Long-poll: the request is complete; the app keeps calling receive(), which blocks
    until the client goes away; then it must get http.disconnect."""
    server = gannet_server(APP)
    token = uuid.uuid4().hex
    sock = server.connect()
    sock.sendall(b"GET /wait-disconnect?t=%b HTTP/1.1\r\nHost: test\r\n\r\n" % token.encode())
    server.wait_for_log(rf"h1-wait-disconnect got 0 bytes {token}")
    sock.close()
    server.wait_for_log(rf"h1-disconnect {token}", timeout=5)


def test_disconnect_by_reset_while_app_waits(gannet_server):
    server = gannet_server(APP)
    token = uuid.uuid4().hex
    sock = server.connect()
    sock.sendall(b"GET /wait-disconnect?t=%b HTTP/1.1\r\nHost: test\r\n\r\n" % token.encode())
    server.wait_for_log(rf"h1-wait-disconnect got 0 bytes {token}")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST
    server.wait_for_log(rf"h1-disconnect {token}", timeout=5)
    # the worker is fine afterwards
    assert httpx.get(server.url + "/").text == "hello"


@pytest.mark.parametrize("kind", ["tuple", "lists", "iter", "dup-cl"])
def test_response_header_list_shapes(gannet_server, kind):
    """Tuples, lists of lists and iterators are all header lists; each is checked (and
    cached) by content, so asking twice gives the same head. A Content-Length repeated
    with the same value goes out once."""
    server = gannet_server(APP)
    with server.connect() as sock:
        reader = Reader(sock)
        for _ in range(2):
            sock.sendall(b"GET /head-shape?k=%b HTTP/1.1\r\nHost: t\r\n\r\n" % kind.encode())
            response = read_response(reader)
            assert response.status == 200
            assert response.body == b"shape " + kind.encode()
            assert response.get_all(b"content-type") == [b"text/plain"]
            assert response.get_all(b"content-length") == [str(len(response.body)).encode()]


def test_header_list_mutated_between_responses(gannet_server):
    """An app that reuses one list and changes a value in place gets each value on the
    wire: the check cache is keyed by content, not by the list object."""
    server = gannet_server(APP)
    seen = []
    with server.connect() as sock:
        reader = Reader(sock)
        for _ in range(3):
            sock.sendall(b"GET /head-shape?k=shared HTTP/1.1\r\nHost: t\r\n\r\n")
            response = read_response(reader)
            assert response.status == 200
            seen.append(int(response.get_all(b"x-call")[0]))
    assert seen == [seen[0], seen[0] + 1, seen[0] + 2]


def test_repeated_and_many_distinct_targets(gannet_server):
    """Split targets are remembered per server (bounded, cleared when full): a repeated
    target, and more distinct targets than the memory holds, each get their own scope."""
    server = gannet_server(APP)
    targets = [b"/scope/a%20b?x=1", b"/scope/a%20b?x=1", b"/scope/a%2Fb#frag"]
    targets += [b"/scope/n%d?i=%d" % (i, i) for i in range(1100)] + targets
    with server.connect() as sock:
        reader = Reader(sock)
        for start in range(0, len(targets), 100):  # pipelined, 100 at a time
            batch = targets[start:start + 100]
            sock.sendall(b"".join(b"GET %b HTTP/1.1\r\nHost: t\r\n\r\n" % t for t in batch))
            for target in batch:
                scope = json.loads(read_response(reader).body)
                raw, _, query = target.partition(b"#")[0].partition(b"?")
                assert scope["raw_path"].encode("latin-1") == raw
                assert scope["query_string"].encode("latin-1") == query
                assert scope["path"] == raw.decode().replace("%20", " ").replace("%2F", "/")
