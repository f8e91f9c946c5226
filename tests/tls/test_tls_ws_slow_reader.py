"""A WebSocket over TLS whose app sends a big last message and closes at once, read by a
client that waits first (longer than the 5 s TLS close timer): the TLS layer hands the
frames to the socket's transport at once, so a server that closed the connection right
after its close frame would cut the message. Gannet's close waits for the client's close
frame (RFC 6455 §7.1.1: the server closes the TCP connection after the closing
handshake), which comes after the client read everything: a guard for that order."""
from __future__ import annotations

import socket
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tls.conftest import client_context

BIG = 8 * 1024 * 1024


def test_a_slow_reader_gets_the_whole_last_message_and_the_close(tls_server, tls_files):
    server = tls_server("ws_big_close:app")
    context = client_context(tls_files)
    with connect(f"wss://localhost:{server.port}/", ssl=context, max_size=None,
                 open_timeout=10, close_timeout=10) as ws:
        # The stall under test: longer than the server's 5 s TLS close timer. Reading
        # stops (the client's buffers fill) while the server would close.
        ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        time.sleep(7)
        message = ws.recv(timeout=20)
        assert len(message) == BIG
        try:
            ws.recv(timeout=20)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1000, closed
        else:
            raise AssertionError("a second message where the close was expected")
