"""The ASGI lifespan protocol, black-box: startup/shutdown run, state reaches requests,
failures stop the server with exit status 3 and the app's message, auto/on/off modes."""
from __future__ import annotations

import signal

import httpx
import pytest

from conftest import start_server

pytestmark = pytest.mark.timeout(30)


def stop(server) -> int:
    server.signal(signal.SIGTERM)
    return server.wait(timeout=15)


def test_startup_and_shutdown_run(gannet_server):
    server = gannet_server("cfg_apps:app")
    # startup completes before the server listens
    log = server.log
    assert "cfg startup ran" in log
    assert log.index("cfg startup ran") < log.index("Listening on")
    assert "cfg shutdown ran" not in log
    assert httpx.get(server.url + "/").status_code == 200
    assert stop(server) == 0
    log = server.log
    assert log.count("cfg shutdown ran") == 1
    assert log.index("Shutting down") < log.index("cfg shutdown ran")


def test_state_reaches_request_scope(gannet_server):
    server = gannet_server("cfg_apps:app")
    for _ in range(2):
        body = httpx.get(server.url + "/info").json()
        assert body["state"] == {"token": "tok-123"}


def test_state_is_a_copy_per_request(gannet_server):
    # ASGI spec: each request gets a shallow copy of the lifespan state.
    server = gannet_server("cfg_lifespan:recording")
    assert httpx.get(server.url + "/").json() == {"seen": True}


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_failed_message_exits_3(mode):
    server = start_server("cfg_lifespan:failing", "--lifespan", mode, wait=False)
    try:
        assert server.wait(timeout=15) == 3, server.log
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    assert "database unreachable (cfg)" in server.log
    assert "Listening on" not in server.log
    assert "Traceback" not in server.log


def test_startup_exception_with_lifespan_on_exits_3():
    server = start_server("cfg_lifespan:raising", "--lifespan", "on", wait=False)
    try:
        assert server.wait(timeout=15) == 3, server.log
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    assert "lifespan exploded (cfg)" in server.log
    assert "Listening on" not in server.log


def test_lifespan_auto_tolerates_raising_app(gannet_server):
    server = gannet_server("cfg_lifespan:raising", "--lifespan", "auto")
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    assert response.text == "served without lifespan"
    server.wait_for_log(r"lifespan' protocol appears unsupported")
    assert stop(server) == 0


def test_lifespan_default_is_auto(gannet_server):
    server = gannet_server("cfg_lifespan:raising")
    assert httpx.get(server.url + "/").status_code == 200


def test_lifespan_off_never_calls_it(gannet_server):
    server = gannet_server("cfg_lifespan:recording", "--lifespan", "off")
    assert httpx.get(server.url + "/").json() == {}
    assert stop(server) == 0
    assert "cfg lifespan called" not in server.log


def test_lifespan_on_calls_it(gannet_server):
    server = gannet_server("cfg_lifespan:recording", "--lifespan", "on")
    assert "cfg lifespan called" in server.log
    assert httpx.get(server.url + "/").json() == {"seen": True}


def test_shutdown_failed_is_logged(gannet_server):
    server = gannet_server("cfg_lifespan:shutdown_fails")
    stop(server)
    assert "flush failed (cfg)" in server.log


def test_lifespan_scope_has_its_own_asgi_dict_with_spec_version_2_0(gannet_server):
    """ASGI lifespan spec: spec_version "2.0"; the lifespan scope's "asgi" dict is its own
    (the app mutates it at startup; requests never see the change)."""
    server = gannet_server("proc_apps:scope_probe")
    body = httpx.get(server.url + "/").json()
    assert body["lifespan_asgi"] == {"version": "3.0", "spec_version": "2.0"}
    assert body["request_asgi"]["version"] == "3.0"
    assert body["request_asgi"]["spec_version"] != "mutated by lifespan"
    assert "extra" not in body["request_asgi"]


def test_system_exit_in_lifespan_startup_is_a_startup_failure_exit_3():
    """sys.exit() in the app's startup is its failure (3, the app's message), not a way
    out of the server with the app's own exit code (on ddae8b1: 'Error loading app', 4)."""
    server = start_server("proc_apps:startup_exits", "--lifespan", "on", wait=False)
    try:
        assert server.wait(timeout=15) == 3, server.log
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    assert "Application startup failed: SystemExit: 7" in server.log
    assert "Listening on" not in server.log
