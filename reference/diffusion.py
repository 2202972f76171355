"""Forward and reverse diffusion steps and the training loss, with the course's conventions."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from reference.schedule import Schedule


def timestep_indices(t: torch.Tensor, batch: int, T: int) -> torch.Tensor:
    """Validate timesteps for a batch and return them as a long tensor of shape (batch,).

    The course passes t as (N,) floats in training and (N, 1, 1, 1) ints when sampling.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a tensor, got {type(t).__name__}")
    if t.numel() != batch:
        raise ValueError(f"t has {t.numel()} elements but the batch has {batch} images")
    flat = t.reshape(-1)
    if flat.is_floating_point() and not torch.equal(flat, flat.round()):
        raise ValueError("t must hold whole timesteps")
    index = flat.long()
    if batch and (index.min() < 0 or index.max() >= T):
        raise ValueError(f"t must lie in [0, {T - 1}], got values from {int(index.min())} to {int(index.max())}")
    return index


def _per_image(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return values[index].reshape(-1, 1, 1, 1)


def _check_images(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 4-D image batch (N, C, H, W), got {shape}")


def q(
    x_0: torch.Tensor, t: torch.Tensor, schedule: Schedule, noise: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample x_t ~ q(x_t | x_0); returns `(x_t, noise)` with the standard normal noise used."""
    _check_images("x_0", x_0)
    index = timestep_indices(t, x_0.shape[0], schedule.T).to(schedule.device)
    if noise is None:
        noise = torch.randn_like(x_0)
    elif noise.shape != x_0.shape:
        raise ValueError(f"noise shape {tuple(noise.shape)} differs from x_0 {tuple(x_0.shape)}")
    x_t = _per_image(schedule.sqrt_a_bar, index) * x_0 + _per_image(schedule.sqrt_one_minus_a_bar, index) * noise
    return x_t, noise


def reverse_mean(
    x_t: torch.Tensor, t: torch.Tensor, e_t: torch.Tensor, schedule: Schedule
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean of one reverse step: `sqrt_a_inv[t] * (x_t - pred_noise_coeff[t] * e_t)`."""
    _check_images("x_t", x_t)
    if e_t.shape != x_t.shape:
        raise ValueError(f"e_t shape {tuple(e_t.shape)} differs from x_t {tuple(x_t.shape)}")
    index = timestep_indices(t, x_t.shape[0], schedule.T).to(schedule.device)
    return (_per_image(schedule.sqrt_a_inv, index) * (x_t - _per_image(schedule.pred_noise_coeff, index) * e_t)), index


@torch.no_grad()
def reverse_q(
    x_t: torch.Tensor,
    t: torch.Tensor,
    e_t: torch.Tensor,
    schedule: Schedule,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """One reverse step: the mean, plus `sqrt(B[t-1])` noise wherever t > 0 (course convention).

    The course tests only `t[0]`; here each image is treated by its own t, which agrees
    whenever a batch shares one timestep, as in sampling.
    """
    mean, index = reverse_mean(x_t, t, e_t, schedule)
    if noise is None:
        noise = torch.randn_like(x_t)
    elif noise.shape != x_t.shape:
        raise ValueError(f"noise shape {tuple(noise.shape)} differs from x_t {tuple(x_t.shape)}")
    std = torch.sqrt(schedule.B[(index - 1).clamp(min=0)]) * (index > 0)
    return mean + std.reshape(-1, 1, 1, 1) * noise


def get_loss(
    model: Callable[..., torch.Tensor],
    x_0: torch.Tensor,
    t: torch.Tensor,
    *model_args: torch.Tensor,
    schedule: Schedule,
) -> torch.Tensor:
    """The course's loss: MSE between the noise added by `q` and the model's prediction of it."""
    x_noisy, noise = q(x_0, t, schedule)
    noise_pred = model(x_noisy, t, *model_args)
    return F.mse_loss(noise_pred, noise)
