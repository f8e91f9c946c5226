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
them, request after request. The memo is bounded and cleared when full, and takes only
small field sets (a client can make its X-Forwarded-For as long as the head limit).

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

import logging
from typing import Any

from .forwarded import Resolved, _scheme, _split_host_port, resolve
from .request import DEFAULT_PORTS, replace_host, split_host
from .trust import ip_address

__all__ = ["apply_forwarded"]

logger = logging.getLogger("gannet.error")

_MEMO_MAX = 1024
# Only small field sets are remembered per server: a key holds its fields' bytes, and a
# client behind a front end that appends to its X-Forwarded-For controls their size (up to
# the head limit, ~800 KiB), so 1024 big keys would pin most of a GiB. Real chains fit.
_MEMO_FIELDS, _MEMO_VALUE = 8, 256  # at most ~2 KiB a key, ~2 MiB in all
_XFF, _XFP = b"x-forwarded-for", b"x-forwarded-proto"

# A plan is what a request's forwarding fields do to its scope: (client, scheme or None,
# the Resolved when it also sets a host, port or prefix, else None); None: nothing.
Plan = tuple


def apply_forwarded(state: Any, conn: Any, scope: dict, fields: list[tuple[bytes, bytes]]) -> None:
    """Apply what ``conn``'s sender forwarded in ``fields`` (the request's forwarding
    header fields, in order) to ``scope``, if the sender is in --forwarded-allow-ips.

    The sender is whoever connected to us (``conn.sender``: its host, None for a Unix
    socket): it wrote the headers. ``conn.client`` is who it says the peer is (the socket
    peer, or what a PROXY header or uwsgi vars named), where the chain starts; it is
    fixed for the connection's life, so the connection remembers its last plan."""
    trusted = conn.sender_trusted
    if trusted is None:  # once per connection
        trusted = conn.sender_trusted = state.forwarded_trust.is_trusted(conn.sender)
    if not trusted:
        return
    names = state.forwarded_names
    if names is not None:  # --forwarded-headers lists only some: the others are ignored
        fields = [field for field in fields if field[0] in names]
        if not fields:
            return
    if fields == conn.forwarded_fields:  # a keep-alive client repeats itself: no hashing
        plan = conn.forwarded_plan
    else:
        plan = _plan(state, conn.client, fields)
        conn.forwarded_fields = fields
        conn.forwarded_plan = plan
    if plan is not None:
        scope["client"] = plan[0]
        if plan[1] is not None:
            scope["scheme"] = plan[1]
        if plan[2] is not None:
            _apply(state, scope, plan[2])


def _plan(state: Any, client: tuple[str, int] | None, fields: list[tuple[bytes, bytes]]) -> Plan | None:
    """The plan for these fields from this client, memoised per server (bounded, and
    only for small fields)."""
    memo = state.forwarded_memo  # per server: its own trusted peers decide
    key: tuple | None = None
    if len(fields) <= _MEMO_FIELDS:
        for _name, value in fields:
            if len(value) > _MEMO_VALUE:
                break
        else:
            key = (client, *fields)
            try:
                return memo[key]
            except KeyError:
                pass
    plan = _simple_plan(client, fields)
    if plan is False:
        if client is None:
            resolved = resolve(None, None, fields, state.forwarded_trust, sender_trusted=True)
        else:
            resolved = resolve(client[0], client[1], fields, state.forwarded_trust,
                               sender_trusted=True)
        plan = None if resolved is None else (
            resolved.client, resolved.scheme,
            resolved if resolved.host is not None or resolved.port is not None
            or resolved.prefix else None)
    if plan is not None and client is not None and plan[0] is not None and plan[0][1] == 0 \
            and plan[0][0] == (ip_address(client[0]) or client[0]):
        # The proxy forwarded the very address that connected (HAProxy: a PROXY header
        # and option forwardfor): keep the port we know instead of X-Forwarded-For's none.
        plan = ((plan[0][0], client[1]), *plan[1:])
        if plan[0] == client and plan[1] is None and plan[2] is None:
            plan = None
    if key is not None:
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[key] = plan
    return plan


def _simple_plan(client: tuple[str, int] | None, fields: list[tuple[bytes, bytes]]) -> Any:
    """What ``resolve`` answers, for the shape nearly every front end sends: one
    X-Forwarded-For address and at most one X-Forwarded-Proto word, each on one line
    (a one-hop chain: the address is the client whether or not it is trusted itself).
    False for any other shape. tests/http/test_identity.py checks it agrees with resolve."""
    address = proto = None
    for name, value in fields:
        if name == _XFF and address is None and b"," not in value:
            address = value
        elif name == _XFP and proto is None and b"," not in value:
            proto = value
        else:
            return False
    if client is not None:
        client = (ip_address(client[0]) or client[0], client[1] or 0)
    forwarded = client
    if address is not None:
        text = address.strip().decode("latin-1")
        found = _split_host_port(text)
        if found is None:
            logger.debug("forwarded: ignored X-Forwarded-For entry %r", text[:64])
        else:
            forwarded = found
    scheme = _scheme(proto.decode("latin-1").strip()) if proto else None
    if forwarded == client and scheme is None:
        return None
    return (forwarded, scheme, None)


def _apply(state: Any, scope: dict, resolved: Resolved) -> None:
    """The rest of a plan: host, port and prefix (client and scheme are already set)."""
    scheme = scope["scheme"]
    if resolved.host is not None:
        name = resolved.server_name or ""
        port = resolved.port  # X-Forwarded-Port's, else the forwarded host's own
        # The Host field says the port too (unless it is the scheme's default): apps
        # build URLs from it (PEP 3333's reconstruction, Django, Starlette's request.url).
        value = name if port is None or port == DEFAULT_PORTS.get(scheme) else f"{name}:{port}"
        replace_host(scope["headers"], value.encode("latin-1"))
        if name.startswith("["):
            name = name[1:-1]  # the scope's server host is an address, without brackets
        scope["server"] = (name, port if port is not None else DEFAULT_PORTS.get(scheme, 80))
    elif resolved.port is not None:
        port = resolved.port
        server = scope["server"]
        host = _host_field(scope["headers"])
        name = split_host(host.decode("latin-1"))[0] if host else (server[0] if server else "")
        scope["server"] = (name.strip("[]"), port)
        if host is not None:
            value = name if port == DEFAULT_PORTS.get(scheme) else f"{name}:{port}"
            replace_host(scope["headers"], value.encode("latin-1"))
    if resolved.prefix:
        _mount(state, scope, resolved.prefix, resolved.raw_prefix)


def _mount(state: Any, scope: dict, prefix: str, raw_prefix: bytes) -> None:
    """root_path becomes the proxy's prefix; path and raw_path carry it in front (raw_path
    as the proxy sent it, percent-escapes kept: ASGI's raw_path is the path as received)."""
    raw_path = scope["raw_path"]
    if raw_path == b"*":
        return  # asterisk-form names the server, not a resource under a mount
    root, raw_root = state.root_path, state.raw_root_path
    path = scope["path"]
    if root and path.startswith(root) and raw_path.startswith(raw_root):
        path, raw_path = path[len(root):], raw_path[len(raw_root):]
    scope["root_path"] = prefix
    scope["path"] = prefix + path
    scope["raw_path"] = raw_prefix + raw_path


def _host_field(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"host":
            return value
    return None
