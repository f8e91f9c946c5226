"""How connections spread over the workers: wrk against `gannet -w N`, each worker's share.

Each access line is the worker's pid (``--access-log-format '%(p)s'``), so the log counts
the requests each worker answered. The shares are only as fair as the kernel's wake-ups
on the one listening socket all workers share (docs/workers.md, "How connections spread").

    python benchmarks/workers_spread.py [--workers 2] [--conns 64] [--duration 5] [--rounds 3]

Needs wrk on PATH and gannet in this interpreter's environment.
"""
from __future__ import annotations

import argparse
import collections
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time

logger = logging.getLogger("workers_spread")

APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


def one_round(workers: int, conns: int, duration: int, workdir: str) -> list[float]:
    """Shares of the requests per worker, largest first."""
    port = free_port()
    log_path = os.path.join(workdir, "access.log")
    with open(log_path, "w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "gannet", "spread_app:app", "--port", str(port), "-w",
             str(workers), "--access-log-format", "%(p)s"],
            cwd=workdir, stdout=log_file, stderr=subprocess.DEVNULL)
        try:
            wait_listening(port)
            time.sleep(1.0)  # every worker booted (a benchmark, not a test)
            subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{duration}s",
                            f"http://127.0.0.1:{port}/"], check=True, capture_output=True)
        finally:
            server.terminate()
            server.wait(timeout=60)
    with open(log_path) as log_file:
        counts = collections.Counter(line.strip() for line in log_file if line.startswith("<"))
    total = sum(counts.values()) or 1
    shares = sorted((count / total for count in counts.values()), reverse=True)
    return shares + [0.0] * (workers - len(shares))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        with open(os.path.join(workdir, "spread_app.py"), "w") as app_file:
            app_file.write(APP)
        for number in range(1, args.rounds + 1):
            shares = one_round(args.workers, args.conns, args.duration, workdir)
            logger.info("round %d: -w %d, wrk -c%d: shares %s", number, args.workers, args.conns,
                        " ".join(f"{share:.0%}" for share in shares))


if __name__ == "__main__":
    main()
