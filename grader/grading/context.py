"""What a task checks through: inputs made in the grader, student code run in the child.

A task never sees the child: it asks its `Context` to call a student function with arguments
it made, and gets back raw values (or the exception the student's code raised). The contract,
with what each member means, is the protocol `tasks.context.Context`; this class implements it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import torch

from grader.core.i18n import _
from grader.sandbox.executor import commands
from grader.sandbox.parent import Outcome, answer_outcome
from grader.submission.analysis import Analysis
from grader.submission.cells import Submission
from tasks.base import Location, MissingName, StudentRaised, generator
from tasks.declaration import TaskOptions


class GradingRun(Protocol):
    """What a context uses of the grading run (`grader.grading.session.Grading`), named here so that
    this module does not import the session, which imports it."""

    seed: int
    device: str
    timeout: float
    analysis: Analysis
    submission: Submission
    failed_tasks: list[str]
    progress: Callable[[Any], None]

    def locate(self, name: str) -> Location | None: ...

    def request(self, op: str, timeout: float, on_progress=None, **payload) -> Outcome: ...

    def fanout(self, calls: int) -> int: ...


if TYPE_CHECKING:
    from tasks.context import Context as TaskContext


class ChildLost(Exception):
    """The child hung, died or broke the protocol during a task; the outcome says how."""

    def __init__(self, outcome: Outcome):
        super().__init__(outcome.reason)
        self.outcome = outcome


class Context:
    """What a task checks through: inputs made here, student code run in the child (see tasks/context.py)."""

    def __init__(self, grading: GradingRun, task_id: str, options: TaskOptions):
        self.grading, self.task_id, self.options = grading, task_id, options
        self.seed = grading.seed
        self.device = torch.device(grading.device)
        self.analysis = grading.analysis
        self.cells = grading.submission.cells  # code cells as written (the course profile runs them in a kernel)
        self.timeout = grading.timeout if options.timeout is None else options.timeout
        self.failed_before = tuple(grading.failed_tasks)  # a task may name these as the likely cause

    def generator(self, *labels: str) -> torch.Generator:
        return generator(self.seed, *labels)

    def locate(self, name: str) -> Location | None:
        return self.grading.locate(name)

    def progress(self, phase: str, done: int, total: int) -> None:
        self.grading.progress((self.task_id, phase, done, total))

    def ask(self, op: str, **payload: Any) -> tuple[Any, dict[str, Any]]:
        """Send one command; its (value, records). Student exceptions raise StudentRaised."""
        on_progress = lambda phase, done, total: self.progress(str(phase)[:60], int(done), int(total))  # noqa: E731
        return self.settle(self.grading.request(op, self.timeout, on_progress, **payload))

    def ask_each(self, op: str, payloads: list[dict[str, Any]], phase: str) -> list[Outcome]:
        """Commands of one op that do not depend on each other, in one batch that forked copies of
        the child answer at once where the grading run allows it; one outcome each, in order."""
        workers = self.grading.fanout(len(payloads))
        value, _records = self.ask(
            commands.BATCH, commands=[{"op": op, **payload} for payload in payloads], workers=workers, progress=phase
        )
        if not (isinstance(value, list) and len(value) == len(payloads) and all(isinstance(a, dict) for a in value)):
            why = _("a batch of {count} commands was not answered one answer each").format(count=len(payloads))
            raise ChildLost(Outcome("broken", reason=_("the child broke the protocol: {error}").format(error=why)))
        return [answer_outcome(answer) for answer in value]

    def settle(self, outcome: Outcome) -> tuple[Any, dict[str, Any]]:
        """An outcome's (value, records); raises what `ask` raises for it."""
        if outcome.child_lost:
            raise ChildLost(outcome)
        if outcome.status == "error":
            if outcome.missing_name is not None:
                raise MissingName(outcome.missing_name)
            assert outcome.error is not None  # the sandbox makes every "error" outcome with its error dict
            raise StudentRaised(outcome.error)
        return outcome.value, outcome.records

    def call(
        self, target: str, *args: Any, bind: dict[str, Any] | None = None, no_grad: bool = False, **kwargs: Any
    ) -> tuple[Any, dict[str, Any]]:
        return self.ask(commands.CALL, target=target, args=list(args), kwargs=kwargs, bind=bind, no_grad=no_grad)

    def get(self, *names: str) -> dict[str, Any]:
        value, _ = self.ask(commands.GET, names=list(names))
        return value if isinstance(value, dict) else {}

    def describe(self, *names: str) -> dict[str, dict[str, Any]]:
        value, _ = self.ask(commands.DESCRIBE, names=list(names))
        return {k: v for k, v in value.items() if isinstance(v, dict)} if isinstance(value, dict) else {}


if TYPE_CHECKING:

    def _keeps_the_contract(context: Context) -> TaskContext:
        return context  # mypy checks here that this class offers what tasks/context.py promises tasks
