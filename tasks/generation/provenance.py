"""Do the official digits come from the student's model? The draw's provenance.

The official 50 are drawn through the student's sample_w (`stages.draw`) with their model
wrapped in a recorder (`traced_model` in grader/sandbox/executor/stubs.py) that notes, at every call, the step and
the images the model was asked about. The grader then recomputes the model's guided prediction
itself, from the weights it loaded into the model, and checks three things a sampler that
ignores its model cannot meet:
- the model was asked about every step T-1 .. 0 of every digit's draw;
- the digits returned are the mean of the last step (t = 0 adds no noise) for the grader's
  prediction at the images recorded there;
- at steps the grader picks after the draw, each step moved its images along the model's
  prediction: the step's drift, projected on the mean's correction term, is about one
  correction (a sampler that ignores the model projects to about zero).
The records come from the child, so they are never believed, only checked against weights the
grader holds. What remains (a sampler that follows its model but chooses its noise to steer)
is in docs/security.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# `_` is a throwaway name here: the gettext function is i18n._
from grader.core import i18n
from tasks.base import derive_seed
from tasks.generation.official import ID

CHECKED_STEPS = 6  # picked at random per digit after the draw, beside the last step
FINAL_TOLERANCE = 0.05  # largest pixel gap (images clamped to [0, 1]) between the digits and the last mean
FOLLOW_RANGE = (0.7, 1.3)  # the drift along the model's correction, in corrections (1 when it is followed)


def _steps(trace: list, per_digit: int) -> dict[int, torch.Tensor]:
    """The images the model was first asked about at each step, where they are a plain batch.

    The recorder keeps the rows whose context mask is on; where it could not tell (the mask
    passed by keyword, or the context dropped by zeroing `c`), the batch is whole, doubled as
    the course doubles it, and its first rows are the images."""
    steps = {}
    for record in trace:
        if not isinstance(record, dict):
            continue
        t, x = record.get("t"), record.get("x")
        if type(t) is not float or not t.is_integer() or type(x) is not torch.Tensor:
            continue
        if (
            tuple(x.shape[1:]) == (1, 28, 28)
            and x.shape[0] in (per_digit, 2 * per_digit)
            and torch.isfinite(x).all()
            and int(t) not in steps
        ):
            steps[int(t)] = x[:per_digit].float()
    return steps


def follows_model(images: torch.Tensor, traces: list, model, w: float, seed: int, T: int = 150) -> dict:
    """Findings on the official draw: calls per digit, the last step's gap, the drift along the
    model's correction, and `problem` (a sentence, or None when the digits follow the model).

    `model(x, t, c, c_mask)` is the grader's own copy of the weights; `w` the course's guidance
    weight the student's sample_w applies; `T` the notebook's number of steps."""
    from reference.conditioning import guided_noise
    from reference.diffusion import reverse_mean
    from reference.schedule import make_schedule

    schedule = make_schedule(T)
    per_digit = images.shape[0] // 10
    found = {"calls": [len(trace) for trace in traces], "checked_steps": CHECKED_STEPS, "problem": None}
    along, squared, final_gap = 0.0, 0.0, 0.0
    for digit, trace in enumerate(traces):
        steps = _steps(trace, per_digit)
        if not steps:
            found["problem"] = i18n._(
                "sample_w never asked the model it was given about the images it drew for "
                "digit {digit}: the digits do not come from the model"
            ).format(digit=digit)
            return found
        if set(steps) != set(range(T)):
            found["problem"] = i18n._(
                "sample_w asked the model about {count} of the {T} steps while drawing digit "
                "{digit}: the digits must be denoised by the model at every step"
            ).format(count=len(steps), T=T, digit=digit)
            return found
        generator = torch.Generator().manual_seed(derive_seed(seed, ID, "provenance", str(digit)))
        picked = (torch.randperm(T - 1, generator=generator)[:CHECKED_STEPS] + 1).tolist()
        at = [0, *picked]
        x = torch.cat([steps[t] for t in at])
        t = torch.tensor(at).repeat_interleave(per_digit).reshape(-1, 1, 1, 1)
        e_t = _guided(model, x, t, digit, w, guided_noise)
        mean, _ = reverse_mean(x, t, e_t, schedule)
        drawn = images[digit * per_digit : (digit + 1) * per_digit]
        gap = (torch.nan_to_num(drawn).clamp(0, 1) - mean[:per_digit].clamp(0, 1)).abs().max().item()
        final_gap = max(final_gap, gap)
        for index, step in enumerate(picked, start=1):
            rows = slice(index * per_digit, (index + 1) * per_digit)
            correction = schedule.sqrt_a_inv[step] * schedule.pred_noise_coeff[step] * e_t[rows]
            drift = schedule.sqrt_a_inv[step] * steps[step] - steps[step - 1]
            along += float((drift * correction).sum())
            squared += float((correction * correction).sum())
    ratio = along / squared if squared else 0.0
    found.update(final_gap=round(final_gap, 4), drift_along_model=round(ratio, 3))
    low, high = FOLLOW_RANGE
    if final_gap > FINAL_TOLERANCE:
        found["problem"] = i18n._(
            "the digits sample_w returned are not the last denoising step of the images it gave "
            "the model (they differ by up to {gap}): they do not come from the model"
        ).format(gap=f"{final_gap:.2f}")
    elif not low <= ratio <= high:
        found["problem"] = i18n._(
            "the steps sample_w took do not follow the model's noise predictions (they move "
            "{ratio} of the way the model says, 1 expected): the digits do not come from the "
            "model"
        ).format(ratio=f"{ratio:.2f}")
    return found


def _guided(model, x: torch.Tensor, t: torch.Tensor, digit: int, w: float, guided_noise) -> torch.Tensor:
    """The model's guided noise prediction for images of `digit`, as the course's sample_w mixes it."""
    c = F.one_hot(torch.full((x.shape[0],), digit), 10).float()
    with torch.no_grad():
        both = model(
            x.repeat(2, 1, 1, 1),
            t.repeat(2, 1, 1, 1),
            c.repeat(2, 1),
            torch.cat((torch.ones_like(c), torch.zeros_like(c))),
        )
    n = x.shape[0]
    return guided_noise(both[:n].float(), both[n:].float(), w)
