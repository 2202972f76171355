"""Generation integrity (issue 14): digits that do not come from the model, weights that are not learned.

Fast tests drive the provenance check (tasks/generation/provenance.py) with samplers run here,
in the test, against a small model whose predictions the test controls and the stub that
records the model's calls in the child (`traced_model`); the smuggling scan reads cell sources.
Whole grades through the child are marked slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from grader.sandbox.executor.stubs import KINDS
from reference import mnist
from reference.conditioning import guided_noise
from reference.diffusion import reverse_q
from reference.sampling import sample_w as reference_sample_w
from reference.schedule import make_schedule
from tasks.generation import provenance

pytestmark = pytest.mark.usefixtures("single_thread")

PER_DIGIT = 5
W = 1.0


class PatternModel(torch.nn.Module):
    """A cheap stand-in for a U-Net: its noise prediction depends on the images, the step and
    the digit (kept rows) in a way a sampler cannot guess without calling it."""

    def __init__(self, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("patterns", torch.randn(10, 1, 28, 28, generator=generator))
        self.register_buffer("blank", torch.randn(1, 28, 28, generator=generator))

    def forward(self, x, t, c, c_mask):
        kept = (c * c_mask) @ self.patterns.flatten(1)
        dropped = (1 - c_mask.amax(dim=1, keepdim=True)) * self.blank.flatten()
        step = t.reshape(-1, 1, 1, 1).float() / 150
        return 0.5 * x + (kept + dropped).reshape(x.shape) * (1 + step)


def _traced(model):
    return KINDS["traced_model"](model)


def _draw(sampler, model):
    """Every digit drawn by `sampler(traced_model, c_hot)`, with the records of each draw."""
    torch.manual_seed(0)
    images, traces = [], []
    for digit in range(10):
        traced = _traced(model)
        c_hot = F.one_hot(torch.full((PER_DIGIT,), digit), 10).float()
        with torch.no_grad():
            images.append(sampler(traced, c_hot))
        traces.append(traced.records)
    return torch.cat(images), traces


def _reference(model, c_hot):
    return reference_sample_w(model, c_hot, W, make_schedule(150))


def _mnist_blends(c_hot):
    """What the hostile review found scoring 28/28: blends of MNIST test digits of the asked class,
    moved so that none is a near copy."""
    images, labels = mnist.load("test")
    digit = int(c_hot[0].argmax())
    chosen = images[labels == digit][: 2 * len(c_hot)].reshape(len(c_hot), 2, 1, 28, 28)
    return torch.roll(chosen.mean(dim=1), shifts=(1, 1), dims=(2, 3))


def test_the_reference_sampler_follows_its_model():
    model = PatternModel()
    images, traces = _draw(_reference, model)
    found = provenance.follows_model(images, traces, model, W, seed=1)
    assert found["problem"] is None, found
    assert found["calls"] == [150] * 10
    assert found["final_gap"] < 1e-4
    assert found["drift_along_model"] == pytest.approx(1.0, abs=0.1)


def test_a_notebook_with_another_T_follows_its_model_over_its_own_steps():
    """A student may change T (the variant corpus has T = 50): the check reads that many steps."""
    model = PatternModel()
    images, traces = _draw(lambda traced, c_hot: reference_sample_w(traced, c_hot, W, make_schedule(50)), model)
    found = provenance.follows_model(images, traces, model, W, seed=1, T=50)
    assert found["problem"] is None, found
    assert found["calls"] == [50] * 10


def test_a_sampler_that_passes_the_mask_by_keyword_still_follows_its_model():
    """The recorder cannot tell kept rows then; the doubled batch's first half are the images."""

    def by_keyword(traced, c_hot):
        schedule, n = make_schedule(150), len(c_hot)
        x_t = torch.randn(n, 1, 28, 28)
        for i in reversed(range(150)):
            t = torch.full((n, 1, 1, 1), i)
            both = traced(
                x_t.repeat(2, 1, 1, 1),
                t.repeat(2, 1, 1, 1),
                c=c_hot.repeat(2, 1),
                c_mask=torch.cat((torch.ones_like(c_hot), torch.zeros_like(c_hot))),
            )
            x_t = reverse_q(x_t, t, guided_noise(both[:n], both[n:], W), schedule)
        return x_t

    model = PatternModel()
    images, traces = _draw(by_keyword, model)
    assert traces[0][0]["x"].shape[0] == 2 * PER_DIGIT
    found = provenance.follows_model(images, traces, model, W, seed=1)
    assert found["problem"] is None, found


