"""What a task declares to the grader: `TASK = Task(...)` at the end of its module.

The registry (`tasks/__init__.py`) finds every module of the package that defines `TASK` and
grades them in `order`. Everything the grader knows of a task is in this declaration: its id,
title and points, the names it needs, whether a FIXME in the training cell leaves it
unanswered, how it chooses its options, how the reports show its extra details, and `check`,
which runs in the grader and judges through a `tasks.context.Context`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.task_options import TaskOptions

if TYPE_CHECKING:
    from tasks.base import Verdict
    from tasks.context import Context


# choose_options(device, stem=..., **asked) -> options: `asked` is what the user asked for this task
# (the CLI's generation flags, say); a ValueError is the user's unusable input, reported as such.
ChooseOptions = Callable[..., TaskOptions]
# Extra lines under the task's row in the text report, from its result's details (already translated).
TextDetails = Callable[[dict], list[str]]
# An HTML section after the task table, from its result's details and the folder that relative paths
# in them are under; "" for none. Everything in it must be escaped by the task.
HtmlDetails = Callable[[dict, "Path | None"], str]
# Fields the task adds to the top level of the result document (`official_accuracy`, say).
ResultFields = Callable[[dict], dict]


def _no_text(details: dict) -> list[str]:
    return []


def _no_html(details: dict, base: Path | None) -> str:
    return ""


def _no_fields(details: dict) -> dict:
    return {}


@dataclass(frozen=True)
class Task:
    """One graded task, as the grader sees it."""

    id: str  # the module's name: `tasks/<id>.py` (or the package `tasks/<id>/`)
    title: str  # English, marked with N_ (reports translate it)
    points: float
    order: int  # position in every report and grading order: lower first; inputs the course gives go first
    check: Callable[[Context], Verdict]
    needs: tuple[str, ...] = ()  # names the submission must define (a FIXME in their cell: not attempted)
    answers: tuple[str, ...] | None = None  # names the student writes, for similarity (None: `needs`)
    uses_training_cell: bool = False  # a FIXME left in the training cell means "not attempted"
    unit: bool = True  # a quick check of code; False for a task that trains or samples (minutes)
    options_type: type[TaskOptions] = TaskOptions
    choose_options: ChooseOptions | None = None  # None: `options_type()`, and the task takes no asked options
    text_details: TextDetails = _no_text
    html_details: HtmlDetails = _no_html
    result_fields: ResultFields = _no_fields

    def __post_init__(self) -> None:
        if not self.id.isidentifier():
            raise ValueError(f"task id {self.id!r} is not a Python identifier (it names the module)")
        if isinstance(self.needs, str) or isinstance(self.answers, str):
            raise TypeError(f"task {self.id}: needs and answers are tuples of names, not one string")

    @property
    def answer_names(self) -> tuple[str, ...]:
        return self.needs if self.answers is None else self.answers

    def options(self, device: str, stem: str, asked: Mapping[str, Any] | None = None) -> TaskOptions:
        """This grade's options: from `choose_options`, checked to be of `options_type`."""
        asked = dict(asked or {})
        if self.choose_options is None:
            if asked:
                raise ValueError(f"task {self.id} takes no options (asked for {', '.join(sorted(asked))})")
            return self.options_type()
        chosen = self.choose_options(device, stem=stem, **asked)
        if not isinstance(chosen, self.options_type):
            raise TypeError(
                f"task {self.id}: choose_options returned {type(chosen).__name__}, not {self.options_type.__name__}"
            )
        return chosen
