"""``wsgi.errors`` keeps a message whole: a traceback (Flask's exception log, or
traceback.print_exc) is ONE log record, not one ``[ERROR]`` record per line. A message
ends at flush(), at the end of the app's call, or at 64 KiB (so memory stays bounded).

Records are told apart by the default log prefix "... [pid] [ERROR] ": a record's
continuation lines carry none."""
from __future__ import annotations

import re
import signal

import pytest

from wsgi_helpers import request

pytestmark = pytest.mark.timeout(30)

PREFIX = re.compile(r"^\S+ \S+ \S+ \[\d+\] \[(\w+)\] ")


def records(log: str) -> list[str]:
    """The log split into records: a line with the prefix starts one."""
    out: list[str] = []
    for line in log.splitlines():
        if PREFIX.match(line) or not out:
            out.append(line)
        else:
            out[-1] += "\n" + line
    return out


def the_record(log: str, marker: str) -> str:
    found = [record for record in records(log) if marker in record]
    assert len(found) == 1, f"{marker!r} is in {len(found)} records:\n{log}"
    return found[0]


def stopped_log(server) -> str:
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=15) == 0, server.log
    return server.log


def test_flask_exception_log_is_one_record(gannet_server):
    server = gannet_server("wsgi_errors_app:flask_app", "--interface", "wsgi")
    status, _, _ = request(server, "GET", "/boom")
    assert status == 500
    server.wait_for_log(r"RuntimeError: marker-from-flask")
    record = the_record(stopped_log(server), "Traceback (most recent call last):")
    assert PREFIX.match(record).group(1) == "ERROR"
    assert "Exception on /boom [GET]" in record  # Flask's own message heads the record
    assert record.rstrip().endswith("RuntimeError: marker-from-flask")
    assert record.count("\n") >= 3  # the frames are inside it


def test_print_exc_traceback_is_one_record(gannet_server):
    server = gannet_server("wsgi_errors_app:app", "--interface", "wsgi")
    assert request(server, "GET", "/print-exc")[0] == 200
    server.wait_for_log(r"ValueError: marker-from-print-exc")
    record = the_record(stopped_log(server), "Traceback (most recent call last):")
    assert re.search(r"\[ERROR\] Traceback \(most recent call last\):\n", record)
    assert "in _raise_marker" in record
    assert record.rstrip().endswith("ValueError: marker-from-print-exc")


def test_a_calls_unflushed_prints_are_one_record_and_flush_ends_a_record(gannet_server):
    server = gannet_server("wsgi_errors_app:app", "--interface", "wsgi")
    assert request(server, "GET", "/print")[0] == 200
    assert request(server, "GET", "/flushed")[0] == 200
    server.wait_for_log(r"flushed-two")
    log = stopped_log(server)
    assert re.search(r"\[ERROR\] print-one\nprint-two$", the_record(log, "print-one"), re.M)
    assert the_record(log, "flushed-one") != the_record(log, "flushed-two")
    assert not [record for record in records(log) if not record.strip()]


def test_pending_text_is_bounded(gannet_server):
    size = 200 * 1024  # written in one piece with no newline, never flushed by the app
    server = gannet_server("wsgi_errors_app:app", "--interface", "wsgi")
    assert request(server, "GET", f"/big?size={size}")[0] == 200
    log = stopped_log(server)  # the process is gone: everything it logged is in
    chunks = [record for record in records(log) if re.search(r"\[ERROR\] x+$", record)]
    lengths = [len(record.rpartition(" ")[2]) for record in chunks]
    assert sum(lengths) == size, lengths
    assert max(lengths) <= 64 * 1024 and len(chunks) == 4, lengths


def test_writes_from_the_apps_threads_stay_whole(gannet_server):
    server = gannet_server("wsgi_errors_app:app", "--interface", "wsgi")
    assert request(server, "GET", "/threads")[0] == 200
    server.wait_for_log(r"thread-\d-line-49")
    log = stopped_log(server)
    for index in range(4):
        for line in range(50):
            assert re.search(rf"(^|\] )thread-{index}-line-{line}$", log, re.M), (index, line)


def test_text_a_background_thread_writes_after_the_call_is_logged_as_written(caplog):
    """Review of issue 10: a thread the app started writes to wsgi.errors after the app's
    call has ended (nothing flushes that stream again until the same pool thread ends
    another call): it is logged as it is written, not held for a call that may never come."""
    import logging
    import threading

    import httpx

    import gannet
    from e2e.test_api import ThreadedServer

    go, written = threading.Event(), threading.Event()

    def app(environ, start_response):
        errors = environ["wsgi.errors"]

        def later() -> None:
            if go.wait(10):
                errors.write("late-background-marker\n")  # no flush: the app's call is over
            written.set()

        threading.Thread(target=later, daemon=True).start()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = gannet.Server(gannet.Config(app, port=0, access_log=False, interface="wsgi"))
    runner = ThreadedServer(server)
    caplog.set_level(logging.ERROR, logger="gannet.error.wsgi")
    try:
        url = runner.wait_started()
        assert httpx.get(url + "/").text == "ok"
        go.set()
        assert written.wait(10)
        # Logged as it is written, not when this pool thread next ends a call (never, here)
        # nor at shutdown (records: the caplog list the handler appends to on write).
        assert any("late-background-marker" in r.getMessage() for r in caplog.records), caplog.text
    finally:
        runner.stop()


def test_error_log_line_about_an_invalid_wsgi_response_escapes_the_path(caplog):
    """Review of issue 10: the runner's error line naming the request (an invalid
    response) escapes the decoded path, so a %0d%0a in the target forges no line."""
    import logging

    import httpx

    import gannet
    from e2e.test_api import ThreadedServer

    def app(environ, start_response):
        start_response("not a status", [])
        return [b"x"]

    server = gannet.Server(gannet.Config(app, port=0, access_log=False, interface="wsgi"))
    runner = ThreadedServer(server)
    caplog.set_level(logging.ERROR, logger="gannet.error")
    try:
        url = runner.wait_started()
        assert httpx.get(url + "/a%0d%0aFORGED%1b").status_code == 500
    finally:
        runner.stop()
    lines = [r.getMessage() for r in caplog.records if "Invalid response" in r.getMessage()]
    assert lines and all("\n" not in line and "\x1b" not in line for line in lines), lines
    assert "/a\\x0d\\x0aFORGED\\x1b" in lines[0], lines
