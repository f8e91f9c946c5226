"""WSGI app for the issue 9 review tests (tests/e2e/test_review_*.py); run with
``--interface wsgi``.

/blob        1 MiB in one block (a new bytes object per response)
/environ...  the environ's str values as JSON
"""
import json

BLOB = b"w" * (1024 * 1024)


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/blob":
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(BLOB)))])
        return [BLOB[:-1] + b"\n"]  # a new bytes object per response, as real apps make
    body = json.dumps({k: v for k, v in environ.items() if isinstance(v, str)}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
