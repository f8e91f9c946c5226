"""WSGI download: every path answers 10 MiB from a generator yielding 64 KiB blocks
(Content-Length set)."""

CHUNK_SIZE = 64 * 1024
CHUNKS = 160  # 10 MiB
CHUNK = b"x" * CHUNK_SIZE
HEADERS = [("Content-Type", "application/octet-stream"), ("Content-Length", str(CHUNK_SIZE * CHUNKS))]


def _blocks():
    for _ in range(CHUNKS):
        yield CHUNK


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return _blocks()
