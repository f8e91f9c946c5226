"""systemd socket activation and sd_notify, with the test playing systemd: it opens the
listening socket, puts it at fd 3 with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES set for the
exec'd process (LISTEN_PID is only known after the fork, so a tiny launcher sets it and
execs Gannet), and reads the datagrams Gannet sends to NOTIFY_SOCKET."""
from __future__ import annotations

import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import APPS, ROOT, RunningServer, popen_logged
from sup_helpers import wait_until

from gannet.supervisor.systemd import activated_sockets

pytestmark = pytest.mark.timeout(60)

# Plays systemd's exec step: the socket moves to fd 3, LISTEN_PID becomes our own pid.
LAUNCHER = (
    "import os, sys\n"
    "fd = int(sys.argv[1])\n"
    "if fd != 3:\n"
    "    os.dup2(fd, 3)\n"
    "    os.close(fd)\n"
    "os.environ['LISTEN_PID'] = str(os.getpid())\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'gannet', *sys.argv[2:]])\n"
)

# The app answers with the systemd variables it can still see (none: Gannet removes them).
APP = (
    "import os\n"
    "async def app(scope, receive, send):\n"
    "    if scope['type'] != 'http':\n"
    "        return\n"
    "    seen = [n for n in ('LISTEN_FDS', 'LISTEN_PID', 'NOTIFY_SOCKET', 'WATCHDOG_USEC')"
    " if n in os.environ]\n"
    "    body = f\"{os.getpid()} {','.join(seen) or '-'}\".encode()\n"
    "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
    "    await send({'type': 'http.response.body', 'body': body})\n"
)


class FakeSystemd:
    """A listening TCP socket to hand over and a NOTIFY_SOCKET to read."""

    def __init__(self, tmp_path: Path, abstract: bool = False) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.address = f"@gannet-test-{uuid.uuid4().hex}"
            self.notify.bind("\0" + self.address[1:])
        else:
            self.address = f"/tmp/gannet-notify-{uuid.uuid4().hex[:12]}"
            self.notify.bind(self.address)
        self.messages: list[str] = []
        (tmp_path / "sd_app.py").write_text(APP)
        self.app_dir = tmp_path

    def start(self, *args: str, env: dict[str, str] | None = None) -> RunningServer:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join([str(self.app_dir), str(APPS),
                                                  str(ROOT / "src")])
        full_env.update({"PYTHONUNBUFFERED": "1", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "web",
                         "NOTIFY_SOCKET": self.address, **(env or {})})
        fd = self.listener.fileno()
        return popen_logged([sys.executable, "-c", LAUNCHER, str(fd), "sd_app:app", *args],
                            env=full_env, cwd=self.app_dir, pass_fds=(fd,))

    def wait_for(self, line: str, timeout: float = 20.0) -> str:
        """The first datagram (since the last match) holding ``line``; fail at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            for index, message in enumerate(self.messages):
                if line in message.split("\n"):
                    del self.messages[:index + 1]
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{line!r} never reached NOTIFY_SOCKET; got {self.messages}")
            self.notify.settimeout(min(remaining, 0.5))
            try:
                self.messages.append(self.notify.recv(4096).decode())
            except socket.timeout:
                pass

    def get(self) -> str:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), data
        return body.decode()

    def close(self) -> None:
        self.listener.close()
        self.notify.close()
        if not self.address.startswith("@"):
            os.unlink(self.address)


@pytest.fixture
def systemd(tmp_path):
    fake = FakeSystemd(tmp_path)
    yield fake
    fake.close()


def _stop(server: RunningServer) -> int:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
    return server.proc.wait(timeout=20)


def test_single_process_serves_the_activated_socket_and_notifies_ready_and_stopping(systemd):
    server = systemd.start()
    try:
        ready = systemd.wait_for("READY=1")
        assert "STATUS=Serving" in ready.split("\n")
        assert "Using the socket systemd passed: web (fd 3)" in server.log
        pid, seen = systemd.get().split()
        assert int(pid) == server.proc.pid
        assert seen == "-"  # LISTEN_* and NOTIFY_SOCKET were removed from the environment
        server.proc.send_signal(signal.SIGTERM)
        systemd.wait_for("STOPPING=1")
    finally:
        assert _stop(server) == 0, server.log


def test_master_with_two_workers_serves_the_activated_socket_and_notifies(systemd):
    server = systemd.start("-w", "2")
    try:
        ready = systemd.wait_for("READY=1")
        assert "STATUS=2 worker(s) serving" in ready.split("\n")
        assert server.log.count("Using the socket systemd passed") == 1  # the master's
        answers = wait_until(lambda: {tuple(systemd.get().split()) for _ in range(10)},
                             what="answers")
        assert all(seen == "-" for _, seen in answers)
        assert server.proc.pid not in {int(pid) for pid, _ in answers}
        server.proc.send_signal(signal.SIGHUP)
        reloading = systemd.wait_for("RELOADING=1")
        assert any(line.startswith("MONOTONIC_USEC=") for line in reloading.split("\n"))
        assert "STATUS=Reloaded: 2 worker(s) serving" in systemd.wait_for("READY=1").split("\n")
        server.proc.send_signal(signal.SIGTERM)
        systemd.wait_for("STOPPING=1")
    finally:
        assert _stop(server) == 0, server.log


@pytest.mark.parametrize("workers", [(), ("-w", "1")], ids=["single", "master"])
def test_watchdog_pings_arrive_every_half_watchdog_usec(tmp_path, workers):
    fake = FakeSystemd(tmp_path, abstract=True)  # NOTIFY_SOCKET=@name: the abstract namespace
    server = fake.start(*workers, env={"WATCHDOG_USEC": "2000000"})
    try:
        fake.wait_for("READY=1")
        for _ in range(3):
            fake.wait_for("WATCHDOG=1", timeout=10)
    finally:
        assert _stop(server) == 0, server.log
        fake.close()


def test_an_explicit_listen_option_wins_over_activation(systemd):
    server = systemd.start("--port", "0")
    try:
        systemd.wait_for("READY=1")
        match = server.wait_for_log(r"Listening on http://127\.0\.0\.1:(\d+)")
        assert int(match.group(1)) != systemd.port
        assert "Ignoring the 1 socket(s) systemd passed: --port was given" in server.log
    finally:
        assert _stop(server) == 0, server.log


def test_listen_fds_for_another_pid_is_ignored_and_removed():
    environ = {"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDNAMES": "web"}
    assert activated_sockets(environ) == []
    assert environ == {}  # never seen again by a child
