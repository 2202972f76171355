"""The `dli-grade` command line: exit codes, the JSON document, stdout hygiene, progress, help.

Grading runs go through the installed `dli-grade` script in a subprocess (what users and CI
run); argument and input errors, which never start a child, go through click's CliRunner.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
from click.testing import CliRunner
from nbformat.v4 import new_markdown_cell, new_notebook

import tasks
from grader.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "submission.py"
SCRIPT = shutil.which("dli-grade") or str(Path(sys.executable).parent / "dli-grade")
TASK_FIELDS = {"id", "title", "score", "max_score", "status", "message", "hints", "location", "details"}
DOCUMENT_FIELDS = {
    "schema",
    "submission",
    "sha256",
    "layout",
    "device",
    "score",
    "max_score",
    "passed",
    "tasks",
    "integrity",
    "duration_s",
}
UNIT_TASKS = tuple(getattr(tasks, "UNIT_TASK_IDS", tasks.TASK_IDS))  # generation samples: too slow here
SECRET = "STUDENT-PRINT-7f3a"  # printed by the mutant's code: must never reach stdout


def dli_grade(*args, timeout=900):
    """Run the installed script; return (exit code, stdout, stderr)."""
    done = subprocess.run([SCRIPT, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def mutant(tmp_path) -> Path:
    """The example with q's coefficients swapped, printing from q, from a cell and to stderr."""
    text = EXAMPLE.read_text(encoding="utf-8")
    old = ("def q(x_0, t):\n    t = t.int()\n", "    x_t = sqrt_a_bar_t * x_0 + sqrt_one_minus_a_bar_t * noise\n")
    assert text.count(old[0]) == 1 and text.count(old[1]) == 1 and text.count("IMG_SIZE = 28\n") == 1
    text = text.replace(
        old[0],
        old[0] + f"    print('{SECRET} in q')\n"
        f"    import os, sys; print('{SECRET} err', file=sys.stderr)\n"
        f"    os.write(1, b'{SECRET} fd 1\\n'); os.write(2, b'{SECRET} fd 2\\n')\n",
    )
    text = text.replace(old[1], "    x_t = sqrt_one_minus_a_bar_t * x_0 + sqrt_a_bar_t * noise\n")
    # an assignment, so that the line runs when the grader executes the cell
    text = text.replace("IMG_SIZE = 28\n", f"IMG_SIZE = 28\n_shown = print('{SECRET} in a cell')\n")
    path = tmp_path / "mutant.py"
    path.write_text(text, encoding="utf-8")
    return path


def check_document(document: dict, submission: Path, task_ids) -> None:
    """The dli-grade/result/v1 schema, field by field."""
    assert set(document) >= DOCUMENT_FIELDS
    assert document["schema"] == "dli-grade/result/v1"
    assert document["submission"] == str(submission)
    assert len(document["sha256"]) == 64 and int(document["sha256"], 16) >= 0
    assert document["sha256"] == hashlib.sha256(submission.read_bytes()).hexdigest()
    assert document["layout"] in ("A", "B")
    assert document["device"] in ("cpu", "cuda")
    assert isinstance(document["passed"], bool)
    assert isinstance(document["integrity"], list)
    assert isinstance(document["duration_s"], (int, float)) and document["duration_s"] > 0
    assert [task["id"] for task in document["tasks"]] == list(task_ids)
    for task in document["tasks"]:
        assert set(task) >= TASK_FIELDS - {"details"}
        assert task["status"] in ("passed", "failed", "error")
        assert isinstance(task["title"], str) and task["title"]
        assert isinstance(task["message"], str) and task["message"]
        assert isinstance(task["hints"], list)
        assert 0 <= task["score"] <= task["max_score"]
        assert task["location"] is None or set(task["location"]) == {"cell", "line"}
    assert document["score"] == pytest.approx(sum(task["score"] for task in document["tasks"]))
    assert document["max_score"] == pytest.approx(sum(task["max_score"] for task in document["tasks"]))


# -- grading through the installed script ---------------------------------------------------


