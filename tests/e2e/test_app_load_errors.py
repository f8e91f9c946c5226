"""Apps that fail to load, black-box through the CLI: exit 4 and a message that points at
the app, not at Gannet (loading.describe_load_error), wherever the app or the checkout
sits; and a missing attribute that names what looks like the app (issue 10).

The frames shown are the app's and its libraries', never Gannet's or the import
machinery's; at --log-level debug the whole traceback is shown. A bare module name tries
``application`` (gunicorn's default) then ``app``."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

from conftest import APPS

pytestmark = pytest.mark.timeout(30)

from load_errors import GANNET_SRC  # noqa: E402 - the helpers, shared with test_wsgi_script_files.py
from load_errors import assert_no_gannet_frames as _assert_no_gannet_frames  # noqa: E402
from load_errors import frames as _frames  # noqa: E402
from load_errors import load_error as _load_error  # noqa: E402
from load_errors import write as _write  # noqa: E402


# ------------------------------------------------------------------ errors raised at import


def test_error_in_the_app_module_shows_its_line_and_no_gannet_frames():
    message = _load_error("cfg_import_error:app")
    assert message.startswith("Error loading app: RuntimeError: cfg module exploded at import\n"), message
    assert _frames(message) == [(str(APPS / "cfg_import_error.py"), 2)], message
    assert 'raise RuntimeError("cfg module exploded at import")' in message  # the source line
    _assert_no_gannet_frames(message)


def test_error_inside_a_library_shows_the_apps_line_then_the_librarys_frames():
    """Before: one line naming only json/decoder.py, not the app's line that called it."""
    message = _load_error("load_lib_error:app")
    assert message.startswith("Error loading app: JSONDecodeError: Expecting property name"), message
    frames = _frames(message)
    app_file = str(APPS / "load_lib_error.py")
    assert frames[:2] == [(app_file, 10), (app_file, 7)], message
    assert any(path.endswith(os.path.join("json", "decoder.py")) for path, _ in frames[2:]), message
    assert message.rstrip().endswith(
        "json.decoder.JSONDecodeError: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"), message
    _assert_no_gannet_frames(message)


def test_missing_dependency_names_the_module_and_the_line_that_imported_it():
    message = _load_error("cfg_missing_dep:app")
    assert message.startswith(
        "Error loading app: ModuleNotFoundError: No module named 'cfg_no_such_dependency_xyz'\n"), message
    assert _frames(message) == [(str(APPS / "cfg_missing_dep.py"), 2)], message
    assert "import cfg_no_such_dependency_xyz" in message
    _assert_no_gannet_frames(message)


def test_syntax_error_in_the_app_module_shows_the_caret(tmp_path):
    """Before: the location was that of Gannet's event loop (uvloop/loop.pyx) or none."""
    _write(tmp_path / "load_broken_syntax.py", "x = 1\ndef app(scope receive, send):\n    pass\n")
    message = _load_error("load_broken_syntax:app", "--app-dir", str(tmp_path))
    assert message.startswith("Error loading app: SyntaxError: "), message
    lines = message.splitlines()
    where = lines.index(f'  File "{tmp_path / "load_broken_syntax.py"}", line 2')
    assert lines[where + 1].strip() == "def app(scope receive, send):", message
    assert set(lines[where + 2].strip()) == {"^"}, message  # Python's own caret line
    assert lines[where + 3].startswith("SyntaxError: "), message
    _assert_no_gannet_frames(message)


def test_syntax_error_in_a_module_the_app_imports_shows_both_places(tmp_path):
    _write(tmp_path / "load_broken_helpers.py", "def helper(:\n    pass\n")
    _write(tmp_path / "load_uses_broken.py", '"""Imports a broken module."""\nimport load_broken_helpers\n')
    message = _load_error("load_uses_broken:app", "--app-dir", str(tmp_path))
    assert message.startswith("Error loading app: SyntaxError: "), message
    assert _frames(message) == [(str(tmp_path / "load_uses_broken.py"), 2),
                                (str(tmp_path / "load_broken_helpers.py"), 1)], message
    assert "def helper(:" in message and "^" in message
    _assert_no_gannet_frames(message)


def test_error_in_a_factory_shows_the_factorys_frames():
    message = _load_error("cfg_lifespan:raising_factory", "--factory")
    assert message.startswith("Error loading app: RuntimeError: factory blew up (cfg)\n"), message
    assert "calling the factory 'cfg_lifespan:raising_factory'" in message
    assert [name for name, _ in _frames(message)] == [str(APPS / "cfg_lifespan.py")], message
    _assert_no_gannet_frames(message)


