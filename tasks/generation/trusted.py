"""What the grader computes itself from weights: its own samples, and held-out predictions.

The trusted path samples the weights the student's model used (reference or trained) with
the reference sampler and the grader's noise, at the student's effective guidance weight.
The held-out batch (test images noised by the reference q, from the grade's seed) and the
reference pipeline's loss on it are the yardstick of the short training check.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from reference import narrow
from reference.unet import UNet
from tasks.base import derive_seed
from tasks.generation.official import ID


def trusted_samples(state: dict, w: float, per_digit: int, seed: int, progress=None, T: int = 150) -> torch.Tensor:
    """Digits drawn in the grader from the given weights with the reference sampler and its own noise,
    over the notebook's T steps (the student's model was built, and on `train` trained, with that T)."""
    from reference.sampling import sample_w
    from reference.schedule import make_schedule

    model = trusted_model(state, T)
    torch.manual_seed(seed)
    schedule = make_schedule(T)
    c_hot = F.one_hot(torch.arange(10).repeat_interleave(per_digit), 10).float()
    report = (lambda step: progress("trusted sample", step, schedule.T)) if progress else None
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=narrow.bf16_here()):
        return sample_w(model, c_hot, w, schedule, progress=report).float()


def trusted_model(state: dict, T: int = 150) -> UNet:
    """The reference U-Net holding the given weights, in eval mode, in the grader (T scales its time input)."""
    model = UNet(T, 1, 28, _widths(state)).eval()
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model


def bf16_model(model):
    """`model` called under CPU bf16 autocast where this CPU runs it fast, as the child's sampling does."""

    def call(*args):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=narrow.bf16_here()):
            return model(*args).float()

    return call


def _widths(state: dict) -> tuple:
    """down_chs of a U-Net state_dict, read off its down blocks' first convolutions."""
    return (
        int(state["down0.conv1.model.0.weight"].shape[0]),
        int(state["down1.model.0.model.0.weight"].shape[0]),
        int(state["down2.model.0.model.0.weight"].shape[0]),
    )


HELDOUT_SIZE = 256


@lru_cache(maxsize=4)  # the child's run, the classifier and the reference loss all ask for the same batch
def heldout_batch(seed: int, T: int = 150) -> dict[str, torch.Tensor]:
    """Test images noised by the reference q, chosen and noised from the grade's own seed (read only)."""
    from reference import mnist
    from reference.diffusion import q
    from reference.schedule import make_schedule

    images, labels = mnist.load("test")
    generator = torch.Generator().manual_seed(derive_seed(seed, ID, "heldout"))
    index = torch.randperm(images.shape[0], generator=generator)[:HELDOUT_SIZE]
    t = torch.randint(0, T, (HELDOUT_SIZE,), generator=generator).float()
    noise = torch.randn(HELDOUT_SIZE, 1, 28, 28, generator=generator)
    x_t, _ = q(images[index], t, make_schedule(T), noise=noise)
    return {"x_t": x_t, "t": t, "noise": noise, "c_hot": F.one_hot(labels[index], 10).float()}


def reference_heldout_loss(steps: int, seed: int) -> float:
    """Held-out loss of the reference pipeline on this grade's held-out batch."""
    batch = heldout_batch(seed)
    model = narrow.reference_model(steps)
    with torch.no_grad():
        prediction = model(batch["x_t"], batch["t"], batch["c_hot"], torch.ones_like(batch["c_hot"]))
    return F.mse_loss(prediction, batch["noise"]).item()
