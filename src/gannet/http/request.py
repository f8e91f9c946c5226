"""A request head becomes scope pieces here, once, for every wire protocol.

h1 (and h2 after it) parse bytes into a method, a target and fields; this module turns
those into what the ASGI scope (and so the WSGI environ, which derives from the scope)
says: the target split into path, raw_path and query_string (RFC 9112 §3.2), the Host
rules (RFC 9112 §3.2, §3.2.2: an absolute-form target's authority replaces Host), the
request-line limit, and a fresh scope whose ``asgi`` and ``extensions`` dicts belong to
this request alone (an app that mutates them must not change the next request's).

Most requests repeat a few targets, so origin-form targets already split are remembered
per server (``state.targets``: root_path is folded in), bounded and cleared when full.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import httptools

from .errors import ProtocolError

__all__ = ["DEFAULT_PORTS", "GOOD_HOSTS", "NO_PARAMS", "WSGI_ASGI_INFO", "ExtensionParams", "split_target", "check_host", "http_scope", "replace_host", "request_line_length", "split_host"]

DEFAULT_PORTS = {"http": 80, "https": 443}

_TARGET_CACHE_MAX = 1024
_TARGET_CACHE_URL_MAX = 256

# RFC 9112 §3.2 / RFC 3986 §3.2.2: uri-host [ ":" port ]; an IP literal in brackets.
_HOST_VALUE = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?\Z")
GOOD_HOSTS: set[bytes] = set()  # Host values already checked (bounded: cleared when full; h1 reads it inline)
_GOOD_HOSTS_MAX = 256


def check_host(value: bytes) -> None:
    """Refuse a Host value that is not ``uri-host [ ":" port ]`` (400)."""
    if value in GOOD_HOSTS:
        return
    if not _HOST_VALUE.match(value):
        raise ProtocolError(400, f"invalid Host header {value[:64]!r}")
    if len(GOOD_HOSTS) >= _GOOD_HOSTS_MAX:
        GOOD_HOSTS.clear()
    GOOD_HOSTS.add(value)


def request_line_length(method: str, url: bytes) -> int:
    """The request line's length as sent (method SP target SP HTTP/x.y), for the
    ``--limit-request-line`` check (RFC 9112 §3: the whole line, as gunicorn counts it)."""
    return len(method) + len(url) + 10


def split_target(state: Any, url: bytes, method: str) -> tuple[tuple[str, bytes, bytes], bytes | None]:
    """The scope's (path, raw_path, query_string) for a request target, and for an
    absolute-form target its authority (which then replaces Host)."""
    authority = None
    cache = False
    if url[:1] == b"/":
        # A fragment is not part of a target (RFC 9112 §3.2); cut it first, so a '#'
        # before any '?' also ends the path.
        fragment_at = url.find(b"#")
        rest = url if fragment_at < 0 else url[:fragment_at]
        query_at = rest.find(b"?")
        if query_at < 0:
            raw_path, query = rest, b""
        else:
            raw_path, query = rest[:query_at], rest[query_at + 1:]
        cache = True
    elif url == b"*" and method == "OPTIONS":
        # asterisk-form (RFC 9112 §3.2.4) names the server, not a resource: no root_path.
        return ("*", b"*", b""), None
    elif method == "CONNECT":
        raw_path, query = url, b""  # authority-form (RFC 9112 §3.2.3)
    else:
        raw_path, query, authority = _absolute_form(url)
    path = raw_path.decode("ascii")
    if "%" in path:
        path = unquote(path)
    if state.root_path:
        path = state.root_path + path
        raw_path = state.raw_root_path + raw_path
    target = (path, raw_path, query)
    if cache and len(url) <= _TARGET_CACHE_URL_MAX:
        targets = state.targets
        if len(targets) >= _TARGET_CACHE_MAX:
            targets.clear()
        targets[url] = target
    return target, authority


def _absolute_form(url: bytes) -> tuple[bytes, bytes, bytes]:
    """absolute-form (RFC 9112 §3.2.2): http or https only, with an authority."""
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        raise ProtocolError(400, "invalid request target") from None
    if not parsed.schema or parsed.schema.lower() not in (b"http", b"https") or not parsed.host:
        raise ProtocolError(400, "invalid request target")
    authority = parsed.host
    if b":" in authority:
        authority = b"[" + authority + b"]"  # an IPv6 literal loses its brackets in parse_url
    if parsed.port is not None:
        authority += b":%d" % parsed.port
    check_host(authority)
    return parsed.path or b"/", parsed.query or b"", authority


def replace_host(headers: list[tuple[bytes, bytes]], authority: bytes) -> None:
    """RFC 9112 §3.2.2: with an absolute-form target the server ignores Host and uses the
    target's authority; the scope's fields (and so HTTP_HOST) say that one."""
    for index, (name, _value) in enumerate(headers):
        if name == b"host":
            headers[index] = (b"host", authority)
            return
    headers.append((b"host", authority))


def split_host(host: str) -> tuple[str, str | None]:
    """A Host value as (name, port or None): ``[::1]:8000`` -> ("[::1]", "8000")."""
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            rest = host[end + 1:]
            return host[:end + 1], rest[1:] if rest.startswith(":") else None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, port
    return host, None


class ExtensionParams(dict):
    """An extension's (empty) parameters in a scope: a dict, as the spec says, shared by
    every scope and so read-only: an app that writes to it gets a TypeError instead of
    changing every later request. Fresh empty dicts would cost ~6k instructions a request."""

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a scope's extension parameters are read-only (shared by every request)")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _read_only  # type: ignore[assignment]
    __ior__ = _read_only  # type: ignore[assignment]


NO_PARAMS = ExtensionParams()
# What a WSGI request's (internal) scope says instead of fresh dicts: its app never sees it.
WSGI_ASGI_INFO = ExtensionParams(version="3.0", spec_version="2.4")


def http_scope(version: str, server: Any, client: Any, scheme: str, method: str,
               root_path: str, target: tuple[str, bytes, bytes], headers: list,
               app_state: dict) -> dict:
    """A fresh HTTP scope: its ``asgi`` and ``extensions`` dicts are new per call, so one
    app mutating them cannot reach another request; the extensions' parameters are the
    shared read-only NO_PARAMS."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": version,
        "server": server,
        "client": client,
        "scheme": scheme,
        "method": method,
        "root_path": root_path,
        "path": target[0],
        "raw_path": target[1],
        "query_string": target[2],
        "headers": headers,
        "state": app_state.copy(),
        "extensions": {
            "http.response.trailers": NO_PARAMS,
            "http.response.pathsend": NO_PARAMS,
            "http.response.zerocopysend": NO_PARAMS,
            "http.response.early_hint": NO_PARAMS,
        },
    }
