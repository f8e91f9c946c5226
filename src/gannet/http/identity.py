"""What a trusted proxy says about the client, applied to one request's scope.

``forwarded.resolve`` decides (trust, the chain, precedence, malformed values); this
module puts its answer where every consumer reads it: the scope h1 built. The WebSocket
scope (``ws``/``wss``), the WSGI environ (``REMOTE_ADDR``, ``wsgi.url_scheme``,
``HTTP_HOST``, ``SERVER_NAME``/``SERVER_PORT``, ``SCRIPT_NAME``) and the access log all
derive from that scope, so one place serves them all, for every wire protocol.

Hot path. h1 notices a forwarding field while it reads the head (one dict lookup it makes
for every field anyway) and hands the fields here only then: a request without one pays
an attribute test. Resolving a chain costs microseconds (addresses are parsed), so results
are memoised per (peer, forwarding fields): a front end's keep-alive connection repeats
them, request after request. The memo is bounded and cleared when full.

What changes (``Resolved`` fields, each only when the proxy said it):
- ``client``: the forwarded client (port 0 when the proxy gave none).
- ``scheme``: http or https (ws/wss arrive as http/https; the WebSocket scope maps them).
- ``host`` (X-Forwarded-Host, Forwarded ``host=``): replaces the Host field, so apps that
  read it (Django, Starlette's URL) agree; ``server`` becomes (name, port), the port the
  host names or the scheme's default.
- ``port`` alone (X-Forwarded-Port): ``server``'s port, and the Host field's port (left
  out when it is the scheme's default), as Werkzeug's ProxyFix does.
- ``prefix`` (X-Forwarded-Prefix): the mount point the proxy stripped. It *replaces*
  ``--root-path`` for that request (Werkzeug's rule: a proxy that sends a prefix knows the
  whole mount point), and ``path``/``raw_path`` carry it in front, as ASGI says.
"""
from __future__ import annotations

from typing import Any

from .forwarded import Resolved, resolve

__all__ = ["apply_forwarded"]

_MEMO_MAX = 1024
_DEFAULT_PORT = {"http": 80, "https": 443}


def apply_forwarded(state: Any, conn: Any, scope: dict, fields: list[tuple[bytes, bytes]]) -> None:
    """Apply what ``conn``'s sender forwarded in ``fields`` (the request's forwarding
    header fields, in order) to ``scope``, if the sender is in --forwarded-allow-ips.

    The sender is whoever connected to us (``conn.sender``: its host, None for a Unix
    socket): it wrote the headers. ``conn.client`` is who it says the peer is (the socket
    peer, or what a PROXY header or uwsgi vars named), where the chain starts."""
    trusted = conn.sender_trusted
    if trusted is None:  # once per connection
        trusted = conn.sender_trusted = state.forwarded_trust.is_trusted(conn.sender)
    if not trusted:
        return
    client = conn.client
    key = (client, *fields)
    memo = state.forwarded_memo  # per server: its own trusted peers decide
    try:
        resolved = memo[key]
    except KeyError:
        if client is None:
            resolved = resolve(None, None, fields, state.forwarded_trust, sender_trusted=True)
        else:
            resolved = resolve(client[0], client[1], fields, state.forwarded_trust,
                               sender_trusted=True)
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[key] = resolved
    if resolved is not None:
        _apply(state, scope, resolved)


def _apply(state: Any, scope: dict, resolved: Resolved) -> None:
    scope["client"] = resolved.client
    scheme = resolved.scheme or scope["scheme"]
    scope["scheme"] = scheme
    if resolved.host is not None:
        _set_host(scope["headers"], resolved.host.encode("latin-1"))
        name = resolved.server_name or ""
        if name.startswith("["):
            name = name[1:-1]  # the scope's server host is an address, without brackets
        port = resolved.port if resolved.port is not None else _DEFAULT_PORT.get(scheme, 80)
        scope["server"] = (name, port)
    elif resolved.port is not None:
        port = resolved.port
        server = scope["server"]
        host = _host_field(scope["headers"])
        name = _host_name(host.decode("latin-1")) if host else (server[0] if server else "")
        scope["server"] = (name.strip("[]"), port)
        if host is not None:
            value = name if port == _DEFAULT_PORT.get(scheme) else f"{name}:{port}"
            _set_host(scope["headers"], value.encode("latin-1"))
    if resolved.prefix:
        _mount(state, scope, resolved.prefix)


def _mount(state: Any, scope: dict, prefix: str) -> None:
    """root_path becomes the proxy's prefix; path and raw_path carry it in front."""
    raw_path = scope["raw_path"]
    if raw_path == b"*":
        return  # asterisk-form names the server, not a resource under a mount
    root, raw_root = state.root_path, state.raw_root_path
    path = scope["path"]
    if root and path.startswith(root) and raw_path.startswith(raw_root):
        path, raw_path = path[len(root):], raw_path[len(raw_root):]
    scope["root_path"] = prefix
    scope["path"] = prefix + path
    scope["raw_path"] = prefix.encode("utf-8") + raw_path


def _host_field(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"host":
            return value
    return None


def _host_name(host: str) -> str:
    """The Host value without its port ('[::1]:8000' -> '[::1]')."""
    if host.startswith("["):
        return host[:host.find("]") + 1] if "]" in host else host
    return host.partition(":")[0]


def _set_host(headers: list[tuple[bytes, bytes]], value: bytes) -> None:
    for index, (name, _value) in enumerate(headers):
        if name == b"host":
            headers[index] = (b"host", value)
            return
    headers.append((b"host", value))
