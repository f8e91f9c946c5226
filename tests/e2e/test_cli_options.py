"""Options that fail helpfully (issue 10): empty GANNET_* values, unknown GANNET_* variables,
no flag abbreviations and hints for uvicorn's and gunicorn's flags, --header, --env-file,
conflicting listen options, config-file errors that name the file, a broken --log-config,
and -c with a Python file. Black-box where the behaviour is the command line's; Config
in-process for the breadth of the rules."""
from __future__ import annotations

import re
import subprocess

import httpx
import pytest
from conftest import raw_request
from test_cli import free_port, one_line_error, run_gannet, short_tmp
from websockets.sync.client import connect as ws_connect

from gannet.cli import build_parser
from gannet.config import Config, ConfigError
from gannet.config.env_file import EnvFileError, parse_env_file
from gannet.config.foreign_flags import FOREIGN_FLAGS

pytestmark = pytest.mark.timeout(60)

# A server that starts when it should have refused exits only at this deadline: the
# subprocess times out and the test fails (never hangs).
REFUSE_WITHIN = 10.0


def refused(*args: str, env: dict[str, str] | None = None, cwd=None) -> str:
    """Run gannet expecting exit 2 and one line on stderr; that line."""
    try:
        result = run_gannet(*args, env=env, cwd=cwd, timeout=REFUSE_WITHIN)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"gannet {' '.join(args)} kept running instead of refusing") from None
    line = one_line_error(result)
    assert line.startswith("gannet: error: "), line
    return line


