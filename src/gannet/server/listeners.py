"""Bind or inherit listening sockets: TCP (IPv4/IPv6), Unix sockets, inherited fds.

Sockets are created here, not by ``loop.create_server(host, port)``, so the same code can
later bind once in a supervisor and hand the sockets to forked workers.
"""
from __future__ import annotations

import os
import socket
import stat
from dataclasses import dataclass

__all__ = ["Listener", "bind", "parse_address", "BindError"]


class BindError(OSError):
    """A listener could not be created; ``str()`` names the address."""


@dataclass
class Listener:
    sock: socket.socket
    address: str  # as given, for messages
    kind: str  # "tcp", "unix" or "fd"
    path: str | None = None  # the socket file we created, removed at exit
    protocol: str = "http"  # or "uwsgi" (--uwsgi-socket): which wire protocol it speaks
    tls: bool = False  # HTTPS (--ssl-certfile)

    @property
    def url(self) -> str:
        scheme = "uwsgi" if self.protocol == "uwsgi" else "https" if self.tls else "http"
        if self.sock.family == socket.AF_UNIX:
            return f"{scheme}://unix:{self.path or self.sock.getsockname()}"
        host, port = self.sock.getsockname()[:2]
        if self.sock.family == socket.AF_INET6:
            host = f"[{host}]"
        return f"{scheme}://{host}:{port}"


def parse_address(address: str) -> tuple[str, object]:
    """'HOST:PORT' | '[v6]:PORT' | 'unix:PATH' | 'fd://N' -> (kind, details)."""
    if address.startswith("unix:"):
        return "unix", address[5:]
    if address.startswith("fd://"):
        try:
            return "fd", int(address[5:])
        except ValueError:
            raise BindError(f"--bind: {address!r}: fd://N needs a number") from None
    if address.startswith("["):
        host, sep, port = address[1:].partition("]:")
        if not sep:
            raise BindError(f"--bind: {address!r}: expected [IPv6]:PORT")
    else:
        host, sep, port = address.rpartition(":")
        if not sep:
            raise BindError(f"--bind: {address!r}: expected HOST:PORT")
    try:
        port_number = int(port)
    except ValueError:
        raise BindError(f"--bind: {address!r}: port must be a number") from None
    if not 0 <= port_number <= 65535:
        raise BindError(f"--bind: {address!r}: port out of range")
    return "tcp", (host or "0.0.0.0", port_number)


def bind(address: str, backlog: int, protocol: str = "http", tls: bool = False) -> Listener:
    kind, details = parse_address(address)
    try:
        if kind == "unix":
            sock = _bind_unix(str(details), backlog)
        elif kind == "fd":
            sock = socket.socket(fileno=int(details))  # type: ignore[arg-type]
            sock.listen(backlog)
        else:
            host, port = details  # type: ignore[misc]
            sock = _bind_tcp(host, port, backlog)
    except OSError as exc:
        raise BindError(f"cannot listen on {address}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return Listener(sock, address, kind, str(details) if kind == "unix" else None, protocol,
                    tls and protocol == "http")


def _bind_tcp(host: str, port: int, backlog: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def _bind_unix(path: str, backlog: int) -> socket.socket:
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # a stale socket from an earlier run
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o666)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock
