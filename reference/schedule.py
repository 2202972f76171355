"""The DDPM noise schedule the course uses: linear betas and the quantities derived from them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reference.constants import BETA_END, BETA_START, T as COURSE_T


@dataclass(frozen=True)
class Schedule:
    """All schedule tensors, each of shape (T,), on one device."""

    B: torch.Tensor
    a: torch.Tensor
    a_bar: torch.Tensor
    sqrt_a_bar: torch.Tensor
    sqrt_one_minus_a_bar: torch.Tensor
    sqrt_a_inv: torch.Tensor
    pred_noise_coeff: torch.Tensor

    @property
    def T(self) -> int:
        """Number of diffusion steps."""
        return int(self.B.shape[0])

    @property
    def device(self) -> torch.device:
        """Device the tensors live on."""
        return self.B.device

    def to(self, device: str | torch.device) -> Schedule:
        """A copy of the schedule on `device`."""
        return Schedule(**{name: getattr(self, name).to(device) for name in TENSOR_NAMES})

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The tensors by their course names."""
        return {name: getattr(self, name) for name in TENSOR_NAMES}


TENSOR_NAMES = (
    "B",
    "a",
    "a_bar",
    "sqrt_a_bar",
    "sqrt_one_minus_a_bar",
    "sqrt_a_inv",
    "pred_noise_coeff",
)


def schedule_from_betas(B: torch.Tensor, device: str | torch.device | None = None) -> Schedule:
    """The schedule for any 1-D tensor of betas, each strictly between 0 and 1."""
    B = torch.as_tensor(B, device=device)
    if not B.is_floating_point():
        B = B.float()
    if B.dim() != 1 or B.numel() < 2:
        raise ValueError(f"B must be a 1-D tensor of at least two betas, got shape {tuple(B.shape)}")
    if not ((B > 0) & (B < 1)).all():
        raise ValueError("every beta must lie strictly between 0 and 1")
    a = 1.0 - B
    a_bar = torch.cumprod(a, dim=0)
    return Schedule(
        B=B,
        a=a,
        a_bar=a_bar,
        sqrt_a_bar=torch.sqrt(a_bar),
        sqrt_one_minus_a_bar=torch.sqrt(1.0 - a_bar),
        sqrt_a_inv=torch.sqrt(1.0 / a),
        pred_noise_coeff=(1.0 - a) / torch.sqrt(1.0 - a_bar),
    )


def make_schedule(
    T: int = COURSE_T,
    beta_start: float = BETA_START,
    beta_end: float = BETA_END,
    device: str | torch.device = "cpu",
) -> Schedule:
    """Build the course's schedule: `B = linspace(beta_start, beta_end, T)` and its derivatives."""
    if not isinstance(T, int) or isinstance(T, bool) or T < 2:
        raise ValueError(f"T must be an integer >= 2, got {T!r}")
    if not 0.0 < beta_start <= beta_end < 1.0:
        raise ValueError(f"betas must satisfy 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
    return schedule_from_betas(torch.linspace(beta_start, beta_end, T, device=device))