def test_example_passes_with_one_json_document_and_no_subcommand():
    code, out, err = dli_grade(EXAMPLE, "--format", "json", "-q", "--device", "cpu", "--tasks", ",".join(UNIT_TASKS))
    assert code == 0, err
    document = json.loads(out)  # the whole of stdout is one JSON document
    check_document(document, EXAMPLE, UNIT_TASKS)
    assert document["passed"] is True and document["layout"] == "B" and document["device"] == "cpu"
    assert all(task["status"] == "passed" for task in document["tasks"])
    assert document["score"] == document["max_score"] == 22
    assert err == ""  # -q silences progress


def test_mutant_fails_grades_only_the_chosen_tasks_and_keeps_stdout_clean(tmp_path):
    path = mutant(tmp_path)
    code, out, err = dli_grade("grade", path, "--tasks", "q,loss", "--format", "json", "--device", "cpu")
    assert code == 1, err
    assert SECRET not in out and SECRET not in err
    document = json.loads(out)
    check_document(document, path, ["q", "loss"])
    q, loss = document["tasks"]
    assert q["status"] == "failed" and "swaps its coefficients" in q["message"]
    assert q["location"]["cell"] is not None
    assert loss["status"] == "passed"
    assert document["passed"] is False
    assert "dli-grade: checking q" in err and "dli-grade: checking loss" in err  # progress on stderr
    assert "checking schedule" not in err


