"""Task `reverse_q`: one reverse step, mean plus sqrt(B[t-1]) noise, bare mean at t = 0 (three FIXMEs)."""

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
    step_output,
)
from tasks.base import Verdict, plain_tensor
from tasks.context import Context
from tasks.declaration import Task

ID = "reverse_q"
TITLE = N_("Reverse diffusion step reverse_q(x_t, t, e_t)")
POINTS = 3
NEEDS = ("reverse_q",)
BATCH = 32
STEPS = (0, 1, 2, 75)  # 1 and 2 tell B[t-1] from B[t] apart; 75 is a typical middle step


def steps_for(T: int) -> tuple[int, ...]:
    """STEPS that exist in a schedule of T steps: each clamped to T - 1, without repeats (T = 2 gives 0, 1)."""
    return tuple(sorted({min(step, T - 1) for step in STEPS}))


def check(context: Context) -> Verdict:
    """The mean must match, t = 0 must return it bare, and elsewhere the noise variance is B[t-1].

    reverse_q runs at a few timesteps with t shaped (N, 1, 1, 1), as sampling does. It is judged
    as the student's schedule leaves it; when that fails, it is judged again as it ran with the
    course's schedule, so a schedule bug is charged to the schedule task only.
    """
    T = notebook_T(context)
    steps = steps_for(T)
    generator = context.generator(ID)
    x_t = torch.randn(BATCH, 1, 28, 28, generator=generator)
    e_t = torch.randn(BATCH, 1, 28, 28, generator=generator)

    runs: dict[str, dict] = {}
    data: dict[str, torch.Tensor] = {}
    for step in steps:  # one call per step, each run with both schedules
        step_runs, outputs = run_twice(
            context,
            "reverse_q",
            (x_t, torch.full((BATCH, 1, 1, 1), step, dtype=torch.long), e_t),
            lambda value, step=step: (
                {"returned": "tensor"},
                {step_output(step): plain_tensor(value, N_("reverse_q returned"), finite=False)},
            ),
        )
        for run, summary in step_runs.items():
            if run not in runs or runs[run].get("returned") == "tensor":
                runs[run] = summary
        data.update(outputs)
    data.update({"x_t": x_t, "e_t": e_t, **schedule_data(context)})
    return judge_yours_then_course(ID, runs, data, lambda runs, data, run: _judge_run(runs, data, run, T, context))


def _describe_variance(variance: float, B: torch.Tensor, step: int) -> str:
    """Name the variance the student used, when it is one of the usual mistakes."""
    candidates = {
        "B[t]": B[step].item(),
        _("B[t-1] squared (the square root is applied twice or the noise is scaled by B, not sqrt(B))"): B[
            step - 1
        ].item()
        ** 2,
        _("sqrt(B[t-1]) (the noise is scaled by B[t-1] ** 0.25)"): B[step - 1].item() ** 0.5,
        _("1 (the noise is added unscaled)"): 1.0,
    }
    for name, value in candidates.items():
        if abs(variance - value) <= 0.05 * value:
            return _("the added noise has variance {variance}").format(variance=name)
    return _("the added noise has variance {variance}").format(variance=f"{variance:.3g}")


def _fit(out: torch.Tensor, x_t: torch.Tensor, e_t: torch.Tensor):
    """Least-squares weights (alpha, beta) of out ~ alpha * x_t + beta * e_t, and the residual."""
    design = torch.stack((x_t.flatten(), e_t.flatten()), dim=1)
    weights = torch.linalg.lstsq(design, out.flatten().unsqueeze(1)).solution.flatten()
    residual = out - weights[0] * x_t - weights[1] * e_t
    return weights[0].item(), weights[1].item(), residual


def _mean_weights(schedule, step):
    inverse = schedule["sqrt_a_inv"].double()[step].item()
    return inverse, -inverse * schedule["pred_noise_coeff"].double()[step].item()


def _weights_match(weights, expected, residual) -> bool:
    """The fitted weights equal `expected`, within a tolerance that grows with the fit's residual noise."""
    tolerance = 1e-3 + 5 * residual.std().item() / residual.numel() ** 0.5
    return all(abs(w - e) <= tolerance * max(1.0, abs(e)) for w, e in zip(weights, expected, strict=True))


