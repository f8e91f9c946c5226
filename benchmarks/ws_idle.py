"""Memory per idle open WebSocket: Gannet against uvicorn (and any ASGI peer found).

Each server (one worker) gets N WebSockets opened in two stages; the figure is the slope
of the server's RSS between the stages (KiB per socket), so start-up memory does not
count. Rounds alternate servers; the report gives medians.

    python benchmarks/ws_idle.py                      # gannet and uvicorn, 5,000 sockets
    python benchmarks/ws_idle.py --conns 2000 --rounds 3 --servers gannet,uvicorn,hypercorn

Servers are found as benchmarks/run.py finds them (PATH, beside this Python, --peers-bin).
Raise `ulimit -n` above the number of sockets first.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from idle import rounds_and_report, slope  # noqa: E402
from run import APPS, HOST, _free_port, _stop, _wait_ready, discover  # noqa: E402

APP = "ws_echo_asgi:app"
KEEP = {"uvicorn": "--ws-ping-interval 0", "gannet": "--ws-ping-interval 0"}


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(HOST, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {head[:80]!r}")
    return reader, writer


async def _measure(pid: int, port: int, total: int) -> float:
    return await slope(pid, total, lambda: _open(port), lambda pair: pair[1].close())


def measure(server, total: int) -> float | str:
    port = _free_port()
    command = server.command.format(exe=server.exe or "", python=server.python, host=HOST,
                                    port=port, app=APP)
    command += " " + KEEP.get(server.name, "")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(shlex.split(command), cwd=APPS, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        problem = _wait_ready(proc, port, 20)
        if problem:
            return problem
        return asyncio.run(_measure(proc.pid, port, total))
    finally:
        _stop(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="gannet,uvicorn")
    parser.add_argument("--conns", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers-bin", action="append", default=[], type=Path)
    args = parser.parse_args(argv)
    found = discover(args.peers_bin, [])
    names = [name for name in args.servers.split(",") if name in found]
    rounds_and_report(names, found, args.rounds, args.conns, "idle WebSockets",
                      lambda server: measure(server, args.conns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
