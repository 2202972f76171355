"""The generation task's verdicts: the official bar, the larger sample, integrity flags.

Fast tests feed real MNIST digits (or wrong ones) to the judge side as if a model drew them;
the slow end-to-end tests grade whole submissions through the child on a CPU.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import torch

from reference import mnist
from tasks import generation


def _digits(split: str, per_digit: int, offset: int = 0, shift: int = 0, moved: bool = True) -> torch.Tensor:
    """per_digit images of each digit 0..9, in digit order; `shift` draws d + shift instead.

    `moved` shifts each real image by two pixels: still the same digit to the classifier, but no
    longer a near copy of an MNIST image (as a model's own drawing would be)."""
    images, labels = mnist.load(split)
    rows = []
    for digit in range(10):
        wanted = (digit + shift) % 10
        rows.append(images[labels == wanted][offset : offset + per_digit])
    drawn = torch.cat(rows)
    return torch.roll(drawn, shifts=(2, 1), dims=(2, 3)) if moved else drawn


def _judge(tmp_path: Path, official, extra=None, grader=None, **info):
    data = {"official": official, "grader": grader if grader is not None else official[::5]}
    if extra is not None:
        data["extra"] = extra
    info = {"stage": "done", "profile": "transplant", "w": 1.0, "timings": {}, **info}
    return generation.judge(info, data, lambda name: None, 0, artifacts_dir=tmp_path / "artifacts", stem="alice")


def test_wilson_interval_matches_known_values():
    low, high = generation.wilson_interval(48, 50)
    assert low == pytest.approx(0.8654, abs=1e-3) and high == pytest.approx(0.9890, abs=1e-3)
    assert generation.wilson_interval(0, 0) == (0.0, 1.0)
    assert generation.wilson_interval(10, 10)[1] == 1.0


def test_recognisable_digits_pass_with_figures_and_grid(tmp_path):
    verdict = _judge(tmp_path, _digits("test", 5), extra=_digits("test", 5, offset=5))
    details = verdict.details
    assert verdict.passed, verdict.failures
    assert details["official_accuracy"] >= 0.95 and details["official_passed"] is True
    assert details["samples"] == 100
    low, high = details["accuracy_ci95"]
    assert low <= details["accuracy"] <= high
    assert set(details["per_digit_accuracy"]) == {str(d) for d in range(10)}
    assert Path(details["grid"]) == tmp_path / "artifacts" / "alice.samples.png"
    assert Path(details["grid"]).stat().st_size > 1000
    assert verdict.integrity == []


def test_wrong_digits_fail_naming_the_confusion(tmp_path):
    official = _digits("test", 5)
    official[15:20] = _digits("test", 5, shift=5)[15:20]  # digit 3 drawn as 8
    official[20:25] = _digits("test", 5, shift=5)[20:25]  # digit 4 drawn as 9
    verdict = _judge(tmp_path, official)
    assert not verdict.passed
    message = verdict.failures[0]
    assert re.search(r"\b(3\d|40) of 50 digits recognised", message), message
    assert (
        "digits drawn for 3 are classified as 8 in 5 of 5" in message
        or "digits drawn for 4 are classified as 9 in 5 of 5" in message
    )
    assert verdict.details["official_passed"] is False


def test_blank_or_nan_samples_fail_with_a_note(tmp_path):
    official = torch.full((50, 1, 28, 28), float("nan"))
    verdict = _judge(tmp_path, official)
    assert not verdict.passed
    assert any("NaN" in note for note in verdict.notes)


@pytest.mark.parametrize("split", ["train", "test"])
def test_copies_of_mnist_images_fail_the_task(tmp_path, split):
    copies = _digits(split, 5, moved=False)
    verdict = _judge(tmp_path, copies)
    assert verdict.details["official_passed"] is True  # the classifier reads them as the right digits...
    assert not verdict.passed and verdict.earned == 0  # ...but they are MNIST's, not the model's
    assert any("near copies" in note for note in verdict.integrity)


def test_sampler_that_ignores_the_model_fails_on_the_trusted_path(tmp_path):
    good = _digits("test", 5)
    noise = torch.rand(10, 1, 28, 28)  # what the grader's trusted path drew from the same model
    verdict = _judge(tmp_path, good, grader=noise, profile="train")  # a passing transplant skips the path
    assert verdict.details["official_passed"] is True
    assert not verdict.passed
    assert any("sampled by the grader" in note for note in verdict.integrity)


def test_trusted_path_close_to_the_official_sample_passes(tmp_path):
    good = _digits("test", 5)
    verdict = _judge(tmp_path, good, grader=_digits("test", 1, offset=20))
    assert verdict.passed, verdict.failures


def test_weights_that_do_not_fit_fail_listing_keys(tmp_path):
    problem = {"missing": ["down0.conv1.model.0.weight"], "unexpected": ["down0.c1.weight"], "wrong_shape": []}
    verdict = generation.judge(
        {"stage": "weights", "problem": problem, "profile": "transplant", "w": 1.0}, {}, lambda name: None, 0
    )
    assert not verdict.passed
    assert "down0.conv1.model.0.weight" in verdict.failures[0] and "down0.c1.weight" in verdict.failures[0]


def test_missing_w_is_noted(tmp_path):
    verdict = _judge(tmp_path, _digits("test", 5), w=None)
    assert any("w is not set" in note for note in verdict.notes)


# -- the larger sample: drawn only where the official count is near the bar -----------------------
def test_larger_sample_skipped_far_from_the_bar():
    plan = generation._larger_sample_plan(_digits("test", 5, moved=False), extra=5, when="near_bar")
    assert plan["state"] == "not_drawn" and plan["why"].startswith("not drawn: 50 of 50"), plan
    official = _failing_official()
    plan = generation._larger_sample_plan(official, extra=5, when="near_bar")
    assert plan["state"] == "not_drawn" and plan["why"].startswith("not drawn: 40 of 50"), plan


def test_larger_sample_drawn_near_the_bar():
    official = _digits("test", 5, moved=False)
    official[15:18] = _digits("test", 5, shift=5, moved=False)[15:18]  # three 3s drawn as 8s: 47 of 50
    plan = generation._larger_sample_plan(official, extra=5, when="near_bar")
    assert plan["state"] == "drawn" and plan["why"].startswith("drawn: 47 of 50 is near the bar"), plan


def test_larger_sample_always_drawn_when_asked():
    assert generation._larger_sample_plan(_digits("test", 5), extra=5, when="always")["state"] == "drawn"
    assert generation._larger_sample_plan(_digits("test", 5), extra=0, when="always")["state"] == "not_drawn"


def test_larger_sample_on_a_cpu_transplant_is_drawn_only_when_asked():
    """The transplant's weights are the reference's: near the bar in most CPU grades, where the
    near-bar rule drew 50 more digits (about 40 s) in 5 grades of 5 to measure them."""
    from tasks.generation.options import choose_options

    near = _digits("test", 5, moved=False)
    near[15:17] = _digits("test", 5, shift=5, moved=False)[15:17]  # 48 of 50
    unasked = choose_options("cpu")
    assert (unasked.profile, unasked.larger_sample) == ("transplant", "asked")
    plan = generation._larger_sample_plan(near, extra=unasked.per_digit - 5, when=unasked.larger_sample)
    assert plan["state"] == "not_drawn" and "--samples-per-digit 10" in plan["why"], plan
    assert choose_options("cpu", per_digit=10).larger_sample == "always"
    assert choose_options("cpu", profile="train").larger_sample == "near_bar"
    assert choose_options("cuda").larger_sample == "always"


# -- the trusted path: skipped where a transplant's official draw passed ---------------------------
def test_trusted_path_skipped_only_on_a_transplant_whose_official_draw_passed():
    """The reference weights draw good digits at any sensible w: once the official draw passed on
    them, the grader's own draw would only measure them again (about 5 s of a CPU grade). A failed
    draw still gets it (the hints tell sample_w from w), and the train profile, whose weights are
    the student's, always does."""
    passing, failing = _official(2), _official(3)  # 48 and 47 of 50: either side of the bar
    plan = generation._trusted_plan("transplant", passing, {}, per_digit=1)
    assert plan["state"] == "not_drawn" and "official draw passed" in plan["why"], plan
    assert generation._trusted_plan("transplant", failing, {}, per_digit=1)["state"] == "drawn"
    assert generation._trusted_plan("train", passing, {}, per_digit=10) == {
        "state": "drawn",
        "why": "drawn: 10 of each digit",
    }
    assert generation._trusted_plan("course", passing, None, per_digit=10)["state"] == "no_weights"


def test_a_trusted_path_skipped_by_plan_is_reported_as_skipped(tmp_path):
    """Not as weights the grader could not sample, which is what a missing trusted draw means otherwise."""
    from tasks.generation.report import text_details

    skipped = {"state": "not_drawn", "why": "not drawn: the official draw passed"}
    info = {"stage": "done", "profile": "transplant", "w": 1.0, "timings": {}, "trusted_path": skipped}
    verdict = generation.judge(info, {"official": _official(0)}, lambda name: None, 0)
    assert verdict.passed, verdict.failures
    assert verdict.details["reference_sampler_accuracy"] is None and verdict.details["trusted_path"] == skipped
    assert not any("could not sample your model" in note for note in verdict.notes), verdict.notes
    assert "the grader's own sampler not drawn: the official draw passed" in text_details(verdict.details)
    unsampled = {**info, "trusted_path": {"state": "no_weights", "why": "not drawn"}}
    verdict = generation.judge(unsampled, {"official": _official(0)}, lambda name: None, 0)
    assert any("could not sample your model" in note for note in verdict.notes), verdict.notes


def test_report_names_the_sample_size_when_the_larger_sample_was_skipped(tmp_path):
    from grader.grading.result import GradeResult, TaskResult
    from grader.report.text import render_text

    def report(details: dict) -> str:
        task = TaskResult(generation.ID, "generation", 10, 10, "passed", "correct", details=details)
        return render_text(GradeResult("alice.py", "0" * 64, "module", "cpu", [task]))

    plan = {"state": "not_drawn", "why": "not drawn: 50 of 50 is not near the bar of 48"}
    verdict = _judge(tmp_path, _digits("test", 5), larger_sample=plan)
    assert verdict.passed and verdict.details["samples"] == 50
    assert verdict.details["larger_sample"] == plan
    assert "larger sample not drawn: 50 of 50 is not near the bar of 48" in report(verdict.details)
    drawn = {**verdict.details, "larger_sample": {"state": "drawn", "why": "drawn: 5 more of each digit"}}
    assert "larger sample" not in report(drawn)  # said only when the sample stayed at the official 50


# -- why generation failed: hints ------------------------------------------------------------------
def _failing_official() -> torch.Tensor:
    official = _digits("test", 5, moved=False)
    official[15:25] = _digits("test", 5, shift=5, moved=False)[15:25]  # 3s and 4s drawn as 8s and 9s: 40 of 50
    return official


def test_weight_zero_is_named_with_the_reference_accuracy_there(tmp_path):
    verdict = _judge(tmp_path, _failing_official(), w=0.0, effective_w=0.0)
    assert not verdict.passed
    hint = " ".join(verdict.hints)
    assert "switches guidance off" in hint and "90%" in hint and "set w = 1" in hint, verdict.hints


def test_negative_effective_weight_is_named(tmp_path):
    verdict = _judge(tmp_path, _failing_official(), w=0.0, effective_w=-1.0)
    hint = " ".join(verdict.hints)
    assert "weighs the unconditional prediction above the conditional" in hint and "w = 2" in hint, verdict.hints


def test_positive_weight_gets_no_weight_hint(tmp_path):
    verdict = _judge(tmp_path, _failing_official(), w=1.0, effective_w=1.0)
    assert not verdict.passed
    assert not any("guidance off" in h or "unconditional" in h for h in verdict.hints), verdict.hints


def test_failed_unit_tasks_are_named_as_the_likely_cause(tmp_path):
    verdict = _judge(tmp_path, _failing_official(), effective_w=1.0, failed_before=["q", "reverse_q"])
    # On the transplant profile the training tasks (q) cannot explain the samples; reverse_q can.
    assert "likely cause: the reverse_q task failed above; fix it first" in verdict.hints, verdict.hints
    trained = _judge(tmp_path, _failing_official(), effective_w=1.0, failed_before=["q", "reverse_q"], profile="train")
    assert "likely cause: the reverse_q, q tasks failed above; fix them first" in trained.hints, trained.hints


def test_the_chance_of_falling_short_is_the_binomial_tail():
    """50 digits, 48 needed: at 95% a draw misses the bar with 1 - (0.95^50 + 50 * 0.05 * 0.95^49 +
    1225 * 0.05^2 * 0.95^48) = 0.4595 (by hand)."""
    from tasks.generation.hints import chance_of_falling_short

    assert chance_of_falling_short(0.95) == pytest.approx(0.4595, abs=1e-4)
    assert chance_of_falling_short(1.0) == 0.0


@pytest.mark.parametrize(
    "wrong, change, hinted",
    [
        (3, {}, True),  # 47 of 50 at w = 1, nothing failed: the reference weights' own misses
        (5, {}, True),  # 45 of 50
        (6, {}, False),  # 44 of 50 is past chance
        (3, {"failed_before": ["reverse_q"]}, False),  # a failed sampling task explains it
        (3, {"profile": "train"}, False),  # the student's own weights: no chance to blame
        (3, {"effective_w": 0.0}, False),  # guidance off: that hint instead
        (3, {"effective_w": 3.0}, False),
        (3, {"provenance": {"problem": "the digits do not come from the model"}}, False),
    ],
)
def test_a_transplant_just_short_of_the_bar_is_told_it_may_be_chance(tmp_path, wrong, change, hinted):
    """The reference weights miss about 1 digit in 130 at w = 1, so a correct sample_w falls short of
    48 in about 1 grade in 130 on the transplant profile: that grade is told to grade again."""
    right, _ = _edge_digits()
    info = {"effective_w": 1.0, **change}
    verdict = _judge(tmp_path, _official(wrong), grader=right[::10], **info)
    assert not verdict.passed
    told = [hint for hint in verdict.hints if "just short of the bar" in hint]
    assert bool(told) is hinted, verdict.hints
    if hinted:
        assert f"{50 - wrong} of 50" in told[0] and "about 1 grade in 132" in told[0], told


def test_passing_digits_get_no_cause_hints(tmp_path):
    verdict = _judge(tmp_path, _digits("test", 5), w=0.0, effective_w=0.0, failed_before=["reverse_q"])
    assert verdict.passed and verdict.hints == []


# -- the short training check (transplant profile) -------------------------------------------------
def test_a_model_that_cannot_be_built_narrow_fails_naming_the_width(tmp_path):
    verdict = _judge(tmp_path, _digits("test", 5), narrow={"build_error": "TypeError: down_chs"})
    assert not verdict.passed
    assert "your UNet cannot be built at a narrow width (32, 32, 64): TypeError: down_chs" in verdict.failures


def test_a_training_cell_that_raises_fails_naming_the_line(tmp_path):
    verdict = _judge(tmp_path, _digits("test", 5), narrow={"error": {"line": 7, "message": "NameError: x"}})
    assert not verdict.passed
    assert "the short training run through your training cell failed at line 7: NameError: x" in verdict.failures


def test_a_notebook_that_never_trains_fails_on_every_profile(tmp_path):
    """No training loop: no model to judge, on the transplant profile as on the train profile."""
    from grader.grading.runner import grade

    example = Path(__file__).resolve().parent.parent / "examples" / "submission.py"
    cells = example.read_text(encoding="utf-8").split("# %%")
    kept = [cell for cell in cells if "optimizer.step()" not in cell]
    assert len(kept) == len(cells) - 1
    path = tmp_path / "never_trains.py"
    path.write_text("# %%".join(kept), encoding="utf-8")
    for profile in ("transplant", "train"):
        (task,) = grade(path, ["generation"], device="cpu", seed=3, generation={"profile": profile}).tasks
        assert task.status == "failed" and "no training loop found" in task.message, (profile, task.message)


def test_a_notebook_that_trains_inside_a_function_is_followed_batch_by_batch(tmp_path):
    """The training loop wrapped in `def train_model():` and called below: found, run in the
    harness with the grader's batches, and judged like a top-level loop."""
    from grader.grading.runner import grade

    example = Path(__file__).resolve().parent.parent / "examples" / "submission.py"
    cells = example.read_text(encoding="utf-8").split("# %%")
    (index,) = [i for i, cell in enumerate(cells) if "optimizer.step()" in cell]
    body = "".join(f"    {line}\n" if line.strip() else "\n" for line in cells[index].strip("\n").split("\n"))
    cells[index] = f"\ndef train_model():\n{body}\n# %%\ntrain_model()\n"
    path = tmp_path / "trains_in_a_function.py"
    path.write_text("# %%".join(cells), encoding="utf-8")
    (task,) = grade(path, ["training_loop"], device="cpu", seed=3).tasks
    assert task.status == "passed", task.message


# -- the judge's thresholds at their edges (benchmarks/mutation_check.py --suite tasks) --------------
# Each test below sits on one side of one documented threshold, so moving it by a step, flipping
# it or dropping it fails a test. The images are real MNIST test digits, shifted two pixels (no
# longer near copies); which of them the shipped classifier reads as their own digit is asked of the
# classifier (reference/classifier.py), not of the code under test.
# The judge's module itself (the package exports a function of the same name as `generation.judge`).
judge_module = importlib.import_module("tasks.generation.scoring")
_EDGE_DIGITS = {}


def _edge_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """(right, wrong): 10 per digit of shifted test images the classifier reads as that digit, in digit
    order, and 10 per digit that it reads as digit + 5 (a wrong drawing of that digit)."""
    if not _EDGE_DIGITS:
        images, labels = mnist.load("test")
        images = torch.roll(images, shifts=(2, 1), dims=(2, 3))
        read = generation.classify(images[:2000])[0]
        pools = [images[:2000][(labels[:2000] == d) & (read == d)] for d in range(10)]
        assert all(len(pool) >= 10 for pool in pools)
        _EDGE_DIGITS["right"] = torch.cat([pool[:10] for pool in pools])
        _EDGE_DIGITS["wrong"] = torch.cat([pools[(d + 5) % 10][:10] for d in range(10)])
    return _EDGE_DIGITS["right"], _EDGE_DIGITS["wrong"]


def _official(wrong_count: int) -> torch.Tensor:
    """50 digits, 5 per digit, of which `wrong_count` (at most 40) are drawn wrong, never at a
    multiple of 5 (the default trusted path, official[::5], stays all right)."""
    right, wrong = _edge_digits()
    official = right.view(10, 10, 1, 28, 28)[:, :5].reshape(50, 1, 28, 28).clone()
    wrong5 = wrong.view(10, 10, 1, 28, 28)[:, :5].reshape(50, 1, 28, 28)
    spots = [i for i in range(50) if i % 5][:wrong_count]
    official[spots] = wrong5[spots]
    return official


@pytest.mark.parametrize("wrong, passes", [(2, True), (3, False)])
def test_official_bar_is_48_of_50(tmp_path, wrong, passes):
    verdict = _judge(tmp_path, _official(wrong))
    assert verdict.details["official_accuracy"] == pytest.approx((50 - wrong) / 50)
    assert verdict.passed is passes, verdict.failures
    assert verdict.earned == (generation.POINTS if passes else 0)
    if not passes:
        assert "47 of 50 digits recognised (94%; 48 needed)" in verdict.failures[0]


@pytest.mark.parametrize("copies, passes", [(9, True), (10, True), (11, False)])
def test_near_copy_limit_is_a_fifth_of_the_samples(tmp_path, copies, passes):
    """Up to 20% unshifted MNIST images pass (a model may draw a few), more fail."""
    images, labels = mnist.load("test")
    official = _official(0)
    originals = torch.cat([images[labels == d][:5] for d in range(10)])
    official[:copies] = originals[:copies]  # the same test digits, unshifted: exact copies
    verdict = _judge(tmp_path, official)
    assert verdict.details["near_copy_fraction"] == pytest.approx(copies / 50)
    assert verdict.passed is passes, verdict.failures
    assert bool(verdict.integrity) is not passes


def test_near_copy_means_within_distance_two():
    """A copy with 25 background pixels raised to 0.3 is 1.5 away from its original (5 * 0.3):
    a near copy; raised to 0.5, 2.5 away: not one (any other MNIST image is farther still)."""
    images, _ = mnist.load("train")
    original = images[:1].clone()
    background = (original.flatten() == 0).nonzero().flatten()[:25]
    near, far = original.clone().flatten(), original.clone().flatten()
    near[background], far[background] = 0.3, 0.5
    assert judge_module._near_copies(near.view(1, 1, 28, 28)) == 1.0
    assert judge_module._near_copies(far.view(1, 1, 28, 28)) == 0.0


@pytest.mark.parametrize("right, passes", [(8, True), (7, False)])
def test_trusted_path_margin(tmp_path, right, passes):
    """Official 50 of 50; the trusted path's 10 digits (one each) with `right` of them right. The
    Wilson 95% upper bound of 8/10 is 0.943, of 7/10 0.892 (by hand: centre (p + z^2/2n) / (1 +
    z^2/n), half-width z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n), z = 1.96); it must stay within 0.1
    of the official 100%."""
    assert generation.wilson_interval(8, 10)[1] == pytest.approx(0.9433, abs=1e-3)
    assert generation.wilson_interval(7, 10)[1] == pytest.approx(0.8922, abs=1e-3)
    good, wrong = _edge_digits()
    trusted = good[::10].clone()
    trusted[right:] = wrong[::10][right:]
    verdict = _judge(tmp_path, _official(0), grader=trusted)
    assert verdict.details["reference_sampler_accuracy"] == pytest.approx(right / 10)
    assert verdict.passed is passes, verdict.failures
    assert bool(verdict.integrity) is not passes


def test_trusted_path_is_not_flagged_when_the_official_check_fails(tmp_path):
    """The integrity flag says the student's sampler beats the grader's; below the bar it does not."""
    _, wrong = _edge_digits()
    verdict = _judge(tmp_path, _official(10), grader=wrong[::10])
    assert not verdict.passed and verdict.integrity == []
    assert len(verdict.failures) == 1 and "official check: 40 of 50" in verdict.failures[0]


def _records(count=40, drop_prob=0.1, from_batch=True, bad_at=3) -> dict:
    """Training records of 40 batches as the child reports them (one mask per batch), one of them
    (at `bad_at`) with the given drop probability and labels flag."""
    masks = [{"drop_prob": 0.1, "labels_from_batch": True} for _ in range(count)]
    masks[bad_at] = {"drop_prob": drop_prob, "labels_from_batch": from_batch}
    return {"batch_count": count, "steps_asked": 40, "masks": masks}


@pytest.mark.parametrize(
    "records, failure",
    [
        (_records(), None),
        (_records(drop_prob=0.9), None),
        (_records(count=39), "trained 39 of the 40 batches"),
        (_records(from_batch=False), "conditions on something other than the batch's labels"),
        (_records(drop_prob=0.0), "c_drop_prob values of 0 or 1"),
        (_records(drop_prob=1.0), "c_drop_prob values of 0 or 1"),
        (_records(drop_prob=None), "c_drop_prob values of 0 or 1"),
    ],
    ids=["right", "high-but-below-1", "one-batch-short", "other-labels", "drop-0", "drop-1", "drop-not-a-number"],
)
def test_training_records_on_the_train_profile(tmp_path, records, failure):
    verdict = _judge(tmp_path, _official(0), profile="train", training=records)
    if failure is None:
        assert verdict.passed, verdict.failures
    else:
        assert not verdict.passed and verdict.earned == 0
        assert any(failure in text for text in verdict.failures), verdict.failures


@pytest.mark.parametrize(
    "reference, loss, passes",
    [
        (0.4, 0.49, True),
        (0.4, 0.51, False),  # the ratio rules: 0.4 * 1.25 = 0.5 > 0.4 + 0.02
        (0.04, 0.059, True),
        (0.04, 0.061, False),  # the slack rules: 0.04 + 0.02 = 0.06 > 0.04 * 1.25
    ],
)
def test_short_training_heldout_loss_bound(tmp_path, monkeypatch, reference, loss, passes):
    """The transplant profile's short training: the student's held-out loss may exceed the reference
    pipeline's by 25% or by 0.02, whichever is more. The prediction is the held-out noise plus a
    constant c, so its MSE is exactly c^2 = `loss`; the reference's loss is set."""
    monkeypatch.setattr(judge_module, "reference_heldout_loss", lambda steps, seed: reference)
    noise = generation.heldout_batch(0)["noise"]
    narrow = {**_records(), "heldout_prediction": noise + loss**0.5}
    verdict = _judge(tmp_path, _official(0), narrow=narrow)
    assert verdict.details["short_training"]["heldout_loss"] == pytest.approx(loss, rel=1e-4)
    assert verdict.passed is passes, verdict.failures
    if not passes:
        assert "predicts the noise worse than the reference pipeline's" in verdict.failures[0]


def test_short_training_records_are_checked_too(tmp_path, monkeypatch):
    monkeypatch.setattr(judge_module, "reference_heldout_loss", lambda steps, seed: 0.4)
    noise = generation.heldout_batch(0)["noise"]
    verdict = _judge(tmp_path, _official(0), narrow={**_records(drop_prob=0.0), "heldout_prediction": noise})
    assert not verdict.passed
    assert any("c_drop_prob values of 0 or 1" in text for text in verdict.failures), verdict.failures


@pytest.mark.parametrize(
    "problem",
    ["loading the weights answered a str", {"missing": ["down0.weight"]}, {}],
    ids=["the grader's sentence", "a partial mismatch report", "an empty report"],
)
def test_a_weights_failure_in_any_form_the_child_can_force_fails_the_task(problem):
    """The child answers `load`: a reply that is no mismatch report (a string sentence from the grader)
    or a report missing keys must fail generation with a message, not end in an internal error."""
    from tasks.base import Verdict
    from tasks.generation.scoring import stage_failure

    verdict = stage_failure(Verdict(), {"stage": "weights", "problem": problem})
    message = verdict.message("correct")
    assert not verdict.passed and verdict.earned == 0
    assert ("loading the weights answered" in message) if isinstance(problem, str) else ("missing" in message)
