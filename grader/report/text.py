"""Reporters: the text table for people and the JSON document for machines."""

from __future__ import annotations

import json

from grader.core.i18n import _
from grader.grading.result import GradeResult
from grader.core.sanitize import one_line, safe_text

# The words of the table's first column; translated where the table is drawn (status stays the machine field).
MARKS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}


def _mark(status: str) -> str:
    return {"passed": _("PASS"), "failed": _("FAIL"), "error": _("ERROR")}[status]


def _is_plain_success(message: str) -> bool:
    return message in ("correct", _("correct"))


def _points(value: float) -> str:
    return f"{value:g}"


def _generation_lines(details: dict) -> list[str]:
    """The figures behind the generation verdict: official bar, larger sample, grid."""
    low, high = details["accuracy_ci95"]
    trusted = details.get("reference_sampler_accuracy")
    official = _("passed") if details["official_passed"] else _("not passed")
    lines = [
        _("official check ({profile} profile, w = {w}): {accuracy} of 50, {official} (48 needed)").format(
            profile=details["profile"],
            w=details["w"],
            accuracy=f"{details['official_accuracy']:.0%}",
            official=official,
        ),
        _(
            "all digits drawn: {accuracy} of {samples} (95% interval {low} to {high}); the grader's own sampler: "
            "{trusted}"
        ).format(
            accuracy=f"{details['accuracy']:.1%}",
            samples=details["samples"],
            low=f"{low:.1%}",
            high=f"{high:.1%}",
            trusted=_("not run") if trusted is None else f"{trusted:.0%}",
        ),
    ]
    if details.get("profile_reason"):
        lines.append(
            _("profile {profile}: {reason}").format(profile=details["profile"], reason=details["profile_reason"])
        )
    if "course_flow" in details:
        flow = details["course_flow"]
        lines.append(
            _("course flow: {ran} of {cells} cells run in a Jupyter kernel; run_assessment printed: {output}").format(
                ran=flow["ran"],
                cells=flow["cells"],
                output=one_line(flow["assessment_output"])[-200:] or _("(nothing)"),
            )
        )
    plan = details.get("larger_sample")
    if isinstance(plan, dict) and plan.get("state") == "not_drawn":
        lines.append(_("larger sample {why}").format(why=plan.get("why", "")))
    weak = {d: a for d, a in details["per_digit_accuracy"].items() if a < 1.0}
    if weak:
        lines.append(
            _("per digit: {accuracies}").format(accuracies=", ".join(f"{d}: {a:.0%}" for d, a in sorted(weak.items())))
        )
    lines += details.get("confusions", [])[:3]
    if "short_training" in details:
        st = details["short_training"]
        lines.append(
            _("short training ({steps} steps): held-out loss {loss}, reference {reference}").format(
                steps=st["steps"], loss=f"{st['heldout_loss']:.3f}", reference=f"{st['reference_heldout_loss']:.3f}"
            )
        )
    if details.get("grid"):
        lines.append(_("samples: {path}").format(path=details["grid"]))
    return lines


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
        if not _is_plain_success(task.message) or task.id == "generation":
            where = f" [{task.location}]" if task.location and task.location.cell else ""
            # one_line: messages may quote student code or output; keep the table's lines intact
            lines.append(f"        {one_line(task.message)}{where}")
            for hint in task.hints:
                lines.append("        " + _("hint: {hint}").format(hint=one_line(hint)))
        if task.id == "generation" and "official_accuracy" in task.details:
            lines.extend(f"        {line}" for line in _generation_lines(task.details))
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
