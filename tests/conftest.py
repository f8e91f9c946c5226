"""Shared fixtures: start a real Gannet process on a free port and talk to it.

``gannet_server(app, *args)`` starts ``python -m gannet APP --port 0 ARGS`` with
``tests/apps`` importable, waits (with a deadline, never a fixed sleep) for the log line
that names the bound address, and stops the process at the end of the test.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
LISTENING = re.compile(r"Listening on (https?://\S+)")


def require_tool(name: str) -> str:
    """Path of a system tool; skip without it, but fail under CI=true (CI must run it)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (install it with apt-get; .ci/run does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    return path


class RunningServer:
    def __init__(self, proc: subprocess.Popen, lines: list[str], cond: threading.Condition) -> None:
        self.proc = proc
        self._lines = lines
        self._cond = cond
        self.url = ""
        self.host = "127.0.0.1"
        self.port = 0
        self.uds: str | None = None  # set when the server listens only on a Unix socket

    @property
    def log(self) -> str:
        with self._cond:
            return "".join(self._lines)

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                match = regex.search("".join(self._lines))
                if match:
                    return match
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"log never matched {pattern!r}; log was:\n{''.join(self._lines)}")
                self._cond.wait(remaining)

    def connect(self, timeout: float = 5.0) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        return sock

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise AssertionError("server did not stop within the deadline after SIGTERM")
        return self.proc.returncode


def popen_logged(command: list[str], *, env: dict[str, str], cwd: str | os.PathLike | None = None,
                 pass_fds: tuple[int, ...] = ()) -> RunningServer:
    """Start a long-running process whose output (stdout and stderr) a thread collects, so
    tests can wait for log lines with a deadline."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            cwd=str(cwd or APPS), text=True, errors="replace", pass_fds=pass_fds)
    lines: list[str] = []
    cond = threading.Condition()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with cond:
                lines.append(line)
                cond.notify_all()
        with cond:
            lines.append("")
            cond.notify_all()

    threading.Thread(target=pump, daemon=True).start()
    return RunningServer(proc, lines, cond)


def start_server(app: str, *args: str, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None,
                 wait: bool = True, port_args: tuple[str, ...] = ("--port", "0"),
                 timeout: float = 20.0) -> RunningServer:
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT / "src"), full_env.get("PYTHONPATH", "")])
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    if env:
        full_env.update(env)
    command = [sys.executable, "-m", "gannet"]
    if app:
        command.append(app)
    command += [*port_args, *args]
    server = popen_logged(command, env=full_env, cwd=cwd)
    proc, lines, cond = server.proc, server._lines, server._cond
    if wait:
        deadline = time.monotonic() + timeout
        with cond:
            while True:
                match = LISTENING.search("".join(lines))
                if match:
                    break
                if proc.poll() is not None:
                    raise AssertionError(f"server exited with {proc.returncode}:\n{''.join(lines)}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    proc.kill()
                    raise AssertionError(f"server not ready within {timeout}s:\n{''.join(lines)}")
                cond.wait(min(remaining, 0.2))
        server.url = match.group(1)
        hostport = server.url.split("//", 1)[1]
        if hostport.startswith("unix:"):
            server.uds = hostport[len("unix:"):]
        else:
            host, _, port = hostport.rpartition(":")
            server.host = host.strip("[]")
            server.port = int(port)
    return server


@pytest.fixture
def gannet_server() -> Iterator:
    """Factory fixture: ``server = gannet_server("module:app", "--flag", ...)``."""
    started: list[RunningServer] = []

    def factory(app: str, *args: str, **kwargs) -> RunningServer:
        server = start_server(app, *args, **kwargs)
        started.append(server)
        return server

    yield factory
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=5)


def raw_request(server: RunningServer, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, half-close, and read everything until the server closes."""
    with server.connect(timeout) as sock:
        sock.sendall(data)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
