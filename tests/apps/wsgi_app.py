"""WSGI test app, wrapped in ``wsgiref.validate.validator`` so any PEP 3333 breach by the
server fails the request. Behaviour is chosen by PATH_INFO:

/                   200 'hello'
/environ...         the environ's str/int/bool values as JSON, plus wsgi.* facts
/echo               the body, read with read() (no argument: PEP 3333 allows it)
/read-n?n=N         the body, read with read(N) in a loop
/readline           the body's lines, read with readline(), as a JSON list
/readlines          the same with readlines()
/iter               the same by iterating wsgi.input
/upload             reads the body in 64 KiB blocks: "<count> <sha256>"
/stream             three blocks from a generator, no Content-Length
/write              the body through the write() callable, then an empty iterable
/big?size=N         N bytes (1 MiB blocks) from a generator
/file?path=P        wsgi.file_wrapper around open(P, "rb")
/filelike?size=N    wsgi.file_wrapper around a BytesIO (no fileno: block fallback)
/error              raises before start_response
/error-after        yields a block, then raises
/exc-info           start_response, then an error handled with exc_info: 500 'handled'
/no-start           returns a body without calling start_response
/len-short          Content-Length 10, only 5 bytes
/wait?file=F        waits (bounded) until file F exists, then 200 'waited'
/close?file=F       a generator of 1 MiB blocks (up to 1 GiB); close() writes F
/errors             writes two lines to wsgi.errors, then 200
/head               200 with Content-Length 5 and a body (for HEAD requests)
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
from urllib.parse import parse_qs
from wsgiref.validate import validator


def _query(environ):
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _raw_input(environ):
    # The validator's InputWrapper insists on read(size); read() with no argument is
    # PEP 3333 and is exercised on the server's own stream underneath.
    stream = environ["wsgi.input"]
    return getattr(stream, "input", stream)


def _ok(start_response, body, content_type="text/plain"):
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


class _ClosingBlocks:
    def __init__(self, marker, count):
        self.marker = marker
        self.count = count

    def __iter__(self):
        block = b"x" * (1024 * 1024)
        for _ in range(self.count):
            yield block

    def close(self):
        with open(self.marker, "w") as handle:
            handle.write("closed")


def _app(environ, start_response):
    path = environ["PATH_INFO"]
    query = _query(environ)
    if path == "/":
        return _ok(start_response, b"hello")
    if path.startswith("/environ"):
        out = {k: v for k, v in environ.items() if isinstance(v, (str, int, bool, tuple))}
        out["input_methods"] = [m for m in ("read", "readline", "readlines", "__iter__")
                                if hasattr(environ["wsgi.input"], m)]
        out["has_file_wrapper"] = callable(environ.get("wsgi.file_wrapper"))
        return _ok(start_response, json.dumps(out).encode(), "application/json")
    if path == "/echo":
        return _ok(start_response, _raw_input(environ).read())
    if path == "/read-n":
        size = int(query.get("n", "7"))
        parts = []
        while True:
            part = environ["wsgi.input"].read(size)
            assert len(part) <= size
            if not part:
                break
            parts.append(part)
        return _ok(start_response, b"".join(parts))
    if path in ("/readline", "/readlines", "/iter"):
        stream = environ["wsgi.input"]
        if path == "/readline":
            lines = []
            while True:
                line = stream.readline()
                if not line:
                    break
                lines.append(line)
        elif path == "/readlines":
            lines = stream.readlines()
        else:
            lines = list(stream)
        return _ok(start_response, json.dumps([line.decode("latin-1") for line in lines]).encode())
    if path == "/upload":
        stream = environ["wsgi.input"]
        digest = hashlib.sha256()
        count = 0
        while True:
            block = stream.read(65536)
            if not block:
                break
            count += len(block)
            digest.update(block)
        return _ok(start_response, f"{count} {digest.hexdigest()}".encode())
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"one,", b"two,", b"three"])
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written,")
        write(b"")
        write(b"twice")
        return []
    if path == "/big":
        size = int(query["size"])
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])

        def blocks():
            left = size
            while left > 0:
                block = b"b" * min(left, 1024 * 1024)  # a new object each time: a server
                yield block                           # that buffers them shows in its RSS
                left -= len(block)
        return blocks()
    if path == "/file":
        handle = open(query["path"], "rb")
        size = os.fstat(handle.fileno()).st_size
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](handle, 65536)
    if path == "/filelike":
        size = int(query.get("size", "100000"))
        data = bytes(range(256)) * (size // 256 + 1)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](io.BytesIO(data[:size]), 8192)
    if path == "/error":
        raise RuntimeError("boom before start")
    if path == "/error-after":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def failing():
            yield b"partial"
            raise RuntimeError("boom after start")
        return failing()
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("handled by the app")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                           sys.exc_info())
        return [b"handled"]
    if path == "/len-short":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"short"]
    if path == "/wait":
        deadline = time.monotonic() + 20
        while not os.path.exists(query["file"]) and time.monotonic() < deadline:
            time.sleep(0.01)
        return _ok(start_response, b"waited")
    if path == "/close":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _ClosingBlocks(query["file"], 1024)
    if path == "/errors":
        errors = environ["wsgi.errors"]
        errors.write("first line from the app\n")
        errors.writelines(["second ", "line from the app\n"])
        errors.flush()
        return _ok(start_response, b"logged")
    if path == "/head":
        return _ok(start_response, b"abcde")
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


app = validator(_app)


def _unvalidated(environ, start_response):
    """Paths that break PEP 3333 on purpose: the validator would refuse them itself, so
    they reach the server directly to check that *it* refuses them."""
    path = environ["PATH_INFO"]
    if path == "/bad-status-int":
        start_response(200, [])
    elif path == "/bad-status-text":
        start_response("OK", [])
    elif path == "/bad-status-crlf":
        start_response("200 OK\r\nX-Injected: 1", [])
    elif path == "/bad-header-crlf":
        start_response("200 OK", [("X-Bad", "a\r\nX-Injected: 1")])
    elif path == "/bad-header-name":
        start_response("200 OK", [("X Bad:", "value")])
    elif path == "/bad-header-latin1":
        start_response("200 OK", [("X-Bad", "snowman \u2603")])
    elif path == "/bad-header-bytes":
        start_response("200 OK", [(b"X-Bad", b"value")])
    elif path == "/bad-headers-tuple":
        start_response("200 OK", (("X-Bad", "value"),))
    elif path == "/bad-body-str":
        start_response("200 OK", [])
        return ["text, not bytes"]
    elif path == "/no-start":
        return [b"body without start_response"]
    elif path == "/len-short-list":  # a list: the server knows it all before writing
        start_response("200 OK", [("Content-Length", "10")])
        return [b"short"]
    elif path == "/twice":
        start_response("200 OK", [])
        start_response("201 Created", [])
    else:
        return app(environ, start_response)
    return [b"should never be sent"]


bad_app = _unvalidated


def auto_app(environ, start_response):
    """For --interface auto: validator() returns an (*args, **kw) callable, which
    loading.detect_interface cannot classify; a plain two-argument function it can."""
    return app(environ, start_response)
