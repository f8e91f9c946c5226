"""The tests pass wherever the checkout sits, including a folder named ``gannet`` (what
``git clone`` of a repository called gannet gives). Before issue 10's fix, two load-error
tests failed there: Gannet's own frames were told apart by the substring '/gannet/' in a
path, so the app's frames under such a folder were dropped too.

The project's files (tracked and new, not ignored) are copied into ``<tmp>/gannet/`` and
the load-error tests run from that copy in a child pytest, with the copy's ``src`` first on
PYTHONPATH (the editable install points at this checkout)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.timeout(120)

# Only the load-related tests: quick, and the ones that depended on the checkout's path.
LOAD_ERROR_TESTS = (
    "tests/e2e/test_app_load_errors.py",
    "tests/e2e/test_cli.py::test_module_raising_at_import_exits_4",
    "tests/e2e/test_cli.py::test_module_with_missing_dependency_exits_4",
)
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache")


def _project_files() -> list[str] | None:
    """The checkout's files as git sees them (tracked or new, not ignored); None without git."""
    git = shutil.which("git")
    if git is None:
        return None
    result = subprocess.run([git, "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, timeout=30)
    if result.returncode != 0:
        return None
    return [name for name in result.stdout.decode().split("\0") if name]


def _copy_checkout(target: Path) -> None:
    files = _project_files()
    if files is None:
        shutil.copytree(ROOT, target, ignore=NOT_COPIED)
        return
    for name in files:
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is skipped
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _child_env(copy: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GANNET_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(copy / "src"), env.get("PYTHONPATH", "")])
    return env


def test_load_error_tests_pass_from_a_checkout_named_gannet(tmp_path):
    copy = tmp_path / "gannet"
    _copy_checkout(copy)
    env = _child_env(copy)
    where = subprocess.run([sys.executable, "-c", "import gannet; print(gannet.__file__)"],
                           cwd=str(copy), env=env, capture_output=True, text=True, timeout=30)
    assert Path(where.stdout.strip()).resolve() == (copy / "src" / "gannet" / "__init__.py").resolve(), \
        (where.stdout, where.stderr)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *LOAD_ERROR_TESTS],
                            cwd=str(copy), env=env, capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "deselected" not in result.stdout, result.stdout[-2000:]