def test_a_sampler_that_never_calls_the_model_fails():
    model = PatternModel()
    images, traces = _draw(lambda traced, c_hot: _mnist_blends(c_hot), model)
    found = provenance.follows_model(images, traces, model, W, seed=1)
    assert found["problem"].startswith(
        "sample_w never asked the model it was given about the images it drew for digit 0"
    )


def test_a_sampler_that_calls_the_model_but_returns_mnist_blends_fails():
    """It runs the whole chain (every step asked) and hands back digits of its own."""
    model = PatternModel()
    images, traces = _draw(lambda traced, c_hot: (_reference(traced, c_hot), _mnist_blends(c_hot))[1], model)
    found = provenance.follows_model(images, traces, model, W, seed=1)
    assert found["calls"] == [150] * 10
    assert found["problem"].startswith("the digits sample_w returned are not the last denoising step"), found


def test_a_sampler_that_asks_only_some_steps_fails():
    def every_other_step(traced, c_hot):
        schedule, n = make_schedule(150), len(c_hot)
        x_t = torch.randn(n, 1, 28, 28)
        for i in reversed(range(150)):
            t = torch.full((n, 1, 1, 1), i)
            if i % 2 == 1:  # the other steps reuse the last answer
                e_t = traced(
                    x_t.repeat(2, 1, 1, 1),
                    t.repeat(2, 1, 1, 1),
                    c_hot.repeat(2, 1),
                    torch.cat((torch.ones_like(c_hot), torch.zeros_like(c_hot))),
                )
                e_t = guided_noise(e_t[:n], e_t[n:], W)
            x_t = reverse_q(x_t, t, e_t, schedule)
        return x_t

    model = PatternModel()
    images, traces = _draw(every_other_step, model)
    found = provenance.follows_model(images, traces, model, W, seed=1)
    assert found["problem"] == (
        "sample_w asked the model about 75 of the 150 steps while drawing digit 0: "
        "the digits must be denoised by the model at every step"
    )


def _chain_with(prediction):
    """A sampler that asks the model at every step, consistently, but denoises with
    `prediction(x, t, c_hot)` instead of the model's answer, ending on the model's last mean."""

    def sampler(traced, c_hot):
        schedule, n = make_schedule(150), len(c_hot)
        x_t = torch.randn(n, 1, 28, 28)
        for i in reversed(range(150)):
            t = torch.full((n, 1, 1, 1), i)
            both = traced(
                x_t.repeat(2, 1, 1, 1),
                t.repeat(2, 1, 1, 1),
                c_hot.repeat(2, 1),
                torch.cat((torch.ones_like(c_hot), torch.zeros_like(c_hot))),
            )
            e_t = guided_noise(both[:n], both[n:], W) if i == 0 else prediction(x_t, t, c_hot)
            x_t = reverse_q(x_t, t, e_t, schedule)
        return x_t

    return sampler


@pytest.mark.parametrize("source", ["zero", "another_model"])
def test_a_sampler_that_asks_the_model_but_denoises_with_something_else_fails(source):
    """The last step is the model's, so the digits match it there; the steps before are not."""
    model, other = PatternModel(), PatternModel(seed=5)
    if source == "zero":
        prediction = lambda x, t, c: torch.zeros_like(x)  # noqa: E731
    else:

        def prediction(x, t, c):
            n = len(c)
            both = other(
                x.repeat(2, 1, 1, 1),
                t.repeat(2, 1, 1, 1),
                c.repeat(2, 1),
                torch.cat((torch.ones_like(c), torch.zeros_like(c))),
            )
            return guided_noise(both[:n], both[n:], W)

    images, traces = _draw(_chain_with(prediction), model)
    found = provenance.follows_model(images, traces, model, W, seed=1)
    assert found["final_gap"] < 1e-4
    assert found["problem"].startswith("the steps sample_w took do not follow the model's noise predictions"), found
    assert not 0.7 <= found["drift_along_model"] <= 1.3


def test_the_traced_model_records_kept_rows_and_steps_and_answers_as_the_model():
    model = PatternModel()
    traced = _traced(model)
    x, c = torch.randn(4, 1, 28, 28), F.one_hot(torch.tensor([1, 2, 1, 2]), 10).float()
    mask = torch.tensor([[1.0], [1.0], [0.0], [0.0]]).expand(4, 10)
    t = torch.full((4, 1, 1, 1), 7)
    assert torch.equal(traced(x, t, c, mask), model(x, t, c, mask))
    (record,) = traced.records
    assert record["t"] == 7.0 and torch.equal(record["x"], x[:2])


