"""``--header NAME:VALUE``: default response headers, checked when the config is read.

uvicorn's option, with its spelling. A bad header must fail at start-up naming the option,
not on the first response: the name must be a token (RFC 9110 §5.1) and the value free of
control characters but HTAB (RFC 9110 §5.5): CR or LF could split every response (an
obs-fold too), and clients and proxies refuse or mangle the others. Names that carry
framing or connection state (Content-Length, Transfer-Encoding, Connection, …) are the
server's own business and are refused; so is Date, which Gannet writes itself
(``--no-date-header`` turns it off). A ``server`` header replaces Gannet's own.

The environment variable holds one header per line (``GANNET_HEADER``): a value may
contain commas and semicolons (``Cache-Control: no-cache, no-store``), never a line break.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["to_header_list", "parse_header", "header_lines"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs (RFC 5234 B.1) but HTAB
# The server frames every message itself (RFC 9110 §7.6.1 connection-specific fields,
# RFC 9112 §6 framing); Date comes from the once-a-second clock.
_RESERVED = frozenset((
    "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection",
    "te", "trailer", "upgrade", "date",
))


def parse_header(text: str) -> str:
    """``"Name: value"`` (name lower-cased, value trimmed) or ValueError saying what is wrong."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name:
        raise ValueError(f"expected NAME:VALUE, got {text!r}")
    if not _TOKEN.match(name):
        raise ValueError(f"{name!r} is not a valid header name (RFC 9110 §5.1)")
    if _CONTROL.search(value):
        raise ValueError(f"the value of {name!r} contains a control character (CR, LF, NUL, "
                         "...; RFC 9110 §5.5)")
    if name.lower() in _RESERVED:
        hint = " (use --no-date-header)" if name.lower() == "date" else ""
        raise ValueError(f"{name!r} is set by the server itself and cannot be a default "
                         f"header{hint}")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"the value of {name!r} is not latin-1 text") from None
    return f"{name.lower()}: {value}"


def to_header_list(value: Any) -> list[str]:
    """Repeated flags or a TOML array give a list; the environment gives one header a line."""
    if isinstance(value, str):
        items = [line for line in value.splitlines() if line.strip()]
        if not items:
            raise ValueError(f"expected NAME:VALUE lines, got {value!r}")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ValueError(f"expected a list of NAME:VALUE strings, got {value!r}")
    headers = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"expected a NAME:VALUE string, got {item!r}")
        headers.append(parse_header(item))
    return headers


def header_lines(headers: list[str]) -> bytes:
    """The wire lines for checked headers: ``name: value\\r\\n`` each."""
    return b"".join(header.encode("latin-1") + b"\r\n" for header in headers)
