"""Gradescope autograder output: the `results.json` its autograder specification describes.

Top level `score`, `output`, `tests`, `visibility`, `stdout_visibility`, `execution_time` and
`extra_data`; each test `name`, `score`, `max_score`, `status` (passed/failed), `output`,
`visibility`. Skipped tasks are left out: they were not graded. Every output is declared
plain text (`output_format`, `test_output_format`, `test_name_format`): Gradescope renders
the top-level output as HTML by default, and messages quote what the student's code did.

Inside Gradescope's harness, `/autograder/submission_metadata.json` says whose submission this
is (the specification's "Submission Metadata"): its id, time and submitters name the
submission in the output and are stored in `extra_data` with the grade's seed and checksum.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from grader.core.i18n import _
from grader.core.sanitize import one_line, strict_json_value
from grader.report.common import error_of, points, task_views

# Where Gradescope's harness collects the results; we write there only when it exists.
RESULTS_DIR = Path("/autograder/results")
# Written by Gradescope's harness before run_autograder starts (JSON, whatever its name suggests elsewhere).
METADATA_FILE = Path("/autograder/submission_metadata.json")
# When a student sees the results (the specification's values); `--gradescope-visibility` picks one.
VISIBILITIES = ("visible", "after_due_date", "after_published", "hidden")


def _identifier(value) -> str | int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    return one_line(value, 80) or None


def submission_metadata(path: Path | None = None) -> dict | None:
    """The submission's id, time, assignment title and submitters from Gradescope's metadata file.

    None when the file is absent, unreadable or not the object the specification describes;
    a grade never fails because of it. Names and emails are made single safe lines.
    """
    path = METADATA_FILE if path is None else path
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    users = [
        {
            "id": _identifier(user.get("id")),
            "name": one_line(user.get("name"), 200),
            "email": one_line(user.get("email"), 200),
        }
        for user in raw.get("users") or []
        if isinstance(user, dict)
    ]
    assignment = given if isinstance(given := raw.get("assignment"), dict) else {}
    return {
        "submission_id": _identifier(raw.get("id")),
        "created_at": one_line(raw.get("created_at"), 64),
        "assignment": one_line(assignment.get("title"), 200),
        "users": users,
    }


def _whose(metadata: dict) -> str:
    """`Submission 123 by Ann Lee, Bo Chen (submitted 2026-11-27T10:00:00-08:00)`."""
    names = ", ".join(user["name"] or user["email"] or str(user["id"] or "?") for user in metadata["users"])
    text = f"Submission {metadata['submission_id']}" if metadata["submission_id"] is not None else "Submission"
    text += f" by {names}" if names else ""
    return text + (f" (submitted {metadata['created_at']})" if metadata["created_at"] else "")


def results(document: dict, metadata: dict | None = None, visibility: str = "visible") -> dict:
    """results.json as a dict; `visibility` applies to the whole result and to every test."""
    if visibility not in VISIBILITIES:
        raise ValueError(f"unknown Gradescope visibility {visibility!r}")
    error = error_of(document)
    tests = []
    for task in task_views(document):
        lines = [task.message + (f" [{task.where}]" if task.where else "")]
        lines += [_("hint: {hint}").format(hint=hint) for hint in task.hints]
        tests.append(
            {
                "name": f"{task.id}: {_(task.title)}" if task.title else task.id,
                "score": task.score,
                "max_score": task.max_score,
                "status": "passed" if task.status == "passed" else "failed",
                "output": "\n".join(lines),
                "visibility": visibility,
            }
        )
    if error:
        output = f"dli-grade could not grade this submission ({error['status']}): {error['message']}"
    else:
        verdict = _("PASSED") if document.get("passed") is True else _("NOT PASSED")
        output = _("Score {score}/{max_score}: {verdict}").format(
            score=points(document.get("score")), max_score=points(document.get("max_score")), verdict=verdict
        )
        output += "".join(
            "\n" + _("integrity: {note}").format(note=one_line(note)) for note in document.get("integrity") or []
        )
    if metadata:
        output = _whose(metadata) + "\n" + output
    data = {
        "score": float(document.get("score") or 0.0) if not error else 0.0,
        "output": output,
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "tests": tests,
        "visibility": visibility,
        "stdout_visibility": "hidden",
    }
    duration = document.get("duration_s")
    if (
        isinstance(duration, (int, float))
        and not isinstance(duration, bool)
        and math.isfinite(duration)
        and duration > 0
    ):
        data["execution_time"] = max(1, round(duration))  # the specification's whole seconds
    # Stored with the grade and shown to no student: what an instructor needs to reproduce it.
    extra = {
        key: document[key] for key in ("schema", "sha256", "seed", "profile") if document.get(key) not in (None, "")
    }
    if metadata:
        extra["gradescope"] = metadata
    data["extra_data"] = {"dli_grade": extra}
    return data


def render(document: dict, metadata: dict | None = None, visibility: str = "visible") -> str:
    # strict: no surrogate escape or NaN that Gradescope's reader would reject
    return json.dumps(strict_json_value(results(document, metadata, visibility), []), indent=2, allow_nan=False)
