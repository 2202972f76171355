"""Task `q`: forward diffusion, x_t = sqrt(a_bar_t) x_0 + sqrt(1 - a_bar_t) noise (two FIXMEs)."""

from __future__ import annotations

import torch

from grader.core.i18n import N_, _
from tasks._schedule_runs import (
    judge_yours_then_course,
    notebook_T,
    run_key,
    run_twice,
    schedule_data,
    schedules_to_try,
)
from tasks.base import Verdict, approx_equal, pair_of_tensors
from tasks.context import Context
from tasks.declaration import Task

ID = "q"
TITLE = N_("Forward diffusion q(x_0, t)")
POINTS = 2
NEEDS = ("q",)
BATCH = 64


def _returned(value) -> tuple[dict, dict]:
    x_t, noise = pair_of_tensors(value, "q", "x_t, noise")
    return {"returned": "pair"}, {"x_t": x_t, "noise": noise}


def check(context: Context) -> Verdict:
    """x_t must follow the closed form for the noise q returned, and that noise must be N(0, 1).

    q runs on the grader's batch with t spread over [0, T-1] as floats, like training. It is
    judged as the student's schedule leaves it; when that fails, it is judged again as it ran
    with the course's schedule, so a schedule bug is charged to the schedule task only.
    """
    T = notebook_T(context)
    generator = context.generator(ID)
    x_0 = torch.rand(BATCH, 1, 28, 28, generator=generator)
    t = (torch.arange(BATCH) * (T - 1) // (BATCH - 1))[torch.randperm(BATCH, generator=generator)].float()
    runs, data = run_twice(context, "q", (x_0, t), _returned)
    data.update({"x_0": x_0, "t": t, **schedule_data(context)})
    return judge_yours_then_course(ID, runs, data, lambda runs, data, run: _judge_run(runs, data, run, T, context))


def _coefficients(schedule, t):
    index = t.long()
    return (
        schedule["sqrt_a_bar"].double()[index].reshape(-1, 1, 1, 1),
        schedule["sqrt_one_minus_a_bar"].double()[index].reshape(-1, 1, 1, 1),
    )


def _judge_run(runs: dict, data: dict, run: str, T: int, context) -> Verdict:
    """The verdict on one run: `yours` is checked against the course's schedule, then the student's;
    `course` (run with the course's schedule bound) against the course's only."""
    verdict = Verdict(location=context.locate("q"))
    returned = runs[run]["returned"]
    if returned != "pair":
        verdict.check(False, POINTS, returned, _("return both tensors: return x_t, noise"))
        return verdict
    x_0, t = data["x_0"].double(), data["t"].double()
    x_t, noise = data[run_key(run, "x_t")].double(), data[run_key(run, "noise")].double()
    if x_t.shape != x_0.shape or noise.shape != x_0.shape:
        verdict.check(
            False,
            POINTS,
            _("q returned shapes {x_t} and {noise} for x_0 of shape {x_0}").format(
                x_t=tuple(x_t.shape), noise=tuple(noise.shape), x_0=tuple(x_0.shape)
            ),
        )
        return verdict

    schedules = list(schedules_to_try(T, data))
    if run == "course":
        schedules = schedules[:1]
    follows = None
    for source, schedule in schedules:
        keep, mix = _coefficients(schedule, t)
        if approx_equal(x_t, keep * x_0 + mix * noise):
            follows = source
            break
    if follows == "yours":
        verdict.note(_("q is right given your schedule tensors; the schedule task reports what differs"))
    if follows is None:
        keep, mix = _coefficients(schedules[0][1], t)
        if approx_equal(x_t, mix * x_0 + keep * noise):
            failure = _("q swaps its coefficients: x_0 is scaled by sqrt(1 - a_bar_t) and the noise by sqrt(a_bar_t)")
            hint = _("x_t = sqrt_a_bar_t * x_0 + sqrt_one_minus_a_bar_t * noise")
        else:
            failure = _("x_t is not sqrt_a_bar[t] * x_0 + sqrt_one_minus_a_bar[t] * noise for the noise q returned")
            hint = _("index the coefficients with t (as integers) and return the same noise you added")
        verdict.check(False, 1, failure, hint)
    else:
        verdict.check(True, 1, "")

    mean, std = noise.mean().item(), noise.std().item()
    verdict.details.update(noise_mean=round(mean, 4), noise_std=round(std, 4))
    verdict.check(
        abs(mean) < 0.05 and abs(std - 1) < 0.05,
        1,
        _("the noise is not standard normal (mean {mean}, std {std})").format(mean=f"{mean:.2f}", std=f"{std:.2f}"),
        _("draw it with torch.randn_like(x_0)"),
    )
    return verdict


TASK = Task(
    id=ID,
    title=TITLE,
    points=POINTS,
    order=20,
    needs=NEEDS,
    check=check,
)
