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


class TracedModel(torch.nn.Module, Recorder):
    """The student's own model, called as usual, noting what it was asked at every step.

    Each call records the step `t` and the images of the rows that keep the context (`x`),
    so that the grader can recompute the model's predictions itself and check that the digits
    drawn follow them. `seed` seeds torch's generator when the stand-in is made, just before the
    call it is made for; `bf16` runs the model under CPU bf16 autocast.
    """

    LIMIT = 400  # 150 steps, and room for samplers that call the model twice a step
    TRACING = True  # SeededModel: False

    def __init__(self, model, bf16=False, seed=None):
        torch.nn.Module.__init__(self)
        Recorder.__init__(self)
        self.inner = getattr(model, "_orig_mod", model)  # a torch.compile wrapper keeps the module here
        self.bf16 = bool(bf16)
        if seed is not None:
            torch.manual_seed(seed)

    def forward(self, x, t, *args, **kwargs):
        if self.TRACING:
            self.record(**_step_record(x, t, args))
        if self.bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.inner(x, t, *args, **kwargs).float()
        return self.inner(x, t, *args, **kwargs)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:  # a sampler may read attributes of the model, such as T
            if name == "inner":
                raise
            return getattr(self.inner, name)


class SeededModel(TracedModel):
    """TracedModel without the records: digits drawn for their count alone (the larger sample)."""

    TRACING = False


def _step_record(x, t, args) -> dict:
    """The step and the kept rows' images of one model call (raw; the grader judges them)."""
    if not isinstance(x, torch.Tensor):
        return {"t": None, "x": None}
    if isinstance(t, torch.Tensor) and t.numel():
        step: float | None = float(t.reshape(-1)[0])
    else:
        step = float(t) if type(t) in (int, float) else None
    rows = x.detach().float().clone()
    mask = args[1] if len(args) > 1 else None
    if isinstance(mask, torch.Tensor) and mask.dim() and mask.shape[0] == rows.shape[0]:
        kept = (mask.reshape(mask.shape[0], -1) != 0).any(dim=1)
        rows = rows[kept.to(rows.device)]
    return {"t": step, "x": rows}


KINDS = {
    "keep_or_drop": KeepOrDrop,
    "affine_model": AffineModel,
    "fixed_q": FixedQ,
    "noise_recorder": NoiseRecorder,
    "tiny_model": TinyModel,
    "traced_model": TracedModel,
    "seeded_model": SeededModel,
}
