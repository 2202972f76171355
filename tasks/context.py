"""What a task's `check(context)` may use: the contract a task author reads instead of grader code.

The grader (`grader/grading/context.py`) implements it. Every input is made here, in the grader,
from `seed` (`generator`); the contained child only runs the student's code on those inputs and
hands back raw values, which the task judges. A value that comes back is untrusted: check its
type and size (`tasks.base.plain_tensor`) before computing with it.

What a command raises, whatever the command:
- `tasks.base.StudentRaised`: the student's code raised (`.type`, `.describe()`); the grader fails
  the task with the student's message unless the task catches it;
- `tasks.base.MissingName`: the child has no object under a name asked for (the grader says why);
- the child hung, died or broke the protocol: the grader fails the task and starts a fresh child.
A task ends its check early with `tasks.base.TaskFailure(message, hint, location)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch

    from grader.submission.analysis import Analysis
    from grader.submission.cells import Cell
    from tasks.base import Location
    from tasks.task_options import TaskOptions


class Context(Protocol):
    """What a task checks through: inputs made in the grader, student code run in the child.

    Its facts are read-only (properties here, plain attributes in the grader's implementation)."""

    @property
    def task_id(self) -> str:
        """The id of the task being graded."""
        ...

    @property
    def seed(self) -> int:
        """This grade's seed; draw every input through `generator`, never from it directly."""
        ...

    @property
    def device(self) -> torch.device:
        """The device the child runs the student's code on. Make inputs on the CPU: the child moves them."""
        ...

    @property
    def options(self) -> TaskOptions:
        """This grade's options for the task: what its `Task.choose_options` returned (else `options_type()`)."""
        ...

    @property
    def timeout(self) -> float:
        """Seconds each command may run in the child (the options' timeout, else the grade's --timeout)."""
        ...

    @property
    def failed_before(self) -> tuple[str, ...]:
        """Ids of the tasks graded before this one that failed: a likely cause to name in a hint."""
        ...

    @property
    def analysis(self) -> Analysis:
        """What each cell of the submission defines and calls (read from its syntax, never run)."""
        ...

    @property
    def cells(self) -> Sequence[Cell]:
        """The submission's code cells as written."""
        ...

    def generator(self, *labels: str) -> torch.Generator:
        """A random generator seeded from the grade's seed and `labels` (use the task id first), so
        every input is reproducible with the seed and unknown to the student's code."""
        ...

    def locate(self, name: str) -> Location | None:
        """Where the submission defines `name` (cell and line), or None when no cell does."""
        ...

    def progress(self, phase: str, done: int, total: int) -> None:
        """Report how far a long phase is (`done` of `total`); shown as a progress bar."""
        ...

    def call(
        self, target: str, *args: Any, bind: dict[str, Any] | None = None, no_grad: bool = False, **kwargs: Any
    ) -> tuple[Any, dict[str, Any]]:
        """Call the student's `target` (a function or class) in the child with the grader's arguments.

        Arguments are tensors, numbers, strings, lists and dicts of them, `tasks.base.stub(...)` (a
        recording stand-in the child builds) or `tasks.base.named(name)` (an object already in the
        child). `bind` swaps names of the student's namespace for the call (e.g. their `q` for a stub);
        `no_grad` runs it under torch.no_grad(). Returns (the raw value, the stand-ins' records by id).
        """
        ...

    def get(self, *names: str) -> dict[str, Any]:
        """The values of student names, by name: tensors and plain data as themselves, anything else as
        an opaque stand-in (`tasks.base.kind_of` names it); names the child does not have are left out."""
        ...

    def describe(self, *names: str) -> dict[str, dict[str, Any]]:
        """What each name is, without calling it: {"type", "module", "qualname", ...} ("value" for a
        number, a device or a string); names the child does not have are left out."""
        ...

    def ask(self, op: str, **payload: Any) -> tuple[Any, dict[str, Any]]:
        """Send one command of the executor (`grader/sandbox/executor/`) by name: (value, records).
        `call`, `get` and `describe` are the usual ones; a task needing another kind of call adds a
        small, verdict-free command there (and an attack test for what it exposes)."""
        ...

    def ask_each(self, op: str, payloads: list[dict[str, Any]], phase: str) -> list[Any]:
        """Several commands of one op that do not depend on each other (each a payload as `ask`
        takes it), answered at once by forked copies of the child where the grade runs on a CPU
        with more than one thread, progress shown under `phase`. Each copy starts from the child
        as it is now and keeps what the student's code changes to itself. One outcome each, in
        order (the grader's, opaque to a task): pass each to `settle`, in order, to get its
        (value, records) or what `ask` raises."""
        ...

    def settle(self, outcome: Any) -> tuple[Any, dict[str, Any]]:
        """An outcome of `ask_each` as `ask` would have returned it, or its exception."""
        ...
