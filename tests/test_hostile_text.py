"""Every output survives any text a student's code can produce (issue 17, item 1).

A submission whose `q` raises with the nastiest message we know (a lone surrogate, bidi
overrides, NUL, `]]>`, a workflow command, ANSI, `</script>` and a 100 kB line) is graded for
real once per module; its result then goes through every `--format`, through the installed
script (real stdout, the GitHub environment files, the HTML report) and through a batch whose
file name is not UTF-8. Each output must parse as its format and carry no surrogate, and the
exit code must say "not passed" (1), never a crash.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

import grader.grading.runner
import grader.report.gradescope
from grader.cli import main
from grader.report import FORMATS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "submission.py"
SCRIPT = shutil.which("dli-grade") or str(Path(sys.executable).parent / "dli-grade")
# Written into the submission's source as escapes, so the file itself is valid UTF-8.
NASTY_SOURCE = (
    '"lone \\ud800 surrogate \\u202e bidi \\u2066 NUL \\x00 CDATA ]]> ::error::forged '
    '\\x1b[31mANSI\\x1b[0m </script><script>alert(1)</script> " + "x" * 100_000'
)
SURROGATE = re.compile("[\ud800-\udfff]")

pytestmark = pytest.mark.usefixtures("single_thread")


def nasty_submission(path: Path) -> Path:
    """The correct example with `q` raising the nasty message."""
    text = EXAMPLE.read_text(encoding="utf-8")
    head = "def q(x_0, t):\n"
    assert text.count(head) == 1
    path.write_text(text.replace(head, f"{head}    raise ValueError({NASTY_SOURCE})\n"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def nasty(tmp_path_factory):
    return nasty_submission(tmp_path_factory.mktemp("nasty") / "nasty.py")


@pytest.fixture(scope="module")
def real_result(nasty):
    result = grader.grading.runner.grade(str(nasty), ["q"], device="cpu", seed=7, timeout=60)
    q = result.tasks[0]
    # The message really came back from the child: the formats get the student's text.
    assert q.status == "failed" and "raised ValueError: lone" in q.message
    return result


def strings_of(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_of(item)


def strict_json(text: str):
    """Parse as a strict reader does: no surrogate (escaped or raw), no NaN."""

    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    document = json.loads(text, parse_constant=no_constants)
    bad = [s[:80] for s in strings_of(document) if SURROGATE.search(s)]
    assert not bad, f"surrogates a strict JSON reader rejects: {bad}"
    return document


def parse_html(text: str) -> list[str]:
    """Parse the page; return the names of the script elements (there must be none)."""
    scripts = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "script":
                scripts.append(tag)

    Parser().feed(text)
    return scripts


def check_output(fmt: str, text: str) -> None:
    assert not SURROGATE.search(text)
    text.encode("utf-8")  # strict
    if fmt == "json":
        document = strict_json(text)
        assert document["tasks"][0]["status"] == "failed" and "\ufffd" in document["tasks"][0]["message"]
    elif fmt == "gradescope":
        data = strict_json(text)
        assert data["score"] == 0 and data["tests"][0]["status"] == "failed"
    elif fmt == "junit":
        failure = ET.fromstring(text).find("testsuite/testcase/failure")
        assert "raised ValueError" in failure.get("message") and "]]>" in failure.text
    elif fmt == "html":
        assert parse_html(text) == [] and "&lt;/script&gt;" in text
    elif fmt == "github":
        # our own commands only: stop-commands, its resume token, one error and the score notice
        commands = [line for line in text.splitlines() if line.startswith("::")]
        assert [c.split("::")[1].split(" ")[0] for c in commands[2:]] == ["error", "notice"]
        assert "::error::forged" not in text.replace("\n", " ").split("::stop-commands::")[0]
    else:
        assert "FAIL  q" in text and "raised ValueError" in text and "\ufffd" in text
        assert "\x1b" not in text and "\x00" not in text and "\u202e" not in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_survives_a_real_grade_of_hostile_text(fmt, real_result, nasty, monkeypatch, tmp_path):
    monkeypatch.setattr(grader.grading.runner, "grade", lambda *args, **kwargs: real_result)
    # Gradescope's results go to /autograder/results when this machine has one: keep them on stdout.
    monkeypatch.setattr(grader.report.gradescope, "RESULTS_DIR", tmp_path / "no-autograder")
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result = CliRunner().invoke(main, [str(nasty), "--format", fmt, "-q"])
    # 1 is "not passed"; a crash also exits 1, so the exit must be our own (SystemExit)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (result.exception, result.output[-500:])
    check_output(fmt, result.stdout)


def test_the_script_writes_every_github_file_and_the_html_report(nasty, tmp_path):
    summary, output, page = tmp_path / "summary.md", tmp_path / "output", tmp_path / "report.html"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)}
    done = subprocess.run(
        [SCRIPT, str(nasty), "--tasks", "q", "--device", "cpu", "-q", "--format", "github", "--html-report", str(page)],
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr.decode("utf-8", "replace")[-2000:]
    check_output("github", done.stdout.decode("utf-8"))
    check_output("html", page.read_text(encoding="utf-8"))
    assert "\ufffd" in summary.read_text(encoding="utf-8")
    payload = output.read_text(encoding="utf-8").strip().removeprefix("result=")
    classroom = strict_json(base64.b64decode(payload).decode("utf-8"))
    assert classroom["tests"][0]["status"] == "fail"


def test_a_console_that_is_not_utf8_still_gets_the_text_report(nasty, tmp_path):
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = subprocess.run(
        [SCRIPT, str(nasty), "--tasks", "q", "--device", "cpu", "-q"],
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr.decode("utf-8", "replace")[-2000:]
    text = done.stdout.decode("ascii")  # strict: every character written is ASCII
    assert "FAIL  q" in text and "raised ValueError: lone ? surrogate" in text


def test_a_batch_survives_hostile_text_and_a_file_name_that_is_not_utf8(nasty, tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    # A file name with a byte that is not UTF-8: Python reads it with a surrogate (surrogateescape).
    shutil.copy(nasty, os.path.join(os.fsencode(subs), b"caf\xe9.py"))
    done = subprocess.run(
        [SCRIPT, "batch", "subs", "--out", "out", "--tasks", "q", "--device", "cpu", "-q"],
        capture_output=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-2000:]
    out = tmp_path / "out"
    rows = list(csv.DictReader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8"))))
    assert [(row["status"], row["q"]) for row in rows] == [("graded", "failed")]
    folder = out / "submissions" / rows[0]["student"]
    document = strict_json((folder / "result.json").read_text(encoding="utf-8"))
    assert "\ufffd" in document["submission"] and "\ufffd" in document["tasks"][0]["message"]
    strict_json((folder / "record.json").read_text(encoding="utf-8"))
    for page in (folder / "report.html", out / "summary.html"):
        assert parse_html(page.read_text(encoding="utf-8")) == []
    (out / "summary.md").read_text(encoding="utf-8")
