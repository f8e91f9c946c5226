"""The command line, black-box: app loading, entry points, --help/--version, binding, and
the exit statuses for bad options and apps that fail to load (cli.py: 2 = bad option or
config value, 3 = lifespan startup failed, 4 = app could not be imported or built)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from conftest import APPS, ROOT, RunningServer, popen_logged, start_server

pytestmark = pytest.mark.timeout(30)

SRC = ROOT / "src"


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(SRC), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    for key in list(env):
        if key.startswith("GANNET_"):
            del env[key]
    if extra:
        env.update(extra)
    return env


def run_gannet(*args: str, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None,
               timeout: float = 15.0) -> subprocess.CompletedProcess:
    """Run ``python -m gannet ARGS`` to completion (for commands that must exit by themselves)."""
    return subprocess.run([sys.executable, "-m", "gannet", *args], capture_output=True, text=True,
                          env=_env(env), cwd=str(cwd or APPS), timeout=timeout)


def spawn(command: list[str], *, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None,
          pass_fds: tuple[int, ...] = ()) -> RunningServer:
    """Popen a long-running command with the same log pump as conftest's start_server."""
    return popen_logged(command, env=_env(env), cwd=cwd, pass_fds=pass_fds)


@pytest.fixture
def spawned():
    procs: list[RunningServer] = []

    def factory(*args, **kwargs) -> RunningServer:
        server = spawn(*args, **kwargs)
        procs.append(server)
        return server

    yield factory
    for server in procs:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=5)


def listening_urls(server: RunningServer, count: int = 1, timeout: float = 15.0) -> list[str]:
    """The URLs of the first ``count`` 'Listening on' lines, waiting for them with a deadline."""
    pattern = r"(?:Listening on http://\S+(?:.|\n)*?){%d}" % count
    server.wait_for_log(pattern, timeout=timeout)
    return re.findall(r"Listening on (http://\S+)", server.log)


def stop_ok(server: RunningServer) -> None:
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=15) == 0, server.log


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def short_tmp() -> str:
    # Unix socket paths must stay under ~107 bytes; pytest's tmp_path can be longer.
    return tempfile.mkdtemp(prefix="gannet-", dir="/tmp")


# ------------------------------------------------------------------ loading the app


def test_module_attr(gannet_server):
    server = gannet_server("cfg_apps:app")
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    assert response.text == "cfg ok"
    server.wait_for_log(r"Detected the ASGI3 interface")


def test_dotted_attribute(gannet_server):
    server = gannet_server("cfg_apps:namespace.app")
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    assert response.text == "cfg ok (dotted)"


def test_factory(gannet_server):
    server = gannet_server("cfg_apps:create_app", "--factory")
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    assert response.text == "cfg ok (factory)"
    assert server.log.count("cfg factory called") == 1


def test_factory_without_flag_warns(gannet_server):
    server = gannet_server("cfg_apps:create_app", wait=False)
    server.wait_for_log(r"looks like a factory.*--factory")


def test_factory_flag_on_non_callable_exits_4():
    result = run_gannet("cfg_not_factory:app", "--factory", "--port", "0")
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert "--factory" in result.stderr
    assert "Traceback" not in result.stderr


def test_factory_raising_exits_4():
    result = run_gannet("cfg_lifespan:raising_factory", "--factory", "--port", "0")
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "factory blew up (cfg)" in output
    assert "Traceback" not in output


def test_non_callable_app_is_refused_at_load():
    """An 'app' that is not callable cannot serve anything: fail fast with exit 4
    (gunicorn: "Application object must be callable") instead of listening and
    answering every request with 500."""
    try:
        result = run_gannet("cfg_not_factory:app", "--port", "0", timeout=8)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the server started serving a non-callable app:\n{exc.stdout}{exc.stderr}")
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "callable" in output
    assert "Listening on" not in output


