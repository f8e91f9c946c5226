"""The Python-config tests' app: answers '<pid> <PYCONF_FROM_RAW_ENV>' so a test sees which
worker answered and what the config file's raw_env put in the environment."""
import os


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"{os.getpid()} {os.environ.get('PYCONF_FROM_RAW_ENV', '-')}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
