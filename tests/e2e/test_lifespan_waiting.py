"""A slow lifespan startup or shutdown says it is waiting: "Waiting for application
startup." at once (as uvicorn), then a "Still waiting" warning every WAIT_LOG_INTERVAL
seconds until the app answers. The interval is shrunk in the child process, so the test
waits a fraction of a second, polling the log with a deadline."""
from __future__ import annotations

import os
import signal
import sys
import textwrap
from typing import Callable, Iterator

import httpx
import pytest

from conftest import APPS, ROOT, RunningServer, popen_logged

pytestmark = pytest.mark.timeout(30)

# The app's startup and shutdown each wait for a gate file the test creates (the app
# polls for it: that is the slow app under test, not the test's synchronisation).
CHILD = """
import asyncio, os, sys
import gannet
import gannet.asgi.lifespan as lifespan

lifespan.WAIT_LOG_INTERVAL = 0.2
STARTUP_GATE, SHUTDOWN_GATE = sys.argv[1], sys.argv[2]

async def gate(path):
    for _ in range(2000):  # bounded: 2000 * 10 ms
        if os.path.exists(path):
            return
        await asyncio.sleep(0.01)

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await gate(STARTUP_GATE)
                await send({"type": "lifespan.startup.complete"})
            else:
                await gate(SHUTDOWN_GATE)
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"up"})

sys.exit(gannet.run(app, port=0, lifespan="on"))
"""


@pytest.fixture
def spawn(tmp_path) -> Iterator[Callable[[bool], tuple[RunningServer, str, str]]]:
    """``spawn(gates_open)``: the child server, its startup gate and its shutdown gate
    (created first when ``gates_open``); the child is killed if still running at the end."""
    procs: list[RunningServer] = []

    def start(gates_open: bool) -> tuple[RunningServer, str, str]:
        startup_gate, shutdown_gate = str(tmp_path / "startup"), str(tmp_path / "shutdown")
        if gates_open:
            touch(startup_gate)
            touch(shutdown_gate)
        env = dict(os.environ, PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join([str(APPS), str(ROOT / "src")]))
        proc = popen_logged([sys.executable, "-c", textwrap.dedent(CHILD), startup_gate,
                             shutdown_gate], env=env)
        procs.append(proc)
        return proc, startup_gate, shutdown_gate

    yield start
    for proc in procs:
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait(timeout=5)


def touch(path: str) -> None:
    with open(path, "w", encoding="utf-8"):
        pass


def test_slow_startup_and_shutdown_say_they_are_waiting(spawn):
    proc, startup_gate, shutdown_gate = spawn(False)
    proc.wait_for_log(r"\[INFO\] Waiting for application startup\.")
    # Reported again while it lasts, with the time so far, at warning level.
    proc.wait_for_log(r"(?s)\[WARNING\] Still waiting for application startup \([\d.]+ s so far\)"
                      r".*Still waiting for application startup")
    assert "Listening on" not in proc.log
    touch(startup_gate)
    url = proc.wait_for_log(r"Listening on (http://\S+)").group(1)
    assert "Application startup complete." in proc.log
    assert httpx.get(url + "/").text == "up"
    waits = proc.log.count("Still waiting for application startup")
    proc.signal(signal.SIGTERM)
    proc.wait_for_log(r"\[INFO\] Waiting for application shutdown\.")
    proc.wait_for_log(r"\[WARNING\] Still waiting for application shutdown \([\d.]+ s so far\)")
    touch(shutdown_gate)
    assert proc.wait(timeout=15) == 0, proc.log
    assert "Application shutdown complete." in proc.log
    # Once startup completed, its warnings stopped.
    assert proc.log.count("Still waiting for application startup") == waits


def test_quick_startup_logs_no_waiting_warning(spawn):
    proc, _, _ = spawn(True)
    proc.wait_for_log(r"Listening on http://")
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, proc.log
    assert "Application startup complete." in proc.log
    assert "Application shutdown complete." in proc.log
    assert "Still waiting" not in proc.log
