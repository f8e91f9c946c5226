"""Memory per idle TLS keep-alive connection: Gannet against uvicorn and granian.

Each server (one worker, a throwaway RSA-2048 certificate) gets N TLS connections opened
in two stages, each answering one keep-alive request and then left idle; the figure is
the slope of the server's RSS between the stages (KiB per connection), so start-up
memory does not count. Rounds alternate servers; the report gives medians. The servers'
keep-alive timeout is raised so the connections stay open while memory is read.

    python benchmarks/tls_idle.py --peers-bin /path/to/peers/venv/bin
    python benchmarks/tls_idle.py --conns 1000 --rounds 3 --servers gannet,uvicorn

Raise `ulimit -n` above the number of connections first.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import APPS, HOST, TLS_FLAGS, _free_port, _stop, _wait_ready, discover, make_certificate  # noqa: E402

APP = "hello_asgi:app"
KEEP = {"gannet": "--timeout-keep-alive 300", "uvicorn": "--timeout-keep-alive 300",
        "hypercorn": "--keep-alive 300"}
REQUEST = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


def _rss_kib(group: int) -> int:
    """RSS of every process in the server's process group (granian serves from a child)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != group:  # pgrp
                continue
            with open(f"/proc/{entry}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total


async def _open(port: int, context: ssl.SSLContext) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection(HOST, port, ssl=context)
    writer.write(REQUEST)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"refused: {head[:80]!r}")
    await asyncio.wait_for(reader.read(13), 30)  # hello_asgi's body
    return writer


async def _settled_rss(pid: int) -> int:
    last, deadline = _rss_kib(pid), time.monotonic() + 5
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = _rss_kib(pid)
        if abs(now - last) < 64:
            return now
        last = now
    return last


async def _measure(pid: int, port: int, total: int) -> float:
    context = ssl._create_unverified_context()  # our own throwaway certificate
    first = max(total // 10, 50)
    writers: list[asyncio.StreamWriter] = []
    try:
        while len(writers) < first:
            writers += await asyncio.gather(*(_open(port, context) for _ in range(min(50, first - len(writers)))))
        before = await _settled_rss(pid)
        while len(writers) < total:
            writers += await asyncio.gather(*(_open(port, context) for _ in range(min(50, total - len(writers)))))
        after = await _settled_rss(pid)
        return (after - before) / (total - first)
    finally:
        for writer in writers:
            writer.transport.abort()


def measure(server, total: int, cert: Path, key: Path) -> float | str:
    port = _free_port()
    command = server.command.format(exe=server.exe or "", python=server.python, host=HOST,
                                    port=port, app=APP)
    command += " " + TLS_FLAGS[server.name].format(cert=cert, key=key) + " " + KEEP.get(server.name, "")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(shlex.split(command), cwd=APPS, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        problem = _wait_ready(proc, port, 20, tls=True)
        if problem:
            return problem
        return asyncio.run(_measure(proc.pid, port, total))
    finally:
        _stop(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="gannet,uvicorn,granian")
    parser.add_argument("--conns", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers-bin", action="append", default=[], type=Path)
    args = parser.parse_args(argv)
    found = discover(args.peers_bin, [])
    names = [name for name in args.servers.split(",") if name in found and name in TLS_FLAGS]
    results: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="gannet-tls-idle-") as directory:
        cert, key = make_certificate(Path(directory))
        for round_number in range(args.rounds):
            for name in names:
                value = measure(found[name], args.conns, cert, key)
                if isinstance(value, str):
                    print(f"{name}: {value}", file=sys.stderr)
                    continue
                results[name].append(value)
                print(f"round {round_number} {name}: {value:.2f} KiB/connection", file=sys.stderr)
    print(f"\n{args.conns} idle TLS keep-alive connections (one request each), RSS slope between "
          f"{max(args.conns // 10, 50)} and {args.conns}; median of {args.rounds} rounds\n")
    print("| server | version | KiB per idle TLS connection | rounds |")
    print("|---|---|---|---|")
    for name in names:
        values = results[name]
        median = f"{statistics.median(values):.1f}" if values else "failed"
        print(f"| {name} | {found[name].version} | {median} | "
              f"{' / '.join(f'{v:.1f}' for v in values)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
