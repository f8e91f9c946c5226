"""The supervisor tests' app: answers '<pid> <version>' so a test can tell workers and
code generations apart.

At import: appends its pid to $SUP_MARKER (which process imported the app) and reads
$SUP_VERSION_FILE (the 'code' a reload must pick up). Paths: /slow?S sleeps S seconds
without blocking (after creating $SUP_SLOW_MARKER), /block blocks the event loop in block_the_loop() (sleeping),
/spin in spin_in_c() (C code holding the GIL), /crash exits the
process at once.
"""
import asyncio
import os
import time

if os.environ.get("SUP_MARKER"):
    with open(os.environ["SUP_MARKER"], "a") as marker:
        marker.write(f"{os.getpid()}\n")

VERSION = "-"
if os.environ.get("SUP_VERSION_FILE"):
    with open(os.environ["SUP_VERSION_FILE"]) as version_file:
        VERSION = version_file.read().strip()


def block_the_loop() -> None:
    time.sleep(1000)


def spin_in_c() -> None:
    sum(range(10 ** 13))  # C code that holds the GIL and never checks for signals


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/slow":
        if os.environ.get("SUP_SLOW_MARKER"):
            open(os.environ["SUP_SLOW_MARKER"], "w").close()
        await asyncio.sleep(float(scope["query_string"] or 1))
    elif path == "/block":
        block_the_loop()
    elif path == "/spin":
        spin_in_c()
    elif path == "/crash":
        os._exit(1)
    body = f"{os.getpid()} {VERSION}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
