"""WSGI plaintext: every path answers 200 "Hello, world!"."""

BODY = b"Hello, world!"
HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
