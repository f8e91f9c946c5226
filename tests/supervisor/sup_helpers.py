"""Shared by the supervisor tests: a master with N workers, its children, plain GETs,
and polling with a deadline (never a fixed sleep)."""
from __future__ import annotations

import http.client
import os
import time
from pathlib import Path
from typing import Callable, TypeVar

from conftest import RunningServer, start_server

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something true; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.05)


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(child) for child in (task / "children").read_text().split()}
        except (OSError, ValueError):
            pass
    return found


def start_master(app: str, *args: str, workers: int = 2, env: dict[str, str] | None = None,
                 timeout: float = 20.0) -> RunningServer:
    """Start ``gannet APP -w N ARGS`` and wait until all N workers accept."""
    server = start_server(app, "-w", str(workers), *args, env=env, timeout=timeout)
    wait_until(lambda: server.log.count("Listening on") >= workers, timeout,
               f"{workers} workers listening")
    return server


def get(server: RunningServer, path: str = "/", timeout: float = 10.0) -> tuple[int, str]:
    """One GET on a new connection: (status, body)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def answer_pid(server: RunningServer) -> int:
    status, body = get(server)
    assert status == 200, (status, body)
    return int(body.split()[0])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
