"""What task modules share: the context they check through, and the verdict they build.

A task module declares `TASK = Task(...)` (tasks/declaration.py) with its
`check(context) -> Verdict`. The context (the protocol in tasks/context.py) makes every
input here, in the grader, asks the contained child to run student code on it, and hands
back raw values; the task decides the verdict from those alone. Nothing of a task runs in
the child. Verdicts collect failures with their hints, in the spirit of PrairieLearn's
Feedback helpers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

from grader.core.i18n import _
from grader.sandbox.executor import commands
from tasks.location import Location


class TaskFailure(Exception):
    """A finding that ends a task's check: what the student's code returned is unusable."""

    def __init__(self, message: str, hint: str | None = None, location: Location | None = None):
        super().__init__(message)
        self.message, self.hint, self.location = message, hint, location


class StudentRaised(Exception):
    """Student code raised while the grader ran it; `error` is {type, message, cell, line}."""

    def __init__(self, error: dict):
        super().__init__(error.get("message", "?"))
        self.error = error

    @property
    def type(self) -> str:
        return str(self.error.get("type", ""))

    @property
    def exited(self) -> bool:
        """The student's code called sys.exit (the kind the child reported, not the type's name)."""
        return self.error.get("kind") == commands.EXITED

    def describe(self) -> str:
        lines = str(self.error.get("message", "")).strip().splitlines()  # a forged reply may send ""
        return (lines or [_("an exception with no message")])[0][:300]


class MissingName(Exception):
    """The child has no object under a name the grader asked for: its reply's error kind was
    `commands.MISSING_NAME` (the executor's own MissingName), with the name in a field of its own."""


def stub(kind: str, id: str | None = None, **args) -> dict:
    """An argument the child builds from the grader's values: a recording model or function
    (the kinds are in grader/sandbox/executor/stubs.py). Its records come back under `id`."""
    return {"$stub": kind, "id": id or kind, "args": args}


def named(name: str) -> dict:
    """An argument that is an object already in the child: a student name or a model built there."""
    return {"$name": name}


def derive_seed(seed: int, *labels: str) -> int:
    """An independent 63-bit seed for each use, so knowing one tells nothing of the others."""
    digest = hashlib.sha256(":".join([str(seed), *labels]).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def generator(seed: int, *labels: str) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, *labels))


def kind_of(value) -> str:
    """What a returned value is, in words: its type, or what the child said it was."""
    return "None" if value is None else str(value) if type(value).__name__ == "Opaque" else type(value).__name__


# The most elements a returned tensor may have before a task converts it (the largest the tasks
# expect is a batch of images, under 100,000): a tensor the grader turns into float64 costs 8
# bytes an element however small its own dtype, so the size is checked before any conversion.
MAX_ELEMENTS = 1 << 22


def plain_tensor(
    value, what: str, shape: tuple | None = None, finite: bool = True, max_elements: int = MAX_ELEMENTS
) -> torch.Tensor:
    """`value` as a tensor the grader can judge, or a TaskFailure that says what it was.

    Shape and element count are checked before anything is computed from the tensor, so a task
    may convert what this returns (`.double()`) at a bounded cost.
    `what` reads before the finding: "reverse_q returned" gives "reverse_q returned a list, ...".
    It is English text marked with N_ (or already translated): the sentence's form is chosen on the English."""
    returned, what = what.endswith("returned"), _(what)
    if not isinstance(value, torch.Tensor):
        template = _("{what} a {kind}, expected a tensor") if returned else _("{what} is a {kind}, expected a tensor")
        raise TaskFailure(template.format(what=what, kind=kind_of(value)))
    if value.numel() > max_elements:
        template = (
            _("{what} a tensor that has {count} elements (shape {shape}), far more than expected (at most {most})")
            if returned
            else _("{what} has {count} elements (shape {shape}), far more than expected (at most {most})")
        )
        raise TaskFailure(
            template.format(
                what=what, count=f"{value.numel():,}", shape=tuple(value.shape)[:8], most=f"{max_elements:,}"
            )
        )
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise TaskFailure(
            _("{what} has shape {shape}, expected {expected}").format(
                what=what, shape=tuple(value.shape), expected=tuple(shape)
            )
        )
    if finite and value.is_floating_point() and not torch.isfinite(value).all():
        raise TaskFailure(_("{what} contains NaN or infinite values").format(what=what))
    return value


def pair_of_tensors(value, what: str, names: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A returned (tensor, tensor) pair, or a TaskFailure naming what came back instead."""
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise TaskFailure(
            _("{what} returned a {kind}, expected ({names})").format(what=what, kind=kind_of(value), names=names)
        )
    first, second = names.split(", ")
    return plain_tensor(value[0], first, finite=False), plain_tensor(value[1], second, finite=False)


@dataclass
class Verdict:
    """A task's findings: checks that passed or failed, each worth some points."""

    earned: float = 0.0
    failures: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    location: object = None
    details: dict = field(default_factory=dict)
    integrity: list[str] = field(default_factory=list)

    def check(self, ok: bool, worth: float, failure: str, hint: str | None = None, location=None) -> bool:
        """Record one check: add `worth` points if `ok`, else its failure message and hint."""
        if ok:
            self.earned += worth
        else:
            self.failures.append(failure)
            if hint and hint not in self.hints:
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


def approx_equal(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """Same shape and values within tolerance (float32 arithmetic in another order)."""
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol)
