"""Header helpers shared by every protocol: status lines, field validation, the Date value.

Response fields come from applications, so they are checked before they reach the wire:
a CR, LF or NUL in a value would let an app (or an attacker steering one) split the
response (RFC 9110 §5.5), and a name must be a token (RFC 9110 §5.1).
"""
from __future__ import annotations

import http
import re
from email.utils import formatdate

__all__ = [
    "STATUS_LINES",
    "status_line",
    "check_field_name",
    "find_bad_field",
    "http_date",
    "reason_phrase",
]

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")

# Names already seen to be valid tokens, so the common names are checked once per process.
# Bounded, so an app inventing names per request cannot grow it without limit.
_VALID_NAMES: set[bytes] = set()
_VALID_NAMES_MAX = 1024


def reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status).encode("ascii"))


# Precomputed so the hot path does a dict lookup, not a format (uvicorn does the same).
STATUS_LINES: dict[int, bytes] = {int(s): status_line(int(s)) for s in http.HTTPStatus}


def check_field_name(name: bytes) -> None:
    """Raise ValueError unless ``name`` is a valid field name token."""
    if name in _VALID_NAMES:
        return
    if type(name) is not bytes:
        raise TypeError(f"header name must be bytes, got {type(name).__name__}")
    if not _TOKEN.match(name):
        raise ValueError(f"invalid header name {name!r}")
    if len(_VALID_NAMES) < _VALID_NAMES_MAX:
        _VALID_NAMES.add(name)


def find_bad_field(headers: object) -> str:
    """Explain which header made a head invalid (slow path, for the error message)."""
    for item in headers:  # type: ignore[attr-defined]
        try:
            name, value = item
        except (TypeError, ValueError):
            return f"header {item!r} is not a (name, value) pair"
        if type(name) is not bytes or type(value) is not bytes:
            return f"header {item!r} must be a pair of bytes"
        if not _TOKEN.match(name):
            return f"invalid header name {name!r}"
        if _BAD_VALUE.search(value):
            return f"header {name!r} value contains CR, LF or NUL"
    return "invalid header"


def http_date(timestamp: float | None = None) -> bytes:
    return formatdate(timestamp, usegmt=True).encode("ascii")
