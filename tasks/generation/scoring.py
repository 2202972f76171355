"""The generation verdict: the official check on the digits drawn, then what backs or doubts it.

Beside the official 50 it reports an interval over every digit drawn, per-digit accuracy and
confusions, and the grid; it fails the task on near copies of MNIST, on digits that score
clearly better through the student's sample_w than on the trusted path, and on training
records or a short training run that show the pipeline cannot learn guided generation.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from grader.core.i18n import _, ngettext
from reference import narrow
from tasks.base import Verdict, kind_of
from tasks.generation.hints import SAMPLING_RELIES_ON, likely_causes
from tasks.generation.official import OFFICIAL_BAR, OFFICIAL_PER_DIGIT, POINTS, classify
from tasks.generation.trusted import heldout_batch, reference_heldout_loss

LOSS_SLACK = (1.25, 0.02)  # the student's held-out loss may exceed the reference's by 25% + 0.02
NEAR_COPY_LIMIT = 0.2  # at most this fraction of the digits drawn may be near copies of MNIST images
TRUSTED_MARGIN = 0.1  # the trusted path's 95% upper bound may fall this far below the official accuracy


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion."""
    if total == 0:
        return (0.0, 1.0)
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * ((p * (1 - p) / total + z * z / (4 * total * total)) ** 0.5) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _by_digit(official: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    """Official and extra draws merged and ordered by digit (rows of the grid)."""
    if extra is None:
        return official
    rows = [torch.cat((official.view(10, -1, 1, 28, 28)[d], extra.view(10, -1, 1, 28, 28)[d])) for d in range(10)]
    return torch.cat(rows)


def _confusions(predictions: torch.Tensor, per_digit: int) -> list[str]:
    """For each digit drawn badly, what the classifier read instead, worst first."""
    lines = []
    for digit in range(10):
        got = predictions[digit * per_digit : (digit + 1) * per_digit]
        wrong = got[got != digit]
        if len(wrong):
            common = torch.mode(wrong).values.item()
            count = int((got == common).sum())
            lines.append(
                (
                    len(wrong),
                    _("digits drawn for {digit} are classified as {common} in {count} of {per_digit}").format(
                        digit=digit, common=common, count=count, per_digit=per_digit
                    ),
                )
            )
    return [text for _wrong, text in sorted(lines, key=lambda item: -item[0])]


def _near_copies(images: torch.Tensor, threshold: float = 2.0) -> float:
    """Fraction of samples within `threshold` (L2, pixels in [0, 1]) of some MNIST image, train or test."""
    from reference import mnist

    train, _ = mnist.load("all")
    train = train.flatten(1)
    samples = images.clamp(0, 1).flatten(1)
    nearest = torch.cat([torch.cdist(chunk, train).min(dim=1).values for chunk in samples.split(128)])
    return int((nearest < threshold).sum()) / len(nearest)  # exact: 10 of 50 is 0.2, not 0.2 + float32 error


def _save_grid(images: torch.Tensor, per_digit: int, path: Path) -> str:
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images.clamp(0, 1), path, nrow=per_digit, padding=2, pad_value=0.5)
    return str(path)


def flag_weights_loaded(verdict: Verdict, info: dict) -> None:
    """Statements of the training cell that load weights (grader/submission/smuggling.py): named for a person
    in the integrity notes, whatever the verdict."""
    if info.get("weights_loaded"):
        verdict.details["weights_loaded"] = info["weights_loaded"]
        verdict.integrity.extend(
            _("weights not learned? {finding}").format(finding=finding) for finding in info["weights_loaded"]
        )


def stage_failure(verdict: Verdict, info: dict) -> Verdict:
    stage, problem = info["stage"], info.get("problem")
    if stage == "weights":
        # The child's mismatch report (a dict it wrote: any of its keys may be missing), or the
        # grader's own sentence when the child's answer to `load` was not one.
        text = (
            _(
                "the reference U-Net weights do not load into your model: missing {missing}, "
                "unexpected {unexpected}, wrong shape {wrong_shape}"
            ).format(
                missing=problem.get("missing"),
                unexpected=problem.get("unexpected"),
                wrong_shape=problem.get("wrong_shape"),
            )
            if isinstance(problem, dict)
            else str(problem)
        )
        verdict.check(
            False, POINTS, text, _("keep the course's attribute names and layer sizes in the blocks and the UNet")
        )
    elif stage == "training":
        where = (
            _(" at line {line}").format(line=problem["line"])
            if isinstance(problem, dict) and problem.get("line")
            else ""
        )
        failure = problem.get("error") if isinstance(problem, dict) else problem
        verdict.check(
            False,
            POINTS,
            _("training your model through your training cell failed{where}: {error}").format(
                where=where, error=failure
            ),
        )
    else:
        verdict.check(False, POINTS, str(problem))
    return verdict


