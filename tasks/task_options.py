"""The options every task shares: what the grader itself reads of them (a task with choices extends it).

Its own module so that the Context protocol (tasks/context.py) and the Task declaration
(tasks/declaration.py) can both name it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TaskOptions:
    """What the grader itself reads of a task's options; a task with choices extends it.

    `timeout`: seconds each command of this task may run in the child (None: the grade's --timeout).
    `child_mounts`: name -> folder the grader binds into the child, read-only, for this grade.
    `profile`: how the task runs this time, when it has ways to choose from; the result reports it.
    """

    timeout: float | None = None
    child_mounts: Mapping[str, Path] = field(default_factory=dict)
    profile: str | None = None
