"""`dli-grade init-ci`: the GitHub and GitLab templates and the Gradescope autograder zip."""

from __future__ import annotations

import stat
import subprocess
import zipfile
from pathlib import Path

from click.testing import CliRunner

from grader.cli import main

try:
    import yaml
except ImportError:  # the templates are still checked line by line
    yaml = None


def run(*args):
    return CliRunner().invoke(main, ["init-ci", *map(str, args)])


def test_github_workflow(tmp_path):
    result = run("--github", "--out", tmp_path, "--notebook", "my nb.ipynb", "--package", "git+https://example.org/dli-grade")
    assert result.exit_code == 0, result.output
    text = (tmp_path / ".github" / "workflows" / "dli-grade.yml").read_text()
    assert text.count("DLI_GRADE_PACKAGE:") == 1  # the one line an instructor edits
    assert 'DLI_GRADE_PACKAGE: "git+https://example.org/dli-grade"' in text
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    assert 'dli-grade "$NOTEBOOK" --device cpu --format github --html-report dli-grade-report.html' in text
    if yaml:
        doc = yaml.safe_load(text)
        on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
        assert "push" in on
        assert doc["env"] == {"DLI_GRADE_PACKAGE": "git+https://example.org/dli-grade", "NOTEBOOK": "my nb.ipynb"}
        steps = doc["jobs"]["grade"]["steps"]
        uses = [step.get("uses", "") for step in steps]
        assert uses[0].startswith("actions/checkout@") and uses[1].startswith("actions/setup-python@")
        assert steps[1]["with"]["cache"] == "pip"
        install = next(step["run"] for step in steps if "pip install" in step.get("run", ""))
        assert install.index("download.pytorch.org/whl/cpu") < install.index('pip install "$DLI_GRADE_PACKAGE"')
        upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-artifact@"))
        assert upload["if"] == "always()" and upload["with"]["path"] == "dli-grade-report.html"


def test_gitlab_ci_has_a_junit_report(tmp_path):
    result = run("--gitlab", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    text = (tmp_path / ".gitlab-ci.yml").read_text()
    assert '--format junit --output dli-grade-junit.xml' in text
    assert 'NOTEBOOK: "06_Assessment.ipynb"' in text
    if yaml:
        job = yaml.safe_load(text)["dli-grade"]
        assert job["artifacts"]["reports"]["junit"] == "dli-grade-junit.xml"
        assert job["artifacts"]["when"] == "always"
        assert any("whl/cpu" in line for line in job["script"])


def test_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / ".gitlab-ci.yml"
    target.write_text("mine\n")
    result = run("--gitlab", "--out", tmp_path)
    assert result.exit_code == 2 and "already exists; use --force" in result.output
    assert target.read_text() == "mine\n"
    assert run("--gitlab", "--out", tmp_path, "--force").exit_code == 0
    assert "junit" in target.read_text()


def test_needs_a_target_and_a_plain_notebook_name(tmp_path):
    assert run("--out", tmp_path).exit_code == 2
    assert run("--github", "--out", tmp_path, "--notebook", "a\nb.ipynb").exit_code == 2
    assert run("--github", "--out", tmp_path, "--package", 'x"; rm -rf /').exit_code == 2
    assert not (tmp_path / ".github").exists()


def test_gradescope_zip(tmp_path):
    result = run("--gradescope", "--out", tmp_path, "--notebook", "06_Assessment.ipynb")
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "dli-grade-autograder.zip") as bundle:
        names = set(bundle.namelist())
        assert {"setup.sh", "run_autograder", "dli-grade/pyproject.toml", "dli-grade/grader/cli.py",
                "dli-grade/reference/data/judge.pt", "dli-grade/reference/data/unet_course_fp16.pt",
                "dli-grade/reference/data/mnist/SHA256SUMS", "dli-grade/tasks/q.py"} <= names
        assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
        for script in ("run_autograder", "setup.sh"):
            mode = bundle.getinfo(script).external_attr >> 16
            assert stat.S_ISREG(mode) and mode & 0o111 == 0o111  # executable
        run_text = bundle.read("run_autograder").decode()
        setup = bundle.read("setup.sh").decode()
        bundle.extractall(tmp_path / "x")
    assert run_text.startswith("#!/usr/bin/env bash") and "--format gradescope" in run_text
    assert "/autograder/results/results.json" in run_text and "NOTEBOOK=06_Assessment.ipynb" in run_text
    assert "pip install /autograder/source/dli-grade" in setup and "whl/cpu" in setup
    for script in ("run_autograder", "setup.sh"):
        assert subprocess.run(["bash", "-n", str(tmp_path / "x" / script)]).returncode == 0
    weights = Path(__file__).resolve().parent.parent / "reference" / "data" / "judge.pt"
    assert (tmp_path / "x" / "dli-grade" / "reference" / "data" / "judge.pt").read_bytes() == weights.read_bytes()
