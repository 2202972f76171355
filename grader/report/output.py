"""Render a grade in the chosen format and send it where that format belongs.

stdout by default, `--output FILE` (written atomically) when given; Gradescope's results go
to /autograder/results/results.json when that folder exists (naming the submission from
/autograder/submission_metadata.json when present); the github format also appends
to $GITHUB_STEP_SUMMARY and $GITHUB_OUTPUT.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grader.core import atomic
from grader.core.sanitize import encodable, one_line, safe_json, safe_text
from grader.report import github, gradescope, html, junit
from grader.report.common import error_document

STRUCTURED = ("gradescope", "junit", "github", "html")
ERROR_SCHEMA = "dli-grade/error/v1"


def render(output_format: str, document: dict, text_report: str = "", options: dict | None = None) -> str:
    """`options`: what a format lets the command line choose (`gradescope_visibility`, `junit_flavour`)."""
    options = options or {}
    if output_format == "gradescope":
        return gradescope.render(
            document, gradescope.submission_metadata(), options.get("gradescope_visibility", "visible")
        )
    if output_format == "junit":
        return junit.render(document, options.get("junit_flavour", "jenkins"))
    if output_format == "html":
        return html.render(document)
    if output_format == "github":
        return github.render(document, text_report)
    raise ValueError(f"unknown format {output_format!r}")


def destination(output_format: str, output: str | None) -> Path | None:
    """Where the report goes: a file, or None for stdout."""
    if output:
        return Path(output)
    if output_format == "gradescope" and gradescope.RESULTS_DIR.is_dir():
        return gradescope.RESULTS_DIR / "results.json"
    return None


def deliver(text: str, output_format: str, output: str | None) -> None:
    """Write the report; text a student made unencodable (a lone surrogate) never stops it."""
    text = safe_text(text)
    path = destination(output_format, output)
    if path is None:
        sys.stdout.write(encodable(text if text.endswith("\n") else text + "\n", sys.stdout.encoding))
        sys.stdout.flush()
    else:
        atomic.write_text(path, text if text.endswith("\n") else text + "\n")


def emit(output_format: str, result, output: str | None = None, options: dict | None = None) -> None:
    """Report a GradeResult in `output_format` (text and json exactly as the report module writes them)."""
    from grader.report.text import render_json, render_text

    if output_format == "text":
        return deliver(render_text(result), output_format, output)
    if output_format == "json":
        return deliver(render_json(result), output_format, output)
    document = result.to_json()
    if output_format == "github":
        github.write_environment_files(document)
    deliver(render(output_format, document, render_text(result), options), output_format, output)


def emit_unusable(
    output_format: str, submission: str, message: str, output: str | None = None, options: dict | None = None
) -> None:
    """For the structured formats, a report saying the submission could not be graded.

    text says nothing on stdout (the message goes to stderr); json prints one small document
    of its own schema, `dli-grade/error/v1`, so a CI step reading stdout always parses one
    complete document.
    """
    if output_format == "json":
        document = {
            "schema": ERROR_SCHEMA,
            "submission": str(submission),
            "status": "unusable",
            "error": one_line(message, 2000),
        }
        return deliver(json.dumps(safe_json(document), indent=2, allow_nan=False), output_format, output)
    if output_format not in STRUCTURED:
        return
    document = error_document(submission, message, "unusable")
    if output_format == "github":
        github.write_environment_files(document)
    deliver(render(output_format, document, options=options), output_format, output)
