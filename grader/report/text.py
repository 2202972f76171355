"""Reporters: the text table for people and the JSON document for machines."""

from __future__ import annotations

import json

from grader.core.i18n import _
from grader.core.sanitize import one_line, safe_text
from grader.grading.result import GradeResult
from tasks import find_task

# The words of the table's first column; translated where the table is drawn (status stays the machine field).
MARKS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}


def _mark(status: str) -> str:
    return {"passed": _("PASS"), "failed": _("FAIL"), "error": _("ERROR")}[status]


def _is_plain_success(message: str) -> bool:
    return message in ("correct", _("correct"))


def _points(value: float) -> str:
    return f"{value:g}"


def render_text(result: GradeResult) -> str:
    """A table of tasks, then each failure's message, location and hint, then the score line."""
    width = max(len(task.id) for task in result.tasks) if result.tasks else 10
    lines = [
        _("dli-grade: {submission} (layout {layout}, {device})").format(
            submission=result.submission, layout=result.layout, device=result.device
        ),
        "",
    ]
    for task in result.tasks:
        points = f"{_points(task.score)}/{_points(task.max_score)}"
        lines.append(f"  {_mark(task.status):<5} {task.id:<{width}}  {points:>7}  {_(task.title)}")
        declared = find_task(task.id)
        details = declared.text_details(task.details) if declared else []  # the task's own figures
        if not _is_plain_success(task.message) or details:
            where = f" [{task.location}]" if task.location and task.location.cell else ""
            # one_line: messages may quote student code or output; keep the table's lines intact
            lines.append(f"        {one_line(task.message)}{where}")
            for hint in task.hints:
                lines.append("        " + _("hint: {hint}").format(hint=one_line(hint)))
        lines.extend(f"        {line}" for line in details)
    for note in result.integrity:
        lines.append("  " + _("integrity: {note}").format(note=one_line(note)))
    verdict = _("PASSED") if result.passed else _("NOT PASSED")
    lines += [
        "",
        _(
            "Score {score}/{max_score}: {verdict} ({seconds} s; cells are counted from the top, markdown included)"
        ).format(
            score=_points(result.score),
            max_score=_points(result.max_score),
            verdict=verdict,
            seconds=f"{result.duration_s:.1f}",
        ),
    ]
    return safe_text("\n".join(lines))


def render_json(result: GradeResult) -> str:
    """The dli-grade/result/v1 document, one JSON object."""
    return json.dumps(result.to_json(), indent=2, allow_nan=False)
