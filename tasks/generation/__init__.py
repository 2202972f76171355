"""Task `generation`: the student's model draws digits that the MNIST classifier recognises (the official bar).

The model comes from one of three profiles (`options.choose_options` picks one):
- transplant: the shipped reference weights loaded into the student's model (which also
  proves the architecture), plus a short narrow training run through the student's training
  cell, compared with the reference pipeline's;
- train: the student's model trained from a seeded start through their own training cell;
- course: the notebook run top to bottom in a Jupyter kernel, as the DLI platform runs it.
The digits are drawn through the student's own sample_w and w, then again by the grader from
the same weights on its trusted path; `scoring.judge` decides. The modules (all run in the
grader): `stages` drives the contained child through each step, `trusted` computes what the
grader samples and predicts itself, `scoring` gives the verdict, `hints` says why it failed,
`official` holds the course's bar, `options` the profile and budgets.
"""

from __future__ import annotations

import time

import torch

from grader.core.i18n import N_, _
from reference import narrow
from tasks import guidance
from tasks._schedule_runs import notebook_T
from tasks.base import Verdict, derive_seed
from tasks.context import Context
from tasks.declaration import Task
from tasks.generation import provenance, report, stages
from tasks.generation.official import (  # noqa: F401 (ID, POINTS: the task's API)
    COURSE_CHS,
    ID,
    NEAR_BAR,
    OFFICIAL_BAR,
    OFFICIAL_PER_DIGIT,
    POINTS,
    classify,
)
from tasks.generation.options import GenerationOptions, choose_options
from tasks.generation.scoring import (  # noqa: F401 (the task's API)
    flag_weights_loaded,
    judge,
    stage_failure,
    wilson_interval,
)
from tasks.generation.stages import StageFailure
from tasks.generation.trusted import bf16_model, heldout_batch, trusted_model, trusted_samples  # noqa: F401

TITLE = N_("Generated digits recognised by the judge (official bar: 48 of 50)")
NEEDS = ("sample_w", "model")


def check(context: Context) -> Verdict:
    """Make the model for the profile, sample it through the student's sample_w, sample the same
    weights again on the grader's trusted path, and judge both."""
    options = context.options
    if not isinstance(options, GenerationOptions):  # the declaration's options_type: a grader bug otherwise
        raise TypeError(f"generation needs GenerationOptions, not {type(options).__name__}")
    profile = options.profile
    info = {
        "profile": profile,
        "profile_reason": options.profile_reason,
        "timings": {},
        "failed_before": list(context.failed_before),
        "w": guidance.student_w(context),
        "T": notebook_T(context),
    }
    bf16 = context.device.type == "cpu" and narrow.bf16_here()
    training = stages.training_cell(context)
    if profile in ("train", "course"):  # the model is learned there: name weights brought in instead
        from grader.submission.smuggling import weight_loading

        info["weights_loaded"] = [str(finding) for finding in weight_loading(context.analysis)]
    samples, traces = {}, None
    try:
        started = time.perf_counter()
        if profile == "course":
            samples["official"], state, info["course_flow"] = stages.course_flow(context)
            info["timings"]["course_flow_s"] = time.perf_counter() - started
        else:
            if training is None:  # transplant and train alike: a notebook that never trains has no model
                raise StageFailure("training", _("no training loop found: the notebook never trains its model"))
            target, state = _model(context, profile, training, options, info)
            info["timings"]["model_s"] = time.perf_counter() - started
            started = time.perf_counter()
            traces = _sample(context, target, options, info, samples, bf16)
            info["timings"]["sampling_s"] = time.perf_counter() - started
    except StageFailure as failure:
        verdict = Verdict(location=context.locate("sample_w"))
        flag_weights_loaded(verdict, info)
        return stage_failure(verdict, {**info, "stage": failure.stage, "problem": failure.problem})
    started = time.perf_counter()
    info["effective_w"] = _effective_w(context, info["w"])
    info["trusted_path"] = _trusted_plan(profile, samples["official"], state, options.grader_per_digit)
    if state is not None and info["trusted_path"]["state"] == DRAWN:
        samples["grader"] = trusted_samples(
            state,
            info["effective_w"],
            options.grader_per_digit,
            derive_seed(context.seed, ID, "trusted"),
            context.progress,
            info["T"],
        )
    info["timings"]["trusted_path_s"] = time.perf_counter() - started
    if traces is not None and state is not None:
        started = time.perf_counter()
        grader_model = bf16_model(trusted_model(state, info["T"]))
        info["provenance"] = provenance.follows_model(
            samples["official"], traces, grader_model, info["effective_w"], context.seed, info["T"]
        )
        info["timings"]["provenance_s"] = time.perf_counter() - started
    if profile == "transplant" and options.check_steps:
        started = time.perf_counter()
        assert training is not None  # a transplant without a training cell returned its stage failure above
        info["narrow"] = stages.short_training(context, options.check_steps, training, bf16)
        info["timings"]["short_training_s"] = time.perf_counter() - started
    info["stage"] = "done"
    started = time.perf_counter()
    verdict = judge(
        info,
        samples,
        context.locate,
        context.seed,
        artifacts_dir=options.artifacts_dir,
        stem=options.stem,
        check_steps=options.check_steps,
    )
    info["timings"]["judge_s"] = time.perf_counter() - started
    return verdict


