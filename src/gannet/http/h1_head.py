"""The HTTP/1.1 response head: framing decided once per response, headers checked.

Response fields come from applications, so they are checked before they reach the wire:
names must be tokens (RFC 9110 §5.1) and values free of CR, LF and NUL (response
splitting, RFC 9110 §5.5). Most apps send the same few header lists again and again, so
the result of checking one whole list (its wire bytes and what framing needs to know of
it) is cached, keyed by the list's contents: a repeated list costs one dict lookup instead
of a Python loop over its fields. Hot path: flat on purpose.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from .headers import STATUS_LINES, check_field_name, status_line

if TYPE_CHECKING:
    from ..asgi.http import HTTPCycle
    from .h1 import H1Protocol

__all__ = ["build_head", "fields_of"]

_R_CL, _R_TE, _R_CONN, _R_SERVER, _R_DATE = 1, 2, 3, 4, 5
_RESPONSE_SPECIAL = {b"content-length": _R_CL, b"transfer-encoding": _R_TE,
                     b"connection": _R_CONN, b"server": _R_SERVER, b"date": _R_DATE}
# Response names already checked to be tokens, mapped to their kind (0 = nothing special):
# one dict lookup per field both validates and classifies. Bounded.
_NAME_KINDS: dict[bytes, int] = {}
_NAME_KINDS_MAX = 1024

# Values already checked to hold no CR, LF or NUL. Bounded.
_GOOD_VALUES: set[bytes] = set()
_GOOD_VALUES_MAX = 4096


# Flags for what a header list sets that framing must know about.
APP_CHUNKED = 1  # Transfer-Encoding (we frame the body ourselves)
APP_CLOSE = 2  # Connection: close
CUSTOM_DEFAULTS = 4  # Server or Date, set by the app itself


class HeadFields(NamedTuple):
    """What one checked header list means for the wire."""

    block: bytes  # "name: value\r\n" for every field we pass on
    declared: int | None  # the app's Content-Length (None: not set; -1: not a number)
    flags: int  # APP_CHUNKED | APP_CLOSE | CUSTOM_DEFAULTS


# Whole header lists already checked, keyed by the tuple of their fields. Cleared when
# full, so an app whose lists never repeat (say, a varying ETag) costs a bounded dict.
_HEAD_CACHE: dict[tuple, HeadFields] = {}
_HEADS_MAX = 512


def _check_value(name: bytes, value: Any) -> None:
    if type(value) is not bytes:
        raise TypeError(f"header {name!r}: value must be bytes, got {type(value).__name__}")
    if b"\r" in value or b"\n" in value or b"\0" in value:
        raise ValueError(f"invalid response header: {name!r} value contains CR, LF or NUL")
    if len(_GOOD_VALUES) < _GOOD_VALUES_MAX:
        _GOOD_VALUES.add(value)


def _classify(name: Any) -> int:
    check_field_name(name)
    kind = _RESPONSE_SPECIAL.get(name.lower(), 0)
    if len(_NAME_KINDS) < _NAME_KINDS_MAX:
        _NAME_KINDS[name] = kind
    return kind


def scan_fields(fields: tuple) -> HeadFields:
    """Check every field of a response head and classify the ones framing depends on.
    Raises TypeError/ValueError for fields that must not reach the wire."""
    parts: list[bytes] = []
    content_length = None
    flags = 0
    name_kinds = _NAME_KINDS
    good_values = _GOOD_VALUES
    for name, value in fields:
        try:
            kind = name_kinds[name]
        except (KeyError, TypeError):
            kind = _classify(name)
        if value not in good_values:
            _check_value(name, value)
        if kind:
            if kind == _R_CL:
                if content_length is not None:
                    if value != content_length:
                        raise ValueError(f"conflicting Content-Length values {content_length!r} "
                                         f"and {value!r}")
                    continue  # one Content-Length on the wire
                content_length = value
            elif kind == _R_TE:
                flags |= APP_CHUNKED
                continue  # we frame the body ourselves
            elif kind == _R_CONN:
                if b"close" in value.lower():
                    flags |= APP_CLOSE
            else:
                flags |= CUSTOM_DEFAULTS
        parts += (name, b": ", value, b"\r\n")
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


def build_head(conn: "H1Protocol", cycle: "HTTPCycle", body: bytes, more_body: bool,
               length: int | None) -> bytes:
    """The response head for ``cycle``, deciding its framing (Content-Length, chunked or
    close-delimited) once. Called with the first body bytes, so a one-shot body gets its
    length. Raises ValueError/RuntimeError/TypeError for heads that must not reach the wire."""
    headers = cycle.headers
    block, declared, flags = fields_of(headers)
    status = cycle.status
    line = STATUS_LINES.get(status) or status_line(status)
    framing = b""

    no_body = cycle.no_body or status == 204 or status == 304
    cycle.no_body = no_body
    if declared is not None:
        if not no_body:
            if declared < 0:
                raise ValueError("invalid Content-Length in the response head")
            remaining = declared - len(body)
            if remaining < 0 or (remaining and not more_body):
                raise RuntimeError(
                    f"response body of {len(body) if remaining < 0 else 'only ' + str(len(body))} "
                    f"bytes does not match Content-Length {declared}")
            cycle.remaining = remaining
    elif no_body:
        pass
    elif not more_body and not (cycle.trailers_pending and cycle.scope["http_version"] == "1.1"):
        framing = b"content-length: %d\r\n" % len(body)
    elif length is not None and not cycle.trailers_pending:
        framing = b"content-length: %d\r\n" % length
        cycle.remaining = length - len(body)
    elif cycle.scope["http_version"] == "1.1":
        cycle.chunked = True
        framing = b"transfer-encoding: chunked\r\n"
    else:
        cycle.keep_alive = False  # HTTP/1.0 without a length: the close delimits the body

    if flags:
        return _head_with_flags(conn, cycle, flags, headers, line, block, framing, declared,
                                no_body, more_body)
    if conn.closing:  # set on every connection by a graceful shutdown
        cycle.keep_alive = False
    if not cycle.keep_alive:
        framing += b"connection: close\r\n"
    elif cycle.http10:
        framing += b"connection: keep-alive\r\n"
    return b"".join((line, block, framing, conn.state.default_headers, b"\r\n"))


def _head_with_flags(conn: "H1Protocol", cycle: "HTTPCycle", flags: int, headers: tuple,
                     line: bytes, block: bytes, framing: bytes, declared: int | None,
                     no_body: bool, more_body: bool) -> bytes:
    """build_head's end for heads that set Transfer-Encoding, Connection: close, Server
    or Date themselves (rare, so kept off the common path)."""
    if flags & APP_CHUNKED and not cycle.chunked and declared is None and not no_body \
            and more_body:
        cycle.keep_alive = False
    app_close = flags & APP_CLOSE
    if app_close or conn.closing:
        cycle.keep_alive = False
    if not cycle.keep_alive:
        if not app_close:
            framing += b"connection: close\r\n"
    elif cycle.http10:
        framing += b"connection: keep-alive\r\n"
    state = conn.state
    defaults = state.default_headers_without(headers) if flags & CUSTOM_DEFAULTS \
        else state.default_headers
    return b"".join((line, block, framing, defaults, b"\r\n"))