def head_of(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()


# ------------------------------------------------------------------ empty environment values


def test_empty_gannet_host_is_refused_not_bound_to_every_interface():
    line = refused("cfg_apps:app", "--port", "0", env={"GANNET_HOST": ""})
    assert "GANNET_HOST" in line and "empty" in line


@pytest.mark.parametrize("name", [
    "GANNET_HOST", "GANNET_PORT", "GANNET_ACCESS_LOG", "GANNET_FACTORY",
    "GANNET_LIMIT_CONCURRENCY", "GANNET_UDS", "GANNET_LOG_CONFIG", "GANNET_WS_PING_INTERVAL",
    "GANNET_ROOT_PATH", "GANNET_BIND", "GANNET_HEADER", "GANNET_APP",
])
@pytest.mark.parametrize("value", ["", "   "])
def test_every_empty_variable_is_an_error_naming_it(name, value):
    with pytest.raises(ConfigError) as error:
        Config("x:app", environ={name: value})
    message = str(error.value)
    assert name in message and "empty" in message and "\n" not in message


@pytest.mark.parametrize("text", ['host = ""', 'uds = ""', 'bind = [""]', 'host = "  "'])
def test_empty_listen_values_in_the_file_are_errors(tmp_path, text):
    path = tmp_path / "gannet.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as error:
        Config("x:app", config_file=str(path), environ={})
    assert str(path) in str(error.value)


# ------------------------------------------------------------------ unknown GANNET_* variables


def test_unknown_variable_is_logged_with_the_closest_option(gannet_server):
    server = gannet_server("cfg_apps:app", env={"GANNET_TIMEOUT_KEEPALIVE": "3"})
    server.wait_for_log(r"\[WARNING\] GANNET_TIMEOUT_KEEPALIVE is not a Gannet option and "
                        r"is ignored; did you mean GANNET_TIMEOUT_KEEP_ALIVE\?")


def test_unknown_variable_for_a_foreign_option_says_so():
    # gunicorn's --daemon, which Gannet leaves to the service manager
    config = Config("x:app", environ={"GANNET_DAEMON": "1", "GANNET_PORT": "1"})
    assert len(config.warnings) == 1
    assert "GANNET_DAEMON" in config.warnings[0] and "not available" in config.warnings[0]


def test_known_variables_give_no_warning():
    config = Config("x:app", environ={"GANNET_PORT": "1", "GANNET_APP": "y:app"})
    assert config.warnings == []


# ------------------------------------------------------------------ flags


def test_no_abbreviations():
    line = refused("cfg_apps:app", "--port", "0", "--header-read", "5")
    assert "unrecognized argument --header-read; did you mean --header-read-timeout?" in line


def test_header_is_not_header_read_timeout():
    line = refused("cfg_apps:app", "--port", "0", "--header", "5")
    assert "--header: expected NAME:VALUE" in line


@pytest.mark.parametrize("args, needles", [
    # (--timeout, -w/--workers, --graceful-timeout, --max-requests are Gannet's own now)
    (["--keep-alive", "5"], ["--timeout-keep-alive"]),
    (["--keep-alive=5"], ["gunicorn's --keep-alive"]),
    (["--daemon"], ["gunicorn's --daemon", "systemd"]),
    (["--ssl-version", "2"], ["--ssl-min-version"]),
    (["--reload-engine", "inotify"], ["gunicorn's --reload-engine", "watchfiles"]),
    (["-k", "uvicorn.workers.UvicornWorker"], ["gunicorn's -k", "--interface"]),
    (["--access-logfile", "-"], ["--no-access-log"]),
    (["--tiemout-keep-alive", "3"], ["did you mean --timeout-keep-alive?"]),
])
def test_unknown_flags_say_what_to_use_instead(args, needles):
    line = refused("cfg_apps:app", "--port", "0", *args)
    assert "unrecognized argument" in line
    for needle in needles:
        assert needle in line, line


def test_foreign_flag_table_points_only_at_real_gannet_flags():
    gannet_flags = set(build_parser()._option_string_actions)
    for flag, (whose, text) in FOREIGN_FLAGS.items():
        assert flag not in gannet_flags, f"{flag} is a Gannet flag now: drop it from the table"
        assert whose in ("uvicorn's", "gunicorn's", "uvicorn's and gunicorn's")
        for named in re.findall(r"--[a-z][a-z-]*[a-z]", text):
            assert named in gannet_flags, f"{flag}: the hint names {named}, not a Gannet flag"


def test_two_apps_get_a_clear_message():
    line = refused("cfg_apps:app", "other:app", "--port", "0")
    assert "'other:app'" in line and "APP was already given as 'cfg_apps:app'" in line


def test_value_after_a_boolean_flag_gets_a_clear_message():
    line = refused("cfg_apps:app", "--port", "0", "--ws-per-message-deflate", "false")
    assert "boolean options take no value" in line


def test_python_config_file_is_read_as_python(tmp_path):
    # Valid TOML as well as Python: the name decides, and a .py file is Python.
    (tmp_path / "gunicorn.conf.py").write_text('workers = "x"\n')
    line = refused("cfg_apps:app", "-c", str(tmp_path / "gunicorn.conf.py"))
    assert f"workers (from {tmp_path / 'gunicorn.conf.py'}): expected an integer" in line


# ------------------------------------------------------------------ --header


def test_header_on_asgi_responses_app_value_wins(gannet_server):
    server = gannet_server("opt_headers:app", "--header", "X-Frame-Options: DENY",
                           "--header", "x-team:core")
    plain = httpx.get(server.url + "/")
    assert plain.headers.get_list("x-frame-options") == ["DENY"]
    assert plain.headers["x-team"] == "core" and plain.headers["server"] == "gannet"
    own = httpx.get(server.url + "/own")
    assert own.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert own.headers.get_list("server") == ["app-server"]
    assert own.headers["x-team"] == "core"


def test_header_named_server_replaces_gannets(gannet_server):
    server = gannet_server("opt_headers:app", "--header", "Server: edge")
    assert httpx.get(server.url + "/").headers.get_list("server") == ["edge"]


def test_header_on_wsgi_responses(gannet_server):
    server = gannet_server("opt_headers:wsgi", "--header", "x-team: core")
    response = httpx.get(server.url + "/")
    assert response.text == "wsgi ok" and response.headers["x-team"] == "core"


def test_header_on_gannets_own_refusals(gannet_server):
    server = gannet_server("opt_headers:app", "--header", "x-team: core")
    raw = raw_request(server, b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400"), raw
    assert "x-team: core" in head_of(raw)


def test_header_on_websocket_handshake_and_denial(gannet_server):
    server = gannet_server("opt_headers:app", "--header", "x-team: core")
    with ws_connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        assert ws.response.headers["x-team"] == "core"
    raw = raw_request(server, b"GET /ws-deny HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            b"Sec-WebSocket-Version: 13\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 403"), raw
    assert "x-team: core" in head_of(raw)


def test_header_from_environment_one_per_line(gannet_server):
    server = gannet_server("opt_headers:app", env={
        "GANNET_HEADER": "Cache-Control: no-cache, no-store\nx-team: core"})
    response = httpx.get(server.url + "/")
    assert response.headers["cache-control"] == "no-cache, no-store"
    assert response.headers["x-team"] == "core"


def test_header_from_config_file(tmp_path):
    path = tmp_path / "gannet.toml"
    path.write_text('header = ["x-a: 1", "x-b:2"]\n')
    assert Config("x:app", config_file=str(path), environ={}).header == ["x-a: 1", "x-b: 2"]


@pytest.mark.parametrize("value, reason", [
    ("bad name: x", "not a valid header name"),
    ("x-a: b\rc", "control character"),
    ("x-a: b\x01c", "control character"),
    ("x-a: b\x7fc", "control character"),
    ("no-colon", "expected NAME:VALUE"),
    ("Content-Length: 5", "set by the server itself"),
    ("Date: now", "--no-date-header"),
])
def test_bad_header_exits_2_naming_the_option(value, reason):
    line = refused("cfg_apps:app", "--port", "0", "--header", value)
    assert "--header" in line and reason in line


# ------------------------------------------------------------------ --env-file


def test_env_file_sets_options_and_the_apps_environment(gannet_server, tmp_path):
    (tmp_path / ".env").write_text(
        "# settings\nexport GANNET_ROOT_PATH=/from-file\nOPT_MARK='seen by the app'\n"
        'GANNET_HEADER="x-a: 1\\nx-b: 2"\n')
    server = gannet_server("opt_headers:app", "--env-file", str(tmp_path / ".env"))
    response = httpx.get(server.url + "/env/OPT_MARK")
    assert response.text == "seen by the app"
    assert response.headers["x-a"] == "1" and response.headers["x-b"] == "2"
    server.wait_for_log(r'"GET /from-file/env/OPT_MARK HTTP/1\.1" 200')  # root_path


def test_env_file_loses_to_the_environment(tmp_path):
    (tmp_path / ".env").write_text("GANNET_PORT=1111\nGANNET_BACKLOG=7\n")
    config = Config("x:app", environ={"GANNET_PORT": "2222"}, env_file=str(tmp_path / ".env"))
    assert config.port == 2222 and config.backlog == 7


def test_env_file_empty_value_names_the_file(tmp_path):
    (tmp_path / ".env").write_text("GANNET_HOST=\n")
    line = refused("cfg_apps:app", "--port", "0", "--env-file", str(tmp_path / ".env"))
    assert "GANNET_HOST" in line and ".env" in line and "empty" in line


def test_env_file_malformed_line_names_file_and_line(tmp_path):
    (tmp_path / ".env").write_text("A=1\n\nthis is not an assignment\n")
    line = refused("cfg_apps:app", "--port", "0", "--env-file", str(tmp_path / ".env"))
    assert f"{tmp_path / '.env'}:3" in line


def test_env_file_missing_is_an_error(tmp_path):
    line = refused("cfg_apps:app", "--port", "0", "--env-file", str(tmp_path / "absent.env"))
    assert "--env-file" in line and "absent.env" in line and "no such file" in line


def test_env_file_syntax(tmp_path, monkeypatch):
    monkeypatch.setenv("OPT_OUTER", "outer")
    path = tmp_path / ".env"
    path.write_text(
        "# comment\n\n"
        "PLAIN = value with spaces   # trailing comment\n"
        "export EXPORTED=yes\n"
        "SINGLE='literal ${OPT_OUTER} \\n #'\n"
        'DOUBLE="line1\\nline2 \\"q\\" ${OPT_OUTER}"\n'
        'MULTI="first\nsecond"\n'
        "REF=${PLAIN}-${MISSING:-fallback}\n"
        "EMPTY=\n"
        "HASH=a#b\n")
    assert parse_env_file(str(path)) == {
        "PLAIN": "value with spaces", "EXPORTED": "yes", "SINGLE": "literal ${OPT_OUTER} \\n #",
        "DOUBLE": 'line1\nline2 "q" outer', "MULTI": "first\nsecond",
        "REF": "value with spaces-fallback", "EMPTY": "", "HASH": "a#b"}


@pytest.mark.parametrize("text, line", [
    ('A="never closed\n', 1), ("OK=1\n1BAD=2\n", 2), ("A='x' trailing\n", 1), ("=1\n", 1)])
def test_env_file_errors_name_the_line(tmp_path, text, line):
    path = tmp_path / ".env"
    path.write_text(text)
    with pytest.raises(EnvFileError, match=re.escape(f"{path}:{line}:")):
        parse_env_file(str(path))


# ------------------------------------------------------------------ listen options


def test_command_line_port_overrides_bind_from_environment(gannet_server):
    taken = free_port()
    server = gannet_server("cfg_apps:app", env={"GANNET_BIND": f"127.0.0.1:{taken}"})
    assert server.port != taken  # --port 0 from the command line won
    server.wait_for_log(r"\[INFO\] --port \(command line\) overrides GANNET_BIND \(environment\)")


def test_command_line_host_overrides_bind_from_file(gannet_server, tmp_path):
    taken = free_port()
    (tmp_path / "gannet.toml").write_text(f'bind = ["127.0.0.1:{taken}"]\n')
    server = gannet_server("cfg_apps:app", "-c", str(tmp_path / "gannet.toml"),
                           port_args=("--host", "127.0.0.1", "--port", "0"))
    assert server.port != taken
    server.wait_for_log(r"overrides bind \(" + re.escape(str(tmp_path / "gannet.toml")))


def test_uds_with_bind_is_an_error_naming_both():
    line = refused("cfg_apps:app", "--uds", short_tmp() + "/s.sock", "-b", "127.0.0.1:0")
    assert "--uds" in line and "--bind" in line


def test_fd_with_host_is_an_error_naming_both():
    line = refused("cfg_apps:app", "--fd", "3", "--host", "127.0.0.1")
    assert "--fd" in line and "--host" in line


def test_same_source_conflict_in_the_environment():
    with pytest.raises(ConfigError, match="GANNET_HOST .*GANNET_UDS"):
        Config("x:app", environ={"GANNET_HOST": "0.0.0.0", "GANNET_UDS": "/tmp/s"})


def test_host_and_port_still_combine_across_sources():
    config = Config("x:app", environ={"GANNET_HOST": "::1"}, port=9)
    assert config.bind_addresses == ["[::1]:9"] and config.notes == []


# ------------------------------------------------------------------ config-file and log-config errors


def test_config_file_value_error_names_the_file(tmp_path):
    path = tmp_path / "gannet.toml"
    path.write_text('port = "x"\n')
    line = refused("cfg_apps:app", "-c", str(path))
    assert f"--port (from {path}): expected an integer, got 'x'" in line


@pytest.mark.parametrize("name, text", [
    ("log.txt", "just text\n"),
    ("log.ini", "[loggers]\nkeys=root\n"),
    ("log.json", '{"version": 1, "handlers": {"h": {"class": "nope.Nope"}}}'),
    ("log.json", "{not json"),
    ("absent.ini", None),
])
def test_broken_log_config_is_one_line_and_exit_2(tmp_path, name, text):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    line = refused("cfg_apps:app", "--port", "0", "--log-config", str(path))
    assert line.startswith(f"gannet: error: --log-config {path}: "), line
