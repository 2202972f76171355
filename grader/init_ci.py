"""`dli-grade init-ci`: CI templates for student repositories and a Gradescope autograder zip.

--github writes .github/workflows/dli-grade.yml (and reports the grade to GitHub Classroom),
--gitlab writes .gitlab-ci.yml and --gradescope builds dli-grade-autograder.zip (setup.sh,
run_autograder and the installed dli-grade's own files with its data and weights, so grading
needs no network once set up).

Every template installs exactly what was tested: torch and torchvision as one pinned pair
(CPU wheels) in the same pip command as dli-grade, whose source is explicit: `--package`, or
where the running dli-grade was installed from (PEP 610's direct_url.json: a git URL and
commit, a wheel URL, or the git checkout of an editable install). A bare name is refused:
dli-grade is not published on PyPI, so `pip install dli-grade` would fail, or install whatever
someone publishes under that name later. Actions are pinned by commit.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import click

from grader import __version__
from grader.core import atomic
from grader.core.errors import EXIT_UNUSABLE
from grader.report.gradescope import VISIBILITIES

DISTRIBUTION = "dli-grade"
DEFAULT_NOTEBOOK = "06_Assessment.ipynb"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# The pair the project tests; `+cpu` builds exist only on the CPU index, never on PyPI.
TORCH_PAIR = ("torch==2.14.1+cpu", "torchvision==0.29.1+cpu")
PACKAGES = ("grader", "reference", "tasks")
# Full commit of each action's release tag (checked against the actions' repositories), tag in a comment.
ACTIONS = {
    "checkout": ("actions/checkout", "11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "setup-python": ("actions/setup-python", "a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
    "upload-artifact": ("actions/upload-artifact", "ea165f8d65b6e75b540449e92b4886f43607fa02", "v4.6.2"),
    "classroom-reporter": (
        "classroom-resources/autograding-grading-reporter",
        "d13b5912daf5042ac1b71bc38bdb4a6bcd61d8ca",
        "v1",
    ),
}
# The grade step's id: the Classroom reporter reads `<ID upper-cased>_RESULTS` (letters and digits only).
CLASSROOM_RUNNER = "dligrade"
# Gradescope: the grade must end this long before the assignment's limit, so results.json is written.
GRADESCOPE_MARGIN_S = 120
DEFAULT_GRADESCOPE_LIMIT_S = 2400
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InitError(click.ClickException):
    """A refusal before anything is written: one line, exit 2."""

    exit_code = EXIT_UNUSABLE

    def show(self, file=None):
        click.echo(f"dli-grade: error: {self.format_message()}", err=True)


# -- where pip gets dli-grade ------------------------------------------------------------------


def package_from_direct_url(record: dict, git=None) -> str:
    """A pip requirement for the origin PEP 610 recorded, or InitError when CI could not reach it."""
    url = record.get("url") or ""
    if "vcs_info" in record:
        info = record["vcs_info"]
        commit = info.get("commit_id") or ""
        if info.get("vcs") != "git" or not re.fullmatch(r"[0-9a-f]{40}", commit):
            raise InitError(f"dli-grade was installed from {url!r} without a git commit; pass --package")
        subdirectory = f"#subdirectory={record['subdirectory']}" if record.get("subdirectory") else ""
        return f"{DISTRIBUTION} @ git+{url}@{commit}{subdirectory}"
    if "archive_info" in record and url.startswith("https://"):
        digest = (record["archive_info"].get("hashes") or {}).get("sha256")
        return f"{DISTRIBUTION} @ {url}" + (f"#sha256={digest}" if digest else "")
    if "dir_info" in record and url.startswith("file://"):
        return _package_from_checkout(Path(unquote(urlparse(url).path)), git or _git)
    raise InitError(
        f"dli-grade was installed from {url or 'a package index'}, which a CI runner cannot reach; "
        "pass --package (git+https://...@<commit> or an https URL of a wheel)"
    )


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise InitError(f"{folder} is not a git checkout with a remote ({done.stderr.strip()[:200]}); pass --package")
    return done.stdout.strip()


def _package_from_checkout(folder: Path, git) -> str:
    """`git+<origin>@<HEAD>` for an install from a local clone: what CI can fetch of the same code."""
    remote = git(folder, "remote", "get-url", "origin")
    commit = git(folder, "rev-parse", "HEAD")
    if not remote.startswith(("https://", "ssh://", "git@")) or not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise InitError(f"{folder}: origin {remote!r} is not a URL a CI runner can clone; pass --package")
    if remote.startswith("git@"):  # scp-like git@host:owner/repo -> ssh://git@host/owner/repo
        remote = "ssh://" + remote.replace(":", "/", 1)
    return f"{DISTRIBUTION} @ git+{remote}@{commit}"


def installed_origin() -> str:
    try:
        raw = importlib.metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        raw = None
    if not raw:
        raise InitError("dli-grade was installed from a package index; pass --package with where CI should get it")
    return package_from_direct_url(json.loads(raw))


def check_package(package: str) -> str:
    """`package` if it names a source CI can install from; InitError for a bare (unpublished) name."""
    if not package or any(c in package for c in '\n\r\x00"$`'):
        raise InitError("--package: a pip requirement, URL or path without quotes, $ or backticks")
    if "://" in package or package.startswith(("git+", "./", "/")):
        return package
    raise InitError(
        f"--package {package!r} is a bare name: {DISTRIBUTION} is not published on PyPI, so pip would "
        "fail or install someone else's package; give git+https://...@<commit> or a wheel URL"
    )


# -- the templates ---------------------------------------------------------------------------------


def _yaml(text: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(text)


def _uses(action: str) -> str:
    repository, commit, tag = ACTIONS[action]
    return f"{repository}@{commit}  # {tag}"


def _pip_install(requirement_variable: str) -> str:
    """One pip command: the tested torch pair from the CPU index and dli-grade, resolved together."""
    pair = " ".join(f'"{pin}"' for pin in TORCH_PAIR)
    return f'pip install --extra-index-url {TORCH_CPU_INDEX} {pair} "${requirement_variable}"'


def github_workflow(notebook: str, package: str) -> str:
    return f"""\
