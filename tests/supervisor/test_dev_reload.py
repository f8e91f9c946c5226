"""--reload (docs/reload.md): a real master watching a temporary project directory.

Each test writes an app module into tmp_path, runs ``gannet devapp:app --reload`` there, and
edits files: an edit is served once the new worker accepts, a SyntaxError keeps the old
code serving and the master alive, a fix serves again, an app broken from the start leaves
the master waiting for a fix, and excluded files never reload. Deadlines, never sleeps.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import RunningServer, start_server
from sup_helpers import get, wait_until

from gannet.supervisor.reload import ChangeFilter

pytestmark = pytest.mark.timeout(60)

APP = '''\
import time

time.sleep({boot_seconds})  # a slow import, when a test needs one
VERSION = "{version}"


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": VERSION.encode()}})
'''
BROKEN = 'VERSION = "broken"\n\n\nasync def app(scope, receive, send):\n    x = (1 +\n'
DETECTED = "WatchFiles detected changes in"


def write_app(directory: Path, version: str, boot_seconds: float = 0) -> None:
    (directory / "devapp.py").write_text(APP.format(version=version, boot_seconds=boot_seconds))


def start_reloading(directory: Path, *args: str, wait: bool = True) -> RunningServer:
    # Bytecode is written (as on a developer's machine), so a stale .pyc could be used.
    return start_server("devapp:app", "--reload", "--reload-delay", "0.1", *args, cwd=directory,
                        wait=wait, env={"PYTHONDONTWRITEBYTECODE": ""})


def serves(server: RunningServer, version: str, timeout: float = 15.0) -> None:
    """Poll until the app answers ``version`` (each GET on a new connection)."""
    def answered() -> bool:
        try:
            return get(server, timeout=2) == (200, version)
        except OSError:
            return False

    wait_until(answered, timeout, f"the answer {version!r}")


def test_an_edit_is_served_a_syntax_error_keeps_the_old_code_and_a_fix_serves_again(tmp_path):
    write_app(tmp_path, "v1")
    server = start_reloading(tmp_path)
    try:
        server.wait_for_log(r"Will watch for changes in these directories: \[" +
                            re.escape(repr(str(tmp_path.resolve()))) + r"\]")
        assert get(server) == (200, "v1")

        source = tmp_path / "devapp.py"
        wait_until(lambda: list((tmp_path / "__pycache__").glob("devapp.*.pyc")), what="a .pyc")
        v1_mtime = source.stat().st_mtime_ns
        write_app(tmp_path, "v2")
        # An edit within the same second, same size: Python would trust v1's .pyc.
        os.utime(source, ns=(v1_mtime, v1_mtime))
        server.wait_for_log(rf"{DETECTED} 'devapp.py'\. Reloading\.\.\.")
        serves(server, "v2")
        server.wait_for_log(r"Reload complete")

        (tmp_path / "devapp.py").write_text(BROKEN)
        server.wait_for_log(r"Reload failed: a new worker could not boot \(the app could not "
                            r"be loaded, exit status 4\); the old workers keep serving")
        log = server.log
        assert "SyntaxError: '(' was never closed" in log, log
        assert re.search(r"\n +x = \(1 \+\n +\^", log), log  # the caret under the error
        assert server.proc.poll() is None
        assert get(server) == (200, "v2")  # the old worker still serves

        write_app(tmp_path, "v3")
        serves(server, "v3")
        assert server.proc.poll() is None
    finally:
        assert server.stop() == 0
    assert re.search(r"Master \[\d+\] exiting with status 0", server.log)


def test_an_app_broken_from_the_start_waits_for_a_fix_instead_of_exiting(tmp_path):
    (tmp_path / "devapp.py").write_text(BROKEN)
    server = start_reloading(tmp_path, wait=False)
    try:
        server.wait_for_log(r"could not boot \(the app could not be loaded, exit status 4\); "
                            r"--reload waits for a file change to try again", timeout=20)
        assert server.proc.poll() is None
        bound = server.wait_for_log(r"Master \[\d+\] bound http://127\.0\.0\.1:(\d+)")
        server.port = int(bound.group(1))

        write_app(tmp_path, "fixed")
        server.wait_for_log(r"Listening on http://", timeout=20)
        serves(server, "fixed")
    finally:
        assert server.stop() == 0


def test_excluded_files_trigger_nothing_and_included_ones_reload(tmp_path):
    write_app(tmp_path, "v1")
    (tmp_path / "notes").mkdir()
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "__pycache__").mkdir(exist_ok=True)
    server = start_reloading(tmp_path, "--reload-exclude", "generated_*.py",
                             "--reload-exclude", "notes", "--reload-include", "*.txt")
    try:
        assert get(server) == (200, "v1")
        # None of these counts: excluded explicitly or by default, or not included.
        for excluded in ("generated_models.py", "notes/ignored.py", ".hidden.py",
                         ".venv/lib/site.py", "env/tool.py", "__pycache__/devapp.py",
                         "scratch.log"):
            (tmp_path / excluded).write_text("x = 1\n")
        # Then one included change: its reload is logged after anything the ones above
        # could have caused (changes arrive in order), so one line means they caused none.
        (tmp_path / "readme.txt").write_text("included by --reload-include\n")
        server.wait_for_log(rf"{DETECTED} 'readme.txt'\. Reloading\.\.\.")
        server.wait_for_log(r"Reload complete")
        assert server.log.count(DETECTED) == 1, server.log
    finally:
        assert server.stop() == 0


def test_a_fix_saved_while_the_broken_code_boots_is_served(tmp_path):
    """The broken worker fails (1 s) while the fix's worker still boots (2 s): that failure
    belongs to a superseded reload and must not cancel the fix's reload."""
    write_app(tmp_path, "v1")
    server = start_reloading(tmp_path)
    try:
        (tmp_path / "devapp.py").write_text("import time\n\ntime.sleep(1)\nraise RuntimeError('no')\n")
        wait_until(lambda: server.log.count("Booting worker") >= 2, what="the broken code booting")
        write_app(tmp_path, "fixed", boot_seconds=2)
        serves(server, "fixed", timeout=20)
    finally:
        assert server.stop() == 0


