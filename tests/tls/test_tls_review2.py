"""Second TLS review (items the first review left): a HUP that changes the key type, huge
and fragmented ClientHellos and post-handshake messages (KeyUpdate, a TLS 1.2
renegotiation request), uwsgi listeners beside TLS ones, the ASGI tls extension's types
against asgiref's spec (specs/tls.rst 0.2), and a graceful drain with idle TLS
keep-alive connections and one mid-handshake."""
from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tls.conftest import (client_context, client_hello, https_request, serial_of_der,
                          tls_connect, wait_until)

ASGI = "tls_apps:asgi_app"
WSGI = "tls_apps:wsgi_app"
HELLO = "tls_clients_apps:asgi_app"
GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
GET_CLOSE = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def _above_debug(log: str) -> list[str]:
    return [line for line in log.splitlines()
            if re.search(r"\[(WARNING|ERROR|CRITICAL)\]", line) or "Traceback" in line]


def _json_body(raw: bytes) -> dict:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), raw[:300]
    return json.loads(body)


# ------------------------------------------------------------------ 1. HUP, RSA -> ECDSA
def test_hup_from_an_rsa_to_an_ecdsa_certificate(tls_server, tls_files):
    rsa_cert, rsa_key = tls_files.issue("rsa", key_type=trustme.KeyType.RSA)
    ec_cert, ec_key = tls_files.issue("ecdsa", key_type=trustme.KeyType.ECDSA)
    live_cert, live_key = tls_files.dir / "live.pem", tls_files.dir / "live.key"
    live_cert.write_bytes(rsa_cert.read_bytes())
    live_key.write_bytes(rsa_key.read_bytes())
    server = tls_server(ASGI, "-w", "1", certfile=live_cert, keyfile=live_key)
    context = client_context(tls_files)

    def key_type() -> type:
        with tls_connect(server, context) as sock:
            return type(x509.load_der_x509_certificate(sock.getpeercert(True)).public_key())

    failures: list[str] = []
    served: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                raw = https_request(server, context, GET_CLOSE.replace(b"/ ", b"/x "))
                served.append(_json_body(raw)["tls"]["server_cert"])
            except (OSError, ssl.SSLError, AssertionError, ValueError) as exc:
                failures.append(repr(exc))

    assert issubclass(key_type(), rsa.RSAPublicKey)
    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(served) >= 3, what="traffic before the HUP")
        # The key first, then the certificate (atomic renames), then HUP.
        tmp_key, tmp_cert = tls_files.dir / "k.tmp", tls_files.dir / "c.tmp"
        tmp_key.write_bytes(ec_key.read_bytes())
        tmp_cert.write_bytes(ec_cert.read_bytes())
        tmp_key.replace(live_key)
        tmp_cert.replace(live_cert)
        server.signal(signal.SIGHUP)
        wait_until(lambda: issubclass(key_type(), ec.EllipticCurvePublicKey), timeout=20,
                   what="the ECDSA certificate is served")
        seen = len(served)
        wait_until(lambda: len(served) >= seen + 3, what="traffic after the reload")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert failures == []
    new_pem = ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(ec_cert.read_text().split(
        "-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----"))
    raw = https_request(server, context, GET_CLOSE)
    assert _json_body(raw)["tls"]["server_cert"] == new_pem
    assert served[-1] == new_pem
    assert _above_debug(server.log) == []


# ------------------------------------------------------------------ 2. odd ClientHellos
def _records(data: bytes) -> list[tuple[int, bytes]]:
    out, offset = [], 0
    while offset + 5 <= len(data):
        kind, _, length = struct.unpack("!BHH", data[offset:offset + 5])
        out.append((kind, data[offset + 5:offset + 5 + length]))
        offset += 5 + length
    return out


def _fragment(flight: bytes, size: int) -> bytes:
    """The same handshake bytes, each record cut into records of ``size`` bytes."""
    out = []
    for kind, payload in _records(flight):
        for start in range(0, len(payload), size):
            out.append(struct.pack("!BHH", kind, 0x0301 if kind == 0x16 else 0x0303,
                                   len(payload[start:start + size])) + payload[start:start + size])
    return b"".join(out)


def _memory_handshake(server, context, first_flight=lambda data: data):
    """A client on MemoryBIOs over a socket; ``first_flight`` rewrites its ClientHello."""
    sock = socket.create_connection((server.host, server.port), timeout=5)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    first = True
    for _ in range(50):
        try:
            tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        data = outgoing.read()
        if data:
            sock.sendall(first_flight(data) if first else data)
            first = False
        if done:
            return sock, tls, incoming, outgoing
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        incoming.write(chunk)
    raise AssertionError("handshake did not finish")


def _memory_request(sock, tls, incoming, outgoing, request=GET_CLOSE) -> bytes:
    tls.write(request)
    sock.sendall(outgoing.read())
    received = b""
    for _ in range(200):
        try:
            chunk = tls.read(65536)
            if not chunk:
                break
            received += chunk
            continue
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
        data = sock.recv(65536)
        if not data:
            break
        incoming.write(data)
    return received


