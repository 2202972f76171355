"""What a task checks through: inputs made in the grader, student code run in the child.

A task never sees the child: it asks its `Context` to call a student function with arguments
it made, and gets back raw values (or the exception the student's code raised).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from grader.sandbox.executor import commands
from grader.sandbox.parent import Outcome
from tasks.base import Location, MissingName, StudentRaised, generator

if TYPE_CHECKING:
    from grader.grading.session import Grading


class ChildLost(Exception):
    """The child hung, died or broke the protocol during a task; the outcome says how."""

    def __init__(self, outcome: Outcome):
        super().__init__(outcome.reason)
        self.outcome = outcome


class Context:
    """What a task checks through: inputs made here, student code run in the child."""

    def __init__(self, grading: "Grading", task_id: str, options: dict):
        self.grading, self.task_id, self.options = grading, task_id, options
        self.seed = grading.seed
        self.device = torch.device(grading.device)
        self.analysis = grading.analysis
        self.cells = grading.submission.cells  # code cells as written (the course profile runs them in a kernel)
        self.timeout = options.get("timeout", grading.timeout)
        self.failed_before = tuple(grading.failed_tasks)  # a task may name these as the likely cause

    def generator(self, *labels: str) -> torch.Generator:
        return generator(self.seed, *labels)

    def locate(self, name: str) -> Location | None:
        return self.grading.locate(name)

    def progress(self, phase: str, done: int, total: int) -> None:
        self.grading.progress((self.task_id, phase, done, total))

    def ask(self, op: str, **payload):
        """Send one command; its (value, records). Student exceptions raise StudentRaised."""
        on_progress = lambda phase, done, total: self.progress(str(phase)[:60], int(done), int(total))  # noqa: E731
        outcome = self.grading.request(op, self.timeout, on_progress, **payload)
        if outcome.child_lost:
            raise ChildLost(outcome)
        if outcome.status == "error":
            if outcome.missing_name is not None:
                raise MissingName(outcome.missing_name)
            raise StudentRaised(outcome.error)
        return outcome.value, outcome.records

    def call(self, target: str, *args, bind=None, no_grad: bool = False, **kwargs):
        return self.ask(commands.CALL, target=target, args=list(args), kwargs=kwargs, bind=bind, no_grad=no_grad)

    def get(self, *names: str) -> dict:
        value, _ = self.ask(commands.GET, names=list(names))
        return value if isinstance(value, dict) else {}

    def describe(self, *names: str) -> dict:
        value, _ = self.ask(commands.DESCRIBE, names=list(names))
        return {k: v for k, v in value.items() if isinstance(v, dict)} if isinstance(value, dict) else {}
