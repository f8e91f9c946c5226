"""Helpers shared by the WSGI tests."""
from __future__ import annotations

import http.client
import json
import socket
from typing import Any

import pytest


def request(server: Any, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def get_json(server: Any, path: str, **kwargs: Any) -> Any:
    status, _, data = request(server, "GET", path, **kwargs)
    assert status == 200, data
    return json.loads(data)


def stalled_client(server: Any, path: str) -> socket.socket:
    """A client with a tiny receive window that asks for ``path`` and does not read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Before connect(), so the small window is what the handshake advertises.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect((server.host, server.port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


@pytest.fixture
def wsgi_server(gannet_server):
    """The validated test app (tests/apps/wsgi_app.py) on a fresh server."""
    def start(*args: str, app: str = "wsgi_app:app", **kwargs: Any):
        return gannet_server(app, "--interface", "wsgi", *args, **kwargs)
    return start
