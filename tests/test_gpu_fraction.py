"""The child's share of the GPU's memory: from the operator (option or environment) and, in a
batch, from --gpus-per-grade; never a fixed 90% for each of several grades on one GPU."""

from __future__ import annotations

import types

import pytest
from click.testing import CliRunner

from grader.batch import worker
from grader.core.errors import UnusableInput
from grader.grading import runner
from grader.sandbox import parent as sandbox


def test_the_fraction_comes_from_the_option_then_the_environment_then_the_default(monkeypatch):
    monkeypatch.delenv("DLI_GRADE_GPU_FRACTION", raising=False)
    assert runner.gpu_memory_fraction() == 0.9
    monkeypatch.setenv("DLI_GRADE_GPU_FRACTION", "0.2")
    assert runner.gpu_memory_fraction() == 0.2
    assert runner.gpu_memory_fraction(0.5) == 0.5


@pytest.mark.parametrize("text", ["lots", "0", "1.5", "-0.1"])
def test_an_unusable_fraction_in_the_environment_is_the_operators_error(monkeypatch, text):
    monkeypatch.setenv("DLI_GRADE_GPU_FRACTION", text)
    with pytest.raises(UnusableInput, match="DLI_GRADE_GPU_FRACTION"):
        runner.gpu_memory_fraction()


def test_the_child_is_set_up_with_the_configured_fraction(monkeypatch, tmp_path):
    """Sandbox.start asks the child's setup for config.gpu_fraction (it sent a fixed 0.9)."""
    sent = {}
    monkeypatch.setattr(sandbox, "_make_grader_undumpable", lambda: None)
    monkeypatch.setattr(sandbox.subprocess, "Popen", lambda *args, **kwargs: types.SimpleNamespace(pid=0))
    monkeypatch.setattr(sandbox.Sandbox, "_read_frame", lambda self, deadline: ({"sandbox": {}}, []))
    monkeypatch.setattr(
        sandbox.Sandbox,
        "request",
        lambda self, op, timeout, *args, **payload: sent.update(payload) or sandbox.Outcome("ok"),
    )
    config = sandbox.SandboxConfig(
        workdir=tmp_path, data_dir=tmp_path, course_dir=tmp_path, view={}, device="cuda", gpu_fraction=0.225
    )
    sandbox.Sandbox(config).start(5.0)
    assert sent["gpu_fraction"] == 0.225


def test_the_command_passes_its_option_to_the_grade(monkeypatch, tmp_path):
    from grader.cli import main

    asked = {}

    def fake_grade(*args, **kwargs):
        asked.update(kwargs)
        raise UnusableInput("stop here")

    monkeypatch.setattr(runner, "grade", fake_grade)
    result = CliRunner().invoke(
        main, ["grade", str(tmp_path / "x.py"), "--allow-uncontained", "--gpu-memory-fraction", "0.3", "-q"]
    )
    assert result.exit_code == 2, result.output
    assert asked["gpu_fraction"] == 0.3


def _fake_ray(share):
    context = types.SimpleNamespace(get_assigned_resources=lambda: {"CPU": 1.0, "GPU": share})
    return types.SimpleNamespace(is_initialized=lambda: True, get_runtime_context=lambda: context)


@pytest.mark.parametrize("share, expected", [(0.25, {"DLI_GRADE_GPU_FRACTION": "0.225"}), (1.0, {}), (0.0, {})])
def test_a_ray_grade_takes_its_share_of_the_gpu(monkeypatch, share, expected):
    """--gpus-per-grade 0.25: four grades on one GPU, each child capped at 0.9 x 0.25 of its memory."""
    monkeypatch.setitem(worker.sys.modules, "ray", _fake_ray(share))
    assert worker.gpu_share_environment() == expected


def test_outside_ray_the_default_stands(monkeypatch):
    monkeypatch.delitem(worker.sys.modules, "ray", raising=False)
    assert worker.gpu_share_environment() == {}