def _model(context, profile: str, training: dict, options: GenerationOptions, info: dict) -> tuple[str, dict]:
    """The child's slot holding the model to sample, and its weights as the grader knows them."""
    from reference.weights import UNET_FILE, read_state_dict, weights_path

    if profile == "transplant":
        state = read_state_dict(weights_path(UNET_FILE))
        stages.load_or_fail(context, "model", state)
        return "model", state
    down_chs, steps, batch_size = options.down_chs, options.train_steps, options.batch_size
    state = stages.seeded_start(context, down_chs)
    stages.build(context, "trained", down_chs)
    stages.load_or_fail(context, "trained", state)
    info["training"] = stages.train(context, "trained", steps, training, batch_size, bf16=False)
    if info["training"].get("error"):
        raise StageFailure("training", info["training"]["error"])
    info["training"]["masks"] = stages.judged_masks(info["training"], context, "trained", steps, batch_size)
    return "trained", stages.returned_state(context, "trained", state)


def _sample(context, target: str, options: GenerationOptions, info: dict, samples: dict, bf16: bool) -> list:
    """The official 50 through the student's sample_w, traced (the calls its model got, which
    `provenance` checks), and the larger sample when it is called for."""
    w = info["w"] if info["w"] is not None else 0.0
    samples["official"], traces = stages.draw(
        context, target, OFFICIAL_PER_DIGIT, w, "official sample", bf16, traced=True
    )
    extra = options.per_digit - OFFICIAL_PER_DIGIT
    info["larger_sample"] = _larger_sample_plan(samples["official"], extra, options.larger_sample)
    if info["larger_sample"]["state"] == DRAWN:
        samples["extra"], _traces = stages.draw(context, target, extra, w, "larger sample", bf16)
    return traces


# The larger sample's and the trusted path's states in the result's details (machine fields, never
# translated); each plan's sentence beside it ("why") is in the grade's language, so no code reads it.
DRAWN, NOT_DRAWN, NO_WEIGHTS = "drawn", "not_drawn", "no_weights"


def _larger_sample_plan(official: torch.Tensor, extra: int, when: str) -> dict:
    """Whether to draw `extra` more digits of each kind, and why: {"state": DRAWN or NOT_DRAWN,
    "why": a sentence}. The verdict is the official draw of 50, as the course's; more digits only
    narrow the interval reported beside it, which matters where the official count sits near the
    bar ("near_bar"), or always ("always"); "asked": only when the operator asks (`options._larger_sample`)."""
    if extra <= 0:
        return {"state": NOT_DRAWN, "why": _("not drawn: no larger sample was asked for")}
    if when == "asked":
        why = _(
            "not drawn: on this profile the weights are the reference's, so more digits would measure them, "
            "not your work (--samples-per-digit {per_digit} draws them, about 40 s more on a CPU)"
        )
        return {"state": NOT_DRAWN, "why": why.format(per_digit=OFFICIAL_PER_DIGIT + extra)}
    correct = _official_count(official)
    low, high = NEAR_BAR
    if when == "always":
        return {"state": DRAWN, "why": _("drawn: {extra} more of each digit").format(extra=extra)}
    if low <= correct <= high:
        why = _("drawn: {correct} of 50 is near the bar of 48, so {extra} more of each digit were drawn")
        return {"state": DRAWN, "why": why.format(correct=correct, extra=extra)}
    why = _("not drawn: {correct} of 50 is not near the bar of 48 (more digits are drawn from {low} to {high})")
    return {"state": NOT_DRAWN, "why": why.format(correct=correct, low=low, high=high)}


def _trusted_plan(profile: str, official: torch.Tensor, state: dict | None, per_digit: int) -> dict:
    """Whether the grader draws the weights again on its trusted path, and why: {"state", "why"}.

    The trusted path tells a sampler that draws good digits from a model that does not (an
    integrity check) and, when the official draw fails, whether sample_w or the weights are to
    blame (the hints). On the transplant profile the weights are the reference's, which draw good
    digits at any sensible w, so once the official draw has passed it would only measure them
    again: it is skipped there, about 5 s of a CPU grade (docs/security.md names what it could
    still have flagged). Provenance still checks that the digits follow the model, step by step."""
    if state is None:
        return {"state": NO_WEIGHTS, "why": _("not drawn: the weights do not fit the course's U-Net")}
    if profile == "transplant" and _official_count(official) / len(official) >= OFFICIAL_BAR:
        why = _(
            "not drawn: the official draw passed with the reference weights, which the grader's own "
            "sampler would only measure again (it is drawn when the official draw fails)"
        )
        return {"state": NOT_DRAWN, "why": why}
    return {"state": DRAWN, "why": _("drawn: {count} of each digit").format(count=per_digit)}


def _official_count(official: torch.Tensor) -> int:
    """How many of the official 50 the classifier reads as the digit they were drawn for."""
    return int((classify(official)[0] == torch.arange(10).repeat_interleave(OFFICIAL_PER_DIGIT)).sum())


def _effective_w(context, w) -> float:
    """The course's w that the student's sample_w applies at their w (1.0 when unknown)."""
    if w is None:
        w = 0.0
    try:
        found = guidance.identify(context)
    except Exception:  # the guidance task reports what is wrong; sample the trusted path at w
        return float(w)
    if not found["called_reverse_q"] or w not in found["e_t"]:
        return float(w)
    alpha, beta, error = guidance.fit(found["e_t"][w], found["keep"], found["drop"])
    if error < 1e-3 and abs(alpha + beta - 1) < 1e-3:
        return round(float(alpha - 1), 4) + 0.0  # a fit's 1e-16 is no weight; + 0.0 makes -0.0 plain 0
    return float(w)


TASK = Task(
    id=ID,
    title=TITLE,
    points=POINTS,
    order=90,
    needs=NEEDS,
    answers=(),  # what it samples with is other tasks' answers (sample_w, w, the blocks)
    check=check,
    uses_training_cell=True,
    unit=False,
    options_type=GenerationOptions,
    choose_options=choose_options,
    text_details=report.text_details,
    html_details=report.html_details,
    result_fields=report.result_fields,
)
