"""A WSGI app whose callable is not called ``app``: ``gannet load_simple_app:app`` must
suggest 'load_simple_app:simple_app' and nothing else (the imports, helpers, constants
and classes around it are not apps)."""
import json
import logging
import os  # noqa: F401
from collections import OrderedDict  # noqa: F401
from typing import Any, Optional  # noqa: F401

log = logging.getLogger(__name__)
SETTINGS = {"debug": False}
dumps = json.dumps


class ConfigError(Exception):
    """Looks callable (a class), is no app."""


def helper(value):
    return value


async def fetch(url, timeout):
    return url, timeout


def simple_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"load simple app"]
