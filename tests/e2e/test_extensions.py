"""ASGI HTTP extensions over HTTP/1.1: trailers, pathsend, zerocopysend, early hints."""
from __future__ import annotations

import os
import time
from urllib.parse import quote

import httpx

from corpus.wire import Reader, read_response

APP = "h1_apps:app"


def _req(target: str, extra: bytes = b"") -> bytes:
    return b"GET %b HTTP/1.1\r\nHost: test\r\n%b\r\n" % (target.encode(), extra)


def _data_file(tmp_path, size: int):
    data = os.urandom(size)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    return path, data


# ---------------------------------------------------------------- trailers
def test_trailers_after_chunked_body(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req("/trailers", b"TE: trailers\r\n"))
        reader = Reader(sock)
        raw_head = reader.read_until(b"\r\n\r\n", time.monotonic() + 10)
        assert raw_head.startswith(b"HTTP/1.1 200 ")
        assert b"\r\ntransfer-encoding: chunked\r\n" in raw_head.lower()
        assert b"content-length" not in raw_head.lower()
        rest = reader.read_until(b"\r\n\r\n", time.monotonic() + 10)
        # body chunks, then the last chunk immediately followed by the trailer field
        assert rest == b"3\r\nabc\r\n3\r\ndef\r\n0\r\nx-checksum: c0ffee\r\n\r\n" \
            or rest.endswith(b"0\r\nx-checksum: c0ffee\r\n\r\n"), rest
        # the connection stays usable: the trailer section was terminated properly
        sock.sendall(_req("/"))
        after = read_response(reader)
    assert after.status == 200 and after.body == b"hello"


def test_trailers_parsed_by_strict_reader(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req("/trailers", b"TE: trailers\r\n"))
        response = read_response(Reader(sock))
    assert response.framing == "chunked"
    assert response.body == b"abcdef"
    assert response.trailers == [(b"x-checksum", b"c0ffee")]


def test_trailers_after_one_shot_body(gannet_server):
    """trailers=True and the whole body in one message (more_body False): the trailer
    can only travel with chunked framing, so the head must not carry Content-Length."""
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req("/trailers-oneshot", b"TE: trailers\r\n"))
        response = read_response(Reader(sock))
    assert response.status == 200
    assert response.body == b"abcdef"
    assert response.framing == "chunked", response.head_raw
    assert response.trailers == [(b"x-checksum", b"c0ffee")]


# ---------------------------------------------------------------- pathsend
def test_pathsend_sends_the_file(gannet_server, tmp_path):
    server = gannet_server(APP)
    path, data = _data_file(tmp_path, 3 * 1024 * 1024 + 17)
    with server.connect() as sock:
        sock.sendall(_req("/pathsend?p=" + quote(str(path))))
        reader = Reader(sock)
        response = read_response(reader)
        assert response.status == 200
        assert response.get(b"content-length") == str(len(data)).encode()
        assert response.framing == "length"
        assert response.body == data
        # exactly the file: the next response follows directly
        sock.sendall(_req("/"))
        after = read_response(reader)
    assert after.body == b"hello"


def test_pathsend_small_file_with_httpx(gannet_server, tmp_path):
    server = gannet_server(APP)
    path, data = _data_file(tmp_path, 1000)
    response = httpx.get(server.url + "/pathsend", params={"p": str(path)})
    assert response.status_code == 200
    assert response.headers["content-length"] == "1000"
    assert response.content == data


def test_pathsend_head_sends_no_body(gannet_server, tmp_path):
    server = gannet_server(APP)
    path, data = _data_file(tmp_path, 4096)
    with server.connect() as sock:
        sock.sendall(b"HEAD /pathsend?p=%b HTTP/1.1\r\nHost: test\r\n\r\n" % quote(str(path)).encode())
        reader = Reader(sock)
        head = read_response(reader, head_request=True)
        sock.sendall(_req("/"))
        after = read_response(reader)
    assert head.status == 200
    assert after.status == 200 and after.body == b"hello"


# ---------------------------------------------------------------- zerocopysend
def test_zerocopysend_with_offset_and_count(gannet_server, tmp_path):
    server = gannet_server(APP)
    path, data = _data_file(tmp_path, 2 * 1024 * 1024)
    offset, count = 1000, 1536 * 1024 + 3
    with server.connect() as sock:
        sock.sendall(_req(f"/zerocopy?p={quote(str(path))}&o={offset}&c={count}"))
        reader = Reader(sock)
        response = read_response(reader)
        assert response.status == 200
        assert response.get(b"content-length") == str(count).encode()
        assert response.body == data[offset:offset + count]
        sock.sendall(_req("/"))
        after = read_response(reader)
    assert after.body == b"hello"


def test_zerocopysend_whole_file(gannet_server, tmp_path):
    server = gannet_server(APP)
    path, data = _data_file(tmp_path, 200_000)
    response = httpx.get(server.url + "/zerocopy", params={"p": str(path)})
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(data))
    assert response.content == data


def test_zerocopysend_in_parts_is_chunked(gannet_server, tmp_path):
    server = gannet_server(APP)
    path, data = _data_file(tmp_path, 300_001)
    with server.connect() as sock:
        sock.sendall(_req(f"/zerocopy-parts?p={quote(str(path))}"))
        reader = Reader(sock)
        response = read_response(reader)
        sock.sendall(_req("/"))
        after = read_response(reader)
    assert response.status == 200
    assert response.framing == "chunked"
    assert response.body == data
    assert after.body == b"hello"


def test_zerocopysend_after_buffered_body_keeps_order(gannet_server, tmp_path):
    """The file goes out only after what the transport still buffers from earlier sends."""
    server = gannet_server(APP)
    path, data = _data_file(tmp_path, 1024 * 1024)
    response = httpx.get(server.url + "/body-then-zerocopy", params={"p": str(path)}, timeout=30)
    assert response.status_code == 200
    assert len(response.content) == 16 * 1024 * 1024 + len(data)
    assert response.content[:16 * 1024 * 1024] == b"m" * (16 * 1024 * 1024)
    assert response.content[16 * 1024 * 1024:] == data


# ---------------------------------------------------------------- early hints
def test_early_hint_before_final_response(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(_req("/early-hint"))
        reader = Reader(sock)
        hint = reader.read_until(b"\r\n\r\n", time.monotonic() + 10)
        assert hint.startswith(b"HTTP/1.1 103 Early Hints\r\n"), hint
        lines = hint.split(b"\r\n")[1:-2]
        links = [line.split(b":", 1)[1].strip() for line in lines if line.lower().startswith(b"link:")]
        assert links == [b"</style.css>; rel=preload; as=style", b"</script.js>; rel=preload; as=script"]
        response = read_response(reader)
    assert response.status == 200
    assert response.interim == []
    assert response.body == b"after hints"


def test_early_hint_not_sent_to_http10(gannet_server):
    server = gannet_server(APP)
    with server.connect() as sock:
        sock.sendall(b"GET /early-hint HTTP/1.0\r\n\r\n")
        response = read_response(Reader(sock))
    assert response.interim == []  # RFC 9110 §15.2: no 1xx to an HTTP/1.0 client
    assert response.status == 200 and response.body == b"after hints"