@pytest.mark.parametrize("size", [1, 7, 100])
def test_a_clienthello_split_over_many_records_is_served(tls_server, tls_files, size):
    server = tls_server(HELLO, "-w", "1")
    sock, *rest = _memory_handshake(server, client_context(tls_files),
                                    lambda data: _fragment(data, size))
    with sock:
        response = _memory_request(sock, *rest)
    assert response.startswith(b"HTTP/1.1 200 "), response[:200]
    assert _above_debug(server.log) == []


def _padded(hello: bytes, padding: int) -> bytes:
    """The ClientHello with a padding extension (RFC 7685) of ``padding`` zero bytes,
    its handshake message cut into records of at most 16384 bytes."""
    (kind, body), = _records(hello)
    assert kind == 0x16 and body[0] == 1
    message = body[4:]
    offset = 2 + 32
    offset += 1 + message[offset]  # session id
    offset += 2 + struct.unpack("!H", message[offset:offset + 2])[0]  # suites
    offset += 1 + message[offset]  # compression
    ext_len = struct.unpack("!H", message[offset:offset + 2])[0]
    extensions, rest = b"", message[offset + 2:offset + 2 + ext_len]
    while rest:  # OpenSSL pads its own hello already: drop that padding extension
        kind, length = struct.unpack("!HH", rest[:4])
        if kind != 21:
            extensions += rest[:4 + length]
        rest = rest[4 + length:]
    extensions += struct.pack("!HH", 21, padding) + bytes(padding)
    message = message[:offset] + struct.pack("!H", len(extensions)) + extensions
    handshake = b"\x01" + len(message).to_bytes(3, "big") + message
    return b"".join(struct.pack("!BHH", 0x16, 0x0301, len(handshake[i:i + 16384])) + handshake[i:i + 16384]
                    for i in range(0, len(handshake), 16384))


@pytest.mark.parametrize("padding", [512, 20000, 60000])
def test_a_huge_clienthello_gets_a_server_hello_and_nothing_above_debug(tls_server, tls_files,
                                                                        padding):
    server = tls_server(HELLO, "-w", "1")
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(_padded(client_hello(), padding))
        first = sock.recv(5)
    assert first[:1] == b"\x16", first  # a ServerHello: the hello was taken
    # Still serving, and nothing logged above debug.
    assert https_request(server, client_context(tls_files), GET_CLOSE).startswith(b"HTTP/1.1 200 ")
    assert _above_debug(server.log) == []


