"""Judge guided samples of the shipped reference U-Net: `python -m reference.evaluate_unet`.

Draws `--per-digit` samples of each digit with the reference sampler at guidance `--w`, and
prints the MNIST classifier's accuracy overall and per digit as one JSON object.
"""

from __future__ import annotations

import json
import sys
import time

import click
import torch
import torch.nn.functional as F

from reference.classifier import classify, load_classifier
from reference.sampling import sample_w
from reference.schedule import make_schedule
from reference.unet import course_unet
from reference.weights import UNET_FILE, load_into, weights_path


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@click.command(help=__doc__.split("\n\n")[0])
@click.option("--per-digit", type=int, default=100, show_default=True)
@click.option("--w", type=float, default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=default_device, show_default="cuda if available, else cpu")
@click.option("--bf16", is_flag=True, help="autocast the U-Net to bfloat16 while sampling")
@click.option("--weights", default=str(weights_path(UNET_FILE)), show_default="reference/data/unet_course_fp16.pt")
def main(per_digit: int, w: float, seed: int, device: str, bf16: bool, weights: str) -> None:
    torch.manual_seed(seed)
    model = load_into(course_unet(), weights).to(device).eval()
    schedule = make_schedule(device=device)
    classifier = load_classifier()
    started = time.time()
    by_digit = {}
    for digit in range(10):
        c_hot = F.one_hot(torch.full((per_digit,), digit), 10).float()
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            images = sample_w(model, c_hot, w, schedule).float()
        by_digit[digit] = (classify(classifier, images) == digit).float().mean().item()
        print(f"digit {digit}: {by_digit[digit]:.1%} ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
    accuracy = sum(by_digit.values()) / 10
    print(
        json.dumps(
            {
                "accuracy": accuracy,
                "per_digit": by_digit,
                "w": w,
                "samples": 10 * per_digit,
                "seed": seed,
                "device": device,
                "bf16": bf16,
                "seconds": round(time.time() - started, 1),
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
