"""Configuration sources, black-box and on gannet.config.Config: defaults < config file
(-c gannet.toml, or [tool.gannet] in ./pyproject.toml) < GANNET_* env < command line."""
from __future__ import annotations

import pickle
import signal
import socket
import time

import httpx
import pytest

from gannet.config import Config, ConfigError
from gannet.config.settings import BY_NAME, SETTINGS

pytestmark = pytest.mark.timeout(30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def info(server) -> dict:
    response = httpx.get(server.url + "/info")
    assert response.status_code == 200
    return response.json()


def wait_closed_by_server(sock: socket.socket, timeout: float) -> float:
    """Seconds until the server closes ``sock`` (EOF or reset); fails past ``timeout``."""
    start = time.monotonic()
    sock.settimeout(0.25)
    while time.monotonic() - start < timeout:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - start
        if not data:
            return time.monotonic() - start
    raise AssertionError(f"connection still open after {timeout}s")


def keep_alive_request(server) -> socket.socket:
    sock = server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    deadline = time.monotonic() + 5
    while b"cfg ok" not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data
    assert b"connection: close" not in data.lower()
    return sock


# ------------------------------------------------------------------ env vars (black-box)


def test_env_port(gannet_server):
    port = free_port()
    server = gannet_server("cfg_apps:app", port_args=(), env={"GANNET_PORT": str(port)})
    assert server.port == port
    assert httpx.get(server.url + "/").text == "cfg ok"


def test_env_access_log_false(gannet_server):
    server = gannet_server("cfg_apps:app", env={"GANNET_ACCESS_LOG": "false"})
    assert httpx.get(server.url + "/env-no-access-marker").status_code == 200
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    assert "/env-no-access-marker" not in server.log


def test_env_access_log_true_logs(gannet_server):
    server = gannet_server("cfg_apps:app", env={"GANNET_ACCESS_LOG": "true"})
    assert httpx.get(server.url + "/env-access-marker").status_code == 200
    server.wait_for_log(r"GET /env-access-marker HTTP/1\.1\" 200")


def test_env_timeout_keep_alive(gannet_server, tmp_path):
    # The file says 60 s, so a close within the deadline proves the env value won.
    (tmp_path / "gannet.toml").write_text("timeout_keep_alive = 60\n")
    server = gannet_server("cfg_apps:app", "-c", str(tmp_path / "gannet.toml"),
                           env={"GANNET_TIMEOUT_KEEP_ALIVE": "1"})
    with keep_alive_request(server) as sock:
        wait_closed_by_server(sock, timeout=8)


def test_env_root_path(gannet_server):
    server = gannet_server("cfg_apps:app", env={"GANNET_ROOT_PATH": "/from-env"})
    assert info(server)["root_path"] == "/from-env"


def test_env_list_bind(gannet_server):
    server = gannet_server("cfg_apps:app", port_args=(), env={"GANNET_BIND": "127.0.0.1:0,127.0.0.1:0"})
    server.wait_for_log(r"Listening on http://\S+(?:.|\n)*Listening on http://\S+")


# ------------------------------------------------------------------ config files


def test_config_file_top_level_keys(gannet_server, tmp_path):
    (tmp_path / "gannet.toml").write_text(
        'root-path = "/from-file"\n'
        'access_log_format = "CFGFILE %(m)s %(U)s %(s)s"\n')
    server = gannet_server("cfg_apps:app", "-c", str(tmp_path / "gannet.toml"))
    assert info(server)["root_path"] == "/from-file"
    server.wait_for_log(r"CFGFILE GET /from-file/info 200")


def test_config_file_names_the_app(gannet_server, tmp_path):
    (tmp_path / "gannet.toml").write_text('app = "cfg_apps:namespace.app"\nport = 0\n')
    server = gannet_server("", "-c", str(tmp_path / "gannet.toml"), port_args=())
    assert httpx.get(server.url + "/").text == "cfg ok (dotted)"


def test_pyproject_in_cwd(gannet_server, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.gannet]\nroot_path = "/from-pyproject"\n')
    server = gannet_server("cfg_apps:app", cwd=tmp_path)
    assert info(server)["root_path"] == "/from-pyproject"


def test_pyproject_without_tool_gannet_is_ignored(gannet_server, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n\n[tool.other]\nroot_path = "/x"\n')
    server = gannet_server("cfg_apps:app", cwd=tmp_path)
    assert info(server)["root_path"] == ""


def test_pyproject_given_with_c(gannet_server, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.gannet]\nroot-path = "/via-c"\n')
    server = gannet_server("cfg_apps:app", "-c", str(tmp_path / "pyproject.toml"))
    assert info(server)["root_path"] == "/via-c"


def test_pyproject_unknown_key_exits_2(gannet_server, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.gannet]\nwokers = 4\n')
    server = gannet_server("cfg_apps:app", cwd=tmp_path, wait=False)
    assert server.wait(timeout=15) == 2
    assert "wokers" in server.log


# ------------------------------------------------------------------ precedence, level by level


@pytest.fixture
def layered(tmp_path):
    path = tmp_path / "gannet.toml"
    path.write_text('root_path = "/file"\n')
    return str(path)


def test_precedence_default(gannet_server):
    assert info(gannet_server("cfg_apps:app"))["root_path"] == ""


def test_precedence_file_over_default(gannet_server, layered):
    assert info(gannet_server("cfg_apps:app", "-c", layered))["root_path"] == "/file"


def test_precedence_env_over_file(gannet_server, layered):
    server = gannet_server("cfg_apps:app", "-c", layered, env={"GANNET_ROOT_PATH": "/env"})
    assert info(server)["root_path"] == "/env"


def test_precedence_cli_over_env_and_file(gannet_server, layered):
    server = gannet_server("cfg_apps:app", "-c", layered, "--root-path", "/cli",
                           env={"GANNET_ROOT_PATH": "/env"})
    assert info(server)["root_path"] == "/cli"


def test_precedence_cli_over_pyproject(gannet_server, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.gannet]\nroot_path = "/pyproject"\n')
    server = gannet_server("cfg_apps:app", "--root-path", "/cli", cwd=tmp_path)
    assert info(server)["root_path"] == "/cli"


def test_precedence_port_env_over_file(gannet_server, tmp_path):
    file_port, env_port = free_port(), free_port()
    (tmp_path / "gannet.toml").write_text(f"port = {file_port}\n")
    server = gannet_server("cfg_apps:app", "-c", str(tmp_path / "gannet.toml"), port_args=(),
                           env={"GANNET_PORT": str(env_port)})
    assert server.port == env_port


def test_precedence_boolean_cli_over_env(gannet_server):
    server = gannet_server("cfg_apps:app", "--access-log", env={"GANNET_ACCESS_LOG": "0"})
    httpx.get(server.url + "/cli-wins-marker")
    server.wait_for_log(r"/cli-wins-marker")


def test_precedence_negated_cli_over_file(gannet_server, tmp_path):
    (tmp_path / "gannet.toml").write_text("access_log = true\n")
    server = gannet_server("cfg_apps:app", "-c", str(tmp_path / "gannet.toml"), "--no-access-log")
    assert httpx.get(server.url + "/negated-marker").status_code == 200
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    assert "/negated-marker" not in server.log


# ------------------------------------------------------------------ Config, in-process


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_config_defaults_match_settings():
    config = Config("x:app", environ={})
    for setting in SETTINGS:
        assert getattr(config, setting.name) == setting.default, setting.name
        assert config.sources[setting.name] == "default"


def test_config_layers(tmp_path):
    path = write(tmp_path, "gannet.toml", 'port = 1111\nroot_path = "/file"\nbacklog = 5\n')
    config = Config("x:app", config_file=path, environ={"GANNET_PORT": "2222", "GANNET_ROOT_PATH": "/env"},
                    root_path="/arg")
    assert config.backlog == 5 and config.sources["backlog"].startswith("file")
    assert config.port == 2222 and config.sources["port"] == "env"
    assert config.root_path == "/arg" and config.sources["root_path"] == "argument"


def test_config_types_from_env():
    config = Config("x:app", environ={"GANNET_TIMEOUT_KEEP_ALIVE": "2.5", "GANNET_ACCESS_LOG": "no",
                                      "GANNET_LIMIT_CONCURRENCY": "none", "GANNET_BIND": "a:1, b:2",
                                      "GANNET_LOG_LEVEL": "WARNING"})
    assert config.timeout_keep_alive == 2.5
    assert config.access_log is False
    assert config.limit_concurrency is None
    assert config.bind == ["a:1", "b:2"]
    assert config.log_level == "warning"


def test_config_file_typed_values(tmp_path):
    path = write(tmp_path, "gannet.toml", 'bind = ["127.0.0.1:1", "unix:/tmp/x"]\naccess-log = false\n'
                                          'limit_concurrency = 10\n')
    config = Config("x:app", config_file=path, environ={})
    assert config.bind == ["127.0.0.1:1", "unix:/tmp/x"]
    assert config.access_log is False
    assert config.limit_concurrency == 10
    assert config.bind_addresses == ["127.0.0.1:1", "unix:/tmp/x"]


@pytest.mark.parametrize("kwargs, env, needle", [
    ({"port": "abc"}, {}, "--port"),
    ({"port": 70000}, {}, "--port"),
    ({}, {"GANNET_PORT": "x"}, "GANNET_PORT"),
    ({"lifespan": "maybe"}, {}, "--lifespan"),
    ({"access_log": "perhaps"}, {}, "--access-log"),
    ({"no_such_option": 1}, {}, "no_such_option"),
    ({"timeout_keep_alive": True}, {}, "--timeout-keep-alive"),
    ({"bind": ["nonsense"]}, {}, "--bind"),
])
def test_config_errors_name_the_option(kwargs, env, needle):
    with pytest.raises(ConfigError) as info_:
        Config("x:app", environ=env, **kwargs)
    message = str(info_.value)
    assert needle in message
    assert "\n" not in message


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="bogus"):
        Config("x:app", config_file=write(tmp_path, "a.toml", "bogus = 1\n"), environ={})
    with pytest.raises(ConfigError, match="port"):
        Config("x:app", config_file=write(tmp_path, "b.toml", 'port = "http"\n'), environ={})
    with pytest.raises(ConfigError, match="no such file"):
        Config("x:app", config_file=str(tmp_path / "missing.toml"), environ={})


def test_config_bind_addresses_derivation():
    assert Config("x:app", environ={}, host="::1", port=9).bind_addresses == ["[::1]:9"]
    assert Config("x:app", environ={}, uds="/tmp/s").bind_addresses == ["unix:/tmp/s"]
    assert Config("x:app", environ={}, fd=3).bind_addresses == ["fd://3"]
    assert Config("x:app", environ={}, bind=["1.2.3.4:5"]).bind_addresses == ["1.2.3.4:5"]
    # Two ways of listening from one source contradict (tests/e2e/test_cli_options.py).
    with pytest.raises(ConfigError, match="--bind .* and --fd .* both say where to listen"):
        Config("x:app", environ={}, fd=3, bind=["1.2.3.4:5"])


def test_config_pickles(tmp_path):
    config = Config("x:app", environ={"GANNET_PORT": "1234"}, root_path="/p")
    clone = pickle.loads(pickle.dumps(config))
    assert clone.as_dict() == config.as_dict()
    assert clone.app == "x:app"


def test_config_discovers_pyproject_in_cwd(tmp_path, monkeypatch):
    write(tmp_path, "pyproject.toml", '[tool.gannet]\nport = 4321\n')
    monkeypatch.chdir(tmp_path)
    assert Config("x:app", environ={}).port == 4321


def test_every_setting_has_env_and_flag():
    for setting in SETTINGS:
        assert setting.env_var == "GANNET_" + setting.name.upper()
        if setting.cli:
            assert setting.flags and all(flag.startswith("-") for flag in setting.flags)
        assert BY_NAME[setting.name] is setting
