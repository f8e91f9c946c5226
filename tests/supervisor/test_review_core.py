"""Review of issue 11's supervisor core (as a gunicorn arbiter maintainer would read it):
each test here failed on the code before its fix."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from sup_helpers import get, start_master

pytestmark = pytest.mark.timeout(60)


def _mapped_extensions(pid: int) -> set[str]:
    """The C extension modules a process has loaded (their .so files in /proc/PID/maps)."""
    names = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split()[-1]
        if path.endswith(".so"):
            names.add(Path(path).name.split(".")[0])
    return names


def test_the_master_loads_no_event_loop_nor_http_parser():
    """Issue 11: master RSS under 25 MiB. It was 25.2 MiB because the master imported the
    whole serving stack (asyncio and ssl through it, httptools, h1, ASGI) via
    gannet.server.server; only the workers need it."""
    server = start_master("sup_app:app")
    try:
        assert get(server)[0] == 200  # the workers have it all
        worker = int(get(server)[1].split()[0])
        assert {"_asyncio", "parser"} <= _mapped_extensions(worker)  # the check can see them
        assert not {"_asyncio", "_ssl", "parser"} & _mapped_extensions(server.proc.pid)
    finally:
        assert server.stop() == 0
