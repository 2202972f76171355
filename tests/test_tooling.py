"""The lint, format and type checks that CI runs before the tests (configured in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKS = ["ruff check .", "ruff format --check .", "mypy"]


def _ci_commands() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_ci_runs_lint_format_and_types_before_the_tests():
    commands = _ci_commands()
    first_test = commands.index("python -m pytest")
    for check in CHECKS:
        assert check in commands, f".ci/run does not run {check!r}"
        assert commands.index(check) < first_test, f"{check!r} runs after the tests"


def test_the_test_extra_brings_the_checkers_and_their_stubs():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the checkers themselves run on any supported Python
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    names = {requirement.split(">")[0].split("<")[0].split("=")[0].strip().lower() for requirement in extra}
    assert {"ruff", "mypy", "types-pyyaml", "types-tqdm"} <= names


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"  # the test extra brings it: not a skip
    return found


@pytest.mark.parametrize("arguments", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_the_tree_passes_ruff(arguments):
    done = subprocess.run([_tool("ruff"), *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_the_tree_passes_mypy():
    """About 20 s without a cache; CI runs mypy before the tests anyway."""
    done = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
