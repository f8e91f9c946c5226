"""Neither ``application`` nor ``app``, but one WSGI callable under another name."""


def wsgi_handler(environ, start_response):
    start_response("200 OK", [])
    return [b""]
