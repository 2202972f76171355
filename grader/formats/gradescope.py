"""Gradescope autograder output: the `results.json` its autograder specification describes.

Top level `score`, `output`, `tests`; each test `name`, `score`, `max_score`, `status`
(passed/failed), `output`, `visibility`. Skipped tasks are left out: they were not graded.
"""

from __future__ import annotations

import json
from pathlib import Path

from grader.formats.common import error_of, points, task_views
from grader.sanitize import one_line

# Where Gradescope's harness collects the results; we write there only when it exists.
RESULTS_DIR = Path("/autograder/results")


def results(document: dict) -> dict:
    error = error_of(document)
    tests = []
    for task in task_views(document):
        if task.status == "skipped":
            continue
        lines = [task.message + (f" [{task.where}]" if task.where else "")]
        lines += [f"hint: {hint}" for hint in task.hints]
        tests.append({
            "name": f"{task.id}: {task.title}" if task.title else task.id,
            "score": task.score,
            "max_score": task.max_score,
            "status": "passed" if task.status == "passed" else "failed",
            "output": "\n".join(lines),
            "visibility": "visible",
        })
    if error:
        output = f"dli-grade could not grade this submission ({error['status']}): {error['message']}"
    else:
        verdict = "PASSED" if document.get("passed") is True else "NOT PASSED"
        output = f"Score {points(document.get('score'))}/{points(document.get('max_score'))}: {verdict}"
        output += "".join(f"\nintegrity: {one_line(note)}" for note in document.get("integrity") or [])
    data = {
        "score": float(document.get("score") or 0.0) if not error else 0.0,
        "output": output,
        "tests": tests,
        "visibility": "visible",
        "stdout_visibility": "hidden",
    }
    duration = document.get("duration_s")
    if isinstance(duration, (int, float)) and duration > 0:
        data["execution_time"] = round(float(duration), 2)
    return data


def render(document: dict) -> str:
    return json.dumps(results(document), indent=2)
