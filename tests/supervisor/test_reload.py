"""Rolling replacement without a failed request: HUP (new code) and --max-requests, both
under wrk against two workers. New workers accept before old ones drain, and old ones
answer their connections' next request with 'Connection: close'."""
from __future__ import annotations

import re
import signal
import subprocess

import pytest
from conftest import require_tool
from sup_helpers import get, start_master, wait_until

pytestmark = pytest.mark.timeout(60)


def run_wrk(server, seconds: int) -> subprocess.Popen:
    wrk = require_tool("wrk")
    return subprocess.Popen([wrk, "-t2", "-c16", f"-d{seconds}s", f"http://{server.host}:{server.port}/"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def assert_no_failures(output: str) -> int:
    """wrk prints these lines only when something failed; the request count otherwise."""
    assert "Socket errors" not in output, output
    assert "Non-2xx" not in output, output
    return int(re.search(r"(\d+) requests in", output).group(1))


def test_hup_under_load_fails_no_request_and_serves_the_new_code(tmp_path):
    version = tmp_path / "version"
    version.write_text("v1")
    server = start_master("sup_app:app", "--no-access-log", env={"SUP_VERSION_FILE": str(version)})
    try:
        assert get(server)[1].endswith(" v1")
        load = run_wrk(server, 4)
        version.write_text("v2")
        server.signal(signal.SIGHUP)
        server.wait_for_log(r"Reload complete", timeout=10)
        wait_until(lambda: server.log.count("exited (exit status 0)") >= 2, what="old workers gone")
        assert load.poll() is None, "the reload must happen while wrk runs"
        output, _ = load.communicate(timeout=20)
        assert assert_no_failures(output) > 1000
        assert {get(server)[1].split()[1] for _ in range(20)} == {"v2"}
    finally:
        assert server.stop() == 0


def test_reload_whose_new_code_cannot_load_keeps_the_old_workers(tmp_path):
    version = tmp_path / "version"
    version.write_text("v1")
    server = start_master("sup_app:app", env={"SUP_VERSION_FILE": str(version)})
    try:
        version.unlink()  # the new workers' import fails: FileNotFoundError
        server.signal(signal.SIGHUP)
        server.wait_for_log(r"Reload failed: a new worker could not boot \(the app could not "
                            r"be loaded, exit status 4\); the old workers keep serving")
        assert {get(server)[1].split()[1] for _ in range(10)} == {"v1"}
        assert server.proc.poll() is None
    finally:
        assert server.stop() == 0


def test_max_requests_replaces_workers_under_load_without_a_failed_request():
    server = start_master("sup_app:app", "--no-access-log", "--max-requests", "100",
                          "--max-requests-jitter", "20")
    try:
        load = run_wrk(server, 3)
        output, _ = load.communicate(timeout=20)
        assert assert_no_failures(output) > 1000
        log = server.log
        assert log.count("reached --max-requests; booting its replacement") >= 4, log
        assert "Maximum request limit of" in log
    finally:
        assert server.stop() == 0
