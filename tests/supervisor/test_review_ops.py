"""Review of issue 11's operations (RV2): the pid file in a shared directory, -u without a
passwd entry, sockets systemd passes that Gannet must not serve or leak, and a Python
config file that calls sys.exit()."""
from __future__ import annotations

import os
import json
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import test_operations as operations
import test_systemd as fake_systemd
from conftest import APPS, ROOT, popen_logged
from sup_helpers import get, start_master, wait_until

from gannet.supervisor.pidfile import PidFile, PidFileError

pytestmark = pytest.mark.timeout(60)

# Answers whether the listening socket systemd passed (fd 3) would survive an exec.
INHERITABLE_APP = (
    "import os\n"
    "async def app(scope, receive, send):\n"
    "    if scope['type'] != 'http':\n"
    "        return\n"
    "    body = str(os.get_inheritable(3)).encode()\n"
    "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
    "    await send({'type': 'http.response.body', 'body': body})\n"
)


def _env(app_dir: object = APPS) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(app_dir), str(APPS), str(ROOT / "src")])
    env["PYTHONUNBUFFERED"] = "1"
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"):
        env.pop(name, None)
    return env


# ------------------------------------------------------------------------ --pid
def test_a_symlink_planted_at_the_temporary_name_is_not_written_through(tmp_path):
    # Root writing /tmp/gannet.pid: the old code opened "<pid file>.<pid>.tmp" for writing,
    # a name anyone could guess and plant as a symlink to a file root owns.
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    pid_path = tmp_path / "gannet.pid"
    os.symlink(victim, f"{pid_path}.4242.tmp")
    PidFile(str(pid_path)).create(pid=4242)
    assert victim.read_text() == "precious\n"
    assert pid_path.read_text() == "4242\n"
    assert not pid_path.is_symlink()
    assert pid_path.stat().st_mode & 0o777 == 0o644
    leftovers = {p.name for p in tmp_path.iterdir()} - {"victim", "gannet.pid", "gannet.pid.4242.tmp"}
    assert leftovers == set()  # the temporary file was renamed or removed


def test_a_pid_file_written_by_another_server_after_the_check_is_not_overwritten(tmp_path):
    pid_path = tmp_path / "gannet.pid"
    other = os.getppid()  # alive for the whole test

    class Racing(PidFile):
        """Another server writes its pid between our check and our write."""

        def _live_owner(self):  # type: ignore[no-untyped-def]
            if not pid_path.exists():
                pid_path.write_text(f"{other}\n")
                return None
            return super()._live_owner()

    with pytest.raises(PidFileError, match="another process wrote the pid file"):
        Racing(str(pid_path)).create(pid=4242)
    assert pid_path.read_text() == f"{other}\n"


# ------------------------------------------------------------------------ -u/--user
@operations.needs_root
def test_a_numeric_user_without_a_passwd_entry_needs_a_group():
    known = {entry.pw_uid for entry in pwd.getpwall()}
    uid = next(n for n in range(54321, 54421) if n not in known)
    result = subprocess.run([sys.executable, "-m", "gannet", "basic:app", "--port", "0",
                             "-u", str(uid)], capture_output=True, text=True, env=_env(),
                            cwd=str(APPS), timeout=30)
    # before: the app ran as uid 54321 with gid 0, root's group
    assert result.returncode == 2, result.stderr
    assert f"uid {uid} has no passwd entry" in result.stderr
    assert "-g/--group" in result.stderr


@operations.needs_root
def test_workers_still_write_a_log_file_after_usr1_reopens_it():
    # --log-config's file is opened by root in the master; a worker running as nobody
    # reopens it by name on USR1 (logrotate's postrotate).
    logs = Path(tempfile.mkdtemp(prefix="gannet-logs-"))
    os.chmod(logs, 0o755)
    log_file = logs / "access.log"
    config = logs / "logging.json"
    config.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(log_file)},
                     "stderr": {"class": "logging.StreamHandler"}},
        "loggers": {"gannet.access": {"handlers": ["file"], "level": "INFO", "propagate": False},
                    "gannet.error": {"handlers": ["stderr"], "level": "INFO",
                                     "propagate": False}}}))
    server = start_master("basic:app", "--log-config", str(config), *operations.AS_NOBODY,
                          workers=1)
    try:
        assert get(server, "/before")[0] == 200
        wait_until(lambda: "/before" in log_file.read_text(), what="the first access line")
        server.proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: "USR1: reopened" in server.log, what="the master's reopen")
        # before: the worker's reopen raised PermissionError and left the file closed
        wait_until(lambda: get(server, "/after")[0] == 200 and "/after" in log_file.read_text(),
                   what="an access line written after USR1")
        assert "PermissionError" not in server.log, server.log
    finally:
        status = server.stop()
        shutil.rmtree(logs, ignore_errors=True)
        assert status == 0, server.log


# ------------------------------------------------------------------------ socket activation
def _launch(tmp_path, sock: socket.socket, app: str, *args: str):
    env = _env(tmp_path)
    env["LISTEN_FDS"] = "1"
    return [sys.executable, "-c", fake_systemd.LAUNCHER, str(sock.fileno()), app, *args], env


def test_a_passed_socket_that_is_not_listening_is_a_clear_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listen()ed: not what systemd passes
        command, env = _launch(tmp_path, sock, "basic:app")
        result = subprocess.run(command, capture_output=True, text=True, env=env,
                                cwd=str(APPS), timeout=30, pass_fds=(sock.fileno(),))
    # before: asyncio called listen() on it and served as if nothing were wrong
    assert result.returncode == 1, result.stderr
    assert "fd 3 is not listening" in result.stderr


def test_the_activated_socket_is_close_on_exec_in_the_app(tmp_path):
    (tmp_path / "inheritable_app.py").write_text(INHERITABLE_APP)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        command, env = _launch(tmp_path, sock, "inheritable_app:app")
        server = popen_logged(command, env=env, cwd=tmp_path, pass_fds=(sock.fileno(),))
        try:
            server.wait_for_log("Listening on")
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
            # before: True, so a program the app execs kept the port open after we stop
            assert data.endswith(b"\r\n\r\nFalse"), data
        finally:
            server.proc.send_signal(signal.SIGTERM)
            assert server.proc.wait(timeout=20) == 0, server.log


# ------------------------------------------------------------------------ Python config
@pytest.mark.parametrize("code", ["raise SystemExit(0)\n", "import sys\nsys.exit('no')\n"])
def test_sys_exit_in_a_python_config_file_is_a_config_error(tmp_path, code):
    path = tmp_path / "gannet.conf.py"
    path.write_text("workers = 2\n" + code)
    result = subprocess.run([sys.executable, "-m", "gannet", "basic:app", "--port", "0",
                             "-c", str(path)], capture_output=True, text=True, env=_env(),
                            cwd=str(APPS), timeout=30)
    # before: exit 0 (or 1 with only "no" printed), nothing started and no file named
    assert result.returncode == 2, result.stderr
    assert str(path) in result.stderr and "SystemExit" in result.stderr
