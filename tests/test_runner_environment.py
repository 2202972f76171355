"""What the child finds around the student's code, and the whole-grade time limit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.grading.runner import grade
from grader.grading.session import Grading

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "submission.py"


def test_notebook_mnist_loader_works_offline_in_the_course_child(tmp_path):
    """The course profile runs the notebook as written, which loads MNIST from ./data (no other
    child is given data: tests/test_attacks_generation.py)."""
    from tasks.generation.options import choose_options

    options = {"generation": choose_options("cpu", profile="course", force=True)}
    grading = Grading(EXAMPLE, "cpu", 0, 60, tmp_path, options=options)
    try:
        assert grading.start_child() is None
        outcome = grading.request(
            "exec",
            60,
            code="_train = torchvision.datasets.MNIST('./data/', download=True, train=False)\n"
            "assert len(_train) == 10000, len(_train)\n",
            filename="<probe>",
        )
        assert outcome.ok and not outcome.value, outcome.value  # no statement failed
    finally:
        grading.close()


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="on one core torch's default is already one thread")
def test_child_takes_its_torch_threads_from_the_environment(tmp_path, monkeypatch):
    """How a batch gives each grade its share of the cores: OMP_NUM_THREADS reaches the child's torch.

    torch's default is one thread per core (and it caps a larger OMP_NUM_THREADS there), so
    asking for one thread on a machine of several cores is the case that shows the variable arrived.
    """
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    grading = Grading(EXAMPLE, "cpu", 0, 60, tmp_path)
    try:
        assert grading.start_child() is None
        assert grading.sandbox.setup_reply.get("threads") == 1
    finally:
        grading.close()


def test_tasks_past_the_overall_limit_fail_as_not_graded():
    result = grade(EXAMPLE, ["schedule", "q"], device="cpu", total_timeout=1e-9)
    assert [task.status for task in result.tasks] == ["failed", "failed"]
    assert all("overall time limit" in task.message for task in result.tasks)
    assert not result.passed


def test_selfcheck_json_reports_data_and_classifier():
    outcome = CliRunner().invoke(main, ["selfcheck", "--json"])
    report = json.loads(outcome.stdout)
    assert outcome.exit_code == 0, outcome.stdout
    assert report["data_ok"] is True and report["unet_ok"] is True
    assert 0.99 <= report["classifier_test_accuracy"] <= 1.0


def test_the_child_runs_deterministic_algorithms(tmp_path):
    grading = Grading(EXAMPLE, "cpu", 0, 60, tmp_path)
    try:
        assert grading.start_child() is None
        reply = grading.sandbox.setup_reply
        assert reply["deterministic"] is True and reply["device"] == "cpu" and reply["cuda"] is False
    finally:
        grading.close()


def test_a_child_without_cuda_is_an_error_not_a_cpu_training_run(monkeypatch):
    """The grader decides the device once; when it chose CUDA and the contained child sees none
    (a driver path the sandbox hides, CUDA_VISIBLE_DEVICES emptied), the grade stops with a grader
    error instead of training a GPU budget on the child's CPU."""
    import grader.grading.runner as runner

    monkeypatch.setattr(runner.torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    result = grade(EXAMPLE, ["schedule", "generation"], device="cuda", seed=1)
    assert [task.status for task in result.tasks] == ["error", "error"], [t.message for t in result.tasks]
    assert "sees no CUDA device" in result.tasks[0].message