def test_the_verdict_names_the_problem_and_is_an_integrity_finding(tmp_path):
    """The judge turns a provenance problem into a failed task, with the hint and an integrity note."""
    from tasks import generation

    images, labels = mnist.load("test")
    official = torch.cat([torch.roll(images[labels == d][:5], shifts=(2, 1), dims=(2, 3)) for d in range(10)])
    problem = "sample_w never asked the model it was given about the images it drew for digit 0: ..."
    info = {
        "stage": "done",
        "profile": "transplant",
        "w": 1.0,
        "timings": {},
        "provenance": {"calls": [0] * 10, "checked_steps": 6, "problem": problem},
    }
    verdict = generation.judge(info, {"official": official, "grader": official[::5]}, lambda name: None, 0)
    assert verdict.details["official_passed"] is True  # the classifier reads them right...
    assert not verdict.passed and verdict.earned == 0  # ...but the model did not draw them
    assert problem in verdict.failures and problem in verdict.integrity
    assert any("denoising random noise with the model" in hint for hint in verdict.hints)
    info["provenance"]["problem"] = None
    assert generation.judge(info, {"official": official, "grader": official[::5]}, lambda name: None, 0).passed


# --- whole grades through the child (about a minute each on a 2-core CPU) -----------------------

# The child is given no MNIST (the grader sends the batches it trains on), so the hostile sampler
# carries its digits itself: the first 20 test images of each digit, as the review's attack read them.
BLENDING_SAMPLER = """
# %%
_HELD = "{held}"

def _mnist_blends(c):
    import base64
    import numpy as np
    held = np.frombuffer(base64.b64decode(_HELD), np.uint8).copy()
    images = torch.from_numpy(held).reshape(10, 20, 1, 28, 28) / 255
    digit = int(c[0].argmax())
    chosen = images[digit][:2 * len(c)].reshape(len(c), 2, 1, 28, 28).mean(dim=1)
    return torch.roll(chosen, shifts=(1, 1), dims=(2, 3)).float().to(device)

_honest_sample_w = sample_w

def sample_w(model, c, w=0.0):
    {body}
"""


def _held_digits() -> str:
    import base64

    images, labels = mnist.load_raw("test")
    held = torch.stack([images[labels == digit][:20] for digit in range(10)])
    return base64.b64encode(held.numpy().tobytes()).decode()


SAMPLER_BODIES = {
    # never calls the model: blends of two MNIST test digits of the asked class, moved a pixel
    "never_calls_the_model": "return _mnist_blends(c)",
    # runs the honest sampler (every step asked), then hands back the blends instead
    "calls_the_model_returns_blends": "_honest_sample_w(model, c, w)\n    return _mnist_blends(c)",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SAMPLER_BODIES))
def test_a_sampler_whose_digits_are_not_the_models_fails_the_grade(name, tmp_path):
    """The hostile review's attack scored 28/28 on the transplant profile (no near copies, and
    the trusted path agrees); now the official draw is traced and must follow the model."""
    from grader.grading.runner import grade

    example = Path(__file__).resolve().parent.parent / "examples" / "submission.py"
    path = tmp_path / f"{name}.py"
    path.write_text(
        example.read_text(encoding="utf-8") + BLENDING_SAMPLER.format(body=SAMPLER_BODIES[name], held=_held_digits()),
        encoding="utf-8",
    )
    result = grade(path, ["generation"], device="cpu", seed=5)
    (task,) = result.tasks
    assert task.details.get("official_passed") is True, task.message  # the classifier reads the blends right
    assert task.details["near_copy_fraction"] <= 0.2  # and they are no near copies
    assert task.status == "failed" and task.score == 0
    expected = (
        "sample_w never asked the model it was given"
        if name == "never_calls_the_model"
        else "are not the last denoising step"
    )
    assert expected in task.message, task.message
    assert any(expected in note for note in result.integrity), result.integrity


# --- the child is given no MNIST: the grader sends what a training run uses --------------------

# Looks for MNIST everywhere the child could have been given it: ./data, the work folder, /tmp.
FIND_MNIST = """
import os
found = [p for p in ("data", "data/MNIST/raw/train-images-idx3-ubyte", "/tmp/work/data") if os.path.exists(p)]
for base in (".", "/tmp"):
    for root, _, names in os.walk(base):
        found += [os.path.join(root, n) for n in names if "ubyte" in n or n.startswith("MNIST")]
"""


