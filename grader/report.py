"""Reporters: the text table for people and the JSON document for machines."""

from __future__ import annotations

import json

from grader.result import GradeResult
from grader.sanitize import one_line, safe_text

MARKS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}


def _points(value: float) -> str:
    return f"{value:g}"


def _generation_lines(details: dict) -> list[str]:
    """The figures behind the generation verdict: official bar, larger sample, grid."""
    low, high = details["accuracy_ci95"]
    trusted = details.get("reference_sampler_accuracy")
    lines = [
        f"official check ({details['profile']} profile, w = {details['w']}): "
        f"{details['official_accuracy']:.0%} of 50, {'passed' if details['official_passed'] else 'not passed'} (48 needed)",
        f"all digits drawn: {details['accuracy']:.1%} of {details['samples']} (95% interval {low:.1%} to {high:.1%}); "
        f"the grader's own sampler: " + ("not run" if trusted is None else f"{trusted:.0%}"),
    ]
    if details.get("profile_reason"):
        lines.append(f"profile {details['profile']}: {details['profile_reason']}")
    if "course_flow" in details:
        flow = details["course_flow"]
        lines.append(f"course flow: {flow['ran']} of {flow['cells']} cells run in a Jupyter kernel; run_assessment "
                     f"printed: {one_line(flow['assessment_output'])[-200:] or '(nothing)'}")
    if str(details.get("larger_sample", "")).startswith("not drawn"):
        lines.append(f"larger sample {details['larger_sample']}")
    weak = {d: a for d, a in details["per_digit_accuracy"].items() if a < 1.0}
    if weak:
        lines.append("per digit: " + ", ".join(f"{d}: {a:.0%}" for d, a in sorted(weak.items())))
    lines += details.get("confusions", [])[:3]
    if "short_training" in details:
        st = details["short_training"]
        lines.append(f"short training ({st['steps']} steps): held-out loss {st['heldout_loss']:.3f}, "
                     f"reference {st['reference_heldout_loss']:.3f}")
    if details.get("grid"):
        lines.append(f"samples: {details['grid']}")
    return lines


def render_text(result: GradeResult) -> str:
    """A table of tasks, then each failure's message, location and hint, then the score line."""
    width = max(len(task.id) for task in result.tasks) if result.tasks else 10
    lines = [f"dli-grade: {result.submission} (layout {result.layout}, {result.device})", ""]
    for task in result.tasks:
        points = f"{_points(task.score)}/{_points(task.max_score)}"
        lines.append(f"  {MARKS[task.status]:<5} {task.id:<{width}}  {points:>7}  {task.title}")
        if task.message != "correct" or task.id == "generation":
            where = f" [{task.location}]" if task.location and task.location.cell else ""
            # one_line: messages may quote student code or output; keep the table's lines intact
            lines.append(f"        {one_line(task.message)}{where}")
            for hint in task.hints:
                lines.append(f"        hint: {one_line(hint)}")
        if task.id == "generation" and "official_accuracy" in task.details:
            lines.extend(f"        {line}" for line in _generation_lines(task.details))
    for note in result.integrity:
        lines.append(f"  integrity: {one_line(note)}")
    verdict = "PASSED" if result.passed else "NOT PASSED"
    lines += ["", f"Score {_points(result.score)}/{_points(result.max_score)}: {verdict} "
                  f"({result.duration_s:.1f} s; cells are counted from the top, markdown included)"]
    return safe_text("\n".join(lines))


def render_json(result: GradeResult) -> str:
    """The dli-grade/result/v1 document, one JSON object."""
    return json.dumps(result.to_json(), indent=2, allow_nan=False)
