"""http/ws.py without a server: handshake negotiation and the frame layer fed in random
chunk sizes (the fast path and the websockets path must agree on every boundary)."""
import asyncio
import random
import zlib

import pytest

from gannet.http.ws import HandshakeError, WSConnection, negotiate
from ws_helpers import close_payload, frame

KEY = (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==")
BASE = [(b"host", b"a"), (b"upgrade", b"websocket"), (b"connection", b"Upgrade"), KEY,
        (b"sec-websocket-version", b"13")]


def test_negotiate_accept_key_and_subprotocols():
    hs = negotiate(BASE + [(b"sec-websocket-protocol", b"chat, superchat")], "1.1", True)
    assert hs.accept_key == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert hs.subprotocols == ["chat", "superchat"]
    assert hs.extensions == [] and hs.extensions_header is None
    head = hs.response_head("chat", [(b"x-a", b"1")], b"server: gannet\r\n")
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"sec-websocket-protocol: chat\r\n" in head and b"x-a: 1\r\n" in head
    assert head.endswith(b"server: gannet\r\n\r\n")


def test_negotiate_deflate_parameters():
    offer = (b"sec-websocket-extensions",
             b"permessage-deflate; client_max_window_bits; server_no_context_takeover")
    hs = negotiate(BASE + [offer], "1.1", True)
    assert "permessage-deflate" in hs.extensions_header
    assert "server_no_context_takeover" in hs.extensions_header
    assert "client_max_window_bits=12" in hs.extensions_header
    assert len(hs.extensions) == 1
    assert negotiate(BASE + [offer], "1.1", False).extensions_header is None


@pytest.mark.parametrize("headers, version, status", [
    ([h for h in BASE if h[0] != b"sec-websocket-version"], "1.1", 400),
    ([h for h in BASE if h[0] != b"sec-websocket-version"] + [(b"sec-websocket-version", b"8")], "1.1", 426),
    ([h for h in BASE if h[0] != b"sec-websocket-key"], "1.1", 400),
    (BASE, "1.0", 400),
    (BASE + [(b"sec-websocket-protocol", b"a b")], "1.1", 400),
])
def test_negotiate_refusals(headers, version, status):
    with pytest.raises(HandshakeError) as info:
        negotiate(headers, version, True)
    assert info.value.status == status
    if status == 426:
        assert (b"sec-websocket-version", b"13") in info.value.headers


@pytest.mark.parametrize("name, value", [(b"x-a", b"1\r\nx-b: 2"), (b"bad name", b"1"),
                                         (b"sec-websocket-accept", b"x")])
def test_accept_headers_are_checked(name, value):
    with pytest.raises(ValueError):
        negotiate(BASE, "1.1", False).response_head(None, [(name, value)], b"")


class FakeTransport:
    def __init__(self):
        self.out = bytearray()
        self.closed = False
        self.paused = False

    def write(self, data):
        self.out += data

    def close(self):
        self.closed = True

    def abort(self):
        self.closed = True

    def is_closing(self):
        return self.closed

    def pause_reading(self):
        self.paused = True

    def resume_reading(self):
        self.paused = False


class FakeState:
    def __init__(self, loop):
        self.loop = loop
        self.connections = set()


class Recorder:
    def __init__(self, limit=10 ** 9):
        self.messages = []
        self.closes = []
        self.limit = limit

    def on_message(self, data):
        self.messages.append(data)
        return len(self.messages) >= self.limit

    def on_close(self, code, reason):
        self.closes.append((code, reason))

    def backlog(self):
        return 0


def make_conn(handler, extensions=(), max_size=1 << 20):
    loop = asyncio.new_event_loop()
    transport = FakeTransport()
    conn = WSConnection(FakeState(loop), transport, handler, list(extensions), max_size, None, None)
    conn.start(b"")
    return conn, transport, loop


def feed_in_pieces(conn, stream, rng):
    pos = 0
    while pos < len(stream):
        step = rng.choice([1, 2, 3, 7, 64, 1000, len(stream)])
        conn.data_received(stream[pos:pos + step])
        pos += step


@pytest.mark.parametrize("seed", range(25))
def test_random_chunking_gives_the_same_messages(seed):
    rng = random.Random(seed)
    expected, stream = [], b""
    for _ in range(40):
        kind = rng.randrange(5)
        size = rng.choice([0, 1, 125, 126, 127, 65535, 65536, 70000])
        if kind == 0:
            text = "é✓" * (size // 5)
            expected.append(text)
            stream += frame(1, text.encode())
        elif kind == 1:
            data = bytes(rng.getrandbits(8) for _ in range(min(size, 300))) * (size // 300 + 1)
            data = data[:size]
            expected.append(data)
            stream += frame(2, data)
        elif kind == 2:  # fragmented text with a ping in between
            text = "fragment ✓ " * (size // 20 + 1)
            raw = text.encode()
            cut = rng.randrange(len(raw) + 1)
            expected.append(text)
            stream += frame(1, raw[:cut], fin=False) + frame(9, b"p") + frame(0, raw[cut:])
        elif kind == 3:
            stream += frame(10, b"unsolicited pong")
        else:
            data = b"z" * size
            expected.append(data)
            stream += frame(2, data[:size // 2], fin=False) + frame(0, data[size // 2:])
    stream += frame(8, close_payload(1000, "end"))
    handler = Recorder()
    conn, transport, loop = make_conn(handler)
    feed_in_pieces(conn, stream, rng)
    assert handler.messages == expected
    assert handler.closes == [(1000, "end")]
    assert transport.closed
    loop.close()


def test_compressed_frames_take_the_websockets_path():
    offer = (b"sec-websocket-extensions", b"permessage-deflate")
    hs = negotiate(BASE + [offer], "1.1", True)
    handler = Recorder()
    conn, transport, loop = make_conn(handler, hs.extensions)
    compressor = zlib.compressobj(wbits=-15)
    stream = b""
    for text in ("hello", "hello again", "x" * 10000):
        data = compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
        stream += frame(1, data[:-4], rsv=4)
    feed_in_pieces(conn, stream, random.Random(1))
    assert handler.messages == ["hello", "hello again", "x" * 10000]
    conn.send_message(b"out", True)
    assert transport.out[:1] == b"\xc1"  # FIN + RSV1 (compressed) + text
    loop.close()


def test_full_queue_pauses_and_resume_continues():
    handler = Recorder(limit=2)
    conn, transport, loop = make_conn(handler)
    conn.data_received(b"".join(frame(2, bytes([i])) for i in range(6)))
    assert len(handler.messages) == 2 and transport.paused and conn.paused
    handler.limit = 10 ** 9
    conn.resume()
    assert handler.messages == [bytes([i]) for i in range(6)]
    assert not transport.paused
    loop.close()


def test_send_framing_sizes():
    conn, transport, loop = make_conn(Recorder())
    for size in (0, 125, 126, 65535, 65536):
        transport.out.clear()
        conn.send_message(b"a" * size, False)
        out = bytes(transport.out)
        assert out[0] == 0x82
        if size < 126:
            assert out[1] == size and len(out) == 2 + size
        elif size < 65536:
            assert out[1] == 126 and int.from_bytes(out[2:4], "big") == size
        else:
            assert out[1] == 127 and int.from_bytes(out[2:10], "big") == size
    loop.close()


def test_compressed_fragments_arriving_in_pieces():
    offer = (b"sec-websocket-extensions", b"permessage-deflate")
    hs = negotiate(BASE + [offer], "1.1", True)
    handler = Recorder()
    conn, transport, loop = make_conn(handler, hs.extensions)
    text = "é✓ compressible text " * 500
    compressor = zlib.compressobj(wbits=-15)
    data = compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
    data = data[:-4]
    third = len(data) // 3
    stream = (frame(1, data[:third], fin=False, rsv=4) + frame(0, data[third:2 * third], fin=False)
              + frame(0, data[2 * third:]))
    for i in range(0, len(stream), 5):  # byte-sized pieces: every frame is seen incomplete
        conn.data_received(stream[i:i + 5])
    assert handler.messages == [text]
    assert handler.closes == []
    loop.close()
