"""Stand-ins the grader asks for by name: models and functions that record what they are given.

They hold no answer: each returns values the grader sent, or a fixed function of its input that
the grader knows, and keeps raw records (tensors, numbers) that go back to the grader as they are.
"""

import torch


class Recorder:
    """Base of every stand-in: a list of raw records, capped so a loop can't fill memory."""

    LIMIT = 64

    def __init__(self):
        self.records = []

    def record(self, **values):
        if len(self.records) < self.LIMIT:
            self.records.append(values)


class KeepOrDrop(torch.nn.Module, Recorder):
    """Predicts `keep` for rows whose context mask has any 1, `drop` for the others."""

    def __init__(self, keep, drop):
        torch.nn.Module.__init__(self)
        Recorder.__init__(self)
        self.register_buffer("keep", keep)
        self.register_buffer("drop", drop)

    def forward(self, x, t, c, c_mask):
        kept = (c_mask.reshape(c_mask.shape[0], -1) != 0).any(dim=1).reshape(-1, 1, 1, 1)
        return torch.where(kept, self.keep, self.drop).expand(x.shape[0], *self.keep.shape).clone()


class AffineModel(torch.nn.Module, Recorder):
    """Predicts scale * x + shift and records the input and how many extra arguments came."""

    def __init__(self, scale, shift):
        torch.nn.Module.__init__(self)
        Recorder.__init__(self)
        self.scale = torch.nn.Parameter(torch.tensor(float(scale)))
        self.shift = float(shift)

    def forward(self, x, t, *args):
        self.record(x=x, t=t if isinstance(t, torch.Tensor) else None, extra_args=len(args))
        return self.scale * x + self.shift


class FixedQ(Recorder):
    """A q that returns the grader's (x_noisy, noise) whatever it is given, counting calls."""

    def __init__(self, x_noisy, noise):
        super().__init__()
        self.x_noisy, self.noise = x_noisy, noise

    def __call__(self, x_0, t, *args, **kwargs):
        self.record(called=True)
        return self.x_noisy.clone(), self.noise.clone()


class NoiseRecorder(Recorder):
    """A reverse_q that records the noise estimate it is given and leaves x_t unchanged."""

    LIMIT = 1  # the first step is enough to identify the guidance weights

    def __call__(self, x_t, t, e_t, *args, **kwargs):
        self.record(e_t=e_t.detach().clone() if isinstance(e_t, torch.Tensor) else None)
        return x_t


class TinyModel(torch.nn.Module):
    """A cheap model with the course model's call signature, for running a training cell."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 1)
        self.embed = torch.nn.Linear(10, 1)

    def forward(self, x, t, c, c_mask):
        context = self.embed((c * c_mask).float()).reshape(-1, 1, 1, 1)
        return self.conv(x) + context


KINDS = {"keep_or_drop": KeepOrDrop, "affine_model": AffineModel, "fixed_q": FixedQ,
         "noise_recorder": NoiseRecorder, "tiny_model": TinyModel}