def judge(
    info: dict,
    data: dict,
    locate,
    seed: int,
    artifacts_dir=None,
    stem: str = "submission",
    check_steps: int = 40,
    **_unused,
) -> Verdict:
    """Official verdict (5 per digit, >= 95%) plus a larger sample, interval, grid and integrity checks.

    `data` holds the digits drawn through the student's sample_w ("official", and "extra" for
    the larger sample) and on the grader's trusted path ("grader")."""
    verdict = Verdict(location=locate("sample_w"))
    verdict.details["profile"] = info.get("profile")
    verdict.details["profile_reason"] = info.get("profile_reason")
    verdict.details["w"] = info.get("w")
    verdict.details["effective_w"] = info.get("effective_w")
    if "course_flow" in info:
        verdict.details["course_flow"] = info["course_flow"]
    flag_weights_loaded(verdict, info)
    if info["stage"] != "done":
        return stage_failure(verdict, info)
    official, official_finite = classify(data["official"])
    official_labels = torch.arange(10).repeat_interleave(OFFICIAL_PER_DIGIT)
    official_accuracy = int((official == official_labels).sum()) / len(official_labels)
    larger_images = _by_digit(data["official"], data.get("extra"))
    per_digit = larger_images.shape[0] // 10
    larger, larger_finite = classify(larger_images)
    larger_labels = torch.arange(10).repeat_interleave(per_digit)
    correct = int((larger == larger_labels).sum())
    trusted = data.get("grader")  # None when the grader could not sample the model itself
    if trusted is not None:
        grader, _finite = classify(trusted)  # `_` is gettext here
        trusted_correct = int((grader == torch.arange(10).repeat_interleave(trusted.shape[0] // 10)).sum())
        grader_accuracy = trusted_correct / len(grader)
    else:
        grader_accuracy = None
    verdict.details.update(
        official_accuracy=official_accuracy,
        official_passed=official_accuracy >= OFFICIAL_BAR,
        official_predictions={str(d): official[d * 5 : (d + 1) * 5].tolist() for d in range(10)},
        accuracy=correct / len(larger_labels),
        accuracy_ci95=list(wilson_interval(correct, len(larger_labels))),
        samples=len(larger_labels),
        per_digit_accuracy={
            str(d): (larger[d * per_digit : (d + 1) * per_digit] == d).float().mean().item() for d in range(10)
        },
        confusions=_confusions(larger, per_digit),
        reference_sampler_accuracy=grader_accuracy,
        larger_sample=info.get("larger_sample"),  # {"state", "why"}: generation._larger_sample_plan
        trusted_path=info.get("trusted_path"),  # {"state", "why"}: generation._trusted_plan
        timings=info.get("timings", {}),
    )
    if info.get("w") is None:
        verdict.note(_("w is not set to a number; sampled with w = 0.0, the notebook's default"))
    printed = info.get("course_flow", {}).get("course_printed_accuracy")
    if printed is not None:  # beside ours, never instead: the student's code prints into the same cell
        verdict.details["course_printed_accuracy"] = printed
        verdict.note(
            _(
                "the course's own run_assessment printed Final Accuracy {accuracy} ({official} by its bar); "
                "the verdict here is the grader's, from the samples it judged"
            ).format(accuracy=f"{printed:.0%}", official=_("passed") if printed >= OFFICIAL_BAR else _("not passed"))
        )
    if artifacts_dir is not None:
        verdict.details["grid"] = _save_grid(larger_images, per_digit, Path(artifacts_dir) / f"{stem}.samples.png")
    if not (official_finite and larger_finite):
        verdict.note(_("some samples contain NaN or infinite values (counted as blank images)"))
    copies = _near_copies(larger_images)
    verdict.details["near_copy_fraction"] = copies
    if copies > NEAR_COPY_LIMIT:
        near = _("{fraction} of the generated digits are near copies of MNIST images").format(fraction=f"{copies:.0%}")
        verdict.check(False, POINTS, near)
        verdict.integrity.append(near)
    if trusted is None:
        if (info.get("trusted_path") or {}).get("state") != "not_drawn":  # skipped by plan: the report says why
            verdict.note(
                _(
                    "the grader could not sample your model itself (its weights do not fit the course's "
                    "U-Net), so the digits were judged only as your sample_w drew them"
                )
            )
    elif (
        official_accuracy >= OFFICIAL_BAR
        and wilson_interval(trusted_correct, len(grader))[1] < official_accuracy - TRUSTED_MARGIN
    ):
        message = _(
            "sample_w draws digits the judge recognises ({official}) but the same model, sampled by the "
            "grader at your guidance weight, does not ({grader})"
        ).format(official=f"{official_accuracy:.0%}", grader=f"{grader_accuracy:.0%}")
        verdict.check(False, POINTS, message, _("sample_w must draw its digits from the model it is given"))
        verdict.integrity.append(message)

    _check_provenance(verdict, info)

    confusion = _confusions(official, OFFICIAL_PER_DIGIT)
    if not verdict.check(
        official_accuracy >= OFFICIAL_BAR,
        POINTS,
        _("official check: {count} of 50 digits recognised ({accuracy}; 48 needed)").format(
            count=round(official_accuracy * 50), accuracy=f"{official_accuracy:.0%}"
        )
        + (f"; {confusion[0]}" if confusion else ""),
    ):
        verdict.hints.extend(likely_causes(info, official_accuracy, grader_accuracy))
    if info.get("profile") == "transplant" and "narrow" in info:
        _check_short_training(verdict, info["narrow"], seed, check_steps)
    if info.get("profile") == "train" and "training" in info:
        _check_training_records(verdict, info["training"], info["training"].get("steps_asked", 0))
    verdict.earned = POINTS if verdict.passed else 0.0  # all or nothing, like the official grader
    return verdict


def _check_provenance(verdict: Verdict, info: dict) -> None:
    """The official digits must come from the model through sample_w (tasks/generation/provenance.py)."""
    found = info.get("provenance")
    if found is None:  # the course flow's digits come from its run_assessment, untraced
        return
    verdict.details["provenance"] = {k: v for k, v in found.items() if k != "problem"}
    if found.get("problem"):
        causes = [task for task in SAMPLING_RELIES_ON if task in info.get("failed_before", ())]
        hint = _("sample_w must draw each digit by denoising random noise with the model it is given, step by step")
        if causes:
            hint += ngettext(
                " (the {tasks} task failed above: fix that first)",
                " (the {tasks} tasks failed above: fix that first)",
                len(causes),
            ).format(tasks=", ".join(causes))
        verdict.check(False, POINTS, found["problem"], hint)
        verdict.integrity.append(found["problem"])


def _check_training_records(verdict: Verdict, training: dict, steps: int) -> None:
    """On every profile: the batches trained are the ones asked for, each conditioned on its own
    labels with a drop probability strictly between 0 and 1."""
    count = training.get("batch_count")
    verdict.details.setdefault("training_batches", count)
    if count != steps:
        verdict.check(
            False,
            POINTS,
            _("your training cell trained {count} of the {steps} batches it was given").format(
                count=count, steps=steps
            ),
            _("train inside `for step, batch in enumerate(dataloader)` and call get_loss once a batch"),
        )
    masks = training.get("masks", [])
    drops = [m["drop_prob"] for m in masks if m["drop_prob"] is not None]
    if masks and not all(m["labels_from_batch"] for m in masks):
        verdict.check(
            False,
            POINTS,
            _(
                "trained as written, your loop conditions on something other than "
                "the batch's labels, so the model cannot learn which digit to draw"
            ),
            None,
        )
    elif len(drops) < len(masks) or not all(0 < p < 1 for p in drops):
        verdict.check(
            False,
            POINTS,
            _(
                "trained as written, your loop uses c_drop_prob values of 0 or 1 (or not "
                "a number), so the model cannot learn guided generation (see the training_loop "
                "task)"
            ),
        )


def _check_short_training(verdict: Verdict, run: dict, seed: int, steps: int) -> None:
    """Transplant profile: after the same short training, the student's pipeline predicts noise about as well."""
    if "build_error" in run:
        verdict.check(
            False,
            0,
            _("your UNet cannot be built at a narrow width {widths}: {error}").format(
                widths=narrow.WIDTHS, error=run["build_error"]
            ),
        )
        return
    if isinstance(run.get("error"), dict):
        line = run["error"].get("line")
        verdict.check(
            False,
            0,
            _("the short training run through your training cell failed{where}: {error}").format(
                where=_(" at line {line}").format(line=line) if type(line) is int else "",
                error=run["error"].get("message"),
            ),
        )
        return
    _check_training_records(verdict, run, steps)
    batch = heldout_batch(seed)
    prediction = run.get("heldout_prediction")
    if not (isinstance(prediction, torch.Tensor) and prediction.shape == batch["noise"].shape):
        verdict.check(
            False,
            POINTS,
            _(
                "after the short training your model's prediction on held-out images is a "
                "{kind}, not a batch of noise estimates"
            ).format(kind=kind_of(prediction)),
        )
        return
    prediction = torch.nan_to_num(prediction.float(), nan=1e6)
    student_loss = F.mse_loss(prediction, batch["noise"]).item()
    reference_loss = reference_heldout_loss(steps, seed)
    verdict.details["short_training"] = {
        "steps": steps,
        "batches": run.get("batch_count"),
        "heldout_loss": student_loss,
        "reference_heldout_loss": reference_loss,
    }
    ratio, slack = LOSS_SLACK
    verdict.check(
        student_loss <= max(reference_loss * ratio, reference_loss + slack),
        POINTS,
        _(
            "after {steps} training steps your pipeline's model predicts the noise worse than the reference "
            "pipeline's (held-out loss {loss} vs {reference})"
        ).format(steps=steps, loss=f"{student_loss:.3f}", reference=f"{reference_loss:.3f}"),
        _("check q, get_loss and the training loop: the model must learn to predict the noise q added"),
    )
