"""Time one forward pass of the course U-Net as sampling makes it: `python benchmarks/bench_sampling.py`.

Compares bf16 autocast entered around every forward pass (the weights are cast again each
time) with one autocast region around all of them (the casts are cached), and fp32.
"""

from __future__ import annotations

import time

import click
import torch

from reference.unet import course_unet


@click.command(help=__doc__.split("\n\n")[0])
@click.option("--batch", type=int, default=10, show_default=True, help="rows per forward (5 digits, doubled)")
@click.option("--forwards", type=int, default=100, show_default=True)
def main(batch: int, forwards: int) -> None:
    model = course_unet().eval()
    x, t = torch.randn(batch, 1, 28, 28), torch.full((batch,), 75.0)
    c, mask = torch.zeros(batch, 10), torch.ones(batch, 10)

    def forward(bf16: bool):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(x, t, c, mask).float()

    def timed(name: str, bf16: bool, outer: bool) -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=outer):
            forward(bf16)  # warm-up: oneDNN makes its kernels for these shapes
            started = time.perf_counter()
            for _ in range(forwards):
                forward(bf16)
        print(f"{name}: {(time.perf_counter() - started) / forwards * 1000:.1f} ms a forward")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {batch}")
    timed("fp32", bf16=False, outer=False)
    timed("bf16, autocast per forward", bf16=True, outer=False)
    timed("bf16, one autocast region", bf16=True, outer=True)


if __name__ == "__main__":
    main()