def test_text_report_names_the_failure(tmp_path):
    path = mutant(tmp_path)
    code, out, err = dli_grade(path, "--tasks", "q", "-q", "--device", "cpu")
    assert code == 1, err
    assert err == "" and SECRET not in out
    assert "FAIL" in out and "swaps its coefficients" in out and "NOT PASSED" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_unusable_input_through_the_script(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("print('hello')\n", encoding="utf-8")
    code, out, err = dli_grade(path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("dli-grade: error: ")
    assert "expected a .ipynb notebook or a .py module" in err


def test_help_through_the_script():
    code, out, _ = dli_grade("--help")
    assert code == 0 and "Usage:" in out and "grade" in out
    code, out, _ = dli_grade("grade", "--help")
    assert code == 0 and "--format" in out and "--tasks" in out and "--timeout" in out


@pytest.mark.parametrize("module", ["grader.cli", "grader.grading.result", "grader.report.text"])
def test_the_command_and_the_reports_import_no_torch(module):
    """`dli-grade --help`, `--version`, `init-ci` and the notebook check's report renderer import
    these modules only: torch (about 2 s) comes with the first task that needs it. Reports and
    results named their locations through tasks.base, which imports torch."""
    code = f"import sys, {module}; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stdout + done.stderr


def test_a_memory_bound_too_small_for_a_grade_ends_it_with_the_out_of_memory_message():
    """With torch no longer imported by the command itself, a 200 MB bound met torch's import: a
    library that could not be mapped, an ImportError and a traceback. Torch is imported before the
    bound, so the grade ends with the grader's own message and exit 3 (the slow Ray test shows the
    same for a Ray worker)."""
    code, out, err = dli_grade(EXAMPLE, "--tasks", "q", "--device", "cpu", "--grader-memory-mb", "200", timeout=120)
    assert code == 3 and out == "", (code, out, err)
    assert "the grader ran out of memory: it reached its limit of 200 MB (--grader-memory-mb)" in err, err
    assert "Traceback" not in err


# -- input and argument errors (no child is started) ----------------------------------------


def _malformed(tmp_path, kind: str) -> Path:
    if kind == "not_json":
        path = tmp_path / "sub.ipynb"
        path.write_text("{this is not json", encoding="utf-8")
    elif kind == "empty":
        path = tmp_path / "sub.ipynb"
        path.write_bytes(b"")
    elif kind == "binary":
        path = tmp_path / "sub.ipynb"
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "binary_py":
        path = tmp_path / "sub.py"
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(64))
    elif kind == "no_code_cells":
        path = tmp_path / "sub.ipynb"
        nbformat.write(new_notebook(cells=[new_markdown_cell("# only words")]), path)
    elif kind == "missing":
        path = tmp_path / "absent.ipynb"
    elif kind == "txt":
        path = tmp_path / "sub.txt"
        path.write_text("import torch\n", encoding="utf-8")
    elif kind == "directory":
        path = tmp_path / "folder"
        path.mkdir()
    else:
        raise ValueError(kind)
    return path


MALFORMED = {
    "not_json": "not valid JSON",
    "empty": "empty file",
    "binary": "binary file",
    "binary_py": "binary file",
    "no_code_cells": "no code cells",
    "missing": "no such file",
    "txt": "got .txt",
    "directory": "is a directory",
}


@pytest.mark.parametrize("kind", list(MALFORMED))
@pytest.mark.parametrize("with_subcommand", [False, True], ids=["bare", "grade"])
def test_malformed_input_exits_2_with_one_line(tmp_path, kind, with_subcommand):
    path = _malformed(tmp_path, kind)
    args = (["grade"] if with_subcommand else []) + [str(path), "--format", "json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(name))
    assert document == {
        "schema": "dli-grade/error/v1",
        "submission": str(path),
        "status": "unusable",
        "error": result.stderr.strip().removeprefix("dli-grade: error: "),
    }
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"dli-grade: error: {path}")
    assert MALFORMED[kind] in result.stderr
    assert "Traceback" not in result.output


def test_unknown_task_exits_2():
    result = CliRunner().invoke(main, [str(EXAMPLE), "--tasks", "bogus"])
    assert result.exit_code == 2
    assert "bogus" in result.stderr and result.stdout == ""


def test_one_unknown_task_among_known_ones_exits_2():
    result = CliRunner().invoke(main, ["grade", str(EXAMPLE), "--tasks", "q,bogus,loss"])
    assert result.exit_code == 2 and "bogus" in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_cuda_without_cuda_exits_2():
    result = CliRunner().invoke(main, [str(EXAMPLE), "--device", "cuda"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("dli-grade: error: ") and "CUDA" in result.stderr
    assert result.stderr.count("\n") == 1


def test_unknown_format_exits_2():
    result = CliRunner().invoke(main, [str(EXAMPLE), "--format", "yaml"])
    assert result.exit_code == 2


def test_help_and_version():
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0 and "grade" in top.stdout and "selfcheck" in top.stdout
    sub = runner.invoke(main, ["grade", "--help"])
    assert sub.exit_code == 0 and "SUBMISSION" in sub.stdout and "--quiet" in sub.stdout
    version = runner.invoke(main, ["--version"])
    assert version.exit_code == 0 and "dli-grade" in version.stdout


def _ignore_sigint():  # runs in the child before exec: as a background job of a script starts
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("sigint", ["default", "ignored by the parent"])
def test_ctrl_c_still_reports_the_tasks_graded_so_far(tmp_path, sigint):
    """A person interrupts a grade stuck in q: schedule's verdict is printed, q and later are not graded.
    Also when the grade inherited SIGINT ignored (a test suite run in the background): the grade then ran
    on until q's 60 s time limit and the tasks after it, so the interrupt was not answered in time."""
    text = EXAMPLE.read_text(encoding="utf-8")
    head = "def q(x_0, t):\n"
    assert text.count(head) == 1
    path = tmp_path / "stuck.py"
    path.write_text(text.replace(head, head + "    while True:\n        pass\n"), encoding="utf-8")
    process = subprocess.Popen(
        [SCRIPT, str(path), "--format", "json", "--tasks", "schedule,q,loss", "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if sigint != "default" else None,
    )
    seen = ""
    while "checking q" not in seen:
        line = process.stderr.readline()
        assert line, "the grade ended before checking q"
        seen += line
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    document = json.loads(out)
    statuses = {task["id"]: (task["status"], task["message"]) for task in document["tasks"]}
    assert process.returncode == 130
    assert statuses["schedule"] == ("passed", "correct")
    assert statuses["q"][1] == statuses["loss"][1] == "not graded: the grade was interrupted"
    assert any("interrupted" in note for note in document["integrity"])


# -- internal errors keep their traceback ----------------------------------------------------
def _broken_grade_task(self, task_id):
    raise RuntimeError("boom in the judge")


@pytest.fixture
def broken_judge(monkeypatch):
    """Every task's check ends in a grader bug (no child is started); the grader's loggers restored after."""
    import logging

    from grader.grading import session as grading

    monkeypatch.setattr(grading.Grading, "grade_task", _broken_grade_task)
    loggers = [logging.getLogger(name) for name in ("grader", "tasks")]
    saved = [(logger, logger.level, list(logger.handlers)) for logger in loggers]
    yield
    for logger, level, handlers in saved:
        logger.setLevel(level)
        logger.handlers[:] = handlers


def test_an_internal_error_carries_the_grader_traceback_in_details(broken_judge):
    import jsonschema

    from grader.grading.result import json_schema
    from grader.grading.runner import grade

    result = grade(str(EXAMPLE), task_ids=["schedule"], device="cpu", contain=False)
    task = result.tasks[0]
    assert task.status == "error" and task.message == "internal grader error: RuntimeError: boom in the judge"
    trace = task.details["traceback"]
    assert trace.startswith("Traceback (most recent call last):")
    assert "in _broken_grade_task" in trace and trace.endswith("RuntimeError: boom in the judge")
    jsonschema.validate(result.to_json(), json_schema())


def test_debug_shows_the_traceback_on_the_terminal_and_the_default_stays_quiet(broken_judge):
    runner = CliRunner()
    quiet = runner.invoke(main, [str(EXAMPLE), "--tasks", "schedule", "--device", "cpu", "--allow-uncontained", "-q"])
    assert quiet.exit_code == 3
    assert "Traceback" not in quiet.stderr and "boom in the judge" in quiet.stdout
    debug = runner.invoke(
        main, [str(EXAMPLE), "--tasks", "schedule", "--device", "cpu", "--allow-uncontained", "-q", "--debug"]
    )
    assert debug.exit_code == 3
    assert "internal grader error on task schedule" in debug.stderr
    assert "Traceback (most recent call last):" in debug.stderr and "in _broken_grade_task" in debug.stderr


# -- the options grade and batch share: declared once (grader/cli_options.py), parsed alike --------------

SHARED_OPTIONS = ("device", "seed", "timeout", "total_timeout")


def _declaration(command: str, name: str) -> dict:
    """Everything click parses an option by (type, choices, bounds, default, callback, ...), its help left out:
    that is the one part each command words for its own readers."""
    (param,) = [param for param in main.commands[command].params if param.name == name]
    declared = {key: value for key, value in param.to_info_dict().items() if key != "help"}
    # what to_info_dict leaves out but changes what is parsed or shown as the default
    declared.update(
        callback=param.callback, eager=param.is_eager, metavar=param.metavar, show_default=param.show_default
    )
    return declared


@pytest.mark.parametrize("name", SHARED_OPTIONS)
def test_grade_and_batch_declare_the_shared_options_alike(name):
    grade, batch = _declaration("grade", name), _declaration("batch", name)
    assert grade == batch
    assert grade["type"]["param_type"] in ("Choice", "IntRange", "FiniteFloatRange")  # the validation is declared


@pytest.mark.parametrize(
    "args",
    [
        ["--device", "gpu"],
        ["--seed", "-1"],
        ["--seed", "x"],
        ["--timeout", "0.5"],
        ["--timeout", "abc"],
        ["--total-timeout", "-5"],
        ["--timeout", "nan"],  # FloatRange(min=1) let NaN through: a deadline that never comes
        ["--total-timeout", "inf"],
    ],
)
def test_grade_and_batch_refuse_a_bad_shared_option_with_the_same_error(args, tmp_path):
    """A usage error (exit 2) before anything is read or graded, in the same words for both commands."""
    runner = CliRunner()
    grade = runner.invoke(main, ["grade", "x.ipynb", *args])
    batch = runner.invoke(main, ["batch", "x.ipynb", "--out", str(tmp_path / "out"), *args])
    assert grade.exit_code == batch.exit_code == 2
    error = [line for line in grade.stderr.splitlines() if line.startswith("Error: Invalid value for")]
    assert len(error) == 1 and args[0] in error[0]
    assert error == [line for line in batch.stderr.splitlines() if line.startswith("Error: Invalid value for")]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "command,args",
    [
        (["grade", "x.ipynb"], ["--gpu-memory-fraction", "nan"]),
        (["batch", "x.ipynb", "--out", "out"], ["--submission-timeout", "nan"]),
        (["batch", "x.ipynb", "--out", "out"], ["--gpus-per-grade", "nan"]),
    ],
)
def test_a_number_that_is_not_finite_is_a_usage_error(command, args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke(main, [*command, *args])
    assert run.exit_code == 2, run.output
    assert f"Invalid value for '{args[0]}': 'nan' is not a finite number." in run.stderr
