"""Wire protocols: bytes in, requests and responses out. No knowledge of ASGI or WSGI."""
