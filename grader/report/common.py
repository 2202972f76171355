"""What every format needs from a result document: sanitised task rows and error documents."""

from __future__ import annotations

from dataclasses import dataclass, field

from grader.core.sanitize import one_line
from grader.grading.result import SCHEMA
from tasks.location import Location


@dataclass
class TaskView:
    """One task of a result document, with every student-derived string made one safe line."""

    id: str
    title: str
    score: float
    max_score: float
    status: str  # passed, failed, error
    message: str
    hints: list[str] = field(default_factory=list)
    cell: int | None = None
    line: int | None = None
    details: dict = field(default_factory=dict)

    @property
    def where(self) -> str:
        return str(Location(self.cell, self.line))


def _int_or_none(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def task_views(document: dict) -> list[TaskView]:
    """The document's tasks, tolerant of missing fields, with messages and hints sanitised."""
    views = []
    for task in document.get("tasks") or []:
        location = task.get("location") or {}
        views.append(
            TaskView(
                id=one_line(task.get("id", "?"), 80),
                title=one_line(task.get("title", ""), 200),
                score=_number(task.get("score")),
                max_score=_number(task.get("max_score")),
                status=task.get("status") if task.get("status") in ("passed", "failed", "error") else "error",
                message=one_line(task.get("message", "")),
                hints=[one_line(hint) for hint in task.get("hints") or []][:10],
                cell=_int_or_none(location.get("cell")),
                line=_int_or_none(location.get("line")),
                details=task.get("details") if isinstance(task.get("details"), dict) else {},
            )
        )
    return views


def points(value) -> str:
    return f"{_number(value):g}"


def error_document(submission: str, message: str, status: str = "unusable") -> dict:
    """A result document for a submission that could not be graded (no tasks, an `error`).

    `status` is the batch's word for what happened: unusable, timeout or crashed.
    """
    return {
        "schema": SCHEMA,
        "submission": str(submission),
        "sha256": "",
        "score": 0.0,
        "max_score": 0.0,
        "passed": False,
        "tasks": [],
        "integrity": [],
        "duration_s": 0.0,
        "error": {"status": status, "message": one_line(message, 2000)},
    }


def error_of(document: dict) -> dict | None:
    """The `error` of an error document, sanitised, or None for a graded one."""
    error = document.get("error")
    if not isinstance(error, dict):
        return None
    return {"status": one_line(error.get("status", "unusable"), 40), "message": one_line(error.get("message", ""))}


def outcome(document: dict) -> str:
    """pass, fail or error: error when the grade could not run or the grader failed on a task."""
    if error_of(document) or any(task.status == "error" for task in task_views(document)):
        return "error"
    return "pass" if document.get("passed") is True else "fail"
