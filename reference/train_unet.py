"""Train the reference U-Net the package ships: `python -m reference.train_unet`.

Defaults follow the course: full width, 2,730 steps (5 epochs over 70,000 images), batch 128,
Adam 1e-3, context dropped with probability 0.1. Weights are saved in half precision.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from reference import constants, mnist
from reference.schedule import make_schedule
from reference.training import train
from reference.unet import course_unet
from reference.weights import UNET_FILE, save_state_dict, weights_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=constants.COURSE_STEPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="autocast forward passes to bfloat16")
    parser.add_argument("--out", default=str(weights_path(UNET_FILE)))
    args = parser.parse_args(argv)

    images, labels = mnist.load("all")
    schedule = make_schedule(device=args.device)
    model = course_unet().to(args.device)
    started = time.time()

    def report(step, loss):
        if step % 50 == 0 or step == args.steps:
            rate = step / (time.time() - started)
            print(f"step {step}/{args.steps} loss {loss:.4f} ({rate:.2f} steps/s)", file=sys.stderr, flush=True)

    log = train(model, images, labels, schedule, steps=args.steps, seed=args.seed, progress=report,
                autocast_dtype=torch.bfloat16 if args.bf16 else None)
    save_state_dict(model, args.out, dtype=torch.float16)
    summary = {
        "steps": args.steps, "seed": args.seed, "device": str(args.device), "bf16": args.bf16,
        "seconds": round(log.seconds, 1), "final_loss_mean_last_100": sum(log.losses[-100:]) / max(1, len(log.losses[-100:])),
        "torch": torch.__version__, "out": args.out,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
