"""A worker whose event loop is blocked stops beating; past --timeout the master has it
log its requests in flight and every thread's stack, kills it and boots another."""
from __future__ import annotations

import http.client
import os
import signal
import threading

import pytest
from sup_helpers import answer_pid, children, get, start_master, wait_until

pytestmark = pytest.mark.timeout(60)


def test_a_blocked_loop_is_explained_killed_and_replaced():
    server = start_master("sup_app:app", "--timeout", "2", workers=1)
    try:
        hung = children(server.proc.pid)
        errors: list[BaseException] = []

        def blocked_request() -> None:
            try:
                get(server, "/block?why=test", timeout=30)
            except BaseException as exc:  # noqa: BLE001 - the worker is killed under it
                errors.append(exc)

        thread = threading.Thread(target=blocked_request)
        thread.start()
        server.wait_for_log(r"Worker \[\d+\] timed out: its event loop has not ticked", timeout=15)
        server.wait_for_log(r"requests in flight:\n\s+GET /block\?why=test from 127\.0\.0\.1:\d+, "
                            r"running \d+\.\ds", timeout=10)
        # faulthandler's dump: the main thread is in the app's function, in time.sleep.
        server.wait_for_log(r"(?s)the stack of every thread follows.*line \d+ in block_the_loop",
                            timeout=10)
        server.wait_for_log(r"Hung worker \[\d+\] killed; booting a replacement", timeout=10)
        thread.join(timeout=30)
        assert errors, "the request to the killed worker cannot have been answered"
        replacement = wait_until(lambda: children(server.proc.pid) - hung, what="a new worker")
        assert wait_until(lambda: answer_pid(server), timeout=15) in replacement
    finally:
        assert server.stop() == 0


def test_a_loop_stuck_in_c_holding_the_gil_still_shows_its_stack():
    """The watchdog thread cannot run without the GIL, so the requests cannot be listed;
    the master's SIGUSR2 makes faulthandler dump the stacks from C anyway."""
    server = start_master("sup_app:app", "--timeout", "1", workers=1)
    try:
        hung = children(server.proc.pid)
        thread = threading.Thread(target=lambda: _quietly(get, server, "/spin", timeout=30))
        thread.start()
        server.wait_for_log(r"did not list its requests \(its loop holds the GIL in C code\?\)",
                            timeout=15)
        server.wait_for_log(r"(?s)Thread 0x.*line \d+ in spin_in_c", timeout=10)
        server.wait_for_log(r"Hung worker \[\d+\] killed; booting a replacement", timeout=10)
        thread.join(timeout=30)
        replacement = wait_until(lambda: children(server.proc.pid) - hung, what="a new worker")
        assert wait_until(lambda: answer_pid(server), timeout=15) in replacement
    finally:
        assert server.stop() == 0


def test_timeout_0_turns_the_watchdog_off():
    server = start_master("sup_app:app", "--timeout", "0", workers=1)
    try:
        worker = children(server.proc.pid)
        thread = threading.Thread(target=lambda: _quietly(get, server, "/block", timeout=10))
        thread.start()
        with pytest.raises(AssertionError):  # a 1 s timeout would have fired by then
            wait_until(lambda: "timed out" in server.log, timeout=3)
        assert children(server.proc.pid) == worker
    finally:
        for pid in worker:
            os.kill(pid, signal.SIGKILL)  # its loop is blocked: TERM would wait for it
        assert server.stop() == 0
        thread.join(timeout=10)


def _quietly(function, *args, **kwargs) -> None:
    try:
        function(*args, **kwargs)
    except (OSError, http.client.HTTPException):
        pass


def test_a_worker_that_does_not_finish_booting_is_told_apart(tmp_path):
    """Review of issue 11: --timeout counts the boot too (as in gunicorn); a worker still
    importing the app when it runs out is logged as a slow boot, with the advice to raise
    --timeout, not as an event loop that stopped ticking."""
    from sup_helpers import start_server

    (tmp_path / "slow_boot.py").write_text(
        "import time\ntime.sleep(60)\n\nasync def app(scope, receive, send):\n    pass\n")
    server = start_server("slow_boot:app", "-w", "1", "--timeout", "1", "--app-dir",
                          str(tmp_path), "--lifespan", "off", wait=False)
    try:
        server.wait_for_log(r"Worker \[\d+\] timed out booting: not accepting after "
                            r"\d+\.\ds \(--timeout 1 counts the app's import", timeout=20)
        assert "its event loop has not ticked" not in server.log
    finally:
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(20)
