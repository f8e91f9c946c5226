"""--log-config files written for uvicorn work here (issue 10): uvicorn's logger names are
applied to Gannet's loggers when the file names none of Gannet's, uvicorn's formatter
classes are replaced by equivalents (uvicorn need not be installed, and its
AccessFormatter would fail on Gannet's access records), a config that leaves Gannet's
loggers without a handler says so, and a broken file exits 2 with one line naming it."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import httpx
import pytest

from conftest import APPS, ROOT
from test_logging import free_port, wait_port

pytestmark = pytest.mark.timeout(30)

# uvicorn's own LOGGING_CONFIG (uvicorn/config.py), copied literally: uvicorn is not a
# test dependency, and this is the dict its users pass to dictConfig or dump to a file.
UVICORN_LOGGING_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "uvicorn.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
        "access": {
            "()": "uvicorn.logging.AccessFormatter",
            "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
        },
    },
    "handlers": {
        "default": {"formatter": "default", "class": "logging.StreamHandler",
                    "stream": "ext://sys.stderr"},
        "access": {"formatter": "access", "class": "logging.StreamHandler",
                   "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}

# The same shape as a fileConfig file, with the "class" spelling of the formatters.
UVICORN_INI = """\
[loggers]
keys=root,uvicorn,uvicorn_error,uvicorn_access

[handlers]
keys=default,access

[formatters]
keys=default,access

[logger_root]
level=WARNING
handlers=

[logger_uvicorn]
level=INFO
handlers=default
propagate=0
qualname=uvicorn

[logger_uvicorn_error]
level=INFO
handlers=
qualname=uvicorn.error

[logger_uvicorn_access]
level=INFO
handlers=access
propagate=0
qualname=uvicorn.access

[handler_default]
class=StreamHandler
formatter=default
args=(sys.stderr,)

[handler_access]
class=StreamHandler
formatter=access
args=(sys.stdout,)

[formatter_default]
class=uvicorn.logging.DefaultFormatter
format=%(levelprefix)s %(message)s

