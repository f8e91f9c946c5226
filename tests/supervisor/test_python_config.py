"""Python config files (-c gannet.conf.py): a gunicorn.conf.py runs unchanged, its
settings apply under gunicorn's names, its server hooks run where gunicorn runs them, and
what Gannet cannot honour is refused or warned about, naming the file and the setting."""
from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import APPS, ROOT, start_server
from sup_helpers import children, wait_until

pytestmark = pytest.mark.timeout(60)

GUNICORN_CONF = str(APPS / "pyconf_gunicorn.py")


def get_unix(path: str, timeout: float = 10.0) -> tuple[int, str]:
    """One GET over a Unix socket: (status, body)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        data = b""
        for _ in range(1000):  # bounded: a response is a few hundred bytes
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def start_with_config(config: str, tmp_path: Path, *args: str, workers: int = 2,
                      env: dict[str, str] | None = None):
    """Start ``gannet -c CONFIG`` (APP and bind from the file) and wait for its workers."""
    sock = str(tmp_path / "gannet.sock")
    full_env = {"PYCONF_BIND": f"unix:{sock}", "PYCONF_MARKERS": str(tmp_path / "markers"),
                **(env or {})}
    server = start_server("", "-c", config, *args, env=full_env, port_args=())
    wait_until(lambda: server.log.count("Listening on") >= workers, 20,
               f"{workers} workers listening")
    assert server.uds == sock  # the file's bind is what is served
    return server


def markers(tmp_path: Path, hook: str) -> list[list[str]]:
    path = tmp_path / "markers"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.split()[1:] for line in lines if line.split()[0] == hook]


def run_gannet(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(APPS), str(ROOT / "src")])}
    return subprocess.run([sys.executable, "-m", "gannet", *args], capture_output=True,
                          text=True, env=env, cwd=cwd or APPS, timeout=30)


# ------------------------------------------------------------------ a gunicorn.conf.py


@pytest.mark.parametrize("form", ["path", "python:module"])
def test_gunicorn_conf_runs_its_hooks_and_applies_its_settings(tmp_path, form):
    config = GUNICORN_CONF if form == "path" else "python:pyconf_gunicorn"
    server = start_with_config(config, tmp_path)
    try:
        master = server.proc.pid
        worker_pids = children(master)
        assert len(worker_pids) == 2
        # when_ready: once, in the master, which sees gunicorn's names mapped
        assert markers(tmp_path, "when_ready") == [[str(master), str(master), "2", "7.0",
                                                    "12.0"]]
        # post_fork: once per worker, in the worker, with that worker's pid
        forks = markers(tmp_path, "post_fork")
        assert sorted(int(pid) for pid, _, _ in forks) == sorted(worker_pids)
        assert all(pid == given for pid, given, _ in forks)
        assert sorted(age for _, _, age in forks) == ["1", "2"]
        # wsgi_app is the app, raw_env reached its environment
        status, body = get_unix(server.uds)
        assert status == 200
        pid, raw_env = body.split()
        assert int(pid) in worker_pids and raw_env == "from-raw-env"
        log = server.log
        assert "worker_class 'uvicorn.workers.UvicornWorker'" in log and "is not needed" in log
        assert "when_ready: the master is ready" in log  # server.log is a logger
        assert "cpu_count" not in log  # a helper variable is ignored in silence
        assert "WARNING" not in log, log
    finally:
        assert server.stop() == 0
    assert markers(tmp_path, "on_exit") == [[str(master)]]


def test_command_line_and_environment_beat_the_file(tmp_path):
    server = start_with_config(GUNICORN_CONF, tmp_path, "-w", "1", workers=1,
                               env={"GANNET_TIMEOUT_KEEP_ALIVE": "3"})
    try:
        assert len(children(server.proc.pid)) == 1
        assert len(markers(tmp_path, "post_fork")) == 1
        [[_, _, workers, keepalive, _]] = markers(tmp_path, "when_ready")
        assert (workers, keepalive) == ("1", "3.0")
    finally:
        assert server.stop() == 0


def test_hooks_without_workers_still_run_under_a_master(tmp_path):
    server = start_with_config(GUNICORN_CONF, tmp_path, env={"PYCONF_WORKERS": "1"},
                               workers=1)
    try:
        assert "Starting gannet master" in server.log
        assert len(markers(tmp_path, "post_fork")) == 1
    finally:
        assert server.stop() == 0


def test_hooks_that_raise_are_logged_and_the_master_serves_on(tmp_path):
    sock = str(tmp_path / "gannet.sock")
    server = start_server("pyconf_app:app", "-c", str(APPS / "pyconf_raising.py"),
                          env={"PYCONF_BIND": f"unix:{sock}"}, port_args=())
    try:
        assert get_unix(sock)[0] == 200
        log = server.log
        for hook in ("when_ready", "post_fork"):
            assert f"Error in the {hook} hook" in log and f"{hook} hook is broken" in log
        first = set(children(server.proc.pid))
        os.kill(first.pop(), 9)
        wait_until(lambda: "Error in the child_exit hook" in server.log, 20, "child_exit")
        wait_until(lambda: server.log.count("Listening on") >= 2, 20, "a replacement")
        assert get_unix(sock)[0] == 200
    finally:
        assert server.stop() == 0


# ------------------------------------------------------------------ refusals and warnings


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gannet.conf.py"
    path.write_text(text)
    return str(path)


def test_an_exception_in_the_file_exits_2_naming_the_file_and_line(tmp_path):
    path = write_config(tmp_path, "import os\nworkers = 2\nraise KeyError('DATABASE_URL')\n")
    result = run_gannet("pyconf_app:app", "-c", path)
    assert result.returncode == 2
    assert f'File "{path}", line 3' in result.stderr
    assert "KeyError: 'DATABASE_URL'" in result.stderr
    assert "Starting" not in result.stderr


def test_a_syntax_error_in_the_file_exits_2_naming_the_file_and_line(tmp_path):
    path = write_config(tmp_path, "workers = 2\nbind = [\n")
    result = run_gannet("pyconf_app:app", "-c", path)
    assert result.returncode == 2
    assert path in result.stderr and "line 2" in result.stderr
    assert "SyntaxError" in result.stderr


@pytest.mark.parametrize("text, message", [
    ("workers = 'many'\n", "workers (from {path}): expected an integer, got 'many'"),
    ("keepalive = 'long'\n", "keepalive (from {path}): expected a number of seconds"),
    ("bind = 8000\n", "bind (from {path}): expected a list of strings, got 8000"),
    ("post_fork = 'not a function'\n", "post_fork (from {path}): a server hook must be a "
                                      "function"),
])
def test_a_wrong_value_names_the_file_and_the_setting(tmp_path, text, message):
    path = write_config(tmp_path, text)
    result = run_gannet("pyconf_app:app", "-c", path)
    assert result.returncode == 2
    assert message.format(path=path) in result.stderr


@pytest.mark.parametrize("text, message", [
    # gunicorn's TLS names are Gannet's --ssl-* options: a missing file stops the start
    ("certfile = '/etc/ssl/site.pem'\nkeyfile = '/etc/ssl/site.key'\n",
     "--ssl-certfile: no such file: /etc/ssl/site.pem"),
    ("import ssl\ndef ssl_context(conf, default):\n    return default()\n",
     "ssl_context (from {path}): a function that builds the SSLContext is not supported"),
])
def test_tls_settings_are_used_or_refused_never_ignored(tmp_path, text, message):
    path = write_config(tmp_path, text)
    result = run_gannet("pyconf_app:app", "-c", path)
    assert result.returncode == 2
    assert message.format(path=path) in result.stderr


def test_an_access_log_file_is_refused_with_the_way_to_get_one(tmp_path):
    path = write_config(tmp_path, "accesslog = '/var/log/gannet/access.log'\n")
    result = run_gannet("pyconf_app:app", "-c", path)
    assert result.returncode == 2
    assert f"accesslog (from {path})" in result.stderr and "logconfig" in result.stderr


def test_unsupported_settings_and_typos_are_warned_about(tmp_path):
    sock = str(tmp_path / "gannet.sock")
    path = write_config(tmp_path, (
        f"bind = 'unix:{sock}'\nworker_class = 'gevent'\nsecure_scheme_headers = {{'X-FORWARDED-SSL': 'on'}}\n"
        "workrs = 4\ndef pre_request(worker, req):\n    pass\n"))
    server = start_server("pyconf_app:app", "-c", path, port_args=())
    try:
        log = server.log
        assert f"worker_class 'gevent' (from {path}) is not supported" in log
        assert f"secure_scheme_headers (from {path}) is not needed" in log
        assert "x-forwarded-ssl is ignored" in log
        assert "workrs" in log and "did you mean workers?" in log
        assert f"pre_request (from {path}) is never called" in log
        assert "Starting gannet master" not in log  # no hooks, no workers: one process
        assert get_unix(sock)[0] == 200
    finally:
        assert server.stop() == 0


def test_config_from_a_python_file_stays_plain_picklable_data(tmp_path):
    """Hooks never enter Config: it still pickles (a spawned worker could receive it)."""
    sys.path.insert(0, str(ROOT / "src"))
    from gannet.config import Config

    path = write_config(tmp_path, "workers = 3\ndef post_fork(server, worker):\n    pass\n")
    config = pickle.loads(pickle.dumps(Config("pyconf_app:app", config_file=path, environ={})))
    assert config.workers == 3 and config.sources["workers"] == f"file {path}"