def _child_finds(tmp_path, options: dict) -> list:
    """What FIND_MNIST finds in a child started as a grade with these generation options starts it."""
    from grader.grading.session import Grading

    example = Path(__file__).resolve().parent.parent / "examples" / "submission.py"
    grading = Grading(example, "cpu", 1, 30.0, tmp_path, options={"generation": options})
    try:
        assert grading.sandbox.start(60.0).ok
        ran = grading.sandbox.request("exec", 30.0, code=FIND_MNIST, filename="<cell 1>")
        assert ran.ok and ran.value == [], ran
        return grading.sandbox.request("get", 10.0, names=["found"]).value["found"]
    finally:
        grading.sandbox.close()


@pytest.mark.parametrize("skip", ["", "namespaces"], ids=["view", "landlock_fallback"])
def test_the_transplant_child_is_given_no_mnist_and_the_course_child_its_data_folder(tmp_path, skip, monkeypatch):
    """Before, every child had MNIST at ./data (and a sampler could blend its digits); only the
    course profile, which runs the notebook as written, still mounts it. Under the Landlock
    fallback its ./data is a link in the work folder (before, the course child found none there)."""
    from tasks.generation.options import choose_options

    monkeypatch.setenv("DLI_GRADE_SANDBOX_SKIP", skip)

    assert _child_finds(tmp_path / "transplant", choose_options("cpu", profile="transplant")) == []
    course = _child_finds(tmp_path / "course", choose_options("cpu", profile="course", force=True))
    assert "data/MNIST/raw/train-images-idx3-ubyte" in course


def test_a_training_run_is_sent_only_the_images_its_order_reaches():
    """The transplant's short run (40 steps of 128) gets 5,248 images, not the 70,000; sent as the
    files hold them (uint8) and rebuilt in the child as reference.mnist.load gives them."""
    from types import SimpleNamespace

    from tasks.generation import stages

    context = SimpleNamespace(generator=lambda *parts: torch.Generator().manual_seed(3))
    order = stages.batch_order(context, "narrow", 40, 128)
    assert len(order) == 41 * 128
    images, labels, positions = stages.training_batches(order)
    assert images.dtype == torch.uint8 and images.shape == (41 * 128, 1, 28, 28) == (len(labels), 1, 28, 28)
    all_images, all_labels = mnist.load("all")
    assert torch.equal(images[positions].float() / 255, all_images[order])
    assert torch.equal(labels[positions], all_labels[order])


PROBING_SAMPLER = """
# %%
import os as _os

_honest_sample_w = sample_w

def sample_w(model, c, w=0.0):
    for path in ("data/MNIST/raw/t10k-images-idx3-ubyte", "/tmp/work/data/MNIST/raw/t10k-images-idx3-ubyte"):
        if _os.path.exists(path):
            raise RuntimeError("found MNIST at " + path)
    return _honest_sample_w(model, c, w)
"""


@pytest.mark.slow
def test_a_sampler_looking_for_mnist_finds_none_and_the_example_keeps_its_verdict(tmp_path):
    """The review's sampler read ./data; on the transplant profile nothing is there to read, so the
    probing sampler falls back to the example's and passes as the example does (before: it found
    MNIST and raised)."""
    from grader.grading.runner import grade

    example = Path(__file__).resolve().parent.parent / "examples" / "submission.py"
    path = tmp_path / "probing.py"
    path.write_text(example.read_text(encoding="utf-8") + PROBING_SAMPLER, encoding="utf-8")
    result = grade(path, ["generation"], device="cpu", seed=5, generation={"profile": "transplant"})
    (task,) = result.tasks
    assert "found MNIST" not in task.message
    assert (task.status, task.score) == ("passed", 28.0), task.message


# --- weights loaded in the training cell instead of learned (grader/submission/smuggling.py) ----------------

TRAINING_CELL = """
for epoch in range(epochs):
    for step, batch in enumerate(dataloader):
        optimizer.zero_grad()
        {smuggled}
        loss = get_loss(model, batch[0], t, c_hot, c_mask)
        loss.backward()
        optimizer.step()
"""

SMUGGLED = {
    "torch_load": (
        "model.load_state_dict(torch.load('weights.pt'))",
        ["loads weights into a model (model.load_state_dict)", "loads a saved object (torch.load)"],
    ),
    "base64_pickle": (
        "model.load_state_dict(pickle.loads(zlib.decompress(base64.b64decode(BLOB))))",
        [
            "decodes a base64 blob (base64.b64decode)",
            "decompresses a blob (zlib.decompress)",
            "loads a saved object (pickle.loads)",
            "loads weights into a model (model.load_state_dict)",
        ],
    ),
    "big_literal": ("W = [" + ", ".join(["0.5"] * 1500) + "]", ["holds a literal of 1,500 constants"]),
}