def test_reload_with_preload_is_refused_with_status_2(tmp_path):
    write_app(tmp_path, "v1")
    server = start_reloading(tmp_path, "--preload", wait=False)
    assert server.wait() == 2
    assert "--reload cannot be combined with --preload" in server.log


def test_a_missing_reload_dir_is_refused_with_status_2(tmp_path):
    write_app(tmp_path, "v1")
    server = start_reloading(tmp_path, "--reload-dir", "srcc", wait=False)
    assert server.wait() == 2
    assert "--reload-dir 'srcc': not a directory" in server.log


def test_reload_options_without_reload_are_said_to_be_ignored(tmp_path):
    write_app(tmp_path, "v1")
    server = start_server("devapp:app", "--reload-delay", "1", cwd=tmp_path)
    try:
        assert "--reload-delay: ignored without --reload" in server.log
        assert get(server) == (200, "v1")
    finally:
        assert server.stop() == 0


# ---------------------------------------------------------------- the filter alone
def make_filter(tmp_path: Path, **kwargs) -> ChangeFilter:
    return ChangeFilter([tmp_path], cwd=tmp_path, **kwargs)


@pytest.mark.parametrize("name, counts", [
    ("app.py", True), ("pkg/models.py", True), ("static/site.css", False),
    (".app.py.swp", False), ("app.pyc", False), ("~lock.py", False),
    (".git/hooks/x.py", False), ("pkg/__pycache__/models.py", False),
    ("node_modules/x/y.py", False), ("lib/site-packages/z.py", False),
])
def test_default_filter(tmp_path, name, counts):
    assert make_filter(tmp_path)(None, str(tmp_path / name)) is counts


def test_a_default_include_named_in_excludes_is_dropped_and_a_default_exclude_named_in_includes_lifted(tmp_path):
    check = make_filter(tmp_path, includes=[".*", "*.html"], excludes=["*.py"])
    assert check(None, str(tmp_path / "app.py")) is False
    assert check(None, str(tmp_path / "templates" / "index.html")) is True
    assert check(None, str(tmp_path / ".env.html")) is True


def test_an_extra_file_counts_whatever_its_name_and_only_it_outside_the_roots(tmp_path):
    outside = tmp_path / "etc"
    project = tmp_path / "project"
    extra = outside / "settings.yaml"
    check = ChangeFilter([project, outside], extra_files=[extra], extra_only_roots=[outside],
                         cwd=project)
    assert check(None, str(extra)) is True
    assert check(None, str(outside / "other.py")) is False
    assert check(None, str(project / "app.py")) is True
