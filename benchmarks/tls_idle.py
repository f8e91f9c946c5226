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
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from idle import rounds_and_report, slope  # noqa: E402
from run import APPS, HOST, TLS_FLAGS, _free_port, _stop, _wait_ready, discover, make_certificate  # noqa: E402

APP = "hello_asgi:app"
KEEP = {"gannet": "--timeout-keep-alive 300", "uvicorn": "--timeout-keep-alive 300",
        "hypercorn": "--keep-alive 300"}
REQUEST = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


async def _open(port: int, context: ssl.SSLContext) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection(HOST, port, ssl=context)
    writer.write(REQUEST)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"refused: {head[:80]!r}")
    await asyncio.wait_for(reader.read(13), 30)  # hello_asgi's body
    return writer


async def _measure(pid: int, port: int, total: int) -> float:
    context = ssl._create_unverified_context()  # our own throwaway certificate
    return await slope(pid, total, lambda: _open(port, context),
                       lambda writer: writer.transport.abort(), batch=50)


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
    with tempfile.TemporaryDirectory(prefix="gannet-tls-idle-") as directory:
        cert, key = make_certificate(Path(directory))
        rounds_and_report(names, found, args.rounds, args.conns,
                          "idle TLS connections, keep-alive after one request each",
                          lambda server: measure(server, args.conns, cert, key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
