"""The guided sampler: the course's `sample_w`, with the schedule and randomness made explicit."""

from __future__ import annotations

from collections.abc import Callable

import torch

from reference import constants
from reference.conditioning import guided_noise
from reference.diffusion import reverse_q
from reference.schedule import Schedule


@torch.no_grad()
def sample_w(
    model: Callable[..., torch.Tensor],
    c_hot: torch.Tensor,
    w: float,
    schedule: Schedule,
    progress: Callable[[int], object] | None = None,
) -> torch.Tensor:
    """Draw one image per row of `c_hot` with classifier-free guidance weight `w`.

    The batch is doubled: the first half keeps the context, the second drops it, and the two
    noise predictions are mixed with `guided_noise`. `progress(step)` is called once per step.
    """
    if c_hot.dim() != 2:
        raise ValueError(f"c_hot must be (N, n_classes), got shape {tuple(c_hot.shape)}")
    device = schedule.device
    n = c_hot.shape[0]
    c = c_hot.to(device).float().repeat(2, 1)
    c_mask = torch.ones_like(c)
    c_mask[n:] = 0.0
    x_t = torch.randn(n, constants.IMG_CH, constants.IMG_SIZE, constants.IMG_SIZE, device=device)
    for i in reversed(range(schedule.T)):
        t = torch.full((n, 1, 1, 1), i, device=device)
        e_t = model(x_t.repeat(2, 1, 1, 1), t.repeat(2, 1, 1, 1), c, c_mask)
        e_t = guided_noise(e_t[:n], e_t[n:], w)
        x_t = reverse_q(x_t, t, e_t, schedule)
        if progress is not None:
            progress(schedule.T - i)
    return x_t
