"""GitHub Actions: annotations on stdout, a Markdown job summary, and a Classroom `result` output.

Nothing a student controls reaches the runner as a workflow command: annotation data and
properties are escaped as GitHub documents, every message is one sanitised line, and the
plain-text report is printed between `::stop-commands::` and its resume token so a line of
it can never be read as a command.
"""

from __future__ import annotations

import base64
import html
import json
import os
import secrets

from grader.core.i18n import _
from grader.core.sanitize import one_line, safe_json, safe_text
from grader.report.common import error_of, outcome, points, task_views


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def neutralise_commands(text: str) -> str:
    """Break `::` at the start of any line (after blanks) so the runner cannot read it as a command."""
    lines = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith("::"):
            line = line[: len(line) - len(stripped)] + ":\u200b:" + stripped[2:]
        lines.append(line)
    return "\n".join(lines)


def annotation(level: str, message: str, file: str | None = None, title: str | None = None) -> str:
    props = []
    if file:
        props.append(f"file={escape_property(file)}")
    if title:
        props.append(f"title={escape_property(title)}")
    head = f"::{level}" + (" " + ",".join(props) if props else "")
    return f"{head}::{escape_data(message)}"


def annotation_lines(document: dict) -> list[str]:
    file = one_line(document.get("submission", ""), 300) or None
    error = error_of(document)
    if error:
        title = _("dli-grade: submission {status}").format(status=error["status"])  # the status word stays as is
        return [annotation("error", error["message"], file, title)]
    lines = []
    for task in task_views(document):
        if task.status not in ("failed", "error"):
            continue
        where = f" ({task.where})" if task.where else ""
        message = task.message + "".join(" " + _("Hint: {hint}").format(hint=hint) for hint in task.hints[:2])
        title = f"{task.id}{where}: {points(task.score)}/{points(task.max_score)}"
        lines.append(annotation("error", message, file, title))
    verdict = _("passed") if document.get("passed") is True else _("not passed")
    score = _("score {score}/{max_score}: {verdict}").format(
        score=points(document.get("score")), max_score=points(document.get("max_score")), verdict=verdict
    )
    lines.append(annotation("notice", score, title="dli-grade"))
    return lines


def _md(text: str) -> str:
    """Markdown table cell text: HTML escaped (the summary renders HTML) and no column breaks."""
    return html.escape(text).replace("|", "\\|").replace("`", "&#96;")


def summary_markdown(document: dict) -> str:
    submission = _md(one_line(document.get("submission", ""), 300))
    error = error_of(document)
    if error:
        could_not = _md(_("Could not grade ({status}):").format(status=error["status"]))
        return f"## dli-grade: {submission}\n\n**{could_not}** {_md(error['message'])}\n"
    verdict = _("PASSED") if document.get("passed") is True else _("NOT PASSED")
    score = _("Score {score}/{max_score}: {verdict}").format(
        score=points(document.get("score")), max_score=points(document.get("max_score")), verdict=verdict
    )
    columns = (_("task"), _("status"), _("points"), _("message"), _("where"))
    lines = [
        f"## dli-grade: {submission}",
        "",
        f"**{score}**",
        "",
        "| " + " | ".join(columns) + " |",
        "| --- | --- | --- | --- | --- |",
    ]
    marks = {"passed": "✅ " + _("passed"), "failed": "❌ " + _("failed"), "error": "⚠️ " + _("error")}
    for task in task_views(document):
        message = _md(task.message)
        message += "".join("<br>" + _md(_("hint: {hint}").format(hint=hint)) for hint in task.hints)
        lines.append(
            f"| `{_md(task.id)}` | {marks[task.status]} | {points(task.score)}/{points(task.max_score)} "
            f"| {message} | {_md(task.where)} |"
        )
    for note in document.get("integrity") or []:
        lines.append("\n> " + _md(_("integrity: {note}").format(note=one_line(note))))
    return safe_text("\n".join(lines) + "\n")


def classroom_result(document: dict) -> dict:
    """The payload GitHub Classroom's grading reporter reads from a step's `result` output."""
    error = error_of(document)
    tests = []
    if error:
        tests.append(
            {
                "name": "load",
                "status": "error",
                "score": 0,
                "max_score": 0,
                "message": error["message"],
                "test_code": "dli-grade",
                "filename": "",
                "line_no": 0,
                "execution_time": "0s",
            }
        )
    timings = document.get("timings") or {}
    for task in task_views(document):
        status = {"passed": "pass", "failed": "fail"}.get(task.status, "error")
        tests.append(
            {
                "name": task.id,
                "status": status,
                "score": task.score,
                "max_score": task.max_score,
                "message": task.message + (f" [{task.where}]" if task.where else ""),
                "test_code": f"dli-grade --tasks {task.id}",
                "filename": one_line(document.get("submission", ""), 300),
                "line_no": task.line or 0,
                "execution_time": f"{float(timings.get(task.id, 0) or 0):.1f}s",
            }
        )
    max_score = sum(test["max_score"] for test in tests)
    return {"version": 1, "status": outcome(document), "max_score": max_score, "tests": tests}


def render(document: dict, text_report: str = "") -> str:
    """What goes to stdout: the text report with commands stopped, then the annotations."""
    token = secrets.token_hex(16)
    lines = [f"::stop-commands::{token}", neutralise_commands(text_report), f"::{token}::"] if text_report else []
    return safe_text("\n".join(lines + annotation_lines(document)))


def write_environment_files(document: dict, environ=None) -> None:
    """Append the job summary to $GITHUB_STEP_SUMMARY and `result=` to $GITHUB_OUTPUT when set."""
    environ = os.environ if environ is None else environ
    summary = environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(summary_markdown(document) + "\n")
    output = environ.get("GITHUB_OUTPUT")
    if output:
        payload = base64.b64encode(json.dumps(safe_json(classroom_result(document))).encode("utf-8")).decode("ascii")
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(f"result={payload}\n")
