"""Helpers for tests of apps that fail to load (tests/e2e/test_app_load_errors.py and
test_wsgi_script_files.py): run Gannet to its exit and read the load-error message."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import APPS, ROOT

GANNET_SRC = ROOT / "src" / "gannet"


def run_to_exit(*args: str, cwd: Path = APPS) -> subprocess.CompletedProcess:
    """``python -m gannet ARGS --port 0`` run to its exit (each case fails to load)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GANNET_")}
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "gannet", *args, "--port", "0"], check=False,
                          cwd=str(cwd), env=env, capture_output=True, text=True, timeout=30)


def load_error(*args: str, cwd: Path = APPS) -> str:
    """The logged message of a load failure: exit 4, nothing listening."""
    result = run_to_exit(*args, cwd=cwd)
    output = result.stdout + result.stderr
    assert result.returncode == 4, (result.returncode, output)
    assert "Listening on" not in output, output
    assert "Error loading app: " in output, output
    return output[output.index("Error loading app: "):]


def frames(message: str) -> list[tuple[str, int]]:
    """(file, line) of each traceback frame in the message."""
    return [(path, int(line)) for path, line in re.findall(r'File "([^"]+)", line (\d+)', message)]


def assert_no_gannet_frames(message: str) -> None:
    for path, _ in frames(message):
        assert not Path(path).resolve().is_relative_to(GANNET_SRC.resolve()), message
        assert "importlib" not in path, message
    assert "Traceback (most recent call last)" not in message, message


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
