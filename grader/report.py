"""Reporters: the text table for people and the JSON document for machines."""

from __future__ import annotations

import json

from grader.result import GradeResult

MARKS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}


def _points(value: float) -> str:
    return f"{value:g}"


def render_text(result: GradeResult) -> str:
    """A table of tasks, then each failure's message, location and hint, then the score line."""
    width = max(len(task.id) for task in result.tasks) if result.tasks else 10
    lines = [f"dli-grade: {result.submission} (layout {result.layout}, {result.device})", ""]
    for task in result.tasks:
        points = f"{_points(task.score)}/{_points(task.max_score)}"
        lines.append(f"  {MARKS[task.status]:<5} {task.id:<{width}}  {points:>7}  {task.title}")
        if task.status != "passed" or "(" in task.message:
            detail = task.message if task.status != "passed" else task.message.replace("correct ", "", 1)
            where = f" [{task.location}]" if task.location and task.location.cell else ""
            lines.append(f"        {detail}{where}")
            for hint in task.hints:
                lines.append(f"        hint: {hint}")
    for note in result.integrity:
        lines.append(f"  integrity: {note}")
    verdict = "PASSED" if result.passed else "NOT PASSED"
    lines += ["", f"Score {_points(result.score)}/{_points(result.max_score)}: {verdict} "
                  f"({result.duration_s:.1f} s; cells are counted from the top, markdown included)"]
    return "\n".join(lines)


def render_json(result: GradeResult) -> str:
    """The dli-grade/result/v1 document, one JSON object."""
    return json.dumps(result.to_json(), indent=2)
