"""Review of issue 10's options and load errors (reviewer R2): what a user moving from
uvicorn or gunicorn would still trip on. Black-box through the CLI where the behaviour is
the command line's; the env-file reader directly for the breadth of its syntax."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_cli import one_line_error, run_gannet

from gannet.config import Config
from gannet.config.env_file import EnvFileError, parse_env_file

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cr3t-Pa55word"


def load_error(*args: str) -> str:
    """The logged message of a load failure: exit 4, nothing listening."""
    result = run_gannet(*args, "--port", "0", timeout=20)
    output = result.stdout + result.stderr
    assert result.returncode == 4, (result.returncode, output)
    assert "Listening on" not in output, output
    return output[output.index("Error loading app: "):]


def write_module(directory: Path, name: str, text: str) -> str:
    (directory / f"{name}.py").write_text(text)
    return str(directory)


# ------------------------------------------------------------------ load errors


def test_missing_attribute_next_to_flasks_request_proxy_is_named(tmp_path):
    """The "did you mean" scan inspects every callable in the module; Flask's request
    proxy raises "Working outside of request context" when inspected, which used to
    replace the real error."""
    app_dir = write_module(tmp_path, "flask_site", (
        "from flask import Flask, request, session, g, current_app\n"
        "app = Flask(__name__)\n"))
    first = load_error("flask_site:wrong", "--app-dir", app_dir).splitlines()[0]
    assert first == ("Error loading app: attribute 'wrong' not found in module 'flask_site'; "
                     "did you mean 'flask_site:app'?"), first


def test_bare_module_asks_a_lazy_module_for_its_app_once(gannet_server, tmp_path):
    """A module-level __getattr__ (PEP 562) builds the app when asked: it must be asked
    once, not once to see whether it is there and again to take it."""
    app_dir = write_module(tmp_path, "lazy_site", (
        "import sys\n"
        "def __getattr__(name):\n"
        "    sys.stderr.write(f'built {name}\\n')\n"
        "    if name != 'application':\n"
        "        raise AttributeError(name)\n"
        "    def application(environ, start_response):\n"
        "        start_response('200 OK', [('content-type', 'text/plain')])\n"
        "        return [b'lazy']\n"
        "    return application\n"))
    server = gannet_server("lazy_site", "--app-dir", app_dir)
    server.wait_for_log(r"using 'lazy_site:application'")
    assert server.log.count("built application") == 1, server.log


def test_load_error_of_a_deep_mutual_recursion_stays_readable(tmp_path):
    """Two functions calling each other give ~1000 distinct frames (Python's repeat folding
    does not apply): the message keeps the first and last frames and says how many it left
    out, instead of thousands of lines in one log record."""
    app_dir = write_module(tmp_path, "deep_site", (
        "def ping(n):\n    return pong(n)\n\n"
        "def pong(n):\n    return ping(n)\n\n"
        "ping(0)\n"))
    message = load_error("deep_site:app", "--app-dir", app_dir)
    assert message.splitlines()[0] == \
        "Error loading app: RecursionError: maximum recursion depth exceeded", message
    assert len(message.splitlines()) < 200, len(message.splitlines())
    assert re.search(r"\.\.\. \d+ frames left out \(--log-level debug shows them\) \.\.\.", message), message
    frames = re.findall(r'File "([^"]+)", line (\d+)', message)
    assert frames[0] == (str(tmp_path / "deep_site.py"), "7"), frames[:3]  # where it started
    assert message.rstrip().endswith("RecursionError: maximum recursion depth exceeded"), message


# ------------------------------------------------------------------ --env-file


@pytest.mark.parametrize("text", [
    f"DATABASE_PASSWORD: {SECRET}\n",  # a YAML habit
    f"DATABASE_PASSWORD='{SECRET}' {SECRET}\n",  # text after the closing quote
    f"-----BEGIN KEY-----\n",
])
def test_env_file_errors_never_show_the_lines_text(tmp_path, text):
    path = tmp_path / ".env"
    path.write_text(text.replace("KEY-----", f"KEY-----{SECRET}"))
    line = one_line_error(run_gannet("cfg_apps:app", "--port", "0", "--env-file", str(path),
                                     timeout=10))
    assert f"{path}:1" in line, line
    assert SECRET not in line and "BEGIN" not in line, line


def test_env_file_reads_what_python_dotenv_reads(tmp_path):
    r"""Expected values are python-dotenv 1.2.4's (dotenv_values) for the same file: its own
    set_key writes \' and \\ inside single quotes, and a name alone sets nothing."""
    path = tmp_path / ".env"
    path.write_text(
        "SINGLE='it\\'s a \\\\ back \\n slash'\n"
        'DOUBLE="q \\\' bell \\a ff \\f vt \\v bs \\b end"\n'
        "NAME_ALONE\n"
        "export ALSO_ALONE\n"
        "AFTER=1\n")
    assert parse_env_file(str(path)) == {
        "SINGLE": "it's a \\ back \\n slash",
        "DOUBLE": "q ' bell \a ff \f vt \v bs \b end",
        "AFTER": "1",
    }


def test_env_file_line_error_still_names_the_variable(tmp_path):
    path = tmp_path / ".env"
    path.write_text(f"OK=1\nTOKEN='x' {SECRET}\n")
    with pytest.raises(EnvFileError) as error:
        parse_env_file(str(path))
    assert str(error.value).startswith(f"{path}:2: TOKEN: unexpected text after the closing "
                                       "quote"), error.value
    assert SECRET not in str(error.value)


# ------------------------------------------------------------------ unknown flags


@pytest.mark.parametrize("args, needles", [
    # gunicorn 27's --header-map is about request headers; "did you mean --header?" misleads
    (["--header-map", "drop"], ["gunicorn's --header-map", "underscore"]),
    (["--forwarder-headers", "SCRIPT_NAME"], ["gunicorn's --forwarder-headers", "proxy"]),
    (["--http2-max-concurrent-streams", "10"], ["gunicorn's --http2-max-concurrent-streams",
                                                "HTTP/1.1"]),
    # short flags with the value attached, as gunicorn's docs and users write them
    (["-nmysite"], ["gunicorn's -n ", "not available"]),
    (["-kuvicorn.workers.UvicornWorker"], ["gunicorn's -k ", "--interface"]),
])
def test_gunicorn_flags_get_what_to_use_instead(args, needles):
    line = one_line_error(run_gannet("cfg_apps:app", *args, timeout=10))
    assert "did you mean" not in line, line
    for needle in needles:
        assert needle in line, line


def test_env_file_expands_from_the_environment_given_to_config(tmp_path):
    """Config(environ=...) never reads os.environ for options; ${NAME} in the env file
    must come from that same mapping, not from the process's environment."""
    path = tmp_path / ".env"
    path.write_text("GANNET_ROOT_PATH=/${REVIEW_PREFIX}\n")
    config = Config("x:app", environ={"REVIEW_PREFIX": "shop"}, env_file=str(path))
    assert config.root_path == "/shop"
