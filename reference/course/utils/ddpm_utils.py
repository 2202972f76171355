"""Stand-in for the course's `utils.ddpm_utils`: a DDPM object over any beta schedule, and `sample_w`.

Self-contained: student code imports this module in a child process that cannot see the
grader's packages, so nothing here imports `grader`, `tasks` or `reference`. Conventions are
the course's: reverse variance `B[t-1]`, guidance `(1 + w) * keep - w * drop`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from . import other_utils

DEFAULT_W_TESTS = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)
TENSOR_NAMES = (
    "B", "a", "a_bar", "sqrt_a_bar", "sqrt_one_minus_a_bar", "sqrt_a_inv", "pred_noise_coeff",
)


class Schedule:
    """The schedule tensors, each of shape (T,), as attributes named as in the course."""

    def __init__(self, **tensors):
        self.__dict__.update(tensors)

    @property
    def T(self):
        return int(self.B.shape[0])

    @property
    def device(self):
        return self.B.device

    def to(self, device):
        return Schedule(**{name: getattr(self, name).to(device) for name in TENSOR_NAMES})

    def as_dict(self):
        return {name: getattr(self, name) for name in TENSOR_NAMES}


def schedule_from_betas(B, device=None):
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
        B=B, a=a, a_bar=a_bar, sqrt_a_bar=torch.sqrt(a_bar), sqrt_one_minus_a_bar=torch.sqrt(1.0 - a_bar),
        sqrt_a_inv=torch.sqrt(1.0 / a), pred_noise_coeff=(1.0 - a) / torch.sqrt(1.0 - a_bar),
    )


def guided_noise(e_t_keep_c, e_t_drop_c, w):
    """Classifier-free guidance as the course writes it: `(1 + w) * keep - w * drop`."""
    return (1 + w) * e_t_keep_c - w * e_t_drop_c


def _check_images(name, x):
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 4-D image batch (N, C, H, W), got {shape}")


def _noise_like(x, noise):
    if noise is None:
        return torch.randn_like(x)
    if noise.shape != x.shape:
        raise ValueError(f"noise shape {tuple(noise.shape)} differs from the images' {tuple(x.shape)}")
    return noise


class DDPM:
    """The course's DDPM helper: schedule tensors as attributes, and q / reverse_q / get_loss."""

    def __init__(self, B, device):
        self.device = torch.device(device)
        self.schedule = schedule_from_betas(B, self.device)
        self.T = self.schedule.T
        # The course's object exposes each schedule tensor by name (ddpm.a_bar, ...).
        for name in TENSOR_NAMES:
            setattr(self, name, getattr(self.schedule, name))

    def _index(self, t, batch):
        """Timesteps as a long tensor of shape (batch,): (N,) floats or (N, 1, 1, 1) ints."""
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"t must be a tensor, got {type(t).__name__}")
        if t.numel() != batch:
            raise ValueError(f"t has {t.numel()} elements but the batch has {batch} images")
        flat = t.reshape(-1)
        if flat.is_floating_point() and not torch.equal(flat, flat.round()):
            raise ValueError("t must hold whole timesteps")
        index = flat.long()
        if batch and (index.min() < 0 or index.max() >= self.T):
            raise ValueError(
                f"t must lie in [0, {self.T - 1}], got values from {int(index.min())} to {int(index.max())}"
            )
        return index.to(self.device)

    def _at(self, values, index):
        return values[index].reshape(-1, 1, 1, 1)

    def q(self, x_0, t, noise=None):
        """Forward diffusion: returns `(x_t, noise)`, drawing the noise unless it is given."""
        _check_images("x_0", x_0)
        index = self._index(t, x_0.shape[0])
        noise = _noise_like(x_0, noise)
        x_t = self._at(self.sqrt_a_bar, index) * x_0 + self._at(self.sqrt_one_minus_a_bar, index) * noise
        return x_t, noise

    def get_loss(self, model, x_0, t, *model_args):
        """MSE between the added noise and `model(x_t, t, *model_args)`."""
        x_noisy, noise = self.q(x_0, t)
        return F.mse_loss(model(x_noisy, t, *model_args), noise)

    @torch.no_grad()
    def reverse_q(self, x_t, t, e_t, noise=None):
        """One reverse step with the course's `B[t-1]` variance; no noise where t == 0.

        The course tests only `t[0]`; here each image goes by its own t, which agrees
        whenever a batch shares one timestep, as in sampling.
        """
        _check_images("x_t", x_t)
        if e_t.shape != x_t.shape:
            raise ValueError(f"e_t shape {tuple(e_t.shape)} differs from x_t {tuple(x_t.shape)}")
        index = self._index(t, x_t.shape[0])
        mean = self._at(self.sqrt_a_inv, index) * (x_t - self._at(self.pred_noise_coeff, index) * e_t)
        noise = _noise_like(x_t, noise)
        std = torch.sqrt(self.B[(index - 1).clamp(min=0)]) * (index > 0)
        return mean + std.reshape(-1, 1, 1, 1) * noise

    @torch.no_grad()
    def sample_images(self, model, img_ch, img_size, ncols, *model_args, axis_on=False):
        """Denoise one image from pure noise, drawing about `ncols` stages in a row; returns it."""
        x_t = torch.randn((1, img_ch, img_size, img_size), device=self.device)
        plt.figure(figsize=(8, 8))
        show_every = max(self.T // ncols, 1)
        panel = 1
        for i in reversed(range(self.T)):
            t = torch.full((1,), i, device=self.device)
            x_t = self.reverse_q(x_t, t, model(x_t, t, *model_args))
            if i % show_every == 0 and panel <= ncols + 1:
                axes = plt.subplot(1, ncols + 1, panel)
                if not axis_on:
                    axes.axis("off")
                other_utils.show_tensor_image(x_t.cpu())
                panel += 1
        return x_t


@torch.no_grad()
def sample_w(model, ddpm, input_size, T, c, device, w_tests=None, store_freq=10):
    """Sample every row of `c` once per guidance weight; returns `(x_0, x_t_store)`.

    Row `k * len(c) + j` of `x_0` is class row `j` drawn with weight `w_tests[k]`; `x_t_store`
    stacks the batch every `store_freq` steps and at each of the last ten steps.
    """
    w_tests = list(DEFAULT_W_TESTS if w_tests is None else w_tests)
    device = torch.device(device)
    c = torch.as_tensor(c, device=device).float()
    n = len(w_tests) * c.shape[0]
    w = torch.tensor(w_tests, device=device).repeat_interleave(c.shape[0]).reshape(-1, 1, 1, 1)
    c = c.repeat(len(w_tests), 1).repeat(2, 1)  # one copy of c per w, then kept and dropped
    c_mask = torch.ones_like(c)
    c_mask[n:] = 0.0
    x_t = torch.randn(n, *input_size, device=device)
    store = []
    for i in reversed(range(T)):
        t = torch.full((n, 1, 1, 1), i, device=device)
        e_t = model(x_t.repeat(2, 1, 1, 1), t.repeat(2, 1, 1, 1), c, c_mask)
        x_t = ddpm.reverse_q(x_t, t, guided_noise(e_t[:n], e_t[n:], w))
        if i % store_freq == 0 or i < 10:
            store.append(x_t)
    return x_t, torch.stack(store)

