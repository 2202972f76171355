"""Report formats (gradescope, junit, github, html), the sanitiser and the grade command's --format/--output.

Most tests render a hand-made result with hostile student-derived strings, in-process and
without torch work; one runs a real grade of two unit tasks through the installed script.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
import xmlschema
from click.testing import CliRunner

import grader.grading.runner
from grader.cli import main
from grader.core.sanitize import csv_cell, one_line
from grader.grading.result import GradeResult, Location, TaskResult, json_schema
from grader.report import github, gradescope, html as html_format, junit
from grader.report.common import error_document

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "submission.py"
SCRIPT = shutil.which("dli-grade") or str(Path(sys.executable).parent / "dli-grade")
HOSTILE = 'bad <script>alert(1)</script> & "q"\n::error::forged\r\x1b[31mred\x1b[0m\x00\x07 100%,x:y'
SCHEMAS = ROOT / "tests" / "schemas"
GRADESCOPE_SCHEMA = json.loads((SCHEMAS / "gradescope-results.schema.json").read_text())
JUNIT_XSD = xmlschema.XMLSchema(str(SCHEMAS / "junit-10.xsd"))  # the Jenkins xunit plugin's
# a 1x1 PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def sample_result(grid: str | None = None) -> GradeResult:
    tasks = [
        TaskResult("schedule", "DDPM schedule", 5.0, 5, "passed", "correct"),
        TaskResult(
            "q",
            "Forward diffusion q(x_0, t)",
            0.0,
            2,
            "failed",
            HOSTILE,
            hints=["use sqrt_a_bar[t]\n::warning::also forged"],
            location=Location(10, 3),
        ),
        TaskResult("loss", "Loss", 0.0, 1, "error", "internal grader error: RuntimeError: boom"),
    ]
    if grid:
        tasks.append(
            TaskResult(
                "generation",
                "Generated digits",
                28.0,
                28,
                "passed",
                "48 of 50 recognised",
                details={
                    "profile": "cpu",
                    "w": 1.0,
                    "official_accuracy": 0.96,
                    "official_passed": True,
                    "accuracy": 0.97,
                    "samples": 100,
                    "per_digit_accuracy": {"0": 1.0, "1": 0.9},
                    "grid": grid,
                },
            )
        )
    return GradeResult(
        submission="subs/=evil<b>.ipynb",
        sha256="ab" * 32,
        layout="B",
        device="cpu",
        tasks=tasks,
        integrity=["imports <grader> \x1b[2J"],
        duration_s=3.2,
        timings={"q": 0.5},
    )


# -- sanitiser --------------------------------------------------------------------------------


def test_one_line_removes_controls_ansi_and_bounds_length():
    assert one_line("a\nb\r\n\tc\x1b[31m red\x1b[0m\x00\x9b") == "a b c red"
    assert one_line("\x1b]0;title\x07ok") == "ok"
    cut = one_line("x" * 600)
    assert len(cut) == 500 and cut.endswith("\u2026")
    assert one_line("abc", 2) == "a\u2026"
    assert one_line(None) == ""


def test_csv_cell_neutralises_formulas_only_in_strings():
    assert csv_cell('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    for start in "+-@":
        assert csv_cell(start + "1") == "'" + start + "1"
    assert csv_cell("alice") == "alice" and csv_cell(-3.5) == -3.5


# -- gradescope -------------------------------------------------------------------------------


def test_gradescope_results_follow_the_specification():
    data = json.loads(gradescope.render(sample_result().to_json()))
    assert set(data) >= {"score", "output", "tests"}
    assert data["score"] == 5.0 and isinstance(data["output"], str) and "5/8" in data["output"]
    names = [test["name"] for test in data["tests"]]
    assert names == ["schedule: DDPM schedule", "q: Forward diffusion q(x_0, t)", "loss: Loss"]
    for test in data["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
        assert test["status"] in ("passed", "failed") and test["visibility"] == "visible"
    assert [t["status"] for t in data["tests"]] == ["passed", "failed", "failed"]
    q = data["tests"][1]
    assert "\x1b" not in q["output"] and "cell 10, line 3" in q["output"] and "hint: use sqrt_a_bar[t]" in q["output"]
    assert q["output"].count("\n") == 1  # message line + one hint line, each a single line


# Gradescope's autograder specification (docs/specs.md of gradescope/autograder_samples, 2025):
# every key results.json may hold at the top level and in a test, and the visibility values.
GRADESCOPE_TOP_KEYS = {
    "score",
    "execution_time",
    "output",
    "output_format",
    "test_output_format",
    "test_name_format",
    "visibility",
    "stdout_visibility",
    "extra_data",
    "tests",
    "leaderboard",
}
GRADESCOPE_TEST_KEYS = {
    "score",
    "max_score",
    "status",
    "name",
    "name_format",
    "number",
    "output",
    "output_format",
    "tags",
    "visibility",
    "extra_data",
}
GRADESCOPE_VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
GRADESCOPE_FORMATS = {"text", "html", "simple_format", "md", "ansi"}
# /autograder/submission_metadata.json as the specification's "Submission Metadata" page shows
# it: a group submission of two, one name carrying markup and a line break.
METADATA = {
    "id": 123456,
    "created_at": "2026-11-27T14:22:32.365935-08:00",
    "assignment": {
        "due_date": "2026-11-30T23:00:00.000000-08:00",
        "group_size": 2,
        "group_submission": True,
        "id": 25828,
        "course_id": 1234,
        "late_due_date": None,
        "title": "DLI diffusion assessment",
        "total_points": "50.0",
    },
    "submission_method": "upload",
    "users": [
        {"email": "ann@example.edu", "id": 1234, "name": "Ann <b>Lee</b>\nScore 50/50"},
        {"email": "bo@example.edu", "id": 1235, "name": "Bo Chen"},
    ],
    "previous_submissions": [{"submission_time": "2026-11-26T10:00:00-08:00", "score": 5.0, "results": {}}],
}


def test_gradescope_results_use_only_the_specifications_keys_and_values(tmp_path):
    data = gradescope.results(sample_result().to_json(), gradescope_metadata_of(METADATA, tmp_path))
    assert set(data) <= GRADESCOPE_TOP_KEYS
    assert all(set(test) <= GRADESCOPE_TEST_KEYS for test in data["tests"])
    assert {data["visibility"], data["stdout_visibility"]} | {
        t["visibility"] for t in data["tests"]
    } <= GRADESCOPE_VISIBILITY
    # The top-level output would be rendered as HTML ("simple_format") unless declared text.
    assert data["output_format"] == data["test_output_format"] == data["test_name_format"] == "text"
    assert {data["output_format"]} <= GRADESCOPE_FORMATS
    assert isinstance(data["execution_time"], int) and data["execution_time"] == 3  # whole seconds
    json.dumps(data, allow_nan=False)
    jsonschema.validate(data, GRADESCOPE_SCHEMA)


def test_gradescope_results_validate_against_the_schema_written_from_the_specification(tmp_path):
    document = sample_result().to_json()
    for visibility in gradescope.VISIBILITIES:
        data = gradescope.results(document, gradescope_metadata_of(METADATA, tmp_path), visibility)
        jsonschema.validate(data, GRADESCOPE_SCHEMA)
        assert data["visibility"] == visibility and {t["visibility"] for t in data["tests"]} == {visibility}
    jsonschema.validate(gradescope.results(error_document("x.ipynb", "broken")), GRADESCOPE_SCHEMA)
    # the schema can fail: what the old writer produced (a float time) and an unknown key are rejected
    for broken in (
        {**data, "execution_time": 3.2},
        {**data, "visiblity": "hidden"},
        {**data, "tests": [{**data["tests"][0], "status": "error"}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, GRADESCOPE_SCHEMA)


def test_gradescope_visibility_from_the_command_line(fake_grade, tmp_path, monkeypatch):
    monkeypatch.setattr(gradescope, "RESULTS_DIR", tmp_path / "absent")
    result = CliRunner().invoke(
        main, [str(EXAMPLE), "--format", "gradescope", "-q", "--gradescope-visibility", "after_published"]
    )
    data = json.loads(result.stdout)
    assert data["visibility"] == "after_published"
    assert {test["visibility"] for test in data["tests"]} == {"after_published"}
    assert (
        CliRunner().invoke(main, [str(EXAMPLE), "--format", "gradescope", "--gradescope-visibility", "x"]).exit_code
        == 2
    )


def test_the_seed_is_a_string_in_every_json_output():
    # 2^63 - 1: a double holds 53 bits, so a JSON reader using doubles would read 9223372036854775808
    result = sample_result()
    result.seed = 2**63 - 1
    document = result.to_json()
    assert document["seed"] == "9223372036854775807"
    jsonschema.validate(document, json_schema())
    extra = json.loads(gradescope.render(document))["extra_data"]["dli_grade"]
    assert extra["seed"] == "9223372036854775807"
    assert int(json.loads(json.dumps(document))["seed"]) == 2**63 - 1


def gradescope_metadata_of(raw, folder: Path) -> dict | None:
    path = folder / "submission_metadata.json"
    if isinstance(raw, bytes):
        path.write_bytes(raw)
    else:
        path.write_text(raw if isinstance(raw, str) else json.dumps(raw))
    return gradescope.submission_metadata(path)


def test_gradescope_metadata_names_the_submission_and_is_stored_for_the_instructor(tmp_path):
    metadata = gradescope_metadata_of(METADATA, tmp_path)
    assert metadata["submission_id"] == 123456 and metadata["created_at"] == METADATA["created_at"]
    assert metadata["assignment"] == "DLI diffusion assessment"
    assert [user["id"] for user in metadata["users"]] == [1234, 1235]
    assert metadata["users"][0]["name"] == "Ann <b>Lee</b> Score 50/50"  # one line; declared text, never HTML
    data = gradescope.results(sample_result().to_json(), metadata)
    first, second = data["output"].split("\n")[:2]
    assert first == (
        "Submission 123456 by Ann <b>Lee</b> Score 50/50, Bo Chen (submitted 2026-11-27T14:22:32.365935-08:00)"
    )
    assert second.startswith("Score 5/8")  # the grade's own line follows, unchanged
    stored = data["extra_data"]["dli_grade"]
    assert stored["gradescope"]["users"][1] == {"id": 1235, "name": "Bo Chen", "email": "bo@example.edu"}
    assert stored["sha256"] == "ab" * 32 and stored["schema"] == "dli-grade/result/v1"
    assert "previous_submissions" not in json.dumps(stored)  # earlier results are not copied along


def test_gradescope_metadata_that_is_absent_or_unreadable_is_ignored(tmp_path):
    assert gradescope.submission_metadata(tmp_path / "absent.json") is None
    for raw in ("", "{ not json", "[1, 2]", b"\xff{}"):
        assert gradescope_metadata_of(raw, tmp_path) is None, raw


def test_gradescope_metadata_of_an_unexpected_shape_still_gives_a_well_formed_report(tmp_path):
    metadata = gradescope_metadata_of({"id": True, "users": "x", "assignment": 3, "created_at": None}, tmp_path)
    assert metadata == {"submission_id": None, "created_at": "", "assignment": "", "users": []}
    assert gradescope.results(sample_result().to_json(), metadata)["output"].startswith("Submission\nScore 5/8")


def test_gradescope_error_document_scores_zero_with_the_reason():
    data = gradescope.results(error_document("x.ipynb", "x.ipynb: not valid JSON"))
    assert data["score"] == 0.0 and data["tests"] == [] and "not valid JSON" in data["output"]


# -- junit ------------------------------------------------------------------------------------


def test_junit_has_one_suite_one_case_per_task_failures_and_points():
    root = ET.fromstring(junit.render(sample_result().to_json()))
    suites = root.findall("testsuite")
    assert root.tag == "testsuites" and len(suites) == 1
    suite = suites[0]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["schedule", "q", "loss"]
    assert all(c.get("classname") == "dli-grade" for c in cases)
    assert not any(c.find("properties") is not None for c in cases)  # junit-10.xsd allows none in a testcase
    outs = {c.get("name"): c.find("system-out").text for c in cases}
    assert outs["schedule"] == "5/5 points: DDPM schedule"
    assert outs["q"] == "0/2 points: Forward diffusion q(x_0, t) [cell 10, line 3]"
    failure = cases[1].find("failure")
    assert failure is not None and "<script>" in failure.get("message")  # escaped by the XML writer, parsed back
    assert "\x1b" not in failure.get("message") and "\x00" not in failure.text and "\n" not in failure.get("message")
    assert cases[2].find("error") is not None
    assert cases[0].find("failure") is None
    suite_props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert suite_props["score"] == "5" and suite_props["max_score"] == "8"


def test_junit_validates_against_the_jenkins_xunit_schema():
    documents = [
        sample_result().to_json(),
        error_document("x.ipynb", "x.ipynb: not valid JSON"),
        GradeResult("s.py", "ab" * 32, "B", "cpu", []).to_json(),
    ]
    for document in documents:
        for flavour in junit.FLAVOURS:
            root = ET.fromstring(junit.render(document, flavour))
            if flavour == "gitlab":
                # GitLab links each case to its file; the xunit schema has no such attribute on a testcase
                assert {case.get("file") for case in root.iter("testcase")} <= {document["submission"]}
                for case in root.iter("testcase"):
                    del case.attrib["file"]
            JUNIT_XSD.validate(ET.tostring(root, encoding="unicode"))
    # the schema can fail: properties inside a testcase (what the writer did before) are rejected
    root = ET.fromstring(junit.render(sample_result().to_json()))
    ET.SubElement(root.find("testsuite/testcase"), "properties")
    assert not JUNIT_XSD.is_valid(ET.tostring(root, encoding="unicode"))


def test_junit_gitlab_flavour_names_the_file_of_every_case(fake_grade, tmp_path):
    target = tmp_path / "junit.xml"
    result = CliRunner().invoke(
        main, [str(EXAMPLE), "--format", "junit", "--junit-flavour", "gitlab", "--output", str(target), "-q"]
    )
    assert result.exit_code == 3, result.output  # the fake result has an error task
    root = ET.parse(target).getroot()
    assert [case.get("file") for case in root.iter("testcase")] == ["subs/=evil<b>.ipynb"] * 3
    jenkins = ET.fromstring(junit.render(sample_result().to_json()))
    assert all(case.get("file") is None for case in jenkins.iter("testcase"))
    assert jenkins.find("testsuite").get("file") == "subs/=evil<b>.ipynb"  # allowed on the suite


def test_junit_strips_characters_illegal_in_xml():
    result = sample_result()
    result.tasks[1].message = "bad \x01\x02\ufffe\x0b char"
    ET.fromstring(junit.render(result.to_json()))  # would raise on an illegal character
    root = ET.fromstring(junit.render(error_document("a\x01b.py", "no \x0c good")))
    assert root.find("testsuite/testcase/error").get("message") == "no good"


# -- github -----------------------------------------------------------------------------------


def test_github_escaping_helpers():
    assert github.escape_data("100%\r\nx") == "100%25%0D%0Ax"
    assert github.escape_property("a:b,c%") == "a%3Ab%2Cc%25"
    assert github.neutralise_commands("ok\n  ::error::x\n::set-output") == "ok\n  :\u200b:error::x\n:\u200b:set-output"


def test_github_stdout_has_only_our_commands(tmp_path):
    document = sample_result().to_json()
    out = github.render(document, "report line\n::error::forged in text")
    lines = out.split("\n")
    token = re.match(r"::stop-commands::(\w+)$", lines[0]).group(1)
    resume = lines.index(f"::{token}::")
    commands = lines[resume + 1 :]
    assert all(line.startswith(("::error ", "::notice ")) for line in commands)
    assert len(commands) == 3  # q (failed), loss (error), the score notice
    q = commands[0]
    assert q.startswith("::error file=subs/=evil<b>.ipynb,title=q (cell 10%2C line 3)%3A 0/2::")
    data = q.split("::", 2)[2]
    assert "\n" not in data and "\r" not in data and "100%25%2Cx" not in data and "100%25,x:y" in data
    # text between stop-commands and the token is inert, and has its own `::` broken anyway
    assert ":\u200b:error::forged in text" in out


def test_github_summary_and_classroom_output(tmp_path):
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    output.write_text("previous=1\n")
    document = sample_result().to_json()
    github.write_environment_files(document, {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)})
    text = summary.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text and "| `q` | ❌ failed | 0/2 |" in text
    lines = output.read_text().splitlines()
    assert lines[0] == "previous=1" and lines[1].startswith("result=")
    payload = json.loads(base64.b64decode(lines[1][len("result=") :]))
    assert payload["version"] == 1 and payload["status"] == "error" and payload["max_score"] == 8
    assert [(t["name"], t["status"], t["score"], t["max_score"]) for t in payload["tests"]] == [
        ("schedule", "pass", 5.0, 5.0),
        ("q", "fail", 0.0, 2.0),
        ("loss", "error", 0.0, 1.0),
    ]
    assert all(set(t) >= {"name", "status", "score", "max_score", "message"} for t in payload["tests"])


def test_github_classroom_status_pass_and_fail():
    passing = GradeResult("a.py", "0" * 64, "B", "cpu", [TaskResult("q", "q", 2.0, 2, "passed", "correct")])
    assert github.classroom_result(passing.to_json())["status"] == "pass"
    passing.tasks[0] = TaskResult("q", "q", 0.0, 2, "failed", "wrong")
    assert github.classroom_result(passing.to_json())["status"] == "fail"


# -- html -------------------------------------------------------------------------------------


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text, self.srcs = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.srcs += [value for name, value in attrs if name in ("src", "href")]

    def handle_data(self, data):
        self.text.append(data)


def test_html_escapes_student_text_and_inlines_the_grid(tmp_path):
    grid = tmp_path / "sub.samples.png"
    grid.write_bytes(PNG)
    page = html_format.render(sample_result(str(grid)).to_json())
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags and "b" not in parser.tags  # from the message and file name
    text = "".join(parser.text)
    assert "<script>alert(1)</script>" in text and "subs/=evil<b>.ipynb" in text  # shown, as text
    assert "\x1b" not in page and "\x00" not in page
    assert parser.srcs == ["data:image/png;base64," + base64.b64encode(PNG).decode()]  # nothing from the network
    assert "FAILED" in page and "cell 10, line 3" in page and "hint: use sqrt_a_bar[t]" in page
    assert "96% of 50" in page


def test_html_ignores_a_grid_that_is_not_a_png(tmp_path):
    fake = tmp_path / "x.png"
    fake.write_text("not a png")
    assert html_format.grid_data_uri(str(fake)) is None
    assert html_format.grid_data_uri("/etc/passwd") is None
    assert html_format.grid_data_uri(str(tmp_path / "missing.png")) is None


# -- the grade command ------------------------------------------------------------------------


@pytest.fixture
def fake_grade(monkeypatch):
    monkeypatch.setattr(grader.grading.runner, "grade", lambda *args, **kwargs: sample_result())


@pytest.mark.parametrize("fmt", ["gradescope", "junit", "html", "github"])
def test_grade_command_writes_each_format_to_output(fmt, fake_grade, tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    target = tmp_path / "report.out"
    result = CliRunner().invoke(main, [str(EXAMPLE), "--format", fmt, "--output", str(target), "-q"])
    assert result.exit_code == 3, result.output  # the fake result has an error task
    assert result.stdout == ""
    text = target.read_text()
    if fmt == "gradescope":
        assert json.loads(text)["score"] == 5.0
    elif fmt == "junit":
        assert ET.fromstring(text).find("testsuite").get("tests") == "3"
    elif fmt == "html":
        assert text.startswith("<!DOCTYPE html>")
    else:
        assert "::error file=" in text
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_gradescope_goes_to_the_autograder_results_folder(fake_grade, tmp_path, monkeypatch):
    monkeypatch.setattr(gradescope, "RESULTS_DIR", tmp_path)
    (tmp_path / "submission_metadata.json").write_text(json.dumps(METADATA))
    monkeypatch.setattr(gradescope, "METADATA_FILE", tmp_path / "submission_metadata.json")
    result = CliRunner().invoke(main, [str(EXAMPLE), "--format", "gradescope", "-q"])
    assert result.stdout == ""
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["tests"][0]["name"].startswith("schedule")
    assert data["output"].startswith("Submission 123456 by ") and data["extra_data"]["dli_grade"]["gradescope"]


def test_unusable_input_still_gives_structured_reports(tmp_path, monkeypatch):
    bad = tmp_path / "broken.ipynb"
    bad.write_text("{ not json")
    monkeypatch.setattr(gradescope, "RESULTS_DIR", tmp_path / "absent")
    result = CliRunner().invoke(main, [str(bad), "--format", "gradescope", "-q"])
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["score"] == 0.0 and "broken.ipynb" in data["output"]
    result = CliRunner().invoke(main, [str(bad), "--format", "json", "-q"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)  # json: one error document of its own schema
    assert error["schema"] == "dli-grade/error/v1" and error["status"] == "unusable"
    assert "broken.ipynb" in error["error"]


def test_real_grade_in_junit_through_the_script(tmp_path):
    target = tmp_path / "junit.xml"
    done = subprocess.run(
        [
            SCRIPT,
            str(EXAMPLE),
            "--tasks",
            "q,loss",
            "--device",
            "cpu",
            "-q",
            "--format",
            "junit",
            "--output",
            str(target),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    suite = ET.parse(target).getroot().find("testsuite")
    assert [c.get("name") for c in suite.findall("testcase")] == ["q", "loss"]
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