def _judge_run(runs: dict, data: dict, run: str, T: int, context) -> Verdict:
    """The verdict on one run: `yours` is checked against the course's schedule, then the student's;
    `course` (run with the course's schedule bound) against the course's only."""
    verdict = Verdict(location=context.locate("reverse_q"))
    returned = runs[run]["returned"]
    if returned != "tensor":
        verdict.check(False, POINTS, returned)
        return verdict
    x_t, e_t = data["x_t"].double(), data["e_t"].double()
    steps = steps_for(T)
    outputs = {step: data[run_key(run, step_output(step))].double() for step in steps}
    if any(out.shape != x_t.shape for out in outputs.values()):
        shape = next(out.shape for out in outputs.values() if out.shape != x_t.shape)
        verdict.check(
            False,
            POINTS,
            _("reverse_q returned shape {shape} for x_t of shape {x_t}").format(
                shape=tuple(shape), x_t=tuple(x_t.shape)
            ),
        )
        return verdict
    broken = [step for step, out in outputs.items() if not torch.isfinite(out).all()]
    if broken:
        verdict.check(False, POINTS, _("reverse_q returns NaN or infinite values at t = {t}").format(t=broken[0]))
        return verdict
    fits = {step: _fit(out, x_t, e_t) for step, out in outputs.items()}

    # The mean part: the weights on x_t and e_t, under the reference or else the student's schedule.
    schedules = list(schedules_to_try(T, data))
    if run == "course":
        schedules = schedules[:1]
    chosen = None
    for source, schedule in schedules:
        if all(_weights_match(fit[:2], _mean_weights(schedule, step), fit[2]) for step, fit in fits.items()):
            chosen = schedule
            if source == "yours":
                verdict.note(
                    _("reverse_q is right given your schedule tensors; the schedule task reports what differs")
                )
            break
    if chosen is None:
        middle = steps[-1]
        alpha, beta = _mean_weights(schedules[0][1], middle)
        if _weights_match(fits[middle][:2], (beta, alpha), fits[middle][2]):
            failure, hint = (
                _("reverse_q swaps x_t and e_t: it computes sqrt_a_inv * (e_t - pred_noise_coeff * x_t)"),
                _("u_t = sqrt_a_inv[t] * (x_t - pred_noise_coeff[t] * e_t)"),
            )
        else:
            failure, hint = (
                _("the mean of reverse_q is not sqrt_a_inv[t] * (x_t - pred_noise_coeff[t] * e_t)"),
                _("index sqrt_a_inv and pred_noise_coeff with t"),
            )
        verdict.check(False, POINTS, failure, hint)
        return verdict
    verdict.check(True, 1, "")

    at_zero = fits[0][2]
    verdict.check(
        at_zero.abs().max().item() < 1e-4,
        1,
        _("at t = 0 reverse_q adds noise (std {std}) instead of returning the mean").format(
            std=f"{at_zero.std().item():.3g}"
        ),
        _("if t[0] == 0: return u_t"),
    )

    B = chosen["B"].double()
    wrong = []
    for step in steps[1:]:
        variance, expected = fits[step][2].var().item(), B[step - 1].item()
        verdict.details[f"noise_variance_t{step}"] = variance
        if not 0.9 * expected < variance < 1.1 * expected:
            wrong.append((step, variance))
    if wrong:
        step, variance = wrong[0]
        verdict.check(
            False,
            1,
            _("at t = {t}, {finding}; expected B[t-1] = {expected}").format(
                t=step, finding=_describe_variance(variance, B, step), expected=f"{B[step - 1].item():.3g}"
            ),
            _("add torch.sqrt(B[t - 1]) * torch.randn_like(x_t) when t > 0"),
        )
    else:
        verdict.check(True, 1, "")
    return verdict


TASK = Task(
    id=ID,
    title=TITLE,
    points=POINTS,
    order=30,
    needs=NEEDS,
    check=check,
)
