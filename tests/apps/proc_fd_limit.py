"""A plain app in a process that runs short of file descriptors: at import it lowers its
own soft RLIMIT_NOFILE to the descriptors already open plus PROC_FD_HEADROOM (default
12), so a test can exhaust them with a few dozen loopback connections."""
import os
import resource

_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
LIMIT = len(os.listdir("/proc/self/fd")) + int(os.environ.get("PROC_FD_HEADROOM", "12"))
resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, _hard))
print(f"proc fd limit {LIMIT}", flush=True)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
