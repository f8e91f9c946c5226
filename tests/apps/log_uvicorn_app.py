"""An ASGI app that logs on uvicorn's logger, as FastAPI apps often do
(``logging.getLogger("uvicorn.error")``): tests/e2e/test_log_config.py."""
import logging

app_logger = logging.getLogger("uvicorn.error")


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    app_logger.info("app-logged-on-uvicorn-error %s", scope["path"])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
