"""Operations: --pid, -u/--user and -g/--group, --umask, process titles; with a master and
in the single process, on real processes."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import APPS, ROOT, start_server
from sup_helpers import children, get, start_master, wait_until

pytestmark = pytest.mark.timeout(60)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root "
                                "(CI runs as root)")

# Answers the credentials it runs with: "uid gid groups".
WHOAMI = (
    "import os\n"
    "async def app(scope, receive, send):\n"
    "    if scope['type'] != 'http':\n"
    "        return\n"
    "    body = f\"{os.getuid()} {os.getgid()} {sorted(os.getgroups())}\".encode()\n"
    "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
    "    await send({'type': 'http.response.body', 'body': body})\n"
)
NOBODY = "65534"
# The interpreter here lives under /root (0700): nobody cannot import a module Gannet has
# not imported yet; --ws none spares the websockets import (importlib.metadata).
AS_NOBODY = ("-u", "nobody", "-g", "nogroup", "--ws", "none")


def _app_dir(mode: int) -> Path:
    """A directory outside pytest's tmp_path (0700 parents) holding whoami.py."""
    directory = Path(tempfile.mkdtemp(prefix="gannet-ops-"))
    (directory / "whoami.py").write_text(WHOAMI)
    os.chmod(directory / "whoami.py", 0o644)
    os.chmod(directory, mode)
    return directory


def _env(app_dir: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(app_dir), str(APPS), str(ROOT / "src")])}


def _uid_of(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return line.split()[1]
    raise AssertionError("no Uid line")


def _run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT / "src")])
    return subprocess.run([sys.executable, "-m", "gannet", *args], capture_output=True,
                          text=True, env=env, cwd=str(APPS), timeout=timeout)


# ------------------------------------------------------------------------ --pid
@pytest.mark.parametrize("workers", [(), ("-w", "1")], ids=["single", "master"])
def test_pid_file_is_written_after_binding_and_removed_at_exit(tmp_path, workers):
    pidfile = tmp_path / "gannet.pid"
    server = start_server("sup_app:app", "--pid", str(pidfile), *workers)
    try:
        assert pidfile.read_text() == f"{server.proc.pid}\n"
        assert get(server)[0] == 200
    finally:
        assert server.stop() == 0, server.log
    assert not pidfile.exists()


def test_pid_file_naming_a_live_process_refuses_to_start(tmp_path):
    pidfile = tmp_path / "gannet.pid"
    pidfile.write_text(f"{os.getpid()}\n")  # this test's process is alive
    result = _run("sup_app:app", "--port", "0", "--pid", str(pidfile))
    assert result.returncode == 1, result.stderr
    assert f"already running on PID {os.getpid()}" in result.stderr
    assert pidfile.read_text() == f"{os.getpid()}\n"  # left alone
    result = _run("sup_app:app", "--port", "0", "-w", "2", "--pid", str(pidfile))
    assert result.returncode == 1, result.stderr
    assert "Booting worker" not in result.stderr


