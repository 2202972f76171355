"""End to end on a CPU (transplant; train, narrow and short): the example passes `generation`, broken ones fail it.

Each case grades the generation task alone through the child (about two minutes on a 2-core
CPU), so the module is marked slow: `python -m pytest -m slow tests/test_generation_e2e.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus import mutants as corpus  # tests/ is on sys.path (pytest's default import mode)
from grader.grading.runner import grade

pytestmark = pytest.mark.slow


CASES = {case.name: case for case in corpus.CASES}

# case name -> phrases the generation message must contain (None: the task must pass)
EXPECTED = {
    "example_script": None,
    "guidance_sign_flipped": ("official check", "48 needed"),
    "shifted_guidance_w0": ("official check", "48 needed"),
    # w = 0 with the course's form: the reference weights score about 90%, so the official check
    # fails about 9 grades in 10; the case checks the weight found and, on a fail, the hint.
    "course_guidance_w0": "maybe",
    "q_swapped_coefficients": ("predicts the noise worse than the reference pipeline",),
    "context_constant": ("other than the batch's labels",),
    "drop_prob_circulated_decay": ("c_drop_prob values of 0 or 1",),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_generation_verdict(name, tmp_path):
    path = corpus.write_case(CASES[name], tmp_path)
    result = grade(path, ["generation"], device="cpu", generation={"artifacts_dir": tmp_path / "artifacts"})
    (task,) = result.tasks
    details = task.details
    assert details["profile"] == "transplant"
    if name.endswith("_w0"):  # guidance switched off (0) or inverted (-1): the hint says so
        assert details["effective_w"] == (0.0 if name == "course_guidance_w0" else -1.0)
        hint = (
            "switches guidance off"
            if name == "course_guidance_w0"
            else "weighs the unconditional prediction above the conditional"
        )
        assert task.status == "passed" or any(hint in h for h in task.hints), task.hints
    if EXPECTED[name] == "maybe":
        return
    if EXPECTED[name] is None:
        assert task.status == "passed", task.message
        assert task.score == 28
        assert result.to_json()["official_passed"] is True
        assert Path(details["grid"]).is_file()
    else:
        assert task.status == "failed" and task.score == 0
        for phrase in EXPECTED[name]:
            assert phrase in task.message, task.message


# The child is given no MNIST, so the sampler carries the first 20 test digits of each class itself.
MNIST_SAMPLER = """
# %%
_HELD = "{held}"

def sample_w(model, c, w=0.0):
    import base64
    import numpy as np
    held = np.frombuffer(base64.b64decode(_HELD), np.uint8).copy()
    images = torch.from_numpy(held).reshape(10, 20, 1, 28, 28) / 255
    digits = c.argmax(dim=1).cpu().tolist()
    return torch.stack([images[d][i] for i, d in enumerate(digits)]).float().to(device)
"""


def _held_digits() -> str:
    import base64

    import torch

    from reference import mnist

    images, labels = mnist.load_raw("test")
    held = torch.stack([images[labels == digit][:20] for digit in range(10)])
    return base64.b64encode(held.numpy().tobytes()).decode()


def test_a_sampler_that_returns_mnist_digits_fails(tmp_path):
    """The attack that once scored 28/28: sample_w hands back MNIST test digits of the asked class."""
    example = Path(__file__).resolve().parent.parent / "examples" / "submission.py"
    path = tmp_path / "hijack.py"
    path.write_text(example.read_text(encoding="utf-8") + MNIST_SAMPLER.format(held=_held_digits()), encoding="utf-8")
    result = grade(path, ["generation"], device="cpu")
    (task,) = result.tasks
    assert task.details.get("official_passed") is True, task.message  # the classifier reads them right...
    assert task.status == "failed" and task.score == 0  # ...but they are MNIST's, not the model's
    assert result.to_json()["official_passed"] is True
    assert any("near copies of MNIST" in note for note in result.integrity), result.integrity


# The train profile on a CPU: narrow and short, so a test can afford it. Its accuracy is not a
# GPU verdict; these cases check the path (seeded start, the student's own cell, records, trusted
# path) and that each broken training loop fails for its own reason.
TRAIN_STEPS = 60
TRAIN_EXPECTED = {
    "example_script": None,
    "context_constant": "other than the batch's labels",
    "drop_prob_circulated_decay": "c_drop_prob values of 0 or 1",
}


@pytest.mark.parametrize("name", list(TRAIN_EXPECTED))
def test_train_profile_on_the_cpu(name, tmp_path):
    path = corpus.write_case(CASES[name], tmp_path)
    result = grade(
        path,
        ["generation"],
        device="cpu",
        seed=3,
        generation={"profile": "train", "train_steps": TRAIN_STEPS, "per_digit": 5},
    )
    (task,) = result.tasks
    assert task.status in ("passed", "failed"), task.message
    assert result.profile == "train" and task.details["profile"] == "train"
    assert task.details["training_batches"] == TRAIN_STEPS
    assert "official_accuracy" in task.details and "reference_sampler_accuracy" in task.details
    if TRAIN_EXPECTED[name] is None:
        assert "trained as written" not in task.message and "batches it was given" not in task.message
    else:
        assert task.status == "failed" and TRAIN_EXPECTED[name] in task.message, task.message


def test_same_seed_same_digits_whatever_tasks_ran_before(tmp_path):
    """The generation inputs come from the grade's seed alone: grading other tasks first (which
    run student code in the same child) must not change a single prediction."""
    path = corpus.write_case(CASES["example_script"], tmp_path)
    alone = grade(path, ["generation"], device="cpu", seed=11)
    after_all = grade(path, None, device="cpu", seed=11)
    first, second = alone.tasks[-1].details, after_all.tasks[-1].details
    assert first["official_predictions"] == second["official_predictions"]
    assert first["reference_sampler_accuracy"] == second["reference_sampler_accuracy"]
    assert first["short_training"]["heldout_loss"] == pytest.approx(second["short_training"]["heldout_loss"], rel=1e-3)
