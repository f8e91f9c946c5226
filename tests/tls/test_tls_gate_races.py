"""TLSGate's hand-over to the loop's TLS layer, in-process, with the timing pinned (issue 13).

When the first bytes of a ClientHello reach the gate before its handshake task runs (a
fast client: they are read in the same loop turn as the accept; or the bytes that came
with a PROXY header), the gate starts TLS on them with ``_start_with``: start_tls runs as
its own task, one loop turn later. These tests make the socket have something new in
exactly that turn, as a real client does when its next segment (or its reset) arrives
then, and let the loop's own poll deliver it:

- more ClientHello bytes: they must reach the TLS layer (the gate took them for decrypted
  application data and the handshake stalled until --header-read-timeout);
- the client's close: the TLS layer start_tls then installed on the closed socket must not
  be kept (its handshake timer held it, and its OpenSSL state, for --header-read-timeout),
  and the failure is a debug line.

Each runs on uvloop (what Gannet uses) and on asyncio's own loop (``--loop asyncio``)."""
from __future__ import annotations

import asyncio
import gc
import logging
import socket
import ssl
import threading
import weakref

import pytest

from gannet.config import Config
from gannet.server.state import ServerState
from gannet.server.tls import TLSGate

from tls.conftest import client_context


def _loops():
    loops = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on CPython/Linux
        return loops
    return [pytest.param(uvloop.new_event_loop, id="uvloop"), *loops]


class _LoopProxy:
    """The state's loop, with a hook run when the gate calls start_tls."""

    def __init__(self, loop, on_start_tls) -> None:
        self._loop = loop
        self._on_start_tls = on_start_tls

    def start_tls(self, *args, **kwargs):
        hook, self._on_start_tls = self._on_start_tls, None  # once; and keep nothing alive
        if hook is not None:
            hook()
        return self._loop.start_tls(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._loop, name)


class _Inner(asyncio.Protocol):
    def __init__(self, alpn) -> None:
        self.alpn = alpn
        self.data = b""
        self.transport = None
        self.got = asyncio.Event()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data
        if self.data.endswith(b"\n"):
            self.transport.write(b"echo " + self.data)
            self.got.set()


class _Client:
    """The client side, driven over a socketpair in a thread with a MemoryBIO TLS object.
    Its ClientHello is not sent over the socket: the test hands it to the gate itself."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.sock = sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.hello = self.outgoing.read()
        self.result: bytes | Exception | None = None

    def run(self) -> None:
        try:
            self.sock.settimeout(8)
            while True:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed during the handshake")
                self.incoming.write(data)
                try:
                    self.tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self._flush()
            self._flush()
            self.tls.write(b"ping\n")
            self._flush()
            reply = b""
            while not reply.endswith(b"\n"):
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed before the reply")
                self.incoming.write(data)
                try:
                    reply += self.tls.read(65536)
                except ssl.SSLWantReadError:
                    pass
            self.result = reply
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.result = exc

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)


def _state(loop, tls_files) -> ServerState:
    config = Config(app="x:y", access_log=False, ssl_certfile=str(tls_files.cert),
                    ssl_keyfile=str(tls_files.key), header_read_timeout=5.0)
    return ServerState(config, None, loop)


async def _gate_on_socket(state, server_sock, make_inner):
    """A gate on a real transport whose first bytes will be handed over by the test
    before the gate's task runs (as when they are read in the same turn as the accept)."""
    loop = asyncio.get_running_loop()
    holder = asyncio.Protocol()
    transport, _ = await loop.connect_accepted_socket(lambda: holder, server_sock)
    gate = TLSGate(state, make_inner, state.ssl_context)
    transport.set_protocol(gate)
    return gate, transport


@pytest.mark.parametrize("new_loop", _loops())
def test_clienthello_bytes_arriving_while_start_tls_starts_reach_tls(tls_files, new_loop, caplog):
    loop = new_loop()
    server_sock, client_sock = socket.socketpair()
    try:
        state = _state(loop, tls_files)
        client = _Client(client_sock, client_context(tls_files))
        first, second = client.hello[:40], client.hello[40:]
        inners: list[_Inner] = []

        def make_inner(alpn):
            inners.append(_Inner(alpn))
            return inners[-1]

        async def main():
            gate, transport = await _gate_on_socket(state, server_sock, make_inner)
            # the next segment arrives while start_tls is starting: the poll that follows
            # the gate's task step reads it
            state.loop = _LoopProxy(loop, lambda: client_sock.sendall(second))
            gate.data_received(first)  # read with the accept: before the task runs
            gate.connection_made(transport)
            thread = threading.Thread(target=client.run, daemon=True)
            thread.start()
            try:
                await asyncio.wait_for(_wait_inner(inners), timeout=4)
            finally:
                await asyncio.to_thread(thread.join, 10)
            return gate

        gate = loop.run_until_complete(main())
        assert client.result == b"echo ping\n", client.result
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
        assert inners and inners[0].data == b"ping\n"
        assert gate.pending == []
    finally:
        server_sock.close()
        client_sock.close()
        loop.close()


async def _wait_inner(inners):
    while not inners:
        await asyncio.sleep(0.01)
    await inners[0].got.wait()


@pytest.mark.parametrize("new_loop", _loops())
def test_connection_lost_while_start_tls_starts_leaves_no_tls_layer(tls_files, new_loop, caplog):
    loop = new_loop()
    server_sock, client_sock = socket.socketpair()
    try:
        state = _state(loop, tls_files)
        client = _Client(client_sock, client_context(tls_files))

        def make_inner(alpn):  # never reached
            raise AssertionError("handed over a lost connection")

        async def main():
            gate, transport = await _gate_on_socket(state, server_sock, make_inner)

            # the client goes away while start_tls is starting: the poll that follows the
            # gate's task step reads the end of the stream
            state.loop = _LoopProxy(loop, lambda: client_sock.shutdown(socket.SHUT_RDWR))
            gate.data_received(client.hello[:40])
            gate.connection_made(transport)
            await asyncio.wait_for(gate.task, timeout=4)
            assert gate.done and gate not in state.connections
            return weakref.ref(gate)

        async def settle():
            # start_tls built a TLS layer over the socket; once the gate is gone nothing
            # may keep it (its handshake timer would, for --header-read-timeout = 5 s)
            for _ in range(50):
                gc.collect()
                if not _tls_layers():
                    return
                await asyncio.sleep(0.02)

        with caplog.at_level(logging.DEBUG, logger="gannet.error"):
            gate_ref = loop.run_until_complete(main())
            loop.run_until_complete(settle())
        assert gate_ref() is None
        assert _tls_layers() == []
        assert "TLS handshake failed" in caplog.text
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    finally:
        server_sock.close()
        client_sock.close()
        loop.close()


def _tls_layers() -> list:
    return [obj for obj in gc.get_objects() if type(obj).__name__ == "SSLProtocol"]
