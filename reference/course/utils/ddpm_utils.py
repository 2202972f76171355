"""Stand-in for the course's `utils.ddpm_utils`: a DDPM object over any beta schedule, and `sample_w`.

The maths is `reference.diffusion`'s; this module only adapts it to the course's call signatures.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from reference import diffusion
from reference.conditioning import guided_noise
from reference.schedule import TENSOR_NAMES, schedule_from_betas

from . import other_utils

DEFAULT_W_TESTS = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)


class DDPM:
    """The course's DDPM helper: schedule tensors as attributes, and q / reverse_q / get_loss."""

    def __init__(self, B, device):
        self.device = torch.device(device)
        self.schedule = schedule_from_betas(B, self.device)
        self.T = self.schedule.T
        # The course's object exposes each schedule tensor by name (ddpm.a_bar, ...).
        for name in TENSOR_NAMES:
            setattr(self, name, getattr(self.schedule, name))

    def q(self, x_0, t):
        """Forward diffusion: returns `(x_t, noise)`."""
        return diffusion.q(x_0, t, self.schedule)

    def get_loss(self, model, x_0, t, *model_args):
        """MSE between the added noise and `model(x_t, t, *model_args)`."""
        return diffusion.get_loss(model, x_0, t, *model_args, schedule=self.schedule)

    @torch.no_grad()
    def reverse_q(self, x_t, t, e_t):
        """One reverse step with the course's `B[t-1]` variance."""
        return diffusion.reverse_q(x_t, t, e_t, self.schedule)

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