[formatter_access]
class=uvicorn.logging.AccessFormatter
format=%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s
"""


def write_config(tmp_path, kind: str, config=None) -> str:
    if kind == "ini":
        path = tmp_path / "logging.ini"
        path.write_text(UVICORN_INI if config is None else config)
    else:
        path = tmp_path / "logging.json"
        path.write_text(json.dumps(UVICORN_LOGGING_CONFIG if config is None else config))
    return str(path)


def stopped_log(server) -> str:
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=15) == 0, server.log
    return server.log


@pytest.mark.parametrize("kind", ["json", "ini"])
def test_uvicorn_log_config_logs_gannet_in_uvicorns_format(gannet_server, tmp_path, kind):
    server = gannet_server("log_uvicorn_app:app", "--log-config", write_config(tmp_path, kind))
    assert httpx.get(server.url + "/via-uvicorn-config?x=1").status_code == 200
    # uvicorn's access line shape, from Gannet's access record: client - "request line" status
    server.wait_for_log(r'(?m)^INFO:     127\.0\.0\.1:\d+ - "GET /via-uvicorn-config\?x=1 HTTP/1\.1" 200')
    log = stopped_log(server)
    assert re.search(r"(?m)^INFO:     Listening on http://", log)  # the error log, uvicorn-style
    assert re.search(r"(?m)^INFO:     --log-config .*aliases \(uvicorn → gannet, uvicorn\.error → "
                     r"gannet\.error, uvicorn\.access → gannet\.access\)", log)
    # The app's own records on uvicorn.error still arrive, as under uvicorn.
    assert re.search(r"(?m)^INFO:     app-logged-on-uvicorn-error /via-uvicorn-config$", log)
    assert "Logging error" not in log and "Traceback" not in log
    assert len(re.findall(r"GET /via-uvicorn-config", log)) == 1


def test_gannet_loggers_named_means_no_aliases(gannet_server, tmp_path):
    config = json.loads(json.dumps(UVICORN_LOGGING_CONFIG))
    config["formatters"]["tagged"] = {"format": "GANNET-OWN %(message)s"}
    config["handlers"]["tagged"] = {"class": "logging.StreamHandler", "formatter": "tagged",
                                    "stream": "ext://sys.stderr"}
    config["loggers"]["gannet"] = {"handlers": ["tagged"], "level": "INFO", "propagate": False}
    server = gannet_server("log_uvicorn_app:app", "--log-config", write_config(tmp_path, "json", config))
    assert httpx.get(server.url + "/own").status_code == 200
    server.wait_for_log(r'GANNET-OWN 127\.0\.0\.1:\d+ - "GET /own HTTP/1\.1" 200')
    log = stopped_log(server)
    assert "aliases" not in log and not re.search(r"(?m)^INFO:     Listening on", log)


def test_config_without_a_handler_for_gannet_says_so(gannet_server, tmp_path):
    config = {"version": 1, "disable_existing_loggers": False,
              "handlers": {"out": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
              "loggers": {"myproject": {"handlers": ["out"], "level": "INFO"}}}
    path = write_config(tmp_path, "json", config)
    port = free_port()
    server = gannet_server("log_uvicorn_app:app", "--log-config", path, wait=False,
                           port_args=("--port", str(port)))
    match = server.wait_for_log(r"gannet: warning: --log-config (\S+): no handler receives the "
                                r"records of gannet\.error and gannet\.access")
    assert match.group(1) == path
    # A warning, not a failure: it serves on (and logs nothing, as it said).
    wait_port(port, server)
    assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    assert stopped_log(server).count("gannet: warning") == 1
    assert "Listening on" not in server.log


def test_root_handler_with_disable_existing_loggers_still_shows_gannet(gannet_server, tmp_path):
    """dictConfig disables existing loggers unless told otherwise; Gannet's loggers exist
    only because Gannet started first, and a root handler is meant for them too."""
    config = {"version": 1,  # disable_existing_loggers defaults to true
              "formatters": {"plain": {"format": "ROOT %(name)s %(message)s"}},
              "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain",
                                   "stream": "ext://sys.stderr"}},
              "root": {"handlers": ["out"], "level": "INFO"}}
    server = gannet_server("log_uvicorn_app:app", "--log-config", write_config(tmp_path, "json", config),
                           wait=False)
    server.wait_for_log(r"ROOT gannet\.error Listening on http://")
    assert "no handler receives" not in server.log
    stopped_log(server)


BROKEN = {
    "bad.json": ('{"version": 1,', r"not valid JSON"),
    "list.json": ("[1, 2]", r"must hold a dictConfig mapping, not list"),
    "formatter.json": (json.dumps({"version": 1, "formatters": {"f": {"()": "no_such_module.Formatter"}}}),
                       r"Unable to configure formatter 'f'.*no_such_module"),
    "handler.json": (json.dumps({"version": 1, "handlers": {"h": {"class": "logging.FileHandler",
                                                                  "filename": "/no/such/dir/x.log"}}}),
                     r"Unable to configure handler 'h'.*No such file or directory"),
    "garbage.ini": ("this is not an ini file\n", r"not a fileConfig INI file"),
    "nosections.ini": ("[loggers]\nkeys=root\n", r"missing|formatters|handlers"),
    "list.yaml": ("- 1\n- 2\n", r"must hold a dictConfig mapping, not list"),
    "bad.yaml": ("version: [1\n", r"not valid YAML"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_log_config_exits_2_with_one_line_naming_the_file(tmp_path, name):
    text, reason = BROKEN[name]
    if name.endswith(".yaml"):
        pytest.importorskip("yaml")
    path = tmp_path / name
    path.write_text(text)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(APPS), str(ROOT / "src")]))
    result = subprocess.run([sys.executable, "-m", "gannet", "log_uvicorn_app:app", "--port", "0",
                             "--log-config", str(path)],
                            capture_output=True, text=True, env=env, cwd=str(APPS), timeout=15)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"gannet: error: --log-config {path}: "), lines[0]
    assert lines[0].count(str(path)) == 1, lines[0]
    assert re.search(reason, lines[0]), lines[0]
