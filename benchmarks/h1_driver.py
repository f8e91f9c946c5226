"""Gannet's own per-request cost, without sockets: for profiling the HTTP/1.1 hot path.

The side-by-side benchmark (run.py) measures a whole server under wrk, where the kernel's
loopback work is about half the time and ratios move ±5-10% between runs. To see what
one change to h1/ASGI code is worth, this driver feeds keep-alive requests straight into
``H1Protocol`` objects with a fake transport, on a real uvloop loop with a real task per
request, and prints microseconds per request. Under callgrind, the difference between two
request counts gives instructions per request, stable to about 0.1%:

    python benchmarks/h1_driver.py --app hello --requests 200000
    python benchmarks/h1_driver.py --app json --profile            # cProfile, top 25
    valgrind --tool=callgrind --callgrind-out-file=/tmp/a.out \\
        python benchmarks/h1_driver.py --requests 6400 >/dev/null  # then 19200; subtract

Run it with PYTHONHASHSEED=0 under callgrind, so dict layouts match between the two runs.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import pstats
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
APPS = {"hello": "hello_asgi", "json": "json_asgi"}
CONNECTIONS = 64  # as wrk -c64 in run.py
# What wrk sends: one field.
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"


class FakeTransport:
    """Just enough of an asyncio transport for h1: writes are counted and dropped."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if name in ("peername", "sockname") else default

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def drive(app: Any, requests: int, profile: bool, request: bytes = REQUEST) -> tuple[float, int]:
    """Serve ``requests`` requests over CONNECTIONS connections, one in flight on each;
    returns (seconds, responses written)."""
    from gannet.config import Config
    from gannet.http.h1 import H1Protocol
    from gannet.server.state import ServerState

    loop = asyncio.get_running_loop()
    state = ServerState(Config(app="driver"), app, loop)
    conns = []
    for _ in range(CONNECTIONS):
        protocol = H1Protocol(state)
        transport = FakeTransport()
        protocol.connection_made(transport)
        conns.append((protocol, transport))

    async def serve(count: int) -> None:
        for _ in range(count // CONNECTIONS):
            for protocol, _transport in conns:
                loop.call_soon(protocol.data_received, request)
            # One turn runs the data_received calls (which create the tasks), the next
            # runs the tasks: every request is answered before the next batch.
            await asyncio.sleep(0)
            await asyncio.sleep(0)

    await serve(CONNECTIONS * 30)  # warm-up: caches filled, code specialised
    before = sum(transport.writes for _, transport in conns)
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    await serve(requests)
    if profiler is not None:
        profiler.disable()
    elapsed = time.perf_counter() - start
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return elapsed, sum(transport.writes for _, transport in conns) - before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=sorted(APPS), default="hello")
    parser.add_argument("--requests", type=int, default=200_000,
                        help="requests to time (rounded down to a multiple of 64)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="add this field to every request (repeatable), e.g. "
                        "'X-Forwarded-For: 203.0.113.9' to price --proxy-headers (the fake "
                        "peer is 127.0.0.1, trusted by default)")
    args = parser.parse_args(argv)
    request = REQUEST[:-2] + b"".join(line.encode("latin-1") + b"\r\n" for line in args.header) + b"\r\n"
    sys.path.insert(0, str(HERE / "apps"))
    app = importlib.import_module(APPS[args.app]).app
    import uvloop

    elapsed, written = uvloop.run(drive(app, args.requests, args.profile, request))
    expected = args.requests // CONNECTIONS * CONNECTIONS
    if written != expected:
        print(f"error: {written} responses written for {expected} requests", file=sys.stderr)
        return 1
    print(f"{args.app}: {elapsed / expected * 1e6:.2f} us/request over {expected} requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
