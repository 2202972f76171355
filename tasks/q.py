"""Task `q`: forward diffusion, x_t = sqrt(a_bar_t) x_0 + sqrt(1 - a_bar_t) noise (two FIXMEs)."""

from __future__ import annotations

import torch

from tasks._schedule_ref import (course_schedule, describe_failure, judge_yours_then_course, notebook_T,
                                 notebook_device, schedules_to_try, student_schedule)
from tasks.base import Evidence, Verdict, close, require, save

ID = "q"
TITLE = "Forward diffusion q(x_0, t)"
POINTS = 2
NEEDS = ("q",)
BATCH = 64


def _call(q, x_0: torch.Tensor, t: torch.Tensor) -> tuple[dict, dict]:
    """One call of the student's q: what it returned, and its tensors when it is a pair."""
    result = q(x_0.clone(), t.clone())
    if not (isinstance(result, (tuple, list)) and len(result) == 2
            and all(isinstance(part, torch.Tensor) for part in result)):
        return {"returned": type(result).__name__}, {}
    return {"returned": "pair"}, {"x_t": result[0], "noise": result[1]}


def probe(namespace: dict, out_dir: str) -> dict:
    """Call the student's q on a fixed batch with t spread over [0, T-1], as floats like training.

    It runs twice: with the student's schedule tensors as they are, then with the course's bound
    in their place, so that q itself can be judged even when the schedule is broken.
    """
    q = require(namespace, "q")
    T, device = notebook_T(namespace), notebook_device(namespace)
    x_0 = torch.rand(BATCH, 1, 28, 28, device=device)
    t = (torch.arange(BATCH) * (T - 1) // (BATCH - 1)).float().to(device)
    tensors = {"x_0": x_0, "t": t}
    tensors.update({f"schedule.{k}": v for k, v in student_schedule(namespace).items()})
    runs = {}
    try:
        runs["yours"], outputs = _call(q, x_0, t)
    except Exception as error:  # judged with the course's schedule below; re-raised if that fails too
        runs["yours"], outputs = {"raised": describe_failure(error)}, {}
    tensors.update({f"yours.{k}": v for k, v in outputs.items()})
    with course_schedule(namespace, T, device):
        try:
            runs["course"], outputs = _call(q, x_0, t)
        except Exception:
            if "raised" in runs["yours"]:
                raise
            runs["course"], outputs = {"raised": "raised"}, {}
    tensors.update({f"course.{k}": v for k, v in outputs.items()})
    save(out_dir, ID, tensors)
    return {"runs": runs, "T": T}


def _coefficients(schedule, t):
    index = t.long()
    return (schedule["sqrt_a_bar"].double()[index].reshape(-1, 1, 1, 1),
            schedule["sqrt_one_minus_a_bar"].double()[index].reshape(-1, 1, 1, 1))


def _judge_run(evidence: Evidence, data: dict, run: str) -> Verdict:
    """The verdict on one run: `yours` is checked against the course's schedule, then the student's;
    `course` (run with the course's schedule bound) against the course's only."""
    verdict = Verdict(POINTS, location=evidence.locate("q"))
    returned = evidence.value["runs"][run]["returned"]
    if returned != "pair":
        verdict.check(False, POINTS, f"q returned a {returned}, expected (x_t, noise)",
                      "return both tensors: return x_t, noise")
        return verdict
    x_0, t = data["x_0"].double(), data["t"].double()
    x_t, noise = data[f"{run}.x_t"].double(), data[f"{run}.noise"].double()
    if x_t.shape != x_0.shape or noise.shape != x_0.shape:
        verdict.check(False, POINTS, f"q returned shapes {tuple(x_t.shape)} and {tuple(noise.shape)} "
                      f"for x_0 of shape {tuple(x_0.shape)}")
        return verdict

    schedules = list(schedules_to_try(evidence.value["T"], data))
    if run == "course":
        schedules = schedules[:1]
    follows = None
    for source, schedule in schedules:
        keep, mix = _coefficients(schedule, t)
        if close(x_t, keep * x_0 + mix * noise):
            follows = source
            break
    if follows == "yours":
        verdict.note("q is right given your schedule tensors; the schedule task reports what differs")
    if follows is None:
        keep, mix = _coefficients(schedules[0][1], t)
        if close(x_t, mix * x_0 + keep * noise):
            failure = "q swaps its coefficients: x_0 is scaled by sqrt(1 - a_bar_t) and the noise by sqrt(a_bar_t)"
            hint = "x_t = sqrt_a_bar_t * x_0 + sqrt_one_minus_a_bar_t * noise"
        else:
            failure = ("x_t is not sqrt_a_bar[t] * x_0 + sqrt_one_minus_a_bar[t] * noise "
                       "for the noise q returned")
            hint = "index the coefficients with t (as integers) and return the same noise you added"
        verdict.check(False, 1, failure, hint)
    else:
        verdict.check(True, 1, "")

    mean, std = noise.mean().item(), noise.std().item()
    verdict.details.update(noise_mean=round(mean, 4), noise_std=round(std, 4))
    verdict.check(abs(mean) < 0.05 and abs(std - 1) < 0.05, 1,
                  f"the noise is not standard normal (mean {mean:.2f}, std {std:.2f})",
                  "draw it with torch.randn_like(x_0)")
    return verdict


def judge(evidence: Evidence) -> Verdict:
    """x_t must follow the closed form for the noise q returned, and that noise must be N(0, 1).

    q is judged as the student's schedule leaves it; when that fails, it is judged again as it
    ran with the course's schedule, so a schedule bug is charged to the schedule task only.
    """
    return judge_yours_then_course(evidence, ID, _judge_run)
