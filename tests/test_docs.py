"""The docs stay true: options.md matches the settings, README commands match CI, and every
test file the docs cite as proof exists."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from gannet.config import Config  # noqa: E402
from gannet.config.config import load_config_file  # noqa: E402
from gannet.config.docs import generate, main  # noqa: E402
from gannet.config.settings import SETTINGS  # noqa: E402

OPTIONS_MD = ROOT / "docs" / "options.md"
REGENERATE = "docs/options.md is out of date: run `python -m gannet.config.docs > docs/options.md`"


def test_options_md_is_up_to_date() -> None:
    assert OPTIONS_MD.read_text(encoding="utf-8") == generate(), REGENERATE


def test_check_mode_agrees(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", str(OPTIONS_MD)]) == 0
    stale = tmp_path / "options.md"
    stale.write_text("# Options\n", encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_option_is_documented(setting) -> None:
    text = generate()
    assert f"### `{setting.name}`" in text
    assert f"`{setting.env_var}`" in text
    for flag in setting.flags if setting.cli else ():
        assert f"`{flag}" in text, f"{flag} missing from the generated options page"
    if setting.negatable:
        assert f"`--no-{setting.flags[-1][2:]}`" in text
    assert setting.help in text


def test_config_file_examples_in_options_md_load(tmp_path: Path) -> None:
    """The TOML snippets shown to users are valid config files."""
    blocks = re.findall(r"```toml\n(.*?)```", generate(), re.S)
    assert len(blocks) >= 2
    for i, block in enumerate(blocks):
        name = "pyproject.toml" if "[tool.gannet]" in block else f"gannet{i}.toml"
        path = tmp_path / str(i) / name
        path.parent.mkdir()
        path.write_text(block, encoding="utf-8")
        assert load_config_file(path), block
        config = Config(config_file=str(path), environ={})
        assert config.app


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, re.S)[:2]]


def test_readme_set_up_commands_are_one_line_each() -> None:
    serve, test = _readme_commands()
    assert "\n" not in serve and "\n" not in test
    assert "examples.hello:app" in serve or "hello:app" in serve
    assert "pytest" in test and ".[test]" in test


def test_ci_runs_the_readme_test_command() -> None:
    _, test = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test in [line.strip() for line in ci.splitlines()], ".ci/run must run the README's test command"


def test_docs_cite_only_existing_tests() -> None:
    """Docs say which test proves each behaviour; the cited files must exist."""
    cited: set[str] = set()
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
                 ROOT / "benchmarks" / "README.md"]:
        if page.exists():
            cited.update(re.findall(r"\btests/[\w/.-]+\.py\b", page.read_text(encoding="utf-8")))
    missing = sorted(path for path in cited if not (ROOT / path).exists())
    assert not missing, f"docs cite tests that do not exist: {missing}"


def test_benchmark_finds_gannet() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--list"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^\s+gannet\s", out.stdout, re.M), out.stdout


def test_benchmark_runs_one_short_round() -> None:
    """The user-facing benchmark works end to end (1 s of wrk against Gannet only)."""
    from conftest import require_tool

    require_tool("wrk")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--servers", "gannet",
                          "--rounds", "1", "--duration", "1", "--warmup", "0", "--no-pin"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    row = re.search(r"^\| gannet \|[^|]*\| ([\d,]+)", out.stdout, re.M)
    assert row and int(row.group(1).replace(",", "")) > 0, out.stdout + out.stderr


@pytest.mark.parametrize("app", ["hello", "json"])
def test_h1_driver_answers_every_request(app: str) -> None:
    """The in-process profiling driver works and every request it feeds is answered
    (it exits 1 when a response is missing)."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "h1_driver.py"), "--app", app,
                          "--requests", "640"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(rf"^{app}: [\d.]+ us/request over 640 requests$", out.stdout, re.M), out.stdout