def _s_client(server, files, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["openssl", "s_client", "-connect", f"{server.host}:{server.port}", "-servername",
         "localhost", "-CAfile", str(files.ca_pem), "-verify_return_error", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


class _Output:
    """s_client's output, read by a thread; ``wait_for`` blocks (bounded) until a text has
    appeared ``count`` times. s_client takes a command letter only at the start of what
    one read of its stdin returns, so each step is written after the previous one's
    answer has come."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.text = b""
        self.cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        while True:
            chunk = self.proc.stdout.read1(65536)
            with self.cond:
                self.text += chunk
                self.cond.notify_all()
            if not chunk:
                return

    def send(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait_for(self, needle: bytes, count: int = 1, timeout: float = 10) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.text.count(needle) >= count, timeout):
                raise AssertionError(f"{needle!r} x{count} not seen: {self.text[-2000:]!r}")


REQUEST = b"GET / HTTP/1.1\nHost: localhost\n\n"


@pytest.mark.skipif(sys.platform != "linux", reason="openssl s_client on Linux")
def test_key_updates_from_the_client_keep_the_connection_serving(tls_server, tls_files):
    server = tls_server(HELLO, "-w", "1")
    proc = _s_client(server, tls_files, "-tls1_3", "-crlf")
    try:
        out = _Output(proc)
        out.wait_for(b"Verify return code: 0")
        served = 0
        for command in (b"k\n", b"K\n", b"k\n"):  # update ours; ours and ask the server's
            out.send(command)
            out.wait_for(b"KEYUPDATE", served + 1)
            out.send(REQUEST)
            served += 1
            out.wait_for(b"HTTP/1.1 200 ", served)
    finally:
        proc.kill()
        proc.wait(timeout=5)
    assert b"Not Implemented" not in out.text
    assert https_request(server, client_context(tls_files), GET_CLOSE).startswith(b"HTTP/1.1 200 ")
    assert _above_debug(server.log) == []


@pytest.mark.skipif(sys.platform != "linux", reason="openssl s_client on Linux")
def test_a_tls12_renegotiation_request_is_refused_quietly(tls_server, tls_files):
    server = tls_server(HELLO, "-w", "1")
    proc = _s_client(server, tls_files, "-tls1_2", "-crlf")
    try:
        out = _Output(proc)
        out.wait_for(b"Verify return code: 0")
        out.send(REQUEST)
        out.wait_for(b"HTTP/1.1 200 ")
        out.send(b"R\n")
        out.wait_for(b"RENEGOTIATING")
        # The server refuses (a no_renegotiation alert, or it closes): either way s_client
        # ends or the connection goes on; what matters is the server.
        proc.stdin.close()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert https_request(server, client_context(tls_files), GET_CLOSE).startswith(b"HTTP/1.1 200 ")
    assert _above_debug(server.log) == []


# ------------------------------------------------------------------ 3. uwsgi beside TLS
def _uwsgi_packet(path: bytes = b"/") -> bytes:
    pairs = [(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", path), (b"PATH_INFO", path),
             (b"QUERY_STRING", b""), (b"SERVER_PROTOCOL", b"HTTP/1.1"),
             (b"REQUEST_SCHEME", b"http"), (b"REMOTE_ADDR", b"127.0.0.1"),
             (b"REMOTE_PORT", b"40000"), (b"SERVER_NAME", b"localhost"),
             (b"SERVER_PORT", b"80"), (b"HTTP_HOST", b"localhost")]
    block = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs)
    return struct.pack("<BHB", 0, len(block), 0) + block


def _uwsgi_call(address: tuple[str, int]) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(_uwsgi_packet())
        chunks = []
        for _ in range(1000):
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize("app", [ASGI, WSGI])
def test_uwsgi_listener_beside_tls_has_no_tls_facts(tls_server, tls_files, app):
    server = tls_server(app, "-w", "1", "--uwsgi-socket", "127.0.0.1:0")
    host, port = server.wait_for_log(r"Listening on uwsgi://(\S+):(\d+)", timeout=20).groups()
    over_uwsgi = _json_body(_uwsgi_call((host, int(port))))
    over_https = _json_body(https_request(server, client_context(tls_files), GET_CLOSE))
    if app == ASGI:
        assert over_uwsgi["has_tls"] is False and "tls" not in over_uwsgi["extension_names"]
        assert over_uwsgi["scheme"] == "http"
        assert over_https["has_tls"] is True and over_https["scheme"] == "https"
        assert over_https["tls"]["tls_version"] in (0x0303, 0x0304)
    else:
        assert over_uwsgi["keys"] == {} and over_uwsgi["scheme"] == "http"
        assert over_https["keys"]["HTTPS"] == "on" and over_https["scheme"] == "https"
        assert over_https["keys"]["SSL_PROTOCOL"] in ("TLSv1.2", "TLSv1.3")
    assert _above_debug(server.log) == []


# ------------------------------------------------------------------ 4. the spec's types
def test_tls_extension_types_follow_the_asgi_spec(tls_server, tls_files):
    """asgiref specs/tls.rst 0.2: server_cert Optional[str]; client_cert_chain an iterable
    of str; client_cert_name and client_cert_error Optional[str]; tls_version and
    cipher_suite Optional[int] (an int here: Gannet's own TLS); scheme https / wss."""
    from websockets.sync.client import connect as ws_connect

    server = tls_server(ASGI, "-w", "1")
    context = client_context(tls_files)
    for maximum in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_context(tls_files, maximum=maximum)
        report = _json_body(https_request(server, ctx, GET_CLOSE))
        tls = report["tls"]
        assert report["scheme"] == "https"
        assert isinstance(tls["server_cert"], str) and tls["server_cert"].startswith("-----BEGIN CERTIFICATE-----")
        assert tls["chain_type"] == "tuple" and tls["client_cert_chain"] == []
        assert tls["client_cert_name"] is None and tls["client_cert_error"] is None
        assert type(tls["tls_version"]) is int and type(tls["cipher_suite"]) is int
        assert 0 < tls["cipher_suite"] <= 0xFFFF
    with ws_connect(f"wss://localhost:{server.port}/", ssl=context, open_timeout=5) as ws:
        report = json.loads(ws.recv(timeout=5))
    assert report["scheme"] == "wss" and report["has_tls"] is True


# ------------------------------------------------------------------ 5. graceful drain
@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_with_idle_tls_keep_alives_and_a_half_handshake(tls_server, tls_files, workers):
    server = tls_server(HELLO, "-w", workers, "--timeout-keep-alive", "60",
                        "--header-read-timeout", "60")
    context = client_context(tls_files)
    idle = []
    try:
        for _ in range(4):
            sock = tls_connect(server, context)
            sock.sendall(GET)
            head = b""
            for _ in range(100):
                head += sock.recv(65536)
                if b"hello over tls" in head:
                    break
            assert head.startswith(b"HTTP/1.1 200 "), head[:200]
            idle.append(sock)
        half = socket.create_connection((server.host, server.port), timeout=5)
        hello = client_hello()
        half.sendall(hello[:len(hello) // 2])
        idle.append(half)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        status = server.wait(timeout=10)
        took = time.monotonic() - started
    finally:
        for sock in idle:
            sock.close()
    assert status == 0, server.log[-3000:]
    assert took < 5, took
    assert _above_debug(server.log) == []
