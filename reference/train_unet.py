"""Train the reference U-Net the package ships: `python -m reference.train_unet`.

Defaults follow the course: full width, 2,730 steps (5 epochs over 70,000 images), batch 128,
Adam 1e-3, context dropped with probability 0.1. Weights are saved in half precision.
"""

from __future__ import annotations

import json
import sys
import time

import click
import torch

from reference import constants, mnist
from reference.schedule import make_schedule
from reference.training import train
from reference.unet import course_unet
from reference.weights import UNET_FILE, save_state_dict, weights_path


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@click.command(help=__doc__.split("\n\n")[0])
@click.option("--steps", type=int, default=constants.COURSE_STEPS, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=default_device, show_default="cuda if available, else cpu")
@click.option("--bf16", is_flag=True, help="autocast forward passes to bfloat16")
@click.option(
    "--out",
    default=str(weights_path(UNET_FILE)),
    show_default="reference/data/unet_course_fp16.pt",
    help="Where to write the weights.",
)
def main(steps: int, seed: int, device: str, bf16: bool, out: str) -> None:
    images, labels = mnist.load("all")
    schedule = make_schedule(device=device)
    model = course_unet().to(device)
    started = time.time()

    def report(step: int, loss: float) -> None:
        if step % 50 == 0 or step == steps:
            rate = step / (time.time() - started)
            print(f"step {step}/{steps} loss {loss:.4f} ({rate:.2f} steps/s)", file=sys.stderr, flush=True)

    log = train(
        model,
        images,
        labels,
        schedule,
        steps=steps,
        seed=seed,
        progress=report,
        autocast_dtype=torch.bfloat16 if bf16 else None,
    )
    save_state_dict(model, out, dtype=torch.float16)
    summary = {
        "steps": steps,
        "seed": seed,
        "device": str(device),
        "bf16": bf16,
        "seconds": round(log.seconds, 1),
        "final_loss_mean_last_100": sum(log.losses[-100:]) / max(1, len(log.losses[-100:])),
        "torch": torch.__version__,
        "out": out,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