# Grades the DLI assessment notebook on every push and reports the points to GitHub Classroom.
# Generated by dli-grade {__version__} init-ci.
name: dli-grade

on:
  push:
  workflow_dispatch:

permissions:
  contents: read
  checks: write   # the Classroom reporter posts the points as a check run
  actions: read

env:
  # Where pip gets dli-grade: a git URL pinned to a commit, or a wheel URL.
  DLI_GRADE_PACKAGE: {_yaml(package)}
  NOTEBOOK: {_yaml(notebook)}

jobs:
  grade:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    if: github.actor != 'github-classroom[bot]'
    steps:
      - uses: {_uses("checkout")}
      - uses: {_uses("setup-python")}
        with:
          python-version: "3.11"
          cache: pip
          cache-dependency-path: .github/workflows/dli-grade.yml
      - name: Install torch (CPU) and dli-grade
        run: |
          python -m pip install --upgrade pip
          {_pip_install("DLI_GRADE_PACKAGE")}
      - name: Grade
        id: {CLASSROOM_RUNNER}
        run: dli-grade "$NOTEBOOK" --device cpu --format github -q --html-report dli-grade-report.html
      - name: Report the points to GitHub Classroom
        if: always() && steps.{CLASSROOM_RUNNER}.outputs.result != ''
        uses: {_uses("classroom-reporter")}
        env:
          {CLASSROOM_RUNNER.upper()}_RESULTS: "${{{{ steps.{CLASSROOM_RUNNER}.outputs.result }}}}"
        with:
          runners: {CLASSROOM_RUNNER}
      - name: Upload the HTML report
        if: always()
        uses: {_uses("upload-artifact")}
        with:
          name: dli-grade-report
          path: dli-grade-report.html
          if-no-files-found: ignore
"""


def gitlab_ci(notebook: str, package: str) -> str:
    return f"""\
# Grades the DLI assessment notebook on every push; generated by dli-grade {__version__} init-ci.
variables:
  # Where pip gets dli-grade: a git URL pinned to a commit, or a wheel URL.
  DLI_GRADE_PACKAGE: {_yaml(package)}
  NOTEBOOK: {_yaml(notebook)}
  PIP_CACHE_DIR: "$CI_PROJECT_DIR/.cache/pip"

dli-grade:
  image: python:3.11-slim
  timeout: 1h
  cache:
    key: dli-grade-pip
    paths:
      - .cache/pip
  script:
    - {_pip_install("DLI_GRADE_PACKAGE")}
    - >-
      dli-grade "$NOTEBOOK" --device cpu -q --format junit --junit-flavour gitlab
      --output dli-grade-junit.xml --html-report dli-grade-report.html
  artifacts:
    when: always
    expose_as: dli-grade report
    paths:
      - dli-grade-report.html
      - dli-grade-junit.xml
    reports:
      junit: dli-grade-junit.xml
