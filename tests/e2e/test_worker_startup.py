"""Start-up failures are classified, end to end (``python -m gannet``'s exit status and
its log line), and a stop signal during a hanging lifespan startup stops the server.

Exit statuses (cli.py, docs/deployment.md): 0 clean stop (also a stop during startup),
1 cannot listen or an unexpected error, 2 bad option, 3 lifespan startup failed, 4 the app
could not be loaded. Before this, any error while binding that was not an OSError (and any
error in Gannet's own start-up code) was reported as "Error loading app" with status 4."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from conftest import APPS, ROOT, start_server

pytestmark = pytest.mark.timeout(40)


def run_gannet(*args: str, pythonpath: tuple[str, ...] = (), timeout: float = 15.0,
               cwd: str | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GANNET_")}
    env["PYTHONPATH"] = os.pathsep.join([*pythonpath, str(APPS), str(ROOT / "src"),
                                         env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run([sys.executable, "-m", "gannet", *args], capture_output=True,
                          text=True, env=env, cwd=cwd or str(APPS), timeout=timeout)


# ------------------------------------------------------------------ classified failures


def test_address_in_use_exits_1_with_the_address():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_gannet("cfg_apps:app", "--port", str(port))
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Error loading app" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root may bind privileged ports")
def test_permission_denied_exits_1():
    result = run_gannet("cfg_apps:app", "--port", "1")
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "cannot listen on 127.0.0.1:1" in result.stderr
    assert "Error loading app" not in result.stderr


def test_unexpected_error_while_binding_is_not_an_app_load_error():
    """An error of Gannet's own start-up code (here: injected into getaddrinfo by the app
    module) is a bind failure, status 1, with the traceback -- not 'Error loading app' 4."""
    result = run_gannet("proc_bind_fault:app", "--port", "0")
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "cannot listen on 127.0.0.1:0: RuntimeError: injected getaddrinfo fault (proc)" in result.stderr
    assert "Error loading app" not in result.stderr
    assert "Traceback" in result.stderr  # a bug of ours: the operator gets the frames


def test_invalid_unix_socket_path_exits_1(tmp_path):
    """A path the OS cannot take (a NUL byte, from a config file) is a bind error."""
    (tmp_path / "gannet.toml").write_text('uds = "/tmp/proc\\u0000bad.sock"\n')
    result = run_gannet("cfg_apps:app", "-c", str(tmp_path / "gannet.toml"))
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "cannot listen on unix:/tmp/proc" in result.stderr
    assert "Error loading app" not in result.stderr
    assert "Traceback" not in result.stderr


def test_loop_uvloop_unavailable_is_a_config_error_exit_2(tmp_path):
    """--loop uvloop without an importable uvloop is a bad option (2), not an app that
    failed to load (4)."""
    fake = tmp_path / "uvloop"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('uvloop hidden by the test')\n")
    result = run_gannet("cfg_apps:app", "--port", "0", "--loop", "uvloop", pythonpath=(str(tmp_path),))
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "--loop uvloop" in result.stderr
    assert "Error loading app" not in result.stderr
    assert "Traceback" not in result.stderr


def test_app_load_failure_still_exits_4():
    result = run_gannet("cfg_import_error:app", "--port", "0")
    assert result.returncode == 4, (result.returncode, result.stderr)
    assert "Error loading app: RuntimeError: cfg module exploded at import" in result.stderr
    assert "Traceback" not in result.stderr


def test_lifespan_startup_failure_still_exits_3():
    result = run_gannet("cfg_lifespan:failing", "--port", "0")
    assert result.returncode == 3, (result.returncode, result.stderr)
    assert "Application startup failed: database unreachable (cfg)" in result.stderr


# ------------------------------------------------------------------ a stop during startup


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_hanging_lifespan_startup_stops_the_server(sig, loop):
    """The startup is cancelled (the app sees CancelledError), nothing listens, exit 0."""
    server = start_server("proc_apps:startup_hangs", "--loop", loop, wait=False)
    try:
        server.wait_for_log(r"proc startup hanging")
        server.signal(sig)
        assert server.wait(timeout=10) == 0, server.log
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=5)
    log = server.log
    assert "Stop requested during the application's lifespan startup" in log
    assert "proc startup cancelled" in log
    assert "Listening on" not in log
    assert "Traceback" not in log


def test_second_sigint_forces_exit_when_startup_ignores_cancellation():
    # The default graceful timeout is 30 s: only the second SIGINT can end this quickly.
    server = start_server("proc_apps:startup_stubborn", wait=False)
    try:
        server.wait_for_log(r"proc startup hanging")
        server.signal(signal.SIGINT)
        server.wait_for_log(r"proc startup ignoring cancellation")
        assert server.proc.poll() is None
        server.signal(signal.SIGINT)
        assert server.wait(timeout=10) == 0, server.log
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=5)
    assert "Second interrupt: forcing exit" in server.log
    assert "Listening on" not in server.log


def test_sigterm_during_stubborn_startup_is_bounded_by_the_graceful_timeout():
    server = start_server("proc_apps:startup_stubborn", "--timeout-graceful-shutdown", "1", wait=False)
    try:
        server.wait_for_log(r"proc startup hanging")
        server.signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0, server.log
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=5)
    assert "The cancelled lifespan startup did not finish" in server.log
