"""The course's training loop with an explicit step budget, seed and device."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from reference import constants
from reference.conditioning import get_context_mask
from reference.diffusion import get_loss
from reference.schedule import Schedule


@dataclass
class TrainingLog:
    """Losses per step and the wall time the run took."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def shuffled_batches(n_items: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless index batches: a fresh permutation each epoch, the last partial batch dropped."""
    if n_items < batch_size:
        raise ValueError(f"need at least one full batch: {n_items} items < batch {batch_size}")
    while True:
        order = torch.randperm(n_items, generator=generator)
        for start in range(0, n_items - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def train(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    schedule: Schedule,
    steps: int,
    batch_size: int = constants.BATCH_SIZE,
    lr: float = constants.LEARNING_RATE,
    c_drop_prob: float = constants.C_DROP_PROB,
    seed: int = 0,
    progress: Callable[[int, float], object] | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> TrainingLog:
    """Train `model` as the course does (Adam, uniform t, Bernoulli context drop) for `steps` steps.

    Images and labels are moved to the schedule's device once; `progress(step, loss)` is called
    after every step. `autocast_dtype` (e.g. torch.bfloat16) runs forward passes under autocast;
    on CPUs with AMX, bf16 halves the step time.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    device = schedule.device
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    images, labels = images.to(device), labels.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    log = TrainingLog()
    started = time.perf_counter()
    model.train()
    batches = shuffled_batches(images.shape[0], batch_size, generator)
    for step in range(1, steps + 1):
        index = next(batches).to(device)
        x = images[index]
        t = torch.randint(0, schedule.T, (batch_size,), device=device).float()
        c_hot, c_mask = get_context_mask(labels[index], c_drop_prob)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = get_loss(model, x, t, c_hot.float(), c_mask, schedule=schedule)
        loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch
        optimizer.step()
        log.losses.append(loss.item())
        if progress is not None:
            progress(step, log.losses[-1])
    model.eval()
    log.seconds = time.perf_counter() - started
    return log
