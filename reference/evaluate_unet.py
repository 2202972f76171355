"""Judge guided samples of the shipped reference U-Net: `python -m reference.evaluate_unet`.

Draws `--per-digit` samples of each digit with the reference sampler at guidance `--w`, and
prints the judge's accuracy overall and per digit as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from reference.judge import classify, load_judge
from reference.sampling import sample_w
from reference.schedule import make_schedule
from reference.unet import course_unet
from reference.weights import UNET_FILE, load_into, weights_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-digit", type=int, default=100)
    parser.add_argument("--w", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="autocast the U-Net to bfloat16 while sampling")
    parser.add_argument("--weights", default=str(weights_path(UNET_FILE)))
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    model = load_into(course_unet(), args.weights).to(args.device).eval()
    schedule = make_schedule(device=args.device)
    judge = load_judge()
    started = time.time()
    per_digit = {}
    for digit in range(10):
        c_hot = F.one_hot(torch.full((args.per_digit,), digit), 10).float()
        with torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16, enabled=args.bf16):
            images = sample_w(model, c_hot, args.w, schedule).float()
        per_digit[digit] = (classify(judge, images) == digit).float().mean().item()
        print(f"digit {digit}: {per_digit[digit]:.1%} ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
    accuracy = sum(per_digit.values()) / 10
    print(json.dumps({"accuracy": accuracy, "per_digit": per_digit, "w": args.w, "samples": 10 * args.per_digit,
                      "seed": args.seed, "device": args.device, "bf16": args.bf16,
                      "seconds": round(time.time() - started, 1), "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
