"""Task `q`: forward diffusion, x_t = sqrt(a_bar_t) x_0 + sqrt(1 - a_bar_t) noise (two FIXMEs)."""

from __future__ import annotations

import torch

from tasks._schedule_ref import notebook_T, notebook_device, schedules_to_try, student_schedule
from tasks.base import Evidence, Verdict, close, require, save

ID = "q"
TITLE = "Forward diffusion q(x_0, t)"
POINTS = 2
NEEDS = ("q",)
BATCH = 64


def probe(namespace: dict, out_dir: str) -> dict:
    """Call the student's q on a fixed batch with t spread over [0, T-1], as floats like training."""
    q = require(namespace, "q")
    T, device = notebook_T(namespace), notebook_device(namespace)
    x_0 = torch.rand(BATCH, 1, 28, 28, device=device)
    t = (torch.arange(BATCH) * (T - 1) // (BATCH - 1)).float().to(device)
    result = q(x_0, t)
    if not (isinstance(result, (tuple, list)) and len(result) == 2
            and all(isinstance(part, torch.Tensor) for part in result)):
        return {"returned": type(result).__name__, "T": T}
    x_t, noise = result
    tensors = {"x_0": x_0, "t": t, "x_t": x_t, "noise": noise}
    tensors.update({f"schedule.{k}": v for k, v in student_schedule(namespace).items()})
    save(out_dir, ID, tensors)
    return {"returned": "pair", "T": T}


def _coefficients(schedule, t):
    index = t.long()
    return (schedule["sqrt_a_bar"].double()[index].reshape(-1, 1, 1, 1),
            schedule["sqrt_one_minus_a_bar"].double()[index].reshape(-1, 1, 1, 1))


def judge(evidence: Evidence) -> Verdict:
    """x_t must follow the closed form for the noise q returned, and that noise must be N(0, 1)."""
    verdict = Verdict(POINTS, location=evidence.locate("q"))
    if evidence.value["returned"] != "pair":
        verdict.check(False, POINTS, f"q returned a {evidence.value['returned']}, expected (x_t, noise)",
                      "return both tensors: return x_t, noise")
        return verdict
    data = evidence.tensors(ID)
    x_0, t, x_t, noise = (data[k].double() for k in ("x_0", "t", "x_t", "noise"))
    if x_t.shape != x_0.shape or noise.shape != x_0.shape:
        verdict.check(False, POINTS, f"q returned shapes {tuple(x_t.shape)} and {tuple(noise.shape)} "
                      f"for x_0 of shape {tuple(x_0.shape)}")
        return verdict

    follows = None
    for source, schedule in schedules_to_try(evidence.value["T"], data):
        keep, mix = _coefficients(schedule, t)
        if close(x_t, keep * x_0 + mix * noise):
            follows = source
            break
    if follows == "yours":
        verdict.note("q is right given your schedule tensors; the schedule task reports what differs")
    if follows is None:
        keep, mix = _coefficients(next(schedules_to_try(evidence.value["T"], data))[1], t)
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
