"""WSGI apps that write to ``wsgi.errors`` the ways real apps do (tests/wsgi/test_wsgi_errors_stream.py).

``app`` (plain WSGI), by path:
/print-exc   catches an error and writes its traceback with traceback.print_exc(file=...)
/print       two print(..., file=...) calls, no flush
/flushed     two messages, each followed by flush()
/big         ?size=N characters with no newline and no flush
/threads     4 threads the app starts each write 50 lines, then the app flushes

``flask_app``: Flask, whose default log handler writes to wsgi.errors; /boom raises.
"""
from __future__ import annotations

import threading
import traceback

from flask import Flask


def _raise_marker() -> None:
    raise ValueError("marker-from-print-exc")


def app(environ, start_response):
    errors = environ["wsgi.errors"]
    path = environ["PATH_INFO"]
    if path == "/print-exc":
        try:
            _raise_marker()
        except ValueError:
            traceback.print_exc(file=errors)
    elif path == "/print":
        print("print-one", file=errors)
        print("print-two", file=errors)
    elif path == "/flushed":
        errors.write("flushed-one\n")
        errors.flush()
        errors.write("flushed-two\n")
        errors.flush()
    elif path == "/big":
        size = int(environ["QUERY_STRING"].partition("=")[2])
        errors.write("x" * size)
    elif path == "/threads":
        def writer(index: int) -> None:
            for line in range(50):
                errors.write(f"thread-{index}-line-{line}\n")
        threads = [threading.Thread(target=writer, args=(index,)) for index in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        errors.flush()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


flask_app = Flask(__name__)


@flask_app.get("/boom")
def boom():
    raise RuntimeError("marker-from-flask")
