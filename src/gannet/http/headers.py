"""Response fields, checked and normalised once for every protocol.

Response fields come from applications, so they are checked before they reach any wire:
a name must be a token (RFC 9110 §5.1) and a value free of CR, LF and NUL, which would let
an app (or an attacker steering one) split the response (RFC 9110 §5.5). Hop-by-hop
fields (RFC 9110 §7.6.1) are the server's business, not the app's: they are taken out of
the block and reported as flags, so each protocol applies its own rule (h1 honours
``Connection: close``; WSGI refuses them, PEP 3333 "Hop-by-hop features"; h2 forbids
them, RFC 9113 §8.2.2). Trailer fields are filtered against RFC 9110 §6.5.1.

Most apps send the same few header lists again and again, so the result of checking one
whole list (its wire bytes and what framing needs to know of it) is cached, keyed by the
list's contents: a repeated list costs one dict lookup instead of a loop over its fields.
The cache is cleared when full, so varying values (``Set-Cookie``, an ``ETag``) cost a
bounded dict and never pin the first values seen. Hot path: flat on purpose.
"""
from __future__ import annotations

import http
import logging
import re
from email.utils import formatdate
from typing import Any, Iterable, NamedTuple

__all__ = [
    "STATUS_LINES", "status_line", "reason_phrase", "check_field_name", "HeadFields",
    "fields_of", "scan_fields", "without_length", "defaults_without", "trailer_block", "link_block", "refusal", "http_date",
    "APP_CHUNKED", "APP_CLOSE", "CUSTOM_DEFAULTS", "HOP_BY_HOP", "PEP3333_HOP",
    "add_default_names",
]

logger = logging.getLogger("gannet.error")

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


def reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status).encode("ascii"))


# Precomputed so the hot path does a dict lookup, not a format (uvicorn does the same).
STATUS_LINES: dict[int, bytes] = {int(s): status_line(int(s)) for s in http.HTTPStatus}


def check_field_name(name: Any) -> None:
    """Raise TypeError/ValueError unless ``name`` is a field-name token (bytes)."""
    if type(name) is not bytes:
        raise TypeError(f"header name must be bytes, got {type(name).__name__}")
    if not _TOKEN.match(name):
        raise ValueError(f"invalid header name {name!r}")


def _check_value(name: bytes, value: Any) -> None:
    if type(value) is not bytes:
        raise TypeError(f"header {name!r}: value must be bytes, got {type(value).__name__}")
    if b"\r" in value or b"\n" in value or b"\0" in value:
        raise ValueError(f"invalid response header: {name!r} value contains CR, LF or NUL")


# Flags for what a header list sets that the protocol must know about.
APP_CHUNKED = 1  # Transfer-Encoding (the server frames the body itself)
APP_CLOSE = 2  # Connection: close (h1 closes after this response)
CUSTOM_DEFAULTS = 4  # Server, Date or a --header name, set by the app itself
HOP_BY_HOP = 8  # some hop-by-hop field was present (and left out of the block)
# PEP 3333's hop-by-hop list (RFC 2616 §13.5.1) also names these; an ASGI app may send
# them over HTTP/1.1 (a proxy's 407 carries Proxy-Authenticate, a 426 must carry Upgrade,
# RFC 9110 §15.5.22, and any response may advertise it, §7.8), so they pass, but WSGI
# refuses them; HTTP/2 will drop Upgrade (RFC 9113 §8.2.2).
PEP3333_HOP = 16

_CL, _TE, _CONN, _DEFAULT, _HOP, _PEP_HOP = 1, 2, 3, 4, 5, 6
# Connection-specific fields, RFC 9110 §7.6.1 (plus the non-standard Proxy-Connection and
# Keep-Alive that RFC 9113 §8.2.2 also names): never forwarded from an app's list.
_SPECIAL = {b"content-length": _CL, b"transfer-encoding": _TE, b"connection": _CONN,
            b"server": _DEFAULT, b"date": _DEFAULT, b"keep-alive": _HOP,
            b"proxy-connection": _HOP, b"te": _HOP, b"upgrade": _PEP_HOP,
            b"proxy-authenticate": _PEP_HOP, b"proxy-authorization": _PEP_HOP,
            b"trailers": _PEP_HOP}


def add_default_names(names: Iterable[bytes]) -> None:
    """Names the server also sends by default (``--header``, read once at start-up): an
    app's list that sets one is flagged CUSTOM_DEFAULTS like Server and Date, so the server
    leaves its own line out. Without --header nothing changes: the lookup in scan_fields
    is the one it always does."""
    for name in names:
        _SPECIAL.setdefault(name.lower(), _DEFAULT)
    _HEAD_CACHE.clear()  # lists checked before carry flags without the new names


class HeadFields(NamedTuple):
    """What one checked header list means for the wire."""

    block: bytes  # "name: value\r\n" for every field passed on
    declared: int | None  # the app's Content-Length (None: not set; -1: not a number)
    flags: int  # APP_CHUNKED | APP_CLOSE | CUSTOM_DEFAULTS | HOP_BY_HOP


_HEAD_CACHE: dict[tuple, HeadFields] = {}
_HEADS_MAX = 512


