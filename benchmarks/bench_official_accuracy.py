"""How often the reference weights pass the official draw: `python benchmarks/bench_official_accuracy.py`.

On the transplant profile the digits come from the shipped reference weights, so a correct
sample_w fails the official bar (48 of 50) exactly as often as those weights draw three or more
wrong digits in 50. This draws the official 50 as a grade with each seed draws it (five of each
digit per call, each call seeded as `tasks.generation.stages.draw` seeds it, w = 1,
bf16 autocast around each forward pass on a CPU with AMX) and prints every draw's count, the
total with its 95% interval, and the chance of falling short that it implies.

The reference sampler stands in for the example's sample_w: per call, with the same seed and the
same number of torch threads, the two return the same images (checked to the bit). A grade on a
CPU draws its digits in forked copies of the child, one torch thread each
(grader/sandbox/executor/fanout.py), so `--threads 1` (the default) draws what a grade draws:
`--seeds 1` gives the official predictions of `dli-grade examples/submission.ipynb --seed 1`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reference import narrow  # noqa: E402
from reference.classifier import classify, load_classifier  # noqa: E402
from reference.sampling import sample_w  # noqa: E402
from reference.schedule import make_schedule  # noqa: E402
from reference.unet import course_unet  # noqa: E402
from reference.weights import UNET_FILE, load_into, weights_path  # noqa: E402
from tasks.base import derive_seed  # noqa: E402
from tasks.generation.hints import chance_of_falling_short  # noqa: E402
from tasks.generation.official import ID, OFFICIAL_PER_DIGIT  # noqa: E402
from tasks.generation.scoring import wilson_interval  # noqa: E402


def seeds_from(text: str) -> list[int]:
    """`3`, `1-20` or `1,4,9`."""
    seeds: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        seeds += list(range(int(first), int(last or first) + 1))
    return seeds


@click.command(help=__doc__.split("\n\n")[0])
@click.option("--seeds", default="1-10", show_default=True, help="grade seeds: 3, 1-20 or 1,4,9")
@click.option("--w", type=float, default=1.0, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="torch threads (a grade's copies use one)")
def main(seeds: str, w: float, threads: int) -> None:
    torch.set_num_threads(threads)
    model = load_into(course_unet(), weights_path(UNET_FILE)).eval()
    schedule = make_schedule()
    classifier = load_classifier()
    bf16 = narrow.bf16_here()

    def forward(*args):  # as the child's traced model calls the student's
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(*args).float()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 autocast: {bf16}, w = {w}")
    right = drawn = 0
    for seed in seeds_from(seeds):
        started = time.perf_counter()
        images = []
        for digit in range(10):
            torch.manual_seed(derive_seed(seed, ID, "official sample", str(digit)))
            c_hot = F.one_hot(torch.full((OFFICIAL_PER_DIGIT,), digit), 10).float()
            with torch.no_grad():
                images.append(sample_w(forward, c_hot, w, schedule))
        labels = torch.arange(10).repeat_interleave(OFFICIAL_PER_DIGIT)
        read = classify(classifier, torch.cat(images))
        missed = [(int(d), int(r)) for d, r in zip(labels, read, strict=True) if d != r]
        right, drawn = right + len(labels) - len(missed), drawn + len(labels)
        print(
            f"seed {seed}: {len(labels) - len(missed)} of {len(labels)}"
            f"{' (misses: ' + ', '.join(f'{d} read as {r}' for d, r in missed) + ')' if missed else ''}"
            f", {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    low, high = wilson_interval(right, drawn)
    accuracy = right / drawn
    print(
        f"total: {right} of {drawn} ({accuracy:.2%}, 95% interval {low:.2%} to {high:.2%}); a correct sample_w "
        f"falls short of 48 of 50 in {chance_of_falling_short(accuracy):.2%} of grades "
        f"({chance_of_falling_short(high):.2%} to {chance_of_falling_short(low):.2%})"
    )


if __name__ == "__main__":
    main()
