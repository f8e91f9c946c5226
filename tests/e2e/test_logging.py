"""Logging, black-box: the access log (default on, --no-access-log, --access-log-format
atoms), --log-level, and --log-config as JSON / YAML dictConfig and INI fileConfig."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import time

import httpx
import pytest

pytestmark = pytest.mark.timeout(30)


def stop(server) -> int:
    server.signal(signal.SIGTERM)
    return server.wait(timeout=15)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, server, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"server exited with {server.proc.returncode}:\n{server.log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # pacing a poll, not synchronising
    raise AssertionError(f"nothing listening on {port}; log:\n{server.log}")


def wait_file_contains(path, pattern: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            if re.search(pattern, text):
                return text
        time.sleep(0.05)  # pacing a poll, not synchronising
    raise AssertionError(f"{path} never matched {pattern!r}; it held:\n{text}")


# ------------------------------------------------------------------ the access log


def test_access_log_on_by_default(gannet_server):
    server = gannet_server("cfg_apps:app")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/first/path?x=1").status_code == 200
        assert client.post("/echo", content=b"abc").status_code == 200
    server.wait_for_log(r'127\.0\.0\.1:\d+ - "GET /first/path\?x=1 HTTP/1\.1" 200 \d+')
    server.wait_for_log(r'"POST /echo HTTP/1\.1" 200 3 ')
    assert stop(server) == 0
    lines = [line for line in server.log.splitlines() if "/first/path" in line]
    assert len(lines) == 1, lines


def test_access_log_one_line_per_request(gannet_server):
    server = gannet_server("cfg_apps:app")
    with httpx.Client(base_url=server.url) as client:
        for i in range(5):
            client.get(f"/count-{i}")
    assert stop(server) == 0
    for i in range(5):
        assert len(re.findall(rf"GET /count-{i} HTTP", server.log)) == 1


def test_access_log_status_of_app_error(gannet_server):
    server = gannet_server("basic:app")
    assert httpx.get(server.url + "/error").status_code == 500
    server.wait_for_log(r'"GET /error HTTP/1\.1" 500')


def test_no_access_log(gannet_server):
    server = gannet_server("cfg_apps:app", "--no-access-log")
    assert httpx.get(server.url + "/silent-path").status_code == 200
    assert stop(server) == 0
    assert "/silent-path" not in server.log
    assert "Listening on" in server.log  # the error log still works


def test_access_log_format_atoms(gannet_server):
    server = gannet_server("cfg_apps:app", "--access-log-format",
                           "%(h)s %(m)s %(U)s %(s)s %({user-agent}i)s %(M)s")
    httpx.get(server.url + "/fmt/path?q=1", headers={"user-agent": "cfg-agent/1.0"})
    # A custom format is printed as formatted: no time/pid/level prefix.
    match = server.wait_for_log(r"(?m)^(\S+) (\S+) (/fmt\S*) (\S+) (\S+) (\S+)$")
    host, method, path, status, agent, millis = match.groups()
    assert host == "127.0.0.1"
    assert method == "GET"
    assert path == "/fmt/path"
    assert status == "200"
    assert agent == "cfg-agent/1.0"
    assert millis.isdigit()


def test_access_log_format_more_atoms(gannet_server):
    fmt = ("A|%(r)s|%(q)s|%(H)s|%(B)s|%(b)s|%({content-type}o)s|%({x-missing}i)s|%(f)s|%(a)s|"
           "%(p)s|%(D)s|%(T)s|%(l)s|%(u)s|%({GANNET_CFG_MARK}e)s|%(t)s|Z")
    server = gannet_server("cfg_apps:app", "--access-log-format", fmt, env={"GANNET_CFG_MARK": "marked"})
    httpx.get(server.url + "/atoms?a=b", headers={"referer": "http://ref/", "user-agent": "ua/2"})
    line = server.wait_for_log(r"A\|.*\|Z").group(0)
    parts = line.split("|")
    assert parts[1] == "GET /atoms?a=b HTTP/1.1"
    assert parts[2] == "a=b"
    assert parts[3] == "HTTP/1.1"
    assert parts[4] == str(len("/atoms"))
    assert parts[5] == parts[4]
    assert parts[6] == "text/plain"
    assert parts[7] == "-"
    assert parts[8] == "http://ref/"
    assert parts[9] == "ua/2"
    assert re.fullmatch(r"<\d+>", parts[10])
    assert parts[11].isdigit() and parts[12].isdigit()
    assert parts[13] == "-" and parts[14] == "-"
    assert parts[15] == "marked"
    assert re.fullmatch(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", parts[16])


def test_access_log_percent_in_path(gannet_server):
    server = gannet_server("cfg_apps:app")
    httpx.get(server.url + "/100%25done")
    server.wait_for_log(r'"GET /100%25done HTTP/1\.1" 200')


# ------------------------------------------------------------------ log level


def test_log_level_warning_silences_info(gannet_server):
    port = free_port()
    # --limit-max-requests 1 makes the server log a warning and exit by itself.
    server = gannet_server("cfg_apps:app", "--log-level", "warning", "--limit-max-requests", "1",
                           port_args=("--port", str(port)), wait=False)
    wait_port(port, server)
    assert httpx.get(f"http://127.0.0.1:{port}/quiet-path").status_code == 200
    assert server.wait(timeout=15) == 0
    log = server.log
    assert "Maximum request limit" in log  # warnings still show
    assert "[INFO]" not in log
    assert "Listening on" not in log
    assert "/quiet-path" not in log


def test_log_level_debug_still_logs_info(gannet_server):
    server = gannet_server("cfg_apps:app", "--log-level", "debug")
    httpx.get(server.url + "/dbg")
    server.wait_for_log(r"GET /dbg HTTP")


def test_log_level_from_env(gannet_server):
    port = free_port()
    server = gannet_server("cfg_apps:app", "--limit-max-requests", "1", port_args=("--port", str(port)),
                           env={"GANNET_LOG_LEVEL": "ERROR"}, wait=False)
    wait_port(port, server)
    httpx.get(f"http://127.0.0.1:{port}/")
    assert server.wait(timeout=15) == 0
    assert "Maximum request limit" not in server.log  # a warning: below ERROR


# ------------------------------------------------------------------ --log-config


def _dict_config(access_file) -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "CFGLOG %(levelname)s %(message)s"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(access_file), "formatter": "plain"},
            "err": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"},
        },
        "loggers": {
            "gannet.access": {"handlers": ["file"], "level": "INFO", "propagate": False},
            "gannet.error": {"handlers": ["err"], "level": "INFO", "propagate": False},
        },
    }


INI = """\
[loggers]
keys=root,access,error