def scan_fields(fields: Iterable) -> HeadFields:
    """Check every field of a response head; classify and leave out the ones the server
    owns. Raises TypeError/ValueError for fields that must not reach a wire."""
    parts: list[bytes] = []
    content_length = None
    flags = 0
    dropped: list[bytes] = []
    for name, value in fields:
        check_field_name(name)
        _check_value(name, value)
        kind = _SPECIAL.get(name.lower())
        if kind:
            if kind == _CL:
                if content_length is not None:
                    if value != content_length:
                        raise ValueError(f"conflicting Content-Length values {content_length!r} "
                                         f"and {value!r}")
                    continue  # one Content-Length on the wire
                content_length = value
            elif kind == _DEFAULT:
                flags |= CUSTOM_DEFAULTS
            elif kind == _PEP_HOP:
                flags |= PEP3333_HOP
            else:
                flags |= HOP_BY_HOP
                if kind == _TE:
                    flags |= APP_CHUNKED
                elif kind == _CONN and b"close" in value.lower():
                    flags |= APP_CLOSE
                dropped.append(name)
                continue
        parts += (name, b": ", value, b"\r\n")
    if dropped:
        logger.debug("hop-by-hop response fields left out (the server sets its own): %s",
                     b", ".join(dropped).decode("latin-1"))
    declared = None if content_length is None else \
        int(content_length) if content_length.isdigit() else -1
    return HeadFields(b"".join(parts), declared, flags)


def fields_of(fields: tuple) -> HeadFields:
    """The checked meaning of a response's fields (a tuple: the cycle makes it one), from
    the cache when the same fields were checked before. A miss costs no exception."""
    try:
        checked = _HEAD_CACHE.get(fields)
    except TypeError:  # [name, value] lists: the same fields as tuples are a key
        try:
            fields = tuple(map(tuple, fields))
            checked = _HEAD_CACHE.get(fields)
        except TypeError:  # not pairs of bytes at all: scan_fields says what is wrong
            return scan_fields(fields)
    if checked is not None:
        return checked
    checked = scan_fields(fields)
    if len(_HEAD_CACHE) >= _HEADS_MAX:
        _HEAD_CACHE.clear()
    _HEAD_CACHE[fields] = checked
    return checked


def without_length(fields: tuple) -> bytes:
    """The block of ``fields`` without Content-Length: for 204 (and 1xx), where RFC 9110
    §8.6 forbids it. Rare, so not cached."""
    return scan_fields([(n, v) for n, v in fields
                        if not (type(n) is bytes and n.lower() == b"content-length")]).block


# RFC 9110 §6.5.1: trailers must not carry framing, routing, request modifiers,
# authentication, response control data or how to process the content.
_PROHIBITED_TRAILERS = frozenset((
    b"content-length", b"transfer-encoding", b"trailer", b"te", b"connection", b"keep-alive",
    b"upgrade", b"proxy-connection", b"host", b"content-type", b"content-encoding",
    b"content-range", b"authorization", b"proxy-authorization", b"www-authenticate",
    b"proxy-authenticate", b"set-cookie", b"cookie", b"cache-control", b"expires", b"age",
    b"date", b"location", b"retry-after", b"vary", b"pragma", b"warning", b"expect",
    b"max-forwards", b"range", b"if-match", b"if-none-match", b"if-modified-since",
    b"if-unmodified-since", b"if-range",
))


def trailer_block(fields: Iterable) -> bytes:
    """Checked trailer fields as wire lines, prohibited ones left out with a debug line."""
    parts: list[bytes] = []
    for name, value in fields:
        check_field_name(name)
        _check_value(name, value)
        if name.lower() in _PROHIBITED_TRAILERS:
            logger.debug("trailer field %r left out (RFC 9110 §6.5.1 prohibits it)", name)
            continue
        parts += (name, b": ", value, b"\r\n")
    return b"".join(parts)


def link_block(links: Iterable) -> bytes:
    """``Link`` lines for a 103 Early Hints response (RFC 8297)."""
    parts: list[bytes] = []
    for link in links:
        if isinstance(link, str):
            link = link.encode("latin-1")
        _check_value(b"link", link)
        parts += (b"link: ", link, b"\r\n")
    return b"".join(parts)


def refusal(status: int, default_headers: bytes, extra: bytes = b"") -> bytes:
    """The server's own answer to a request it will not serve, ending the connection:
    the one writer of refusals (h1 protocol errors, WebSocket handshake failures)."""
    body = reason_phrase(status).encode()
    return (b"%bcontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n%b%b\r\n%b"
            % (STATUS_LINES.get(status) or status_line(status), len(body), extra,
               default_headers, body))


def defaults_without(default_headers: bytes, fields: Iterable) -> bytes:
    """The server's default lines (server, date, --header) for the names the app did not
    set."""
    if not default_headers:
        return default_headers
    names = {bytes(name).lower() for name, _ in fields}
    if not names:
        return default_headers
    return b"".join(line + b"\r\n" for line in default_headers.split(b"\r\n")
                    if line and line.split(b":", 1)[0] not in names)


def http_date(timestamp: float | None = None) -> bytes:
    return formatdate(timestamp, usegmt=True).encode("ascii")
