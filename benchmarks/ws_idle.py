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
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import APPS, HOST, _free_port, _stop, _wait_ready, discover  # noqa: E402

APP = "ws_echo_asgi:app"
KEEP = {"uvicorn": "--ws-ping-interval 0", "gannet": "--ws-ping-interval 0"}


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(HOST, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {head[:80]!r}")
    return reader, writer


async def _settled_rss(pid: int) -> int:
    """RSS once it stops moving (bounded wait): lets the server finish its bookkeeping."""
    last, deadline = _rss_kib(pid), time.monotonic() + 5
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = _rss_kib(pid)
        if abs(now - last) < 64:
            return now
        last = now
    return last


async def _measure(pid: int, port: int, total: int) -> float:
    first = max(total // 10, 50)
    sockets = []
    try:
        while len(sockets) < first:
            sockets += await asyncio.gather(*(_open(port) for _ in range(min(100, first - len(sockets)))))
        before = await _settled_rss(pid)
        while len(sockets) < total:
            sockets += await asyncio.gather(*(_open(port) for _ in range(min(100, total - len(sockets)))))
        after = await _settled_rss(pid)
        return (after - before) / (total - first)
    finally:
        for _, writer in sockets:
            writer.close()


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
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        for name in names:
            value = measure(found[name], args.conns)
            if isinstance(value, str):
                print(f"{name}: {value}", file=sys.stderr)
                continue
            results[name].append(value)
            print(f"round {round_number} {name}: {value:.2f} KiB/socket", file=sys.stderr)
    print(f"\n{args.conns} idle WebSockets, RSS slope between {max(args.conns // 10, 50)} and "
          f"{args.conns} sockets; median of {args.rounds} rounds\n")
    print("| server | version | KiB per idle WebSocket | rounds |")
    print("|---|---|---|---|")
    for name in names:
        values = results[name]
        median = f"{statistics.median(values):.1f}" if values else "failed"
        print(f"| {name} | {found[name].version} | {median} | "
              f"{' / '.join(f'{v:.1f}' for v in values)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
