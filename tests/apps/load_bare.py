"""Both ``application`` and ``app``: a bare ``gannet load_bare`` takes ``application``
first, as gunicorn does."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"load bare: application"]


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"load bare: app"]
