"""What giving a training run its MNIST costs: `python benchmarks/bench_training_data.py`.

Before, every grade laid MNIST out for torchvision in its work folder (55 MB written, bound
into the child as ./data) and the child's train command read all 70,000 images. Now the
grader sends the train command only the images its order reaches
(`tasks.generation.stages.training_batches`) and no child but the course profile's gets a
data folder. The script prints, median of `--runs`: the old per-grade layout, and for each
run size the time to make the batches and their bytes on the pipe.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import click
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference import mnist
from tasks.generation import stages

# (name, steps, batch size): the transplant's short run, the train profile on a CPU and a GPU
RUNS = (("transplant short run", 40, 128), ("train profile, CPU", 200, 128), ("train profile, GPU", 2000, 128))


def _median_seconds(work, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@click.command()
@click.option("--runs", default=5, show_default=True)
def main(runs: int) -> None:
    mnist.load_raw("train"), mnist.load_raw("test")  # the checksummed files, decompressed once per process
    with tempfile.TemporaryDirectory() as folder:
        layout = _median_seconds(lambda: mnist.torchvision_root(Path(folder) / "data"), runs)
    print(f"before, every grade: MNIST laid out for torchvision (55 MB written): {layout * 1000:.0f} ms")
    context = SimpleNamespace(generator=lambda *parts: torch.Generator().manual_seed(1))
    for name, steps, batch_size in RUNS:
        order = stages.batch_order(context, "narrow", steps, batch_size)
        seconds = _median_seconds(lambda order=order: stages.training_batches(order), runs)
        images, labels, positions = stages.training_batches(order)
        sent = sum(t.numel() * t.element_size() for t in (images, labels, positions))
        print(
            f"now, {name} ({steps} steps of {batch_size}): {len(images):,} images, "
            f"{sent / 2**20:.1f} MiB on the pipe, made in {seconds * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