[handlers]
keys=file,err

[formatters]
keys=plain

[logger_root]
level=WARNING
handlers=

[logger_access]
level=INFO
handlers=file
propagate=0
qualname=gannet.access

[logger_error]
level=INFO
handlers=err
propagate=0
qualname=gannet.error

[handler_file]
class=FileHandler
formatter=plain
args=({path!r}, 'a')

[handler_err]
class=StreamHandler
formatter=plain
args=(sys.stderr,)

[formatter_plain]
format=CFGLOG %(levelname)s %(message)s
"""


def _write_log_config(kind: str, tmp_path, access_file) -> str:
    if kind == "json":
        path = tmp_path / "log.json"
        path.write_text(json.dumps(_dict_config(access_file)))
    elif kind == "yaml":
        yaml = pytest.importorskip("yaml")
        path = tmp_path / "log.yaml"
        path.write_text(yaml.safe_dump(_dict_config(access_file)))
    else:
        path = tmp_path / "log.ini"
        path.write_text(INI.format(path=str(access_file)))
    return str(path)


@pytest.mark.parametrize("kind", ["json", "yaml", "ini"])
def test_log_config_sends_access_log_to_file(gannet_server, tmp_path, kind):
    access_file = tmp_path / "access.log"
    config = _write_log_config(kind, tmp_path, access_file)
    server = gannet_server("cfg_apps:app", "--log-config", config)
    server.wait_for_log(r"CFGLOG INFO Listening on")  # the error logger uses the user's format
    assert httpx.get(server.url + f"/logged-{kind}").status_code == 200
    text = wait_file_contains(access_file, rf'CFGLOG INFO .*"GET /logged-{kind} HTTP/1\.1" 200')
    assert text.count(f"/logged-{kind}") == 1
    assert stop(server) == 0
    assert f"/logged-{kind}" not in server.log  # only in the file, not on stdout/stderr


def test_log_config_levels_are_not_overridden_by_default_log_level(gannet_server, tmp_path):
    """A --log-config that sets gannet.access to WARNING silences the access log; the
    default --log-level (not given on the command line) must not turn it back on."""
    access_file = tmp_path / "access.log"
    config = _dict_config(access_file)
    config["loggers"]["gannet.access"]["level"] = "WARNING"
    path = tmp_path / "log.json"
    path.write_text(json.dumps(config))
    server = gannet_server("cfg_apps:app", "--log-config", str(path))
    assert httpx.get(server.url + "/should-not-be-logged").status_code == 200
    assert stop(server) == 0  # the process is gone: everything it would log is written
    text = access_file.read_text() if access_file.exists() else ""
    assert "/should-not-be-logged" not in text


def test_malformed_access_log_format_exits_2(tmp_path):
    """'%(h' cannot format any line: refuse it at start-up like any bad value, rather
    than logging an exception on every request."""
    import subprocess
    import sys

    from conftest import APPS, ROOT

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(APPS), str(ROOT / "src")]))
    proc = subprocess.Popen([sys.executable, "-m", "gannet", "cfg_apps:app", "--port", "0",
                             "--access-log-format", "%(h", "--limit-max-requests", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(APPS))
    try:
        out, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=5)
        raise AssertionError(f"server started with a malformed --access-log-format:\n{out}{err}")
    assert proc.returncode == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert "--access-log-format" in err


def test_log_config_missing_file_exits_2(tmp_path):
    import subprocess
    import sys

    from conftest import APPS, ROOT

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(APPS), str(ROOT / "src")]))
    result = subprocess.run([sys.executable, "-m", "gannet", "cfg_apps:app", "--port", "0",
                             "--log-config", str(tmp_path / "nope.json")],
                            capture_output=True, text=True, env=env, cwd=str(APPS), timeout=15)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--log-config" in result.stderr and "nope.json" in result.stderr
