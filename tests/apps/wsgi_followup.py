"""WSGI app for the maintainer-review follow-up tests (tests/wsgi/test_wsgi_followup.py).
Chosen by PATH_INFO; every line it prints goes to stderr, i.e. the server's log:

/file             this module's source through wsgi.file_wrapper (sent with sendfile)
/stale-a          200 'response A'; keeps its write() callable for a thread that writes
                  once /stale-b asks it to, then prints "app: late write raised <name>"
                  or "app: late write returned"
/stale-b          starts its response, lets /stale-a's thread write, then returns
                  'response B' (run with --threads 1: the same worker serves both)
/ctx?set=V        "saw <value of a context variable>"; with set=V the variable is set
                  to V and never reset (a framework that forgets its token)
/stream?tag=T     a generator of 64 KiB blocks that never ends; its close() prints
                  "app: closed T"
/env              SCRIPT_NAME and PATH_INFO as JSON
"""
from __future__ import annotations

import contextvars
import json
import sys
import threading

_here = __file__
_user = contextvars.ContextVar("user", default="anonymous")
_BLOCK = b"s" * 65536
_go = threading.Event()  # /stale-b -> /stale-a's thread: write now
_written = threading.Event()  # /stale-a's thread -> /stale-b: the write is over


def _say(text: str) -> None:
    sys.stderr.write(f"app: {text}\n")
    sys.stderr.flush()


def _late_writer(write) -> None:
    if not _go.wait(30):
        _say("late writer gave up")
        return
    try:
        write(b"SECRET-OF-USER-A ")
    except Exception as exc:  # noqa: BLE001 - reported to the test through the log
        _say(f"late write raised {type(exc).__name__}")
    else:
        _say("late write returned")
    finally:
        _written.set()


class _Stream:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __iter__(self):
        while True:
            yield _BLOCK

    def close(self) -> None:
        _say(f"closed {self.tag}")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = dict(part.partition("=")[::2] for part in environ["QUERY_STRING"].split("&") if part)
    if path == "/file":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](open(_here, "rb"))
    if path == "/stale-a":
        _go.clear()
        _written.clear()
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        threading.Thread(target=_late_writer, args=(write,), daemon=True).start()
        return [b"response A"]
    if path == "/stale-b":
        start_response("200 OK", [("Content-Type", "text/plain")])
        _go.set()
        _written.wait(30)
        return [b"response B"]
    if path == "/ctx":
        seen = _user.get()
        if "set" in query:
            _user.set(query["set"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"saw {seen}".encode()]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _Stream(query.get("tag", "-"))
    body = json.dumps({"SCRIPT_NAME": environ["SCRIPT_NAME"],
                       "PATH_INFO": environ["PATH_INFO"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
