"""The HTTP/1.1 response head: framing decided once per response, headers checked.

Response fields come from applications, so they are checked before they reach the wire:
names must be tokens (RFC 9110 §5.1) and values free of CR, LF and NUL (response
splitting, RFC 9110 §5.5). Both checks are cached per distinct name and value, because
most responses repeat the same few. Hot path: flat on purpose.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .headers import STATUS_LINES, check_field_name, status_line

if TYPE_CHECKING:
    from ..asgi.http import HTTPCycle
    from .h1 import H1Protocol

__all__ = ["build_head"]

_R_CL, _R_TE, _R_CONN, _R_SERVER, _R_DATE = 1, 2, 3, 4, 5
_RESPONSE_SPECIAL = {b"content-length": _R_CL, b"transfer-encoding": _R_TE,
                     b"connection": _R_CONN, b"server": _R_SERVER, b"date": _R_DATE}
# Response names already checked to be tokens, mapped to their kind (0 = nothing special):
# one dict lookup per header both validates and classifies. Bounded.
_NAME_KINDS: dict[bytes, int] = {}
_NAME_KINDS_MAX = 1024

# Values already checked to hold no CR, LF or NUL (response splitting, RFC 9110 §5.5).
# Most responses repeat the same few values, so the check runs once per distinct value.
_GOOD_VALUES: set[bytes] = set()
_GOOD_VALUES_MAX = 4096


def _check_value(name: bytes, value: bytes) -> None:
    if type(value) is not bytes:
        raise TypeError(f"header {name!r}: value must be bytes, got {type(value).__name__}")
    if b"\r" in value or b"\n" in value or b"\0" in value:
        raise ValueError(f"invalid response header: {name!r} value contains CR, LF or NUL")
    if len(_GOOD_VALUES) < _GOOD_VALUES_MAX:
        _GOOD_VALUES.add(value)


def _classify(name: bytes) -> int:
    check_field_name(name)
    kind = _RESPONSE_SPECIAL.get(name.lower(), 0)
    if len(_NAME_KINDS) < _NAME_KINDS_MAX:
        _NAME_KINDS[name] = kind
    return kind


def build_head(conn: "H1Protocol", cycle: "HTTPCycle", body: bytes, more_body: bool,
               length: int | None) -> bytes:
    """The response head for ``cycle``, deciding its framing (Content-Length, chunked or
    close-delimited) once. Called with the first body bytes, so a one-shot body gets its
    length. Raises ValueError/RuntimeError for heads that must not reach the wire."""
    status = cycle.status
    parts = [STATUS_LINES.get(status) or status_line(status)]
    append = parts.append
    content_length = None
    app_chunked = False
    app_close = False
    custom_defaults = False
    good_values = _GOOD_VALUES
    for name, value in cycle.headers:
        kind = _NAME_KINDS.get(name)
        if kind is None:
            kind = _classify(name)
        if value not in good_values:
            _check_value(name, value)
        if kind:
            if kind == _R_CL:
                content_length = value
            elif kind == _R_TE:
                app_chunked = True
                continue  # we frame the body ourselves
            elif kind == _R_CONN:
                if b"close" in value.lower():
                    app_close = True
            else:
                custom_defaults = True
        append(name)
        append(b": ")
        append(value)
        append(b"\r\n")

    no_body = cycle.no_body or status == 204 or status == 304
    cycle.no_body = no_body
    if content_length is not None:
        if not no_body:
            if not content_length.isdigit():
                raise ValueError(f"invalid Content-Length {content_length!r}")
            declared = int(content_length)
            remaining = declared - len(body)
            if remaining < 0 or (remaining and not more_body):
                raise RuntimeError(
                    f"response body of {len(body) if remaining < 0 else 'only ' + str(len(body))} "
                    f"bytes does not match Content-Length {declared}")
            cycle.remaining = remaining
    elif no_body:
        pass
    elif not more_body and not (cycle.trailers_pending and cycle.scope["http_version"] == "1.1"):
        append(b"content-length: %d\r\n" % len(body))
    elif length is not None and not cycle.trailers_pending:
        append(b"content-length: %d\r\n" % length)
        cycle.remaining = length - len(body)
    elif cycle.scope["http_version"] == "1.1":
        cycle.chunked = True
        append(b"transfer-encoding: chunked\r\n")
    else:
        cycle.keep_alive = False  # HTTP/1.0 without a length: the close delimits the body
    if app_chunked and not cycle.chunked and content_length is None and not no_body and more_body:
        cycle.keep_alive = False

    state = conn.state
    if app_close or conn.closing or state.shutting_down:
        cycle.keep_alive = False
    if not cycle.keep_alive:
        if not app_close:
            append(b"connection: close\r\n")
    elif cycle.scope["http_version"] == "1.0":
        append(b"connection: keep-alive\r\n")
    append(state.default_headers_without(cycle.headers) if custom_defaults else state.default_headers)
    append(b"\r\n")
    return b"".join(parts)
