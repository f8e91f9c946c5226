"""A mod_wsgi script file (tests/e2e/test_wsgi_script_files.py): no .py suffix, an
``application`` at module level, a second callable for ``hello.wsgi:other``, and code that
runs once when the script is loaded. It reports what the loader made of it."""
import json
import os
import pickle
import sys

LOADED_IN = os.getpid()  # the process that ran this file: the master under --preload

if __name__ == "__main__":  # mod_wsgi never runs a script as __main__, nor may Gannet
    raise SystemExit("hello.wsgi was run as __main__")


class Token:
    """Pickled on each request: pickle finds this class through sys.modules[__name__]."""

    def __init__(self, value):
        self.value = value


def _reply(start_response, payload):
    body = json.dumps(payload).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    token = pickle.loads(pickle.dumps(Token(environ["PATH_INFO"])))
    return _reply(start_response, {
        "callable": "application",
        "name": __name__,
        "file": __file__,
        "registered": sys.modules.get(__name__) is sys.modules[Token.__module__],
        "loaded_in": LOADED_IN,
        "pid": os.getpid(),
        "path": token.value,
        "script_name": environ["SCRIPT_NAME"],
        "authorization": environ.get("HTTP_AUTHORIZATION"),
        "scheme": environ["wsgi.url_scheme"],
        "host": environ.get("HTTP_HOST"),
        "cwd": os.getcwd(),
    })


def other(environ, start_response):
    return _reply(start_response, {"callable": "other", "name": __name__})
