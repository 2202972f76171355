"""Why generation failed, and what to change: hints for a failed official check."""

from __future__ import annotations

from math import comb

from grader.core.i18n import _, ngettext

# Guided-sample accuracy of the shipped reference weights (docs/weights.md has the commands and
# the official draws: 3,423 of 3,450 digits at w = 1, five a call as the official draw makes them, or more).
REFERENCE_ACCURACY_W1 = 0.992
REFERENCE_ACCURACY_W0 = 0.90
SAMPLING_RELIES_ON = ("schedule", "reverse_q", "blocks", "guidance")
TRAINING_RELIES_ON = ("q", "context_mask", "loss", "training_loop")


def likely_causes(info: dict, official_accuracy: float, grader_accuracy: float | None) -> list[str]:
    """Hints for a failed official check: a guidance weight that switches guidance off, a sampler
    that does worse than the grader's on the same weights, unit tasks failed above, or, where
    nothing points at the student's code, a draw that fell short of the bar by chance."""
    hints = []
    relevant = SAMPLING_RELIES_ON + (TRAINING_RELIES_ON if info.get("profile") == "train" else ())
    causes = [task for task in relevant if task in info.get("failed_before", ())]
    w, effective = info.get("w"), info.get("effective_w")
    shown = _("unset (0.0)") if w is None else f"{w:g}"
    if effective is not None and effective == 0:
        hints.append(
            _(
                "your w = {w} switches guidance off: sample_w draws plain conditional samples, which the "
                "reference weights recognise only {at_w0} of the time, under the 95% bar; with w = 1 they reach "
                "{at_w1}: set w = 1"
            ).format(w=shown, at_w0=f"{REFERENCE_ACCURACY_W0:.0%}", at_w1=f"{REFERENCE_ACCURACY_W1:.1%}")
        )
    elif effective is not None and effective < 0:
        hints.append(
            _(
                "at your w = {w}, sample_w weighs the unconditional prediction above the conditional one "
                "(the course's weight would be {effective}), so the digits drift to any class; choose w so that "
                "the course's weight is about 1 (w = 1 in the course's form, w = 2 in the form "
                "w * keep + (1 - w) * drop), where the reference weights reach {at_w1}"
            ).format(w=shown, effective=f"{effective:g}", at_w1=f"{REFERENCE_ACCURACY_W1:.1%}")
        )
    elif grader_accuracy is not None and grader_accuracy > official_accuracy + 0.3:
        hints.append(
            _(
                "the grader's own sampler draws better digits from the same weights at your w: "
                "check the guidance formula in sample_w"
            )
        )
    elif _short_by_chance(info, official_accuracy, grader_accuracy, causes):
        hints.append(
            _(
                "{count} of 50 is just short of the bar, and nothing else points at your code: on this profile "
                "the digits come from the reference weights, which fall short by chance in about 1 grade in "
                "{odds} with a correct sample_w at w = 1. Grade again (each grade draws new noise); falling "
                "short twice points at sample_w"
            ).format(
                count=round(official_accuracy * 50), odds=round(1 / chance_of_falling_short(REFERENCE_ACCURACY_W1))
            )
        )
    if causes:
        hints.append(
            ngettext(
                "likely cause: the {tasks} task failed above; fix it first",
                "likely cause: the {tasks} tasks failed above; fix them first",
                len(causes),
            ).format(tasks=", ".join(causes))
        )
    return hints


def chance_of_falling_short(accuracy: float, drawn: int = 50, needed: int = 48) -> float:
    """The chance that `drawn` digits, each recognised with probability `accuracy`, miss the bar."""
    return sum(comb(drawn, k) * accuracy**k * (1 - accuracy) ** (drawn - k) for k in range(needed))


def _short_by_chance(info: dict, official_accuracy: float, grader_accuracy: float | None, causes: list) -> bool:
    """A transplant's draw one to three digits short of the bar, at a guiding w, with no unit task
    of sampling failed, a traced draw that follows the model and the grader's own draw no better:
    what the reference weights do by chance."""
    effective = info.get("effective_w")
    return (
        info.get("profile") == "transplant"
        and 45 <= round(official_accuracy * 50) < 48
        and effective is not None
        and 0.5 <= effective <= 2
        and not causes
        and not (info.get("provenance") or {}).get("problem")
        and not (grader_accuracy is not None and grader_accuracy > official_accuracy + 0.3)
    )
