"""PEP 3333 pieces that do not depend on threads: environ, start_response checks,
``wsgi.errors`` (one log record per message) and ``wsgi.file_wrapper``.

Strings in the environ are "bytes-as-str" (PEP 3333, "Unicode Issues"): every value taken
from the wire is decoded as latin-1, so an app can always get the original bytes back with
``.encode("latin-1")``. ``PATH_INFO`` is the percent-decoded request path without the
``--root-path`` prefix, which becomes ``SCRIPT_NAME``.

``--root-path`` and the request path. Behind a proxy that keeps the prefix (nginx
``proxy_pass http://app;``), a request for ``/app/x`` under ``--root-path /app`` is
``SCRIPT_NAME=/app``, ``PATH_INFO=/x``, as gunicorn does with ``SCRIPT_NAME``. Behind a
proxy that strips it (``proxy_pass http://app/;``) the request arrives as ``/x`` and gets
the same environ: a path that does not start with the root path (at a segment boundary,
so ``/application`` is not under ``/app``) is all ``PATH_INFO``, as uvicorn and Starlette
do. gunicorn answers such a path with 400 instead; accepting both lets either proxy set-up
work unchanged. ``OPTIONS *`` (asterisk-form, RFC 9112 §3.2.4) asks about the server, not
a resource under the mount: ``SCRIPT_NAME`` is empty and ``PATH_INFO`` is ``*``, so
``SCRIPT_NAME + PATH_INFO`` is still the request-target, as PEP 3333 has it (gunicorn
refuses the request when a SCRIPT_NAME is configured; an app that answers ``OPTIONS *``
finds it the same with or without ``--root-path``).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Iterator
from urllib.parse import unquote_to_bytes

from ..http.headers import HOP_BY_HOP, PEP3333_HOP, fields_of
from ..http.request import NO_PARAMS, split_host
from ..http.tls_info import ConnectionTLS

__all__ = ["EnvironBuilder", "ErrorStream", "FileWrapper", "InvalidResponse",
           "check_status", "encode_headers"]

errors_logger = logging.getLogger("gannet.error.wsgi")

_PROTOCOLS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0", "2": "HTTP/2", "3": "HTTP/3"}
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_CACHE_MAX = 1024


class InvalidResponse(ValueError):
    """The app gave start_response something PEP 3333 forbids; answered with a 500."""


# ---------------------------------------------------------------- environ
def _header_key(name: bytes) -> str | None:
    if name == b"content-type":
        return "CONTENT_TYPE"
    if name == b"content-length":
        return "CONTENT_LENGTH"
    if b"_" in name:
        # "X_Foo" and "X-Foo" would both become HTTP_X_FOO: a client could spoof a header a
        # proxy set. Dropped, as gunicorn (header_map=drop) and nginx do.
        return None
    return "HTTP_" + name.decode("latin-1").upper().replace("-", "_")


_HEADER_KEYS: dict[bytes, str | None] = {}


class EnvironBuilder:
    """Builds one environ per request from the ASGI-style scope h1 made.

    Each worker thread owns one builder (its ``base`` holds that thread's ``wsgi.errors``),
    so building touches no shared mutable state but the bounded header-name cache.
    """

    __slots__ = ("base", "script_name", "root", "root_len", "root_path")

    def __init__(self, base: dict, raw_root_path: bytes) -> None:
        self.base = base
        # SCRIPT_NAME is bytes-as-str too: the root path's UTF-8 bytes read as latin-1.
        self.script_name = raw_root_path.decode("latin-1")
        self.root = raw_root_path
        self.root_len = len(raw_root_path)
        self.root_path = raw_root_path.decode("utf-8")

    def build(self, cycle: Any) -> dict:
        scope = cycle.scope
        environ = self.base.copy()
        raw = scope["raw_path"]
        root_len = self.root_len
        script_name = self.script_name
        root = self.root
        decoded = False
        if scope["root_path"] != self.root_path:
            # A trusted proxy's X-Forwarded-Prefix mounted this request elsewhere
            # (http/identity.py): its root path, not --root-path, is SCRIPT_NAME.
            root = scope["root_path"].encode("utf-8")
            root_len = len(root)
            script_name = root.decode("latin-1")
        if root_len:
            under = raw.startswith(root)
            if not under and b"%" in raw:
                # A forwarded prefix is in raw_path as sent, escapes kept, and root_path is
                # it decoded (even when it equals --root-path): compare decoded bytes. An
                # escape never straddles the two, as the path goes on with '/'.
                unquoted = unquote_to_bytes(raw)
                if unquoted.startswith(root):
                    raw, decoded, under = unquoted, True, True
            if under:
                # The scope's raw_path is root_path + the request's path (ASGI: h1 prepends
                # it); the request's own path may carry the prefix too (see the module doc).
                raw = raw[root_len:]
                if raw.startswith(root) and (len(raw) == root_len or raw[root_len] == 47):  # "/"
                    raw = raw[root_len:]
            else:
                # "*" (asterisk-form, RFC 9112 §3.2.4) names the server, not a resource
                # under the mount; h1 leaves it unprefixed (see the module doc).
                script_name = ""
        environ["REQUEST_METHOD"] = scope["method"]
        environ["SCRIPT_NAME"] = script_name
        environ["PATH_INFO"] = (unquote_to_bytes(raw) if b"%" in raw and not decoded
                                else raw).decode("latin-1")
        environ["QUERY_STRING"] = scope["query_string"].decode("latin-1")
        version = scope["http_version"]
        environ["SERVER_PROTOCOL"] = _PROTOCOLS.get(version) or "HTTP/" + version
        scheme = scope["scheme"]
        environ["wsgi.url_scheme"] = scheme
        client = scope["client"]
        if client:
            environ["REMOTE_ADDR"] = client[0]
            environ["REMOTE_PORT"] = str(client[1])
        keys = _HEADER_KEYS
        host = None
        for name, value in scope["headers"]:
            key = keys.get(name, 0)
            if key == 0:
                key = _header_key(name)
                if len(keys) < _CACHE_MAX:
                    keys[name] = key
            if key is None:
                continue
            text = value.decode("latin-1")
            if key in environ:
                # RFC 9110 §5.3: repeated fields combine with commas; cookies with "; "
                # (RFC 6265 §5.4), as HTTP/2 splits them.
                text = environ[key] + ("; " if key == "HTTP_COOKIE" else ", ") + text
            environ[key] = text
            if key == "HTTP_HOST":
                host = text
        server = scope["server"]
        if server and server[1] is not None:
            environ["SERVER_NAME"] = server[0]
            environ["SERVER_PORT"] = str(server[1])
        else:  # a Unix socket: the Host header is the best name we have
            name, port = split_host(host) if host else ("localhost", None)
            environ["SERVER_NAME"] = name
            environ["SERVER_PORT"] = port or _DEFAULT_PORTS.get(scheme, "80")
        extensions = scope["extensions"]
        if extensions is not NO_PARAMS:  # a plain connection's WSGI request: the shared one
            tls = extensions.get("tls")
            if tls.__class__ is ConnectionTLS:
                # Gannet's own TLS: mod_ssl's HTTPS and SSL_* keys (http/tls_info.py).
                environ.update(tls.environ())
        if cycle.spool is not None or cycle.body or cycle.buffer is not None:
            # The whole body is here, so its length is known even when it came chunked:
            # apps that ignore wsgi.input_terminated (Django) still see all of it.
            environ["CONTENT_LENGTH"] = str(cycle.received)
        environ["wsgi.input"] = cycle.make_input()
        return environ


def base_environ(errors: "ErrorStream", multithread: bool, multiprocess: bool,
                 file_wrapper: Any) -> dict:
    return {
        "SERVER_SOFTWARE": "gannet",
        "wsgi.version": (1, 0),
        "wsgi.errors": errors,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": file_wrapper,
    }


# ---------------------------------------------------------------- start_response checks
_STATUS_CODES: dict[str, int] = {}


def check_status(status: Any) -> int:
    """The status code of a PEP 3333 status string such as '200 OK'; InvalidResponse if
    it is not one (not a str, no 3-digit code, a control character, not latin-1)."""
    code = _STATUS_CODES.get(status) if type(status) is str else None
    if code is not None:
        return code
    if type(status) is not str:
        raise InvalidResponse(f"status must be a str such as '200 OK', not {type(status).__name__}")
    digits = status[:3]
    if len(digits) != 3 or not digits.isdigit() or not digits.isascii() or \
            (len(status) > 3 and status[3] != " "):
        raise InvalidResponse(f"status must start with a 3-digit code and a space: {status[:64]!r}")
    code = int(digits)
    if code < 200:
        raise InvalidResponse(f"status {code} cannot be a final response")
    if "\r" in status or "\n" in status or "\0" in status:
        raise InvalidResponse(f"status contains a control character: {status[:64]!r}")
    try:
        status.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidResponse(f"status is not latin-1: {status[:64]!r}") from None
    if len(_STATUS_CODES) < _CACHE_MAX:
        _STATUS_CODES[status] = code
    return code


def encode_headers(headers: Any) -> tuple[tuple[bytes, bytes], ...]:
    """PEP 3333 response headers (a list of (str, str)) as latin-1 bytes pairs, checked
    by the one response-field normaliser (http/headers.py: token names, no CR/LF/NUL)
    here, at start_response, so the app learns at once and the client gets a 500. The
    check is cached by content, so h1's own look at the same head is a dict hit.

    PEP 3333 "Hop-by-hop features": those fields are the server's business; an app that
    sends one is in error (wsgiref.validate asserts, gunicorn answers 500).
    """
    if type(headers) is not list:
        raise InvalidResponse(f"headers must be a list, not {type(headers).__name__}")
    try:
        out = tuple([(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers])
    except UnicodeEncodeError as exc:
        raise InvalidResponse(f"header is not latin-1: {exc.object[:64]!r}") from None
    except (AttributeError, TypeError, ValueError):
        for item in headers:
            if type(item) is not tuple or len(item) != 2:
                raise InvalidResponse(f"headers must be (name, value) tuples, got {item!r:.80}") from None
            if type(item[0]) is not str or type(item[1]) is not str:
                raise InvalidResponse(f"header names and values must be str, got {item!r:.80}") from None
        raise
    try:
        flags = fields_of(out).flags
    except (TypeError, ValueError) as exc:
        raise InvalidResponse(f"invalid header: {exc} (a control character or a bad name)") from None
    if flags & (HOP_BY_HOP | PEP3333_HOP):
        for name, _ in headers:
            if name.lower() in _HOP_BY_HOP:
                raise InvalidResponse(f"hop-by-hop header {name!r} is not allowed from a WSGI "
                                      f"application (PEP 3333); the server manages the connection")
    return out  # hashable: the checked head is cached by content


_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "proxy-connection", "te", "trailers", "transfer-encoding", "upgrade"})


# ---------------------------------------------------------------- wsgi.errors
# Characters wsgi.errors holds before it logs them anyway (memory per stream stays bounded).
PENDING_MAX = 64 * 1024


class ErrorStream:
    """``wsgi.errors``: what the app writes becomes records on ``gannet.error.wsgi``, one
    record per message rather than per line, so a traceback stays one record.

    A message ends at ``flush()`` (logging's StreamHandler flushes after each record, so
    Flask's and Django's log records come out one by one), when the app's call returns or
    its response parks (the runner flushes), or once ``PENDING_MAX`` characters
    are held. So ``traceback.print_exc(file=...)``, which writes piece by piece and never
    flushes, and ``print(..., file=...)`` lines of one request each become one record.
    Outside a call (a thread the app started, writing later) text is logged at each
    newline, since no call end will come to flush it.

    One per worker response object, used by one thread at a time; the lock only keeps a
    thread the app started (and handed the stream to) from corrupting the pending text.
    Records are logged outside the lock, so a handler that writes back here cannot deadlock.
    """

    __slots__ = ("pieces", "size", "lock", "in_call")

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.size = 0  # characters pending; read without the lock as a cheap "anything?"
        self.lock = threading.Lock()
        # Set by the runner while the app's call (or its response) runs. Outside it only
        # the app's own threads write here, and nothing would flush for them: their text
        # is logged at each newline instead of waiting for the next request on this thread.
        self.in_call = False

    def write(self, text: str) -> int:
        if type(text) is not str:
            raise TypeError(f"wsgi.errors.write() takes str, not {type(text).__name__}")
        with self.lock:
            self.pieces.append(text)
            self.size += len(text)
            due = self.size >= PENDING_MAX or (not self.in_call and text.endswith("\n"))
            full = self._take() if due else None
        if full:
            _log_text(full)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with self.lock:
            text = self._take()
        if text:
            _log_text(text)


    def _take(self) -> str:
        text = "".join(self.pieces)
        self.pieces.clear()
        self.size = 0
        return text


def _log_text(text: str) -> None:
    """Log one message written to wsgi.errors (its final newline is the record's own);
    a blank message is dropped; one longer than PENDING_MAX is cut into bounded records."""
    text = text.rstrip("\n")
    if not text.strip():
        return
    for start in range(0, len(text), PENDING_MAX):
        errors_logger.error("%s", text[start:start + PENDING_MAX])


# ---------------------------------------------------------------- wsgi.file_wrapper
class FileWrapper:
    """``wsgi.file_wrapper``. The runner recognises it and sends real files with
    ``os.sendfile`` from the event loop; anything else is read in blocks by iteration."""

    __slots__ = ("filelike", "block_size", "close")

    def __init__(self, filelike: Any, block_size: int = 8192) -> None:
        self.filelike = filelike
        # Blocks are at least 64 KiB: each block is one hand-off to the event loop.
        self.block_size = max(block_size, 65536)
        self.close = getattr(filelike, "close", _nothing)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.block_size)
        if data:
            return data
        raise StopIteration


def _nothing() -> None:
    pass
