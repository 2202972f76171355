"""`--profile course`: the notebook run top to bottom in a Jupyter kernel inside the sandbox.

A tiny copy of the example (10 diffusion steps, two training batches, no torch.compile) keeps
the run to seconds; the real notebook trains for hours on a CPU, which is why the profile is
refused there without --force.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.grading.runner import grade

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "submission.ipynb"

TINY = (
    ("nrows = 10\nncols = 15\n", "nrows = 2\nncols = 5\n"),
    ("model = torch.compile(model.to(device))", "model = model.to(device)"),
    ("    for step, batch in enumerate(dataloader):\n", "    for step, batch in zip(range(2), dataloader):\n"),
    ("epochs = 5\n", "epochs = 1\n"),
)
# The kernel runs inside the same view as every child: no module of the answer key imports. (The
# package folders may still be seen, empty, where the view covers an installed copy.)
CONTAINED = (
    "import importlib\n"
    "for _name in ('reference.diffusion', 'tasks.q', 'grader.grading.runner'):\n"
    "    try:\n"
    "        importlib.import_module(_name)\n"
    "    except ImportError:\n"
    "        continue\n"
    "    raise AssertionError(_name + ' imports in the kernel')\n"
)


def tiny_notebook(folder, extra_edits=(), first_cell: str | None = CONTAINED):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for old, new in TINY + tuple(extra_edits):
        holders = [cell for cell in notebook.cells if cell.cell_type == "code" and old in cell.source]
        assert len(holders) == 1, f"{old!r} found in {len(holders)} cells"
        holders[0].source = holders[0].source.replace(old, new)
    if first_cell:
        notebook.cells.insert(0, nbformat.v4.new_code_cell(first_cell))
    path = folder / "tiny.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.mark.slow  # 8-24 s: in CI's slow run, out of the default one (about 15 minutes)
def test_course_flow_runs_every_cell_and_judges_run_assessments_samples(tmp_path):
    result = grade(
        tiny_notebook(tmp_path),
        ["generation"],
        device="cpu",
        seed=5,
        generation={"profile": "course", "force": True, "artifacts_dir": tmp_path / "art"},
    )
    (task,) = result.tasks
    details = task.details
    assert result.profile == "course" and details["profile"] == "course"
    flow = details["course_flow"]
    assert (
        flow["ran"]
        == flow["cells"]
        == sum(cell.cell_type == "code" for cell in nbformat.read(tiny_notebook(tmp_path), as_version=4).cells)
    )
    assert "saved them to run_assessment_samples.pt" in flow["assessment_output"]
    # Two training batches draw no digits: the official check fails on the samples run_assessment drew.
    assert task.status == "failed" and "official check" in task.message, task.message
    assert details["samples"] == 50 and 0.0 <= details["official_accuracy"] < 0.95
    # The final model fits the course's U-Net, so the grader sampled it itself too.
    assert details["reference_sampler_accuracy"] is not None


@pytest.mark.slow  # 8-24 s: in CI's slow run, out of the default one (about 15 minutes)
def test_course_flow_stops_at_the_first_error_like_run_all(tmp_path):
    path = tiny_notebook(tmp_path, extra_edits=(("a_bar = torch.cumprod(a, dim=0)", "a_bar = torch.cumprod(a)"),))
    result = grade(path, ["generation"], device="cpu", seed=5, generation={"profile": "course", "force": True})
    (task,) = result.tasks
    assert task.status == "failed"
    assert "the notebook stopped at cell" in task.message and "TypeError" in task.message, task.message
    assert "before the assessment ran" in task.message


def test_a_kernel_outside_the_sandbox_would_see_the_answer_key(tmp_path, monkeypatch):
    """The containment check in the tiny notebook can fail: without the private view (and without
    Landlock, its fallback), the assertion stops the run."""
    monkeypatch.setenv("DLI_GRADE_SANDBOX_SKIP", "namespaces,landlock")
    result = grade(
        tiny_notebook(tmp_path),
        ["generation"],
        device="cpu",
        seed=5,
        contain=False,
        generation={"profile": "course", "force": True},
    )
    (task,) = result.tasks
    assert "stopped at cell 1 (AssertionError" in task.message, task.message


def test_course_profile_is_refused_on_a_cpu_without_force(tmp_path):
    outcome = CliRunner().invoke(main, ["grade", str(NOTEBOOK), "--device", "cpu", "--profile", "course", "-q"])
    assert outcome.exit_code == 2, outcome.output
    assert "--force" in outcome.output


def test_course_profile_is_not_refused_when_generation_is_not_graded(tmp_path):
    outcome = CliRunner().invoke(
        main, ["grade", str(NOTEBOOK), "--device", "cpu", "--profile", "course", "--tasks", "schedule", "-q"]
    )
    assert outcome.exit_code == 0, outcome.output


@pytest.mark.parametrize(
    "profile, reason",
    [("auto", "auto: no CUDA device is available"), ("transplant", "asked for: the reference weights")],
)
def test_the_report_names_the_profile_and_why(profile, reason):
    from tasks.generation import choose_options

    assert choose_options("cpu", profile=profile).profile_reason.startswith(reason)


# A stand-in for the course's own run_assessment.py: it samples through the student's function, reads
# a file beside it (as the course's reads its judge's weights) and prints its verdict the course's way.
COURSE_OWN = """
import torch

