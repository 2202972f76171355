"""The graded tasks of the assessment, one module each, found by this registry.

A task module (or package) in this folder ends with `TASK = Task(...)` (`tasks/declaration.py`):
its id, title, points, the names it needs, its place in the report, and `check(context)`, which
runs in the grader: it makes the inputs, has the contained child run the student's code on them
(through `tasks.context.Context`), and judges the raw values (see tasks/base.py). Adding a task
takes its module and its corpus cases, nothing else: the registry discovers every module of
the package that declares a `TASK` and orders them by `Task.order`.

`TASK_IDS` (every task, in order) and `UNIT_TASK_IDS` (the quick ones) are derived from the
declarations each time they are read.
"""

from __future__ import annotations

import pkgutil
from functools import cache
from importlib import import_module
from itertools import pairwise

from tasks.declaration import Task, TaskOptions

__all__ = ["Task", "TaskOptions", "all_tasks", "find_task", "get_task", "rediscover", "task_ids"]


@cache
def all_tasks() -> tuple[Task, ...]:
    """Every declared task, in report order; a duplicate id or order, or a mislabelled id, is an error."""
    found: list[Task] = []
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name.startswith("_"):
            continue  # private helpers shared by tasks
        declared = getattr(import_module(f"{__name__}.{module_info.name}"), "TASK", None)
        if declared is None:
            continue
        if not isinstance(declared, Task):
            raise TypeError(f"tasks.{module_info.name}.TASK is a {type(declared).__name__}, not a Task")
        if declared.id != module_info.name:
            raise ValueError(f"tasks.{module_info.name} declares the id {declared.id!r}: the id is the module's name")
        found.append(declared)
    found.sort(key=lambda task: task.order)
    for before, after in pairwise(found):
        if before.order == after.order:
            raise ValueError(f"tasks {before.id} and {after.id} both declare order {before.order}")
    return tuple(found)


def rediscover() -> tuple[Task, ...]:
    """Look for task modules again (after one was added to the package's path at run time)."""
    all_tasks.cache_clear()
    return all_tasks()


def task_ids(unit_only: bool = False) -> tuple[str, ...]:
    """The ids of every task (or of the quick unit tasks), in report order."""
    return tuple(task.id for task in all_tasks() if task.unit or not unit_only)


def get_task(task_id: str) -> Task:
    """The declaration of `task_id`; KeyError when no task has that id."""
    for task in all_tasks():
        if task.id == task_id:
            return task
    raise KeyError(task_id)


def find_task(task_id: str) -> Task | None:
    """The declaration of `task_id`, or None (a report of a result made by another version, say)."""
    try:
        return get_task(task_id)
    except KeyError:
        return None


def __getattr__(name: str) -> tuple[str, ...]:
    # TASK_IDS and UNIT_TASK_IDS are computed when read, so a task found later is in them too.
    if name == "TASK_IDS":
        return task_ids()
    if name == "UNIT_TASK_IDS":
        return task_ids(unit_only=True)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
