"""Helpers shared by the tasks that use the schedule: the reference tensors and the student's."""

from __future__ import annotations

import torch

from reference.schedule import make_schedule

SCHEDULE_NAMES = ("B", "sqrt_a_bar", "sqrt_one_minus_a_bar", "sqrt_a_inv", "pred_noise_coeff")


def student_schedule(namespace: dict) -> dict[str, torch.Tensor]:
    """The student's schedule tensors that exist (child side), to judge a task given them."""
    return {name: namespace[name] for name in SCHEDULE_NAMES
            if isinstance(namespace.get(name), torch.Tensor)}


def notebook_T(namespace: dict) -> int:
    """The notebook's T, or the course's 150 when it is missing or odd."""
    T = namespace.get("T", 150)
    return T if isinstance(T, int) and 2 <= T <= 10_000 else 150


def notebook_device(namespace: dict) -> torch.device:
    """The device the notebook works on (its `device` variable), CPU when unusable."""
    try:
        return torch.device(namespace.get("device", "cpu"))
    except (TypeError, RuntimeError):
        return torch.device("cpu")


def schedules_to_try(T: int, tensors: dict[str, torch.Tensor]):
    """The reference schedule first, then the student's own (so one bug is not charged twice)."""
    reference = make_schedule(T).as_dict()
    yield "reference", reference
    own = {name: tensors[f"schedule.{name}"].double() for name in SCHEDULE_NAMES
           if f"schedule.{name}" in tensors}
    if len(own) == len(SCHEDULE_NAMES) and all(v.shape == (T,) for v in own.values()):
        yield "yours", own