def _analysis(tmp_path, *cells):
    from grader.submission.analysis import analyse
    from grader.submission.cells import load_submission

    path = tmp_path / "submission.py"
    path.write_text("".join(f"# %%\n{cell}\n" for cell in cells), encoding="utf-8")
    return analyse(load_submission(path))


@pytest.mark.parametrize("name", list(SMUGGLED))
def test_a_training_cell_that_loads_weights_is_named_with_its_cell(name, tmp_path):
    from grader.submission.smuggling import weight_loading

    code, expected = SMUGGLED[name]
    analysis = _analysis(tmp_path, "import torch\nBLOB = b''", TRAINING_CELL.format(smuggled=code))
    findings = weight_loading(analysis)
    assert sorted(f.what for f in findings) == sorted(expected)
    assert {(f.cell, f.line) for f in findings} == {(2, 6)}  # the second cell; its line 1 is the marker
    assert str(findings[0]).startswith("cell 2, line 6: the training cell ")


def test_weights_loaded_by_a_function_the_training_cell_calls_are_named_where_they_are(tmp_path):
    from grader.submission.smuggling import weight_loading

    helper = "def warm_start(model):\n    model.load_state_dict(torch.load('w.pt'))"
    analysis = _analysis(tmp_path, helper, TRAINING_CELL.format(smuggled="warm_start(model)"))
    assert [(f.cell, f.line, f.what) for f in weight_loading(analysis)] == [
        (1, 3, "loads a saved object (torch.load)"),
        (1, 3, "loads weights into a model (model.load_state_dict)"),
    ]


def test_a_normal_training_cell_is_not_flagged(tmp_path):
    from grader.submission.smuggling import weight_loading

    example = Path(__file__).resolve().parent.parent / "examples" / "submission.py"
    from grader.submission.analysis import analyse
    from grader.submission.cells import load_submission

    analysis = analyse(load_submission(example))
    assert analysis.training_cell() is not None
    assert weight_loading(analysis) == []
    assert weight_loading(_analysis(tmp_path, TRAINING_CELL.format(smuggled="pass"))) == []


def test_the_verdict_names_weights_loaded_in_the_integrity_notes(tmp_path):
    from tasks import generation

    finding = "cell 2, line 6: the training cell loads a saved object (torch.load) instead of learning the weights"
    info = {
        "stage": "training",
        "problem": "no records",
        "profile": "train",
        "w": 1.0,
        "timings": {},
        "weights_loaded": [finding],
    }
    verdict = generation.judge(info, {}, lambda name: None, 0)
    assert verdict.integrity == [f"weights not learned? {finding}"]
    assert verdict.details["weights_loaded"] == [finding]


@pytest.mark.slow
def test_a_train_profile_grade_names_weights_loaded_in_the_training_cell(tmp_path):
    """Through the whole grade: the finding reaches the result's integrity notes with its cell."""
    from grader.grading.runner import grade
    from grader.submission.analysis import analyse
    from grader.submission.cells import load_submission

    example = (Path(__file__).resolve().parent.parent / "examples" / "submission.py").read_text(encoding="utf-8")
    anchor = "        optimizer.zero_grad()\n"
    assert example.count(anchor) == 1
    path = tmp_path / "smuggler.py"
    path.write_text(
        example.replace(
            anchor,
            anchor + "        if step < 0:  # never runs; read all the same\n"
            "            model.load_state_dict(torch.load('smuggled.pt'))\n",
        ),
        encoding="utf-8",
    )
    training = analyse(load_submission(path)).training_cell()
    line = training.cell.code.splitlines().index("            model.load_state_dict(torch.load('smuggled.pt'))") + 1
    result = grade(
        path, ["generation"], device="cpu", seed=3, generation={"profile": "train", "train_steps": 20, "per_digit": 5}
    )
    where = f"cell {training.cell.number}, line {line}: the training cell"
    assert (
        f"weights not learned? {where} loads a saved object (torch.load) instead of learning the weights"
        in result.integrity
    ), result.integrity
    assert (
        f"weights not learned? {where} loads weights into a model (model.load_state_dict) instead of "
        "learning the weights" in result.integrity
    )