def run_assessment(model, sample_func, w):
    with open("judge_weights.txt") as handle:
        accuracy = float(handle.read())
    for digit in range(10):
        samples = sample_func(model, torch.eye(10)[[digit] * 5], w=w)
        print(f"Digit {digit}: predictions for {tuple(samples.shape)}")
    print(f"Final Accuracy: {accuracy * 100:.1f}%")
"""


@pytest.mark.slow  # 8-24 s: in CI's slow run, out of the default one (about 15 minutes)
def test_the_course_own_run_assessment_is_reported_beside_the_grader_verdict(tmp_path):
    helpers = tmp_path / "course_helpers"
    helpers.mkdir()
    (helpers / "run_assessment.py").write_text(COURSE_OWN)
    (helpers / "judge_weights.txt").write_text("0.96")
    result = grade(
        tiny_notebook(tmp_path, first_cell=None),
        ["generation"],
        device="cpu",
        seed=5,
        generation={"profile": "course", "force": True, "course_helpers": helpers},
    )
    (task,) = result.tasks
    flow = task.details["course_flow"]
    assert "Digit 9: predictions for (5, 1, 28, 28)" in flow["assessment_output"], flow["assessment_output"]
    assert task.details["course_printed_accuracy"] == pytest.approx(0.96)
    assert "the course's own run_assessment printed Final Accuracy 96% (passed by its bar)" in task.message
    # The grader's verdict stands: two training batches draw no digits it recognises.
    assert task.status == "failed" and "official check" in task.message, task.message


@pytest.mark.parametrize("printed, note", [(None, None), (0.9, "Final Accuracy 90% (not passed by its bar)")])
def test_the_judge_reports_a_printed_accuracy_only_when_there_is_one(printed, note):
    import torch

    from tasks.generation.scoring import judge

    info = {"stage": "done", "course_flow": {"course_printed_accuracy": printed}}
    verdict = judge(info, {"official": torch.zeros(50, 1, 28, 28)}, lambda name: None, 0)
    assert verdict.details.get("course_printed_accuracy") == printed
    notes = [text for text in verdict.notes if "the course's own run_assessment" in text]
    assert notes == ([] if note is None else [notes[0]]) and (note is None or note in notes[0]), verdict.notes


@pytest.mark.parametrize(
    "arguments, phrase",
    [
        (["--profile", "transplant"], "needs --profile course"),
        (["--profile", "course", "--force"], "no run_assessment.py in that folder"),
    ],
)
def test_course_helpers_are_refused_where_they_cannot_run(tmp_path, arguments, phrase):
    outcome = CliRunner().invoke(
        main,
        [
            "grade",
            str(NOTEBOOK),
            "--device",
            "cpu",
            "--tasks",
            "generation",
            "--course-helpers",
            str(tmp_path),
            "-q",
            *arguments,
        ],
    )
    assert outcome.exit_code == 2, outcome.output
    assert phrase in outcome.output


MARKER = "--- the course's own run_assessment ---"


@pytest.mark.parametrize(
    "printed, accuracy",
    [
        (MARKER + "\nDigit 0: [0, 0, 0, 0, 0]\nFinal Accuracy: 0.96\n", 0.96),
        (MARKER + "\nFinal Accuracy = 94.0%\n", 0.94),
        (MARKER + "\nfinal accuracy 98\n", 0.98),
        ("Final Accuracy: 100%\n", None),  # printed before the course's module ran
        (MARKER + "\nthe course's run_assessment raised OSError: no judge\n", None),
    ],
)
def test_the_printed_accuracy_is_read_after_the_marker_only(printed, accuracy):
    from tasks.generation.official import OFFICIAL_MARKER, printed_accuracy

    assert OFFICIAL_MARKER == MARKER
    found = printed_accuracy(printed)
    assert found == (pytest.approx(accuracy) if accuracy is not None else None)