def test_app_dir(gannet_server, tmp_path):
    app_dir = tmp_path / "elsewhere"
    app_dir.mkdir()
    (app_dir / "cfg_appdir_only_mod.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'from app dir'})\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    # Without --app-dir the module is not importable from this cwd.
    result = run_gannet("cfg_appdir_only_mod:app", "--port", "0", cwd=cwd)
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert "cfg_appdir_only_mod" in result.stderr
    server = gannet_server("cfg_appdir_only_mod:app", "--app-dir", str(app_dir), cwd=cwd)
    response = httpx.get(server.url + "/")
    assert response.text == "from app dir"


def test_python_dash_m_and_console_script(spawned):
    # python -m gannet is what start_server uses; here the installed console script too.
    script = Path(sys.executable).with_name("gannet")
    if not script.exists():
        found = shutil.which("gannet")
        if found is None:
            pytest.skip("no 'gannet' console script installed in this environment")
        script = Path(found)
    server = spawned([str(script), "cfg_apps:app", "--port", "0"])
    url = listening_urls(server)[0]
    assert httpx.get(url + "/").text == "cfg ok"
    stop_ok(server)


def test_version():
    import gannet

    result = run_gannet("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"gannet {gannet.__version__}"


def test_help_lists_every_option():
    from gannet.config.settings import SETTINGS

    result = run_gannet("--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    missing = []
    for setting in SETTINGS:
        if not setting.cli:
            continue
        for flag in setting.flags:
            if not re.search(rf"(^|[\s,]){re.escape(flag)}([\s,=]|$)", text, re.M):
                missing.append(flag)
        if setting.env_var not in text:
            missing.append(setting.env_var)
    assert not missing, f"--help does not mention: {missing}"
    for flag in ("-c", "--config", "--version"):
        assert re.search(rf"(^|[\s,]){re.escape(flag)}([\s,=]|$)", text, re.M), flag


def test_negated_flags_are_accepted():
    from gannet.cli import config_from_args
    from gannet.config.settings import SETTINGS

    for setting in SETTINGS:
        if setting.negatable:
            config = config_from_args(["x:app", "--no-" + setting.flags[-1][2:]])
            assert getattr(config, setting.name) is False, setting.name
            config = config_from_args(["x:app", setting.flags[0]])
            assert getattr(config, setting.name) is True, setting.name


# ------------------------------------------------------------------ where to listen


def test_host_and_port_zero_logs_real_port(gannet_server):
    server = gannet_server("cfg_apps:app", "--host", "127.0.0.1")
    match = server.wait_for_log(r"Listening on http://127\.0\.0\.1:(\d+)")
    port = int(match.group(1))
    assert port != 0
    assert port == server.port
    assert httpx.get(f"http://127.0.0.1:{port}/").text == "cfg ok"


def test_explicit_port(gannet_server):
    port = free_port()
    server = gannet_server("cfg_apps:app", port_args=("--port", str(port)))
    assert server.port == port
    assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200


def test_bind_repeatable(gannet_server):
    server = gannet_server("cfg_apps:app", "-b", "127.0.0.1:0", "--bind", "127.0.0.1:0", port_args=())
    urls = listening_urls(server, 2)
    assert len(set(urls)) == 2, urls
    for url in urls:
        assert not url.endswith(":0")
        assert httpx.get(url + "/").text == "cfg ok"


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")
def test_bind_ipv6(gannet_server):
    server = gannet_server("cfg_apps:app", "-b", "[::1]:0", "-b", "127.0.0.1:0", port_args=())
    urls = listening_urls(server, 2)
    v6 = [url for url in urls if url.startswith("http://[::1]:")]
    assert v6, urls
    assert httpx.get(v6[0] + "/").text == "cfg ok"
    # the IPv6 listener really is IPv6: the v4 address on the same port is not it
    port = int(v6[0].rsplit(":", 1)[1])
    with socket.socket(socket.AF_INET6) as sock:
        sock.settimeout(5)
        sock.connect(("::1", port))


def _uds_get(path: str, url_path: str = "/") -> httpx.Response:
    transport = httpx.HTTPTransport(uds=path)
    with httpx.Client(transport=transport, base_url="http://localhost") as client:
        return client.get(url_path)


def test_bind_unix(gannet_server):
    sock_path = os.path.join(short_tmp(), "g.sock")
    server = gannet_server("cfg_apps:app", "-b", f"unix:{sock_path}", port_args=(), wait=False)
    server.wait_for_log(rf"Listening on http://unix:{re.escape(sock_path)}")
    response = _uds_get(sock_path, "/info")
    assert response.status_code == 200
    assert response.json()["path"] == "/info"
    stop_ok(server)


def test_unix_socket_file_removed_on_exit(gannet_server):
    sock_path = os.path.join(short_tmp(), "r.sock")
    server = gannet_server("cfg_apps:app", "-b", f"unix:{sock_path}", port_args=(), wait=False)
    server.wait_for_log(rf"Listening on http://unix:{re.escape(sock_path)}")
    assert os.path.exists(sock_path)
    stop_ok(server)
    assert not os.path.exists(sock_path), "the Unix socket file should be removed on exit"


def test_uds_option(gannet_server):
    sock_path = os.path.join(short_tmp(), "u.sock")
    server = gannet_server("cfg_apps:app", "--uds", sock_path, port_args=(), wait=False)
    server.wait_for_log(rf"Listening on http://unix:{re.escape(sock_path)}")
    assert _uds_get(sock_path).text == "cfg ok"
    stop_ok(server)


def test_uds_conftest_start_server_waits():
    """conftest.start_server(wait=True) should cope with a Unix-socket listener.

    (It parses the URL as host:port; with a unix: URL the port is a path.)"""
    sock_path = os.path.join(short_tmp(), "w.sock")
    server = start_server("cfg_apps:app", "--uds", sock_path, port_args=())
    try:
        assert _uds_get(sock_path).text == "cfg ok"
    finally:
        server.stop()


def test_fd_inherited_socket(spawned):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    try:
        server = spawned([sys.executable, "-m", "gannet", "cfg_apps:app", "--fd", str(fd)], pass_fds=(fd,))
        urls = listening_urls(server)
        assert urls == [f"http://127.0.0.1:{port}"], urls
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "cfg ok"
        stop_ok(server)
    finally:
        listener.close()


def test_bind_fd_url(spawned):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    fd = listener.fileno()
    try:
        server = spawned([sys.executable, "-m", "gannet", "cfg_apps:app", "-b", f"fd://{fd}"],
                         pass_fds=(fd,))
        listening_urls(server)
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "cfg ok"
        stop_ok(server)
    finally:
        listener.close()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")
def test_host_ipv6(gannet_server):
    server = gannet_server("cfg_apps:app", "--host", "::1")
    assert server.url.startswith("http://[::1]:")
    assert httpx.get(server.url + "/").text == "cfg ok"


def test_fd_not_open_fails_cleanly():
    result = run_gannet("cfg_apps:app", "--fd", "987")
    assert result.returncode not in (0, 2, 3, 4), (result.returncode, result.stderr)
    assert "fd://987" in result.stderr
    assert "Traceback" not in result.stderr


def test_uds_in_missing_directory_fails_cleanly():
    result = run_gannet("cfg_apps:app", "--uds", "/nonexistent-cfg-dir/s.sock")
    assert result.returncode not in (0, 2, 3, 4), (result.returncode, result.stderr)
    assert "/nonexistent-cfg-dir/s.sock" in result.stderr
    assert "Traceback" not in result.stderr


def test_backlog_reaches_listen(gannet_server):
    ss = shutil.which("ss")
    if ss is None:
        pytest.skip("ss (iproute2) is not installed")
    server = gannet_server("cfg_apps:app", "--backlog", "37")
    # For a LISTEN socket, ss shows the backlog in the Send-Q column.
    out = subprocess.run([ss, "-ltnH", f"sport = :{server.port}"], capture_output=True, text=True,
                         timeout=10).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    assert rows, out
    assert rows[0][2] == "37", out


def test_bind_in_use_fails_cleanly():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_gannet("cfg_apps:app", "--port", str(port))
    assert result.returncode not in (0, None)
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------ bad options: exit 2, one line


@pytest.mark.parametrize("args, env, needle", [
    (["--port", "abc"], {}, "--port"),
    (["--port", "70000"], {}, "--port"),
    (["--port", "-1"], {}, "--port"),
    ([], {"GANNET_PORT": "x"}, "GANNET_PORT"),
    ([], {"GANNET_TIMEOUT_KEEP_ALIVE": "soon"}, "GANNET_TIMEOUT_KEEP_ALIVE"),
    ([], {"GANNET_ACCESS_LOG": "perhaps"}, "GANNET_ACCESS_LOG"),
    (["--lifespan", "maybe"], {}, "--lifespan"),
    (["--loop", "trio"], {}, "--loop"),
    (["--log-level", "loud"], {}, "--log-level"),
    (["--backlog", "0"], {}, "--backlog"),
    (["--limit-request-line", "10"], {}, "--limit-request-line"),
    (["--timeout-keep-alive", "-1"], {}, "--timeout-keep-alive"),
    (["--limit-concurrency", "many"], {}, "--limit-concurrency"),
    (["--no-such-option"], {}, "--no-such-option"),
    (["-b", "nonsense"], {}, "--bind"),
])
def test_bad_value_exits_2_with_one_line(args, env, needle):
    result = run_gannet("cfg_apps:app", *args, env=env)
    line = one_line_error(result)
    assert needle in line, line
    assert line.startswith("gannet: error:"), line


def test_bad_value_reason_is_given():
    line = one_line_error(run_gannet("cfg_apps:app", "--port", "70000"))
    assert "65535" in line and "70000" in line
    line = one_line_error(run_gannet("cfg_apps:app", "--lifespan", "maybe"))
    assert "auto" in line and "maybe" in line


def test_missing_app_exits_2():
    line = one_line_error(run_gannet("--port", "0"))
    assert "APP" in line


def test_bad_config_file_key_exits_2(tmp_path):
    (tmp_path / "gannet.toml").write_text('port = 0\nno_such_key = 1\n')
    line = one_line_error(run_gannet("cfg_apps:app", "-c", str(tmp_path / "gannet.toml")))
    assert "no_such_key" in line


def test_bad_config_file_value_exits_2(tmp_path):
    (tmp_path / "gannet.toml").write_text('port = "eighty"\n')
    line = one_line_error(run_gannet("cfg_apps:app", "-c", str(tmp_path / "gannet.toml")))
    assert "port" in line and "eighty" in line


def test_missing_config_file_exits_2(tmp_path):
    line = one_line_error(run_gannet("cfg_apps:app", "-c", str(tmp_path / "absent.toml")))
    assert "absent.toml" in line


def test_broken_toml_exits_2(tmp_path):
    (tmp_path / "gannet.toml").write_text('port = = 1\n')
    line = one_line_error(run_gannet("cfg_apps:app", "-c", str(tmp_path / "gannet.toml")))
    assert "gannet.toml" in line


def test_bad_log_config_exits_2(tmp_path):
    (tmp_path / "log.json").write_text("{not json")
    line = one_line_error(run_gannet("cfg_apps:app", "--port", "0", "--log-config", str(tmp_path / "log.json")))
    assert "--log-config" in line


# ------------------------------------------------------------------ apps that fail to load: exit 4


def _load_failure(app: str) -> str:
    result = run_gannet(app, "--port", "0")
    output = result.stdout + result.stderr
    assert result.returncode == 4, (result.returncode, output)
    assert "Traceback" not in output, output
    assert "Listening on" not in output
    return output


def test_missing_module_exits_4():
    output = _load_failure("cfg_does_not_exist:app")
    assert "cfg_does_not_exist" in output
    assert "No module named" in output


def test_missing_attribute_exits_4():
    output = _load_failure("cfg_apps:nope")
    assert "nope" in output and "cfg_apps" in output


@pytest.mark.parametrize("app", ["cfg_apps:", ":app"])
def test_bad_app_string_exits_4(app):
    """A bare module is fine (it tries application, then app: test_app_load_errors.py);
    an empty module or attribute is not."""
    output = _load_failure(app)
    assert "module:attribute" in output


def test_module_raising_at_import_exits_4():
    output = _load_failure("cfg_import_error:app")
    assert "RuntimeError" in output
    assert "cfg module exploded at import" in output
    assert "cfg_import_error.py" in output  # where it happened, in the user's file


def test_module_with_missing_dependency_exits_4():
    output = _load_failure("cfg_missing_dep:app")
    assert "cfg_no_such_dependency_xyz" in output
    assert "cfg_missing_dep.py" in output
