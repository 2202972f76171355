"""The reference pipeline's short narrow training, the yardstick for a student's training pipeline.

On the transplant profile the generation task trains a narrow copy of the student's model for a
few dozen steps through the student's own training cell, and compares its held-out loss with the
reference pipeline's after the same training. Both start from the same weights (`start_state`).
The reference side is the same every grade, so the package ships it for the default step count
(`python -m reference.narrow` remakes the file) and trains it only for other step counts.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache

import click
import torch

from reference import mnist
from reference.schedule import make_schedule
from reference.training import train
from reference.unet import course_unet
from reference.weights import read_state_dict, save_state_dict, weights_path

WIDTHS = (32, 32, 64)  # the course's 32 GroupNorm groups need at least 32 channels everywhere
SEED = 0  # no secret: the start only has to be the same for both pipelines
SHIPPED_STEPS = 40
SHIPPED_FILE = "unet_narrow_40steps_fp16.pt"


def bf16_here() -> bool:
    """Whether this CPU runs bfloat16 fast (AMX or AVX512-BF16), as torch's oneDNN reports it."""
    return bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())


def start_state() -> dict[str, torch.Tensor]:
    """The narrow model's initial weights, the same in every process."""
    torch.manual_seed(SEED)
    return course_unet(WIDTHS).state_dict()


def train_reference(steps: int) -> torch.nn.Module:
    """The reference pipeline after `steps` narrow training steps from `start_state`."""
    model = course_unet(WIDTHS)
    model.load_state_dict(start_state())
    images, labels = mnist.load("all")
    train(
        model,
        images,
        labels,
        make_schedule(),
        steps=steps,
        seed=SEED,
        autocast_dtype=torch.bfloat16 if bf16_here() else None,
    )
    return model.eval()


@lru_cache(maxsize=2)
def reference_model(steps: int) -> torch.nn.Module:
    """The shipped model for SHIPPED_STEPS, else one trained here (once per process)."""
    if steps != SHIPPED_STEPS:
        return train_reference(steps)
    model = course_unet(WIDTHS)
    model.load_state_dict({k: v.float() for k, v in read_state_dict(weights_path(SHIPPED_FILE)).items()})
    return model.eval()


@click.command(help="Train the reference narrow model the package ships (a few seconds on a CPU).")
@click.option("--out", default=str(weights_path(SHIPPED_FILE)), show_default=f"reference/data/{SHIPPED_FILE}")
def main(out: str) -> None:
    started = time.time()
    model = train_reference(SHIPPED_STEPS)
    save_state_dict(model, out, dtype=torch.float16)
    print(
        json.dumps(
            {
                "steps": SHIPPED_STEPS,
                "widths": WIDTHS,
                "seed": SEED,
                "bf16": bf16_here(),
                "seconds": round(time.time() - started, 1),
                "torch": torch.__version__,
                "out": out,
            }
        )
    )


if __name__ == "__main__":
    main()