def test_a_stale_pid_file_is_replaced(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait(timeout=10)
    pidfile = tmp_path / "gannet.pid"
    pidfile.write_text(f"{dead.pid}\n")
    server = start_server("sup_app:app", "--pid", str(pidfile))
    try:
        assert pidfile.read_text() == f"{server.proc.pid}\n"
        assert "Replacing the stale pid file" in server.log
    finally:
        assert server.stop() == 0, server.log
    assert not pidfile.exists()


# ------------------------------------------------------------------------ -u / -g
@needs_root
def test_workers_run_as_the_user_and_group_while_the_master_stays_root():
    app_dir = _app_dir(0o755)
    server = start_master("whoami:app", *AS_NOBODY, workers=2, env=_env(app_dir))
    try:
        answers = wait_until(lambda: {get(server)[1] for _ in range(6)}, what="answers")
        assert answers == {f"{NOBODY} {NOBODY} [{int(NOBODY)}]"}, answers
        assert _uid_of(server.proc.pid) == "0"
        assert {_uid_of(pid) for pid in children(server.proc.pid)} == {NOBODY}
    finally:
        assert server.stop() == 0, server.log


@needs_root
def test_the_single_process_binds_a_privileged_port_then_runs_the_app_as_the_user():
    port = _free_privileged_port()
    app_dir = _app_dir(0o755)
    server = start_server("whoami:app", *AS_NOBODY, port_args=("-b", f"127.0.0.1:{port}"),
                          env=_env(app_dir))
    try:
        assert server.port == port
        assert get(server) == (200, f"{NOBODY} {NOBODY} [{int(NOBODY)}]")
        assert _uid_of(server.proc.pid) == NOBODY
    finally:
        assert server.stop() == 0, server.log


@needs_root
@pytest.mark.parametrize("workers", [(), ("-w", "2")], ids=["single", "master"])
def test_the_app_is_imported_after_the_switch(workers):
    app_dir = _app_dir(0o700)  # only root may read it: the user cannot import the app
    env = dict(os.environ, **_env(app_dir))
    result = subprocess.run([sys.executable, "-m", "gannet", "whoami:app", "--port", "0",
                             *AS_NOBODY, *workers], capture_output=True, text=True, env=env,
                            cwd="/", timeout=30)
    assert result.returncode == 4, result.stderr
    assert "whoami" in result.stderr


def test_an_unknown_user_is_a_config_error_before_binding():
    result = _run("sup_app:app", "--port", "0", "-u", "no-such-user-gannet", "-w", "2")
    assert result.returncode == 2, result.stderr
    assert "-u/--user: no such user: 'no-such-user-gannet'" in result.stderr
    assert "Booting worker" not in result.stderr
    result = _run("sup_app:app", "--port", "0", "-g", "no-such-group-gannet")
    assert result.returncode == 2, result.stderr
    assert "-g/--group: no such group" in result.stderr


# ------------------------------------------------------------------------ --umask
@pytest.mark.parametrize("workers", [(), ("-w", "1")], ids=["single", "master"])
def test_umask_sets_the_unix_socket_mode(workers):
    directory = Path(tempfile.mkdtemp(prefix="gannet-umask-"))
    path = directory / "s.sock"
    server = start_server("sup_app:app", "--umask", "007", *workers,
                          port_args=("--uds", str(path)))
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        umask = Path(f"/proc/{server.proc.pid}/status").read_text().split("Umask:")[1].split()[0]
        assert umask == "0007"
    finally:
        assert server.stop() == 0, server.log
    server = start_server("sup_app:app", *workers, port_args=("--uds", str(path)))
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666  # without --umask, as before
    finally:
        assert server.stop() == 0, server.log


@needs_root
def test_the_unix_socket_file_is_given_to_the_user():
    directory = Path(tempfile.mkdtemp(prefix="gannet-uds-"))
    path = directory / "s.sock"
    server = start_server("sup_app:app", *AS_NOBODY, "-w", "1", port_args=("--uds", str(path)))
    try:
        info = os.stat(path)
        assert (info.st_uid, info.st_gid) == (int(NOBODY), int(NOBODY))
    finally:
        assert server.stop() == 0, server.log


@pytest.mark.parametrize("value, mode", [("0o22", 0o22), ("022", 0o22), ("18", 18)])
def test_umask_takes_gunicorns_spellings(value, mode):
    from gannet.config import Config

    assert Config("m:app", umask=value, environ={}).umask == mode


def test_a_bad_umask_exits_2():
    result = _run("sup_app:app", "--umask", "0o1000")
    assert result.returncode == 2
    assert "-m: a umask is between 0 and 0o777" in result.stderr


# ------------------------------------------------------------------------ titles
def test_master_and_workers_have_process_titles():
    pytest.importorskip("setproctitle", reason="setproctitle is in the [test] extra")
    server = start_master("sup_app:app", workers=2)
    try:
        def cmdline(pid: int) -> str:
            return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode().strip()

        assert cmdline(server.proc.pid) == "gannet: master [sup_app:app]"
        workers = wait_until(lambda: children(server.proc.pid), what="workers")
        assert {cmdline(pid) for pid in workers} == {"gannet: worker [sup_app:app]"}
    finally:
        assert server.stop() == 0, server.log


def _free_privileged_port() -> int:
    for port in range(600, 1000):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail("no free port below 1024")
