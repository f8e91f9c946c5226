"""issue 9 defect 6: the WSGI body budget is given back when a connection drops with
pipelined requests queued (connection_lost used to clear the pipeline without releasing
their bodies, so --wsgi-body-buffer shrank for good and later uploads went to disk)."""
from __future__ import annotations

import socket
import struct
import threading

from corpus.wire import Reader, read_response

QUEUED = 60_000  # under 64 KiB: held in memory as it arrives, while queued
LATER = 1_000_000  # fits the 1 MiB budget only if nothing leaked


def _post_len(size: int) -> bytes:
    return b"POST /len HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % size


def test_dropped_connection_gives_back_its_queued_bodies_budget(gannet_server):
    server = gannet_server("followup_wsgi:app", "--interface", "wsgi", "--threads", "1",
                           "--wsgi-body-buffer", str(1024 * 1024), "--log-level", "debug")
    sock = server.connect(timeout=10)
    # A slow request, then uploads queued behind it: each whole body takes its share of
    # the 1 MiB budget while it waits (the last may still be arriving).
    data = b"GET /sleep?s=2 HTTP/1.1\r\nHost: test\r\n\r\n" + \
        (_post_len(QUEUED) + b"u" * QUEUED) * 3
    sender = threading.Thread(target=lambda: _send_quietly(sock, data), daemon=True)
    sender.start()
    server.wait_for_log(r"followup-sleep started")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST: the queued uploads will never be served
    sender.join(timeout=10)
    # The server notices once the slow answer meets the reset, and releases what was
    # queued (the upload still arriving says so at debug level).
    server.wait_for_log(r"client went away after \d+ bytes of its request body", timeout=15)
    with server.connect(timeout=10) as other:
        other.sendall(_post_len(LATER) + b"v" * LATER)
        response = read_response(Reader(other), timeout=20)
    assert response.status == 200 and response.body == str(LATER).encode()
    assert "spooling it to a file" not in server.log  # the budget was whole again


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass
