"""What task modules share: the verdict they build, and the evidence they judge from.

Child side (probes): `require` fetches a student name or raises MissingName, `save` writes raw
tensors. Parent side (judges): `Evidence` loads them back with `weights_only=True`, `Verdict`
collects failures with their hints, in the spirit of PrairieLearn's Feedback helpers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch


class MissingName(LookupError):
    """A name the task needs is not defined by the student's code (raised in the child)."""


def require(namespace: dict, name: str):
    """The student's object called `name`, or MissingName."""
    if name not in namespace:
        raise MissingName(name)
    return namespace[name]


def save(out_dir: str, name: str, tensors: dict) -> None:
    """Write raw tensors for the parent (plain tensors only, so it can load them safely)."""
    clean = {key: value.detach().cpu().clone() for key, value in tensors.items()
             if isinstance(value, torch.Tensor) and value.device.type != "meta"}
    torch.save(clean, Path(out_dir) / f"{name}.pt")


@dataclass
class Evidence:
    """What the parent knows when judging: the probe's JSON reply and the files it wrote."""

    value: dict
    out_dir: Path
    locate: object  # callable(name) -> Location | None, from the submission's analysis
    seed: int = 0

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        """Tensors a probe saved under `name`, loaded without unpickling code."""
        path = self.out_dir / f"{name}.pt"
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"probe output {path.name} is not a dict of tensors")
        return state


@dataclass
class Verdict:
    """A task's findings: checks that passed or failed, each worth some points."""

    points: float
    earned: float = 0.0
    failures: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    location: object = None
    details: dict = field(default_factory=dict)

    def check(self, ok: bool, worth: float, failure: str, hint: str | None = None,
              location=None) -> bool:
        """Record one check: add `worth` points if `ok`, else its failure message and hint."""
        if ok:
            self.earned += worth
        else:
            self.failures.append(failure)
            if hint:
                self.hints.append(hint)
            if location is not None and self.location is None:
                self.location = location
        return ok

    def note(self, text: str) -> None:
        """Something worth telling the student that costs no points."""
        self.notes.append(text)

    @property
    def passed(self) -> bool:
        return not self.failures

    def message(self, success: str) -> str:
        return "; ".join(self.failures) if self.failures else success


def close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """Same shape and values within tolerance (float32 arithmetic in another order)."""
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol)
