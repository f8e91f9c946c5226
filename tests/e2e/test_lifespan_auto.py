"""--lifespan auto (the default): an app that took the startup event and then failed
is a startup failure (exit 3), while an app that knows nothing of lifespan is served."""
from __future__ import annotations

import httpx


def test_exception_after_taking_startup_is_a_startup_failure(gannet_server):
    server = gannet_server("followup_lifespan:exits_in_startup", wait=False)
    assert server.wait(timeout=20) == 3
    assert "database unreachable" in server.log


def test_app_unaware_of_lifespan_is_served(gannet_server):
    server = gannet_server("followup_lifespan:http_only")
    assert httpx.get(server.url + "/", timeout=10).text == "served"
    server.wait_for_log(r"(?i)lifespan.*unsupported")


def test_app_that_reads_the_event_as_a_request_is_served(gannet_server):
    """An app unaware of lifespan that takes the startup event as a request and fails on
    it (KeyError 'body') is not a startup failure in auto mode, as with uvicorn."""
    server = gannet_server("followup_lifespan:reads_body_first")
    assert httpx.get(server.url + "/", timeout=10).text == "served"
