"""The Python API: gannet.run() in a subprocess, and gannet.Server(gannet.Config(...))
embedded in a thread with its own event loop (serve / shutdown)."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import textwrap
import threading
import time

import httpx
import pytest

import gannet
from conftest import APPS, ROOT, RunningServer, popen_logged

pytestmark = pytest.mark.timeout(30)


def spawn_python(code: str, cwd=None) -> RunningServer:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return popen_logged([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd)


@pytest.fixture
def python_proc():
    procs: list[RunningServer] = []

    def factory(code: str, **kwargs) -> RunningServer:
        proc = spawn_python(code, **kwargs)
        procs.append(proc)
        return proc

    yield factory
    for proc in procs:
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait(timeout=5)


# ------------------------------------------------------------------ gannet.run()


def test_run_import_string_in_subprocess(python_proc):
    proc = python_proc("""
        import sys, gannet
        sys.exit(gannet.run("cfg_apps:app", port=0))
    """)
    url = proc.wait_for_log(r"Listening on (http://127\.0\.0\.1:\d+)", timeout=15).group(1)
    assert not url.endswith(":0")
    assert httpx.get(url + "/").text == "cfg ok"
    assert httpx.get(url + "/info").json()["state"] == {"token": "tok-123"}
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, proc.log
    assert "cfg shutdown ran" in proc.log


def test_run_app_object_with_options(python_proc):
    proc = python_proc("""
        import sys, gannet
        from cfg_apps import app
        sys.exit(gannet.run(app, port=0, root_path="/api", access_log=False))
    """)
    url = proc.wait_for_log(r"Listening on (http://127\.0\.0\.1:\d+)", timeout=15).group(1)
    assert httpx.get(url + "/info").json()["root_path"] == "/api"
    httpx.get(url + "/api-no-access-marker")
    proc.signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0, proc.log
    assert "/api-no-access-marker" not in proc.log


def test_run_returns_exit_status_for_failed_startup(python_proc):
    proc = python_proc("""
        import gannet
        status = gannet.run("cfg_lifespan:failing", port=0)
        print("run returned", status, flush=True)
    """)
    proc.wait_for_log(r"run returned 3", timeout=15)
    assert proc.wait(timeout=10) == 0


def test_run_bad_option_raises_config_error():
    from gannet.config import ConfigError

    with pytest.raises(ConfigError, match="--port"):
        gannet.run("cfg_apps:app", port="abc")
    with pytest.raises(ConfigError, match="bogus_option"):
        gannet.run("cfg_apps:app", bogus_option=1)


def test_public_api():
    assert set(gannet.__all__) >= {"run", "Config", "Server", "__version__"}
    assert isinstance(gannet.__version__, str) and gannet.__version__


# ------------------------------------------------------------------ Server in a thread


class EmbeddedApp:
    def __init__(self) -> None:
        self.events: list[str] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"]["where"] = "thread"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = f"{scope['path']} {scope['state'].get('where')}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})


class ThreadedServer:
    def __init__(self, server: gannet.Server, sockets=None) -> None:
        self.server = server
        self.error: BaseException | None = None
        self.returned = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(sockets,), daemon=True)
        self.thread.start()

    def _run(self, sockets) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.server.serve(sockets) if sockets else self.server.serve())
        except BaseException as exc:  # noqa: BLE001
            self.error = exc
        finally:
            loop.close()
            self.returned.set()

    def wait_started(self, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while not (self.server.started and self.server.bound_urls):
            if self.returned.is_set():
                raise AssertionError(f"serve() returned early: {self.error!r}")
            if time.monotonic() > deadline:
                raise AssertionError("server did not start within the deadline")
            time.sleep(0.02)  # pacing a poll, not synchronising
        return self.server.bound_urls[0]

    def stop(self, timeout: float = 10.0) -> None:
        self.server.shutdown()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "serve() did not return after shutdown()"
        if self.error is not None:
            raise self.error


def test_server_in_thread_serves_and_shuts_down():
    app = EmbeddedApp()
    server = gannet.Server(gannet.Config(app, port=0))
    runner = ThreadedServer(server)
    try:
        url = runner.wait_started()
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        with httpx.Client(base_url=url) as client:
            response = client.get("/embedded")
            assert response.status_code == 200
            assert response.text == "/embedded thread"
            assert response.headers["server"] == "gannet"
    finally:
        runner.stop()
    assert app.events == ["lifespan.startup", "lifespan.shutdown"]
    # the listener is really gone
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_server_shutdown_before_serve_returns_promptly():
    server = gannet.Server(gannet.Config(EmbeddedApp(), port=0))
    server.shutdown()
    runner = ThreadedServer(server)
    assert runner.returned.wait(10), "serve() ran on although shutdown() was called first"
    assert runner.error is None


def test_server_serve_on_given_socket():
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = gannet.Server(gannet.Config(EmbeddedApp(), port=0))
    runner = ThreadedServer(server, sockets=[sock])
    try:
        runner.wait_started()
        assert httpx.get(f"http://127.0.0.1:{port}/given").text == "/given thread"
    finally:
        runner.stop()


def test_server_shutdown_waits_for_in_flight_request(tmp_path):
    release = tmp_path / "release"
    sys.path.insert(0, str(APPS))
    try:
        import cfg_apps
    finally:
        sys.path.remove(str(APPS))
    server = gannet.Server(gannet.Config(cfg_apps.app, port=0, access_log=False))
    runner = ThreadedServer(server)
    url = runner.wait_started()
    result: dict = {}

    def slow() -> None:
        try:
            result["response"] = httpx.get(url + f"/wait?file={release}", timeout=15)
        except BaseException as exc:  # noqa: BLE001
            result["error"] = exc

    client = threading.Thread(target=slow, daemon=True)
    client.start()
    deadline = time.monotonic() + 10
    while server.state is None or server.state.active == 0:
        assert time.monotonic() < deadline, "the slow request never reached the app"
        time.sleep(0.02)  # pacing a poll, not synchronising
    server.shutdown()
    assert not runner.returned.wait(0.3)  # still draining: the request is in flight
    release.touch()
    client.join(15)
    runner.stop()
    assert "error" not in result, result
    response = result["response"]
    assert response.status_code == 200
    assert response.text == "released"
    assert response.headers["connection"] == "close"


# ------------------------------------------------------------------ the heartbeat hook


def test_on_tick_is_called_every_second_on_the_loop_thread():
    """Server(config, on_tick=...) is the hook a supervisor's heartbeat uses: it runs on
    the worker's loop thread once a second while serving; an exception it raises is
    logged and the ticks go on."""
    calls: list[str] = []

    def on_tick() -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise RuntimeError("heartbeat hook failed once (test)")

    server = gannet.Server(gannet.Config(EmbeddedApp(), port=0, access_log=False), on_tick=on_tick)
    runner = ThreadedServer(server)
    try:
        runner.wait_started()
        deadline = time.monotonic() + 10
        while len(calls) < 3:
            assert time.monotonic() < deadline, f"on_tick called {len(calls)} time(s) in 10 s"
            time.sleep(0.05)  # pacing a poll, not synchronising
    finally:
        runner.stop()
    assert set(calls) == {runner.thread.name}


def test_listener_that_stops_accepting_stops_the_worker_with_an_error():
    """uvloop closes a listener for good after an accept error it cannot handle (out of
    descriptors with none in reserve): the worker must not live on unreachable. The sweep
    notices, drains, and serve() raises ListenerLost (the command line exits 1)."""
    from gannet.server.worker import ListenerLost

    server = gannet.Server(gannet.Config(EmbeddedApp(), port=0, access_log=False))
    runner = ThreadedServer(server)
    runner.wait_started()
    worker = server.worker
    worker._loop.call_soon_threadsafe(worker._servers[0].close)  # what uvloop does then
    assert runner.returned.wait(10), "serve() kept running without a listener"
    assert isinstance(runner.error, ListenerLost)
