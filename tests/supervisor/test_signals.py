"""The master's signals: TERM drains every worker, INT stops fast, USR1 reopens log files."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from sup_helpers import get, start_master, wait_until

pytestmark = pytest.mark.timeout(60)


def master_with_a_slow_request(tmp_path, seconds: float) -> tuple:
    """Two workers, one of them in the middle of a /slow request: (server, thread, results)."""
    marker = tmp_path / "slow-started"
    server = start_master("sup_app:app", env={"SUP_SLOW_MARKER": str(marker)})
    results: list = []
    thread = slow_request(server, seconds, results)
    wait_until(marker.exists, what="the slow request in the app")
    return server, thread, results


def slow_request(server, seconds: float, results: list) -> threading.Thread:
    def run() -> None:
        try:
            results.append(get(server, f"/slow?{seconds}", timeout=30))
        except Exception as exc:  # noqa: BLE001 - the fast stop cuts it
            results.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_term_drains_an_in_flight_request_to_completion(tmp_path):
    server, thread, results = master_with_a_slow_request(tmp_path, 1.5)
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=20) == 0
    thread.join(timeout=10)
    assert results and results[0][0] == 200, results
    assert "Graceful stop: stopping 2 worker(s)" in server.log


def test_int_stops_fast_without_waiting_for_requests(tmp_path):
    server, thread, results = master_with_a_slow_request(tmp_path, 25)
    started = time.monotonic()
    server.signal(signal.SIGINT)
    assert server.wait(timeout=20) == 0
    assert time.monotonic() - started < 10  # not the 25 s request, nor the 30 s grace
    thread.join(timeout=10)
    assert results and isinstance(results[0], Exception), results
    assert "Fast stop" in server.log


def test_usr1_reopens_log_files(tmp_path):
    access = tmp_path / "access.log"
    config = tmp_path / "log.json"
    config.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(access)},
                     "err": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
        "loggers": {"gannet.access": {"handlers": ["file"], "level": "INFO", "propagate": False},
                    "gannet.error": {"handlers": ["err"], "level": "INFO", "propagate": False}},
    }))
    server = start_master("sup_app:app", "--log-config", str(config))
    try:
        get(server, "/before")
        wait_until(lambda: "/before" in access.read_text(), what="the first access line")
        os.rename(access, tmp_path / "access.log.1")  # what logrotate does
        server.signal(signal.SIGUSR1)
        server.wait_for_log(r"USR1: reopened 1 log file\(s\)")
        # The workers reopen theirs on their loop: poll until a request lands in the new file.
        wait_until(lambda: get(server, "/after") and access.exists()
                   and "/after" in access.read_text(), what="a line in the new file")
        for _ in range(10):
            get(server, "/later")
        wait_until(lambda: access.read_text().count("/later") == 10, what="ten lines")
        assert "/later" not in (tmp_path / "access.log.1").read_text()
    finally:
        assert server.stop() == 0
