"""WSGI app for the thread-holding, write-timeout, hop-by-hop and shutdown tests
(tests/wsgi/test_wsgi_threads.py). Deliberately not wrapped in wsgiref's validator where
the validator would refuse the case itself (hop-by-hop fields). Chosen by PATH_INFO:

/                    200 'hello'
/infinite?tag=T      a generator of 64 KiB blocks that never ends; its close() prints
                     "app: closed T" to stderr (the server's log)
/write?tag=T         the same through the write() callable (bounded: 64 GiB at most);
                     prints "app: writing T" first, and "app: write raised T <exception
                     name>" when write() raises
/hop?name=N          200 with the header N: x (a hop-by-hop field is refused by PEP 3333)
/sleep?tag=T         prints "app: sleeping T", then sleeps (60 s at most) without answering
/str                 a str block in a one-item list (must be bytes)
any path with ?env=1 SCRIPT_NAME and PATH_INFO as JSON
"""
from __future__ import annotations

import sys
import threading
import json
from urllib.parse import parse_qs

_BLOCK = b"i" * 65536
_NEVER = threading.Event()


def _say(text: str) -> None:
    sys.stderr.write(f"app: {text}\n")
    sys.stderr.flush()


class _Infinite:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __iter__(self):
        while True:
            yield _BLOCK

    def close(self) -> None:
        _say(f"closed {self.tag}")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    tag = query.get("tag", "-")
    if query.get("env"):
        body = json.dumps({"SCRIPT_NAME": environ["SCRIPT_NAME"],
                           "PATH_INFO": environ["PATH_INFO"]}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hello"]
    if path == "/infinite":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _Infinite(tag)
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
        _say(f"writing {tag}")
        try:
            for _ in range(1024 * 1024):
                write(_BLOCK)
        except Exception as exc:  # noqa: BLE001 - reported for the test, then re-raised
            _say(f"write raised {tag} {type(exc).__name__}")
            raise
        return []
    if path == "/hop":
        start_response("200 OK", [("Content-Type", "text/plain"), (query["name"], "x")])
        return [b"hop-by-hop field sent"]
    if path == "/sleep":
        _say(f"sleeping {tag}")
        _NEVER.wait(60)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept"]
    if path == "/str":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["text, not bytes"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]