"""


def gradescope_setup() -> str:
    pair = " ".join(f'"{pin}"' for pin in TORCH_PAIR)
    return f"""\
#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image (network available here only).
set -euo pipefail
ROOT="${{DLI_GRADE_AUTOGRADER_ROOT:-/autograder}}"
if [ -z "${{DLI_GRADE_SKIP_APT:-}}" ]; then
  apt-get update
  apt-get install -y --no-install-recommends python3 python3-pip python3-venv
fi
python3 -m venv "$ROOT/venv"
"$ROOT/venv/bin/pip" install --upgrade pip
# One command: the tested torch pair (CPU wheels) and dli-grade with MNIST, the classifier and the weights.
"$ROOT/venv/bin/pip" install --extra-index-url {TORCH_CPU_INDEX} {pair} "$ROOT/source/dli-grade"
"$ROOT/venv/bin/dli-grade" selfcheck
"""


def gradescope_run(notebook: str, total_timeout: int, visibility: str) -> str:
    stem = notebook.rsplit(".", 1)[0]
    return f"""\
#!/usr/bin/env bash
# Gradescope runs this for each submission: the student's files are in $ROOT/submission, the
# results go to $ROOT/results/results.json. Whatever the submission holds, results.json is written.
set -uo pipefail
ROOT="${{DLI_GRADE_AUTOGRADER_ROOT:-/autograder}}"
NOTEBOOK={shlex.quote(notebook)}
# The grade ends {GRADESCOPE_MARGIN_S} s before the assignment's time limit, so its results are written in time.
TOTAL_TIMEOUT={total_timeout}
mkdir -p "$ROOT/results"
cd "$ROOT/submission" || exit 1
# The file the assignment names, else the same name as a .py, else the only notebook or module submitted.
file=$(find . -name "$NOTEBOOK" -not -path "*/.ipynb_checkpoints/*" -type f | sort | head -n 1)
if [ -z "$file" ]; then
  file=$(find . -name {shlex.quote(stem + ".py")} -not -path "*/.ipynb_checkpoints/*" -type f | sort | head -n 1)
fi
if [ -z "$file" ]; then
  candidates=$(find . \\( -name "*.ipynb" -o -name "*.py" \\) -not -path "*/.ipynb_checkpoints/*" -type f | sort)
  if [ "$(printf '%s\\n' "$candidates" | grep -c .)" = 1 ]; then
    file=$candidates
  fi
fi
# Not found (or several candidates): dli-grade reports the name as missing, score 0.
"$ROOT/venv/bin/dli-grade" "${{file:-$NOTEBOOK}}" --format gradescope -q \\
  --gradescope-visibility {visibility} --total-timeout "$TOTAL_TIMEOUT" \\
  --output "$ROOT/results/results.json" --artifacts-dir "$ROOT/results"
