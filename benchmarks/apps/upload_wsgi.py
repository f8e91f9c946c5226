"""WSGI upload: reads `wsgi.input` in 64 KiB read() calls and answers the byte count.

Reads no further than CONTENT_LENGTH (PEP 3333); the answer is 400 when fewer bytes
arrived, so a server that loses body bytes shows up as errors instead of as speed.
"""

CHUNK_SIZE = 64 * 1024


def app(environ, start_response):
    declared = int(environ.get("CONTENT_LENGTH") or 0)
    read = environ["wsgi.input"].read
    count = 0
    while count < declared:
        chunk = read(min(CHUNK_SIZE, declared - count))
        if not chunk:
            break
        count += len(chunk)
    body = str(count).encode()
    start_response("200 OK" if count == declared else "400 Bad Request",
                   [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
