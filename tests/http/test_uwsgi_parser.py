"""The uwsgi request parser (http/uwsgi.py), without sockets: packets in, callbacks out.

Packets are encoded here with struct from the uwsgi protocol spec (4-byte header:
modifier1, u16 LE datasize, modifier2; then u16 LE-sized keys and values), independently
of the parser, so a mistake in one cannot hide one in the other. The second half drives
a real ``UwsgiProtocol`` over a fake transport, so h1's limits, refusals, timeouts and
the scope's version are checked as they apply to uwsgi requests."""
from __future__ import annotations

import asyncio
import struct
from typing import Any

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gannet.config import Config
from gannet.http.errors import ProtocolError
from gannet.http.trust import TrustedPeers
from gannet.http.uwsgi import UwsgiProtocol, UwsgiRequestParser
from gannet.server.state import ServerState

GET = [(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/a/b?x=1"), (b"SERVER_PROTOCOL", b"HTTP/1.1")]


def var(key: bytes, value: bytes) -> bytes:
    return struct.pack("<H", len(key)) + key + struct.pack("<H", len(value)) + value


def packet(variables: list[tuple[bytes, bytes]], modifier1: int = 0, modifier2: int = 0,
           raw: bytes | None = None) -> bytes:
    block = b"".join(var(k, v) for k, v in variables) if raw is None else raw
    return struct.pack("<BHB", modifier1, len(block), modifier2) + block


class Recorder:
    """What H1Protocol offers the parser: the callbacks and client/server/scheme."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.events: list[tuple] = []
        self.client: Any = ("192.0.2.1", 40000)  # the socket's, until the vars say otherwise
        self.server: Any = ("192.0.2.2", 9000)
        self.scheme = "http"
        self.sender: str | None = "192.0.2.1"  # h1's: whoever connected, looked up once
        self.sender_trusted: bool | None = True
        self.fail_on = fail_on
        self.parser: UwsgiRequestParser | None = None
        self.version_seen: str | None = None

    def _event(self, name: str, *args: Any) -> None:
        if name == self.fail_on:
            raise ProtocolError(431, f"refused in {name}")
        self.events.append((name, *args))

    def on_message_begin(self) -> None:
        self._event("begin")

    def on_url(self, url: bytes) -> None:
        self._event("url", url, self.client, self.server, self.scheme)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._event("header", name, value)

    def on_headers_complete(self) -> None:
        self.version_seen = self.parser.get_http_version()
        self._event("headers_complete")

    def on_body(self, body: bytes) -> None:
        self._event("body", body)

    def on_message_complete(self) -> None:
        self._event("complete")


def feed(data: bytes, pieces: list[int] | None = None, **options: Any) -> Recorder:
    recorder = Recorder(**options)
    parser = recorder.parser = UwsgiRequestParser(recorder)
    cuts = sorted(set(pieces or ())) + [len(data)]
    start = 0
    for cut in cuts:
        if cut > start:
            parser.feed_data(data[start:cut])
            start = cut
    return recorder


def refusal(data: bytes) -> str:
    recorder = Recorder()
    parser = recorder.parser = UwsgiRequestParser(recorder)
    with pytest.raises(httptools.HttpParserError) as caught:
        parser.feed_data(data)
    assert not isinstance(caught.value, httptools.HttpParserCallbackError)
    with pytest.raises(httptools.HttpParserError, match="already failed"):
        parser.feed_data(packet(GET))  # a failed parser stays failed, as httptools' does
    assert ("headers_complete",) not in recorder.events
    return str(caught.value)


def merged(events: list[tuple]) -> list[tuple]:
    """Body events joined, so differently chunked feeds compare equal."""
    out: list[tuple] = []
    for event in events:
        if event[0] == "body" and out and out[-1][0] == "body":
            out[-1] = ("body", out[-1][1] + event[1])
        else:
            out.append(event)
    return out


# ---------------------------------------------------------------- the happy path
def test_get_request_callbacks_in_order():
    recorder = feed(packet(GET + [(b"HTTP_HOST", b"example.com"), (b"HTTP_X_FOO_BAR", b"baz")]))
    assert recorder.events == [
        ("begin",),
        ("url", b"/a/b?x=1", ("192.0.2.1", 40000), ("192.0.2.2", 9000), "http"),
        ("header", b"host", b"example.com"),
        ("header", b"x-foo-bar", b"baz"),
        ("headers_complete",),
        ("complete",),
    ]
    assert recorder.parser.get_method() == b"GET"
    assert recorder.parser.should_keep_alive() is False
    assert recorder.parser.should_upgrade() is False


def test_version_is_1_0_while_h1_builds_the_request_then_the_clients():
    recorder = feed(packet(GET))
    assert recorder.version_seen == "1.0"  # h1 frames close-delimited
    assert recorder.parser.get_http_version() == "1.1"


@pytest.mark.parametrize("protocol, version", [
    (b"HTTP/1.1", "1.1"), (b"HTTP/1.0", "1.0"), (b"HTTP/2.0", "2"), (b"HTTP/3.0", "3"), (b"", "1.0"),
])
def test_server_protocol_gives_the_version(protocol, version):
    recorder = feed(packet([(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/"),
                            (b"SERVER_PROTOCOL", protocol)]))
    assert recorder.parser.get_http_version() == version


def test_missing_server_protocol_is_1_0():
    recorder = feed(packet([(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/")]))
    assert recorder.parser.get_http_version() == "1.0"


def test_post_body_and_content_fields():
    body = b"hello=world"
    recorder = feed(packet(GET[:1] + [(b"REQUEST_URI", b"/form"), (b"CONTENT_TYPE", b"application/x-www-form-urlencoded"),
                                      (b"CONTENT_LENGTH", b"11")]) + body)
    assert recorder.events[1:] == [
        ("url", b"/form", ("192.0.2.1", 40000), ("192.0.2.2", 9000), "http"),
        ("header", b"content-type", b"application/x-www-form-urlencoded"),
        ("header", b"content-length", b"11"),
        ("headers_complete",),
        ("body", body),
        ("complete",),
    ]


def test_empty_content_vars_are_absent_fields():
    # nginx's uwsgi_params sends $content_length and $content_type empty without a body
    recorder = feed(packet(GET + [(b"CONTENT_TYPE", b""), (b"CONTENT_LENGTH", b"")]))
    assert [e for e in recorder.events if e[0] == "header"] == []
    assert recorder.events[-1] == ("complete",)


def test_http_content_and_transfer_encoding_vars_do_not_become_fields():
    # nginx passes the client's own Content-Length/-Type/Transfer-Encoding as HTTP_* too;
    # the CGI vars frame the body on this hop.
    recorder = feed(packet(GET + [(b"CONTENT_LENGTH", b"3"), (b"HTTP_CONTENT_LENGTH", b"999"),
                                  (b"HTTP_CONTENT_TYPE", b"x/y"), (b"HTTP_TRANSFER_ENCODING", b"chunked")])
                    + b"abc")
    headers = [e[1:] for e in recorder.events if e[0] == "header"]
    assert headers == [(b"content-length", b"3")]
    assert ("body", b"abc") in recorder.events


def test_field_values_lose_leading_whitespace():
    recorder = feed(packet(GET + [(b"HTTP_X_A", b" \tv")]))
    assert ("header", b"x-a", b"v") in recorder.events


def test_repeated_identical_content_length_is_one_field():
    recorder = feed(packet(GET + [(b"CONTENT_LENGTH", b"2"), (b"CONTENT_LENGTH", b"02")]) + b"ok")
    assert [e for e in recorder.events if e[0] == "header"] == [("header", b"content-length", b"2")]


def test_bytes_after_the_request_are_not_parsed():
    recorder = feed(packet(GET + [(b"CONTENT_LENGTH", b"2")]) + b"okGARBAGE")
    assert merged(recorder.events)[-2:] == [("body", b"ok"), ("complete",)]
    seen = list(recorder.events)
    for _ in range(2):
        recorder.parser.feed_data(packet(GET))  # ignored: one request per connection
    assert recorder.events == seen


def test_target_from_path_info_when_request_uri_is_missing():
    recorder = feed(packet([(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/caf\xc3\xa9 x/%"),
                            (b"QUERY_STRING", b"q=1")]))
    assert recorder.events[1][1] == b"/caf%C3%A9%20x/%25?q=1"


# ---------------------------------------------------------------- identity
def test_identity_from_the_vars():
    recorder = feed(packet(GET + [(b"REMOTE_ADDR", b"203.0.113.7"), (b"REMOTE_PORT", b"51000"),
                                  (b"SERVER_NAME", b"www.example.com"), (b"SERVER_PORT", b"443"),
                                  (b"HTTPS", b"on")]))
    assert recorder.events[1][2:] == (("203.0.113.7", 51000), ("www.example.com", 443), "https")


@pytest.mark.parametrize("variables, scheme", [
    ([(b"REQUEST_SCHEME", b"https")], "https"),
    ([(b"REQUEST_SCHEME", b"http"), (b"HTTPS", b"on")], "https"),  # uWSGI never reads REQUEST_SCHEME
    ([(b"REQUEST_SCHEME", b"https"), (b"HTTPS", b"off")], "http"),
    ([(b"REQUEST_SCHEME", b"https"), (b"HTTPS", b"")], "https"),  # empty: absent
    ([(b"UWSGI_SCHEME", b"https"), (b"REQUEST_SCHEME", b"http")], "https"),
    ([(b"HTTPS", b"1")], "https"),
    ([(b"HTTPS", b"ON")], "https"),
    ([(b"HTTPS", b"off")], "http"),
    ([(b"REQUEST_SCHEME", b"gopher")], "http"),
    ([], "http"),
])
def test_scheme(variables, scheme):
    recorder = Recorder()
    recorder.scheme = "socket-default"
    parser = recorder.parser = UwsgiRequestParser(recorder)
    parser.feed_data(packet(GET + variables))
    expected = "socket-default" if not variables or variables == [(b"REQUEST_SCHEME", b"gopher")] else scheme
    assert recorder.events[1][4] == expected


def test_unparsable_identity_vars_keep_the_sockets_values():
    recorder = feed(packet(GET + [(b"REMOTE_ADDR", b"1.2.3.4\r\nX: y"), (b"SERVER_NAME", b"a b"),
                                  (b"SERVER_PORT", b"99999")]))
    assert recorder.events[1][2:4] == (("192.0.2.1", 40000), ("192.0.2.2", 9000))


def test_bad_remote_port_is_zero_and_nginx_unix_client_is_kept():
    recorder = feed(packet(GET + [(b"REMOTE_ADDR", b"unix:"), (b"REMOTE_PORT", b"")]))
    assert recorder.events[1][2] == ("unix:", 0)


@pytest.mark.parametrize("variables, sender", [
    ([(b"REMOTE_ADDR", b"203.0.113.7")], "203.0.113.7"),
    ([(b"REMOTE_ADDR", b"unix:")], None),  # nginx's client came over a Unix socket
    ([(b"REMOTE_ADDR", b"not an address")], ""),
    ([], ""),
])
def test_remote_addr_decides_whether_forwarding_fields_count(variables, sender):
    # The HTTP_* vars are the client's fields passed through: the front end (the socket
    # peer, trusted to speak uwsgi) must not lend them its own trust.
    recorder = feed(packet(GET + variables))
    assert recorder.sender == sender
    assert recorder.sender_trusted is None  # looked up again, for this sender


def test_server_name_without_port_gets_the_schemes_port():
    recorder = feed(packet(GET + [(b"SERVER_NAME", b"example.org"), (b"REQUEST_SCHEME", b"https")]))
    assert recorder.events[1][3] == ("example.org", 443)
    recorder = feed(packet(GET + [(b"SERVER_PORT", b"8443")]))
    assert recorder.events[1][3] == ("192.0.2.2", 8443)


# ---------------------------------------------------------------- chunking
BODY = bytes(range(256)) * 40
FULL = packet(GET[:1] + [(b"REQUEST_URI", b"/upload"), (b"SERVER_PROTOCOL", b"HTTP/1.0"),
                         (b"HTTP_COOKIE", b"a=1; b=2"), (b"REMOTE_ADDR", b"10.0.0.1"),
                         (b"CONTENT_LENGTH", str(len(BODY)).encode())]) + BODY
WHOLE = merged(feed(FULL).events)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(FULL) - 1), max_size=40))
def test_any_chunking_gives_the_same_callbacks(cuts):
    recorder = feed(FULL, cuts)
    assert merged(recorder.events) == WHOLE
    assert recorder.events[0] == ("begin",)  # once, at the first byte
    assert sum(1 for e in recorder.events if e[0] == "begin") == 1


def test_message_begins_at_the_first_byte():
    recorder = Recorder()
    parser = recorder.parser = UwsgiRequestParser(recorder)
    parser.feed_data(FULL[:1])
    assert recorder.events == [("begin",)]
    parser.feed_data(FULL[1:10])
    assert recorder.events == [("begin",)]


def test_body_pieces_pass_through_without_copying_whole_reads():
    recorder = Recorder()
    parser = recorder.parser = UwsgiRequestParser(recorder)
    head = FULL[:-len(BODY)]
    parser.feed_data(head)
    piece = BODY[:1000]
    parser.feed_data(piece)
    assert recorder.events[-1][1] is piece


# ---------------------------------------------------------------- malformed packets
@pytest.mark.parametrize("data, reason", [
    (packet(GET, modifier1=5), "modifier1 5"),
    (packet(GET, modifier1=30), "--root-path"),
    (packet(GET, modifier2=1), "modifier2 1"),
    (packet([], raw=b"\x05"), "truncated uwsgi var (a size)"),
    (packet([], raw=struct.pack("<H", 4) + b"ABCD"), "truncated uwsgi var (a size)"),
    (packet([], raw=struct.pack("<H", 4) + b"ABCD\x01"), "truncated uwsgi var (a size)"),
    (packet([], raw=struct.pack("<H", 10) + b"ABCD"), "truncated uwsgi var (a size)"),
    (packet([], raw=var(b"A", b"") + struct.pack("<H", 1) + b"B" + struct.pack("<H", 9) + b"x"), "(value)"),
    (packet([], raw=var(b"REQUEST_METHOD", b"GET") + struct.pack("<H", 1) + b"B" + struct.pack("<H", 1)),
     "(value)"),
    (packet([(b"", b"x")] + GET), "empty uwsgi var name"),
    (packet(GET[1:]), "without REQUEST_METHOD"),
    (packet([(b"REQUEST_METHOD", b"")] + GET[1:]), "without REQUEST_METHOD"),
    (packet([(b"REQUEST_METHOD", b"G T")] + GET[1:]), "invalid REQUEST_METHOD"),
    (packet([(b"REQUEST_METHOD", b"G\xc3\x89T")] + GET[1:]), "invalid REQUEST_METHOD"),
    (packet(GET + [(b"CONTENT_LENGTH", b"-1")]), "invalid CONTENT_LENGTH"),
    (packet(GET + [(b"CONTENT_LENGTH", b" 5")]), "invalid CONTENT_LENGTH"),
    (packet(GET + [(b"CONTENT_LENGTH", b"0x10")]), "invalid CONTENT_LENGTH"),
    (packet(GET + [(b"CONTENT_LENGTH", b"9" * 19)]), "invalid CONTENT_LENGTH"),
    (packet(GET + [(b"CONTENT_LENGTH", b"5"), (b"CONTENT_LENGTH", b"6")]), "two different CONTENT_LENGTH"),
    (packet(GET + [(b"HTTP_", b"x")]), "not a valid header name"),
    (packet(GET + [(b"HTTP_X:Y", b"x")]), "not a valid header name"),
    (packet(GET + [(b"HTTP_X Y", b"x")]), "not a valid header name"),
    (packet(GET + [(b"HTTP_\xc3\x89", b"x")]), "not a valid header name"),
    (packet(GET + [(b"HTTP_X_A", b"a\r\nb: c")]), "control character"),
    (packet(GET + [(b"HTTP_X_A", b"a\x00")]), "control character"),
    (packet(GET + [(b"CONTENT_TYPE", b"text/plain\n")]), "control character"),
    (packet([GET[0], (b"REQUEST_URI", b"/a b")]), "invalid request target"),
    (packet([GET[0], (b"REQUEST_URI", b"/caf\xc3\xa9")]), "invalid request target"),
    (packet([GET[0], (b"REQUEST_URI", b"/a\x7f")]), "invalid request target"),
    (packet([GET[0]]), "without REQUEST_URI or PATH_INFO"),
    (packet(GET[:2] + [(b"SERVER_PROTOCOL", b"SPDY/3")]), "unsupported SERVER_PROTOCOL"),
])
def test_malformed_packets_are_parser_errors(data, reason):
    assert reason in refusal(data)


def test_bad_modifier_is_refused_before_the_vars_arrive():
    recorder = Recorder()
    parser = recorder.parser = UwsgiRequestParser(recorder)
    with pytest.raises(httptools.HttpParserError):
        parser.feed_data(b"\x07\xff\xff\x00")  # announces 64 KiB of vars: not waited for


# ---------------------------------------------------------------- callback errors
@pytest.mark.parametrize("where", ["begin", "url", "header", "headers_complete", "body", "complete"])
def test_callback_errors_arrive_as_httptools_delivers_them(where):
    recorder = Recorder(fail_on=where)
    parser = recorder.parser = UwsgiRequestParser(recorder)
    with pytest.raises(httptools.HttpParserCallbackError) as caught:
        parser.feed_data(packet(GET + [(b"HTTP_X_A", b"1"), (b"CONTENT_LENGTH", b"2")]) + b"ok")
    assert isinstance(caught.value.__context__, ProtocolError)
    assert caught.value.__context__.reason == f"refused in {where}"
    with pytest.raises(httptools.HttpParserError):
        parser.feed_data(b"x")


# ---------------------------------------------------------------- upgrade
def test_websocket_upgrade_stops_after_the_request_with_the_offset():
    data = packet(GET + [(b"HTTP_CONNECTION", b"keep-alive, Upgrade"), (b"HTTP_UPGRADE", b"websocket")])
    recorder = Recorder()
    parser = recorder.parser = UwsgiRequestParser(recorder)
    with pytest.raises(httptools.HttpParserUpgrade) as caught:
        parser.feed_data(data + b"\x81\x00")
    assert caught.value.args[0] == len(data)
    assert recorder.events[-1] == ("complete",)
    assert parser.should_upgrade() is True


@pytest.mark.parametrize("variables", [
    [(b"HTTP_UPGRADE", b"websocket")],  # no Connection: upgrade: the Upgrade is ignored
    [(b"HTTP_CONNECTION", b"upgrade")],
    [(b"HTTP_CONNECTION", b"upgrades"), (b"HTTP_UPGRADE", b"websocket")],
])
def test_no_upgrade_without_both_fields(variables):
    recorder = feed(packet(GET + variables))
    assert recorder.parser.should_upgrade() is False


# ================================================================ through UwsgiProtocol
class Transport:
    def __init__(self, peer: Any = ("127.0.0.1", 5000)) -> None:
        self.peer = peer
        self.written = bytearray()
        self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peer, "sockname": ("127.0.0.1", 3031)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_protocol(self) -> Any:  # as asyncio's: nobody set one on this fake
        return None

    def set_protocol(self, protocol: Any) -> None:
        pass


class SubmitRecorder:
    """A WSGI runner stand-in: records what the scope says when a request is queued."""

    def __init__(self) -> None:
        self.versions: list[str] = []

    def submit(self, cycle: Any) -> None:
        self.versions.append(cycle.scope["http_version"])


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()


def connect(loop, transport: Transport | None = None, allow: Any = None, **options: Any) -> tuple[UwsgiProtocol, Transport]:
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["http_version"].encode()})

    config = Config(app="x:y", access_log=False, **options)
    state = ServerState(config, app, loop)
    state.uwsgi_allow = allow
    conn = UwsgiProtocol(state)
    transport = transport or Transport()
    conn.connection_made(transport)
    return conn, transport


def status_of(transport: Transport) -> bytes:
    return bytes(transport.written).split(b"\r\n", 1)[0]


@pytest.mark.parametrize("variables, options, status", [
    ([(b"REQUEST_URI", b"/" + b"a" * 200)], {"limit_request_line": 100}, b"414"),
    ([(b"HTTP_X_A", b"v" * 100)], {"limit_request_field_size": 50}, b"431"),
    ([(b"HTTP_X_A", b"1"), (b"HTTP_X_B", b"2"), (b"HTTP_X_C", b"3")], {"limit_request_fields": 2}, b"431"),
    ([(b"CONTENT_LENGTH", b"11")], {"limit_request_body": 10}, b"413"),
    ([(b"HTTP_HOST", b"a b")], {}, b"400"),
    ([(b"HTTP_HOST", b"a"), (b"HTTP_HOST", b"b")], {}, b"400"),
    ([(b"HTTP_EXPECT", b"teapot")], {}, b"417"),
    ([(b"REQUEST_METHOD", b"")], {}, b"400"),
])
def test_h1_limits_and_refusals_apply(loop, variables, options, status):
    conn, transport = connect(loop, **options)
    conn.data_received(packet(GET + variables))
    assert status_of(transport).startswith(b"HTTP/1.1 " + status)
    assert transport.closed


def test_within_limits_the_request_is_answered_close_delimited_with_the_clients_version(loop):
    conn, transport = connect(loop, limit_request_body=10)
    conn.data_received(packet(GET + [(b"CONTENT_LENGTH", b"10")]) + b"0123456789")
    loop.run_until_complete(asyncio.sleep(0.01))
    response = bytes(transport.written)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close\r\n" in response
    assert b"transfer-encoding" not in response
    assert response.endswith(b"\r\n\r\n1.1")  # the app saw HTTP/1.1, not h1's framing 1.0
    assert transport.closed


def test_wsgi_request_is_queued_with_the_clients_version(loop):
    conn, _transport = connect(loop)
    runner = conn.state.wsgi = SubmitRecorder()
    from gannet.wsgi.cycle import WSGICycle
    conn.state.cycle_class = WSGICycle
    conn.data_received(packet(GET))  # no body: queued from inside on_headers_complete
    assert runner.versions == ["1.1"]


def test_partial_packet_times_out_with_408(loop):
    conn, transport = connect(loop, header_read_timeout=2)
    conn.data_received(packet(GET)[:3])
    now = loop.time()
    conn.check_timeouts(now + 1)
    assert not transport.written
    conn.check_timeouts(now + 3)
    assert status_of(transport).startswith(b"HTTP/1.1 408")


def test_silent_connection_is_closed_by_the_keep_alive_timeout(loop):
    conn, transport = connect(loop, timeout_keep_alive=2)
    now = loop.time()
    conn.check_timeouts(now + 1)  # stamps the idle clock
    conn.check_timeouts(now + 4)
    assert transport.closed and not transport.written


def test_refusal_is_logged_with_remote_addr(loop, caplog):
    conn, _transport = connect(loop, limit_request_field_size=50)
    with caplog.at_level("INFO", logger="gannet.error"):
        conn.data_received(packet(GET + [(b"REMOTE_ADDR", b"198.51.100.4"), (b"REMOTE_PORT", b"7"),
                                         (b"HTTP_X_A", b"v" * 100)]))
    assert "refused request from 198.51.100.4:7: 431" in caplog.text


# ---------------------------------------------------------------- the allow-list
def test_disallowed_peer_is_closed_at_once(loop, caplog):
    with caplog.at_level("INFO", logger="gannet.error"):
        conn, transport = connect(loop, allow=TrustedPeers("10.0.0.1"))
    assert transport.closed and not transport.written
    assert "127.0.0.1" in caplog.text and "--uwsgi-allow-from" in caplog.text
    conn.data_received(packet(GET))
    assert not transport.written


def test_allowed_peer_and_unix_peer_are_served(loop):
    conn, transport = connect(loop, allow=TrustedPeers("127.0.0.1"))
    assert not transport.closed
    conn, transport = connect(loop, Transport(peer=""), allow=TrustedPeers("10.0.0.1"))
    assert not transport.closed
    conn.data_received(packet(GET))
    loop.run_until_complete(asyncio.sleep(0.01))
    assert status_of(transport) == b"HTTP/1.1 200 OK"


def test_no_allow_list_serves_everyone(loop):
    _conn, transport = connect(loop, Transport(peer=("198.51.100.9", 1)), allow=None)
    assert not transport.closed


# ---------------------------------------------------------------- SCRIPT_NAME
def test_script_name_that_root_path_does_not_match_is_noted_once(loop, caplog, monkeypatch):
    from gannet.http import uwsgi

    monkeypatch.setattr(uwsgi, "_script_name_noted", False)
    with caplog.at_level("WARNING", logger="gannet.error"):
        for _ in range(2):
            conn, _transport = connect(loop)
            conn.data_received(packet(GET + [(b"SCRIPT_NAME", b"/app")]))
    assert caplog.text.count("SCRIPT_NAME='/app'") == 1
    assert "--root-path" in caplog.text


def test_script_name_equal_to_root_path_is_not_noted(loop, caplog, monkeypatch):
    from gannet.http import uwsgi

    monkeypatch.setattr(uwsgi, "_script_name_noted", False)
    with caplog.at_level("WARNING", logger="gannet.error"):
        conn, _transport = connect(loop, root_path="/app")
        conn.data_received(packet(GET + [(b"SCRIPT_NAME", b"/app/")]))
        conn, _transport = connect(loop)
        conn.data_received(packet(GET + [(b"SCRIPT_NAME", b"")]))
    assert "SCRIPT_NAME" not in caplog.text


# ---------------------------------------------------------------- thousands of tiny headers
def test_decoding_stops_after_one_field_past_the_limit():
    """A client can make nginx send ~6,500 one-byte headers in one packet (its 32 KiB of
    header buffers, each 'a:' becoming a 10-byte HTTP_A var): decoding them all cost ~6 ms
    of Python per request before h1 refused the 101st (llhttp stops there in 10 µs). The
    parser hands h1 at most limit + 1 fields, and h1's on_header refuses the last one."""
    recorder = Recorder()
    parser = recorder.parser = UwsgiRequestParser(recorder, field_limit=5)
    parser.feed_data(packet(GET + [(b"HTTP_A", b"")] * 6000))
    assert [event[0] for event in recorder.events].count("header") == 6


def test_too_many_fields_is_431_without_decoding_the_rest(loop):
    # The packet is malformed after the 6th field: decoding that far would answer 400.
    conn, transport = connect(loop, limit_request_fields=5)
    block = b"".join(var(k, v) for k, v in GET + [(b"HTTP_A", b"")] * 6) + b"\x05\x00AB"
    conn.data_received(packet([], raw=block))
    assert status_of(transport).startswith(b"HTTP/1.1 431")