exit 0
"""


# -- the Gradescope zip: the installed dli-grade, whatever way it was installed ----------------------


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise InitError(f"cannot find the installed package {name!r}")
    return Path(next(iter(spec.submodule_search_locations)))


def _package_files(name: str):
    """(path inside the package, file) of every file of an installed package, caches left out."""
    root = _package_dir(name)
    for current, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for file in sorted(files):
            if not file.endswith((".pyc", ".pyo")) and not file.startswith("."):
                path = Path(current) / file
                yield path.relative_to(root).as_posix(), path


def source_pyproject(package_data: dict[str, list[str]]) -> str:
    """A pyproject.toml that rebuilds the installed dli-grade: its version, dependencies and every file."""
    requires = [r for r in importlib.metadata.requires(DISTRIBUTION) or [] if "extra ==" not in r]
    lines = [
        "[build-system]",
        'requires = ["setuptools>=68", "wheel"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f'name = "{DISTRIBUTION}"',
        f"version = {json.dumps(__version__)}",
        'requires-python = ">=3.10"',
        "dependencies = " + json.dumps(requires),
        "",
        "[project.scripts]",
        'dli-grade = "grader.cli:main"',
        "",
        "[tool.setuptools.packages.find]",
        "include = " + json.dumps([f"{p}*" for p in PACKAGES]),
        "",
        "[tool.setuptools.package-data]",
    ]
    lines += [f"{package} = {json.dumps(files)}" for package, files in package_data.items()]
    return "\n".join(lines) + "\n"


def _add(bundle: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    bundle.writestr(info, data)


def gradescope_zip(notebook: str, total_timeout: int, visibility: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        _add(bundle, "setup.sh", gradescope_setup().encode(), 0o755)
        _add(bundle, "run_autograder", gradescope_run(notebook, total_timeout, visibility).encode(), 0o755)
        package_data = {}
        for package in PACKAGES:
            files = list(_package_files(package))
            # Every file is declared package data, so non-package folders (reference/course/utils) come too.
            package_data[package] = [inner for inner, _ in files]
            for inner, path in files:
                _add(bundle, f"dli-grade/{package}/{inner}", path.read_bytes())
        _add(bundle, "dli-grade/pyproject.toml", source_pyproject(package_data).encode())
    return buffer.getvalue()


# -- the command -----------------------------------------------------------------------------------


def _check_notebook(ctx, param, value: str) -> str:
    # The templates quote it for YAML and the shell; a leading '-' would read as an option.
    if (
        not value
        or value.startswith("-")
        or CONTROL.search(value)
        or "/" in value
        or not value.endswith((".ipynb", ".py"))
    ):
        raise click.BadParameter("give the notebook's or module's file name (.ipynb or .py), e.g. 06_Assessment.ipynb")
    return value


@click.command("init-ci", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--github", is_flag=True, help="write .github/workflows/dli-grade.yml (reports to GitHub Classroom)")
@click.option("--gitlab", is_flag=True, help="write .gitlab-ci.yml (JUnit report)")
@click.option("--gradescope", is_flag=True, help="build dli-grade-autograder.zip for a Gradescope assignment")
@click.option(
    "--notebook",
    default=DEFAULT_NOTEBOOK,
    show_default=True,
    callback=_check_notebook,
    help="file name of the assessment (.ipynb or .py) in the student's repository or submission",
)
@click.option(
    "--package",
    default=None,
    help="GitHub/GitLab: what pip installs dli-grade from (git+https://...@<commit> or a wheel URL); "
    "default: where this dli-grade was installed from",
)
@click.option(
    "--gradescope-time-limit",
    type=click.IntRange(min=GRADESCOPE_MARGIN_S + 60),
    default=DEFAULT_GRADESCOPE_LIMIT_S,
    show_default=True,
    help=f"the assignment's autograder timeout on Gradescope, in seconds; the grade stops "
    f"{GRADESCOPE_MARGIN_S} s before it so that results.json is always written",
)
@click.option(
    "--gradescope-visibility",
    type=click.Choice(VISIBILITIES),
    default="visible",
    show_default=True,
    help="when students see the autograder's results",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="folder to write into (the repository's root)",
)
@click.option("--force", is_flag=True, help="overwrite files that exist")
def init_ci(
    github, gitlab, gradescope, notebook, package, gradescope_time_limit, gradescope_visibility, out_dir, force
):
    """Write CI templates (GitHub Actions, GitLab CI) or a Gradescope autograder zip.

    Everything is checked and made before the first file is written: a refusal writes nothing.
    """
    if not (github or gitlab or gradescope):
        raise click.UsageError("choose at least one of --github, --gitlab, --gradescope")
    planned: list[tuple[Path, str | bytes]] = []
    if github or gitlab:
        package = check_package(package) if package is not None else installed_origin()
        if github:
            planned.append((out_dir / ".github" / "workflows" / "dli-grade.yml", github_workflow(notebook, package)))
        if gitlab:
            planned.append((out_dir / ".gitlab-ci.yml", gitlab_ci(notebook, package)))
    if gradescope:
        total_timeout = gradescope_time_limit - GRADESCOPE_MARGIN_S
        planned.append(
            (out_dir / "dli-grade-autograder.zip", gradescope_zip(notebook, total_timeout, gradescope_visibility))
        )
    existing = [str(path) for path, _ in planned if path.exists()]
    if existing and not force:
        click.echo(f"dli-grade: error: {', '.join(existing)} already exists; use --force to overwrite", err=True)
        sys.exit(EXIT_UNUSABLE)
    for path, content in planned:
        if isinstance(content, str):
            atomic.write_text(path, content)
        else:
            atomic.write_bytes(path, content)
        click.echo(f"wrote {path}")
