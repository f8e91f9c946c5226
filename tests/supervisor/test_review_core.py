"""Review of issue 11's supervisor core (as a gunicorn arbiter maintainer would read it):
each test here failed on the code before its fix."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT, start_server
from sup_helpers import get, start_master, wait_until

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
        assert _rss_kib(server.proc.pid) < 25 * 1024  # the figure (measured ~18 MiB)
    finally:
        assert server.stop() == 0


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


SLOW_IMPORT = """\
import os, time
open(os.environ["RV1_IMPORTING"], "w").close()
time.sleep(40)  # a --preload import that takes long (the test stops the master during it)
async def app(scope, receive, send):
    pass
"""


def _gannet(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, "-m", "gannet", *args], cwd=cwd, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_stop_during_a_long_preload_exits_0_and_cleans_up(tmp_path, sig):
    """Before: INT printed a KeyboardInterrupt traceback and TERM killed the master (status
    -2 / -15), both leaving the Unix socket file and the pid file behind."""
    (tmp_path / "slow_import.py").write_text(SLOW_IMPORT)
    importing, sock, pid = tmp_path / "importing", tmp_path / "g.sock", tmp_path / "g.pid"
    proc = _gannet(["slow_import:app", "-w", "2", "--preload", "--uds", str(sock), "--pid",
                    str(pid)], tmp_path, {"RV1_IMPORTING": str(importing)})
    try:
        wait_until(importing.exists, what="the preload importing the app")
        assert sock.exists() and pid.exists()
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0, output
    assert f"{signal.Signals(sig).name} during start-up: stopping" in output
    assert "Traceback" not in output and "Booting worker" not in output, output
    assert not sock.exists() and not pid.exists()


SPAWNS = """\
import subprocess, sys
CHILD = ("import os, socket\\n"
         "n = 0\\n"
         "for fd in map(int, os.listdir('/proc/self/fd')):\\n"
         "    try:\\n"
         "        s = socket.socket(fileno=os.dup(fd))\\n"
         "    except OSError:\\n"
         "        continue\\n"
         "    with s:\\n"
         "        n += s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)\\n"
         "print(n)\\n")
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    # What os.system() or a subprocess with close_fds=False hands its program.
    out = subprocess.run([sys.executable, "-c", CHILD], close_fds=False,
                         capture_output=True, text=True).stdout
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": out.encode()})
"""


def test_a_program_a_worker_execs_does_not_inherit_the_listening_socket(tmp_path):
    """Before: the master made its listeners inheritable (fork does not need it), so any
    program the app exec()ed held the port open, listening, after Gannet had stopped."""
    (tmp_path / "spawns.py").write_text(SPAWNS)
    server = start_master("spawns:app", "--app-dir", str(tmp_path), workers=1)
    try:
        status, body = get(server)
        assert (status, body.strip()) == (200, "0")
    finally:
        assert server.stop() == 0


def test_a_hung_workers_stacks_reach_the_error_log_file(tmp_path):
    """Before: faulthandler wrote the stacks straight to stderr, line by line, so an error
    log sent to a file (--log-config) had the in-flight request but never the stack, and
    on a shared stderr other workers' lines could land inside it."""
    errors = tmp_path / "error.log"
    config = tmp_path / "log.json"
    config.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(errors)}},
        "loggers": {"gannet.error": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }))
    with socket.socket() as probe:  # the listening line goes to the file: choose the port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_server("sup_app:app", "-w", "1", "--timeout", "2", "--log-config",
                          str(config), wait=False, port_args=("--port", str(port)))
    server.port = port
    thread = threading.Thread(target=_quietly_get, args=(server, "/block"))
    try:
        wait_until(lambda: errors.exists() and "Listening on" in errors.read_text(),
                   what="the worker listening")
        thread.start()
        wait_until(lambda: re.search(r"(?s)GET /block from .*the stack of every thread follows"
                                     r".*line \d+ in block_the_loop", errors.read_text()),
                   timeout=20, what="the stack in the error log file")
    finally:
        assert server.stop() == 0
        thread.join(timeout=30)


def _quietly_get(server, path: str) -> None:
    try:
        get(server, path, timeout=30)
    except (OSError, http.client.HTTPException):
        pass  # the hung worker is killed under it


def test_the_in_flight_list_is_bounded():
    """A hung worker with thousands of connections logs one readable record."""
    from types import SimpleNamespace

    from gannet.supervisor.watchdog import MAX_LISTED, in_flight

    def conn(n: int) -> SimpleNamespace:
        cycle = SimpleNamespace(scope={"method": "GET", "path": f"/r{n}"}, start_time=0.0)
        return SimpleNamespace(client=("10.0.0.1", n), cycle=cycle)

    lines = in_flight(SimpleNamespace(connections=[conn(n) for n in range(MAX_LISTED + 70)]))
    assert len(lines) == MAX_LISTED + 1
    assert lines[-1] == "... and 70 more"
    assert lines[0].startswith("GET /r0 from 10.0.0.1:0")