def test_app_under_a_folder_named_gannet_keeps_its_frames(tmp_path):
    """Before: every frame whose path held '/gannet/' was taken for Gannet's and dropped."""
    project = tmp_path / "gannet" / "myproj"
    app_file = _write(project / "load_in_gannet_dir.py",
                      "def boot():\n    raise ValueError('bad setting (gannet dir)')\n\n\nboot()\n")
    message = _load_error("load_in_gannet_dir:app", "--app-dir", str(project), cwd=tmp_path)
    assert message.startswith("Error loading app: ValueError: bad setting (gannet dir)\n"), message
    assert _frames(message) == [(str(app_file), 5), (str(app_file), 2)], message


def test_relative_app_dir_and_cwd_module_show_the_apps_frames(tmp_path):
    _write(tmp_path / "proj" / "load_relative.py", "import os\nos.stat('/nonexistent/load-relative')\n")
    message = _load_error("load_relative:app", "--app-dir", "proj", cwd=tmp_path)
    assert message.startswith("Error loading app: FileNotFoundError: "), message
    frames = _frames(message)
    assert len(frames) == 1 and frames[0][1] == 2, message
    assert Path(tmp_path, frames[0][0]).resolve() == (tmp_path / "proj" / "load_relative.py").resolve()


def test_debug_log_level_shows_the_whole_traceback():
    message = _load_error("cfg_import_error:app", "--log-level", "debug")
    assert message.startswith("Error loading app: RuntimeError: cfg module exploded at import\n"), message
    assert "Traceback (most recent call last):" in message
    paths = [Path(path) for path, _ in _frames(message)]
    assert any(path.resolve().is_relative_to(GANNET_SRC.resolve()) for path in paths), message
    assert paths[-1] == APPS / "cfg_import_error.py", message


def test_load_error_message_is_a_plain_picklable_string():
    """The supervisor may receive the error from a worker process: the message is its str."""
    import pickle

    sys.path[:0] = [str(APPS)]
    try:
        from gannet.loading import AppLoadError, load_app

        with pytest.raises(AppLoadError) as info:
            load_app("cfg_import_error:app")
    finally:
        del sys.path[0]
        sys.modules.pop("cfg_import_error", None)
    error = pickle.loads(pickle.dumps(info.value))
    assert type(error) is AppLoadError and error.args == (str(info.value),)
    assert str(error).startswith("RuntimeError: cfg module exploded at import\n")
    assert "cfg_import_error.py" in str(error)


# ------------------------------------------------------------------ a missing attribute


def test_missing_attribute_suggests_the_one_callable_that_looks_like_an_app():
    message = _load_error("load_simple_app:app")
    first = message.splitlines()[0]
    assert first == ("Error loading app: attribute 'app' not found in module 'load_simple_app'; "
                     "did you mean 'load_simple_app:simple_app'?"), message


def test_missing_attribute_lists_several_candidates():
    first = _load_error("load_several:app").splitlines()[0]
    assert first.endswith("callables in it that look like apps: 'load_several:api', 'load_several:site'"), first


def test_missing_attribute_suggests_a_factory_with_the_flag():
    first = _load_error("load_factory_only:app").splitlines()[0]
    assert first.endswith("did you mean 'load_factory_only:create_app' with --factory?"), first


def test_missing_attribute_without_candidates_says_so():
    first = _load_error("cfg_not_factory:nope").splitlines()[0]
    assert first.endswith("attribute 'nope' not found in module 'cfg_not_factory'; "
                          "nothing in it looks like an ASGI or WSGI app"), first


def test_missing_part_of_a_dotted_attribute_is_named():
    first = _load_error("cfg_apps:namespace.nope").splitlines()[0]
    assert first.endswith("attribute 'namespace.nope' not found in module 'cfg_apps'"), first


# ------------------------------------------------------------------ a bare module name


@pytest.mark.parametrize(("module", "used", "body"), [
    ("load_bare", "application", "load bare: application"),  # both defined: application wins
    ("load_bare_app", "app", "load bare: app (asgi)"),
])
def test_bare_module_takes_application_then_app(gannet_server, module, used, body):
    server = gannet_server(module)
    assert httpx.get(server.url + "/").text == body
    server.wait_for_log(rf"No attribute given: using '{module}:{used}'")


def test_bare_module_without_application_or_app_says_what_to_add():
    first = _load_error("load_bare_none").splitlines()[0]
    assert "module 'load_bare_none' has no 'application' or 'app'" in first, first
    assert "add 'application = ...'" in first, first
    assert first.endswith("did you mean 'load_bare_none:wsgi_handler'?"), first
