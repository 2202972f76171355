"""Run by the client as `python -m dli_grade.grader_side ...`, never imported in the student's kernel.

It is the only part of `dli_grade` that imports the grader's packages, and it does so in its own
process, so the kernel holds nothing of the grader (no task list module, no answer key).

    task-ids          print {"unit": [...], "all": [...]} from the task registry (tasks/__init__.py)
    text REPORT.json  print the CLI's text report of a `--format json` result document
    text -            the same, for the path on the first line of stdin (read after the imports)
    ... --lang LANG   after either text form: the report's language (default: the locale, as the CLI's)
"""

from __future__ import annotations

import json
import sys


def task_ids() -> dict:
    from tasks import task_ids

    return {"unit": list(task_ids(unit_only=True)), "all": list(task_ids())}


def text_report(document: dict) -> str:
    """The CLI's own text report (grader/report/text.py) of a result document."""
    from grader.grading.result import GradeResult, TaskResult
    from grader.report.text import render_text
    from tasks.location import Location

    tasks = []
    for task in document["tasks"]:
        location = task.get("location")
        tasks.append(
            TaskResult(
                id=task["id"],
                title=task["title"],
                score=task["score"],
                max_score=task["max_score"],
                status=task["status"],
                message=task.get("message", ""),
                hints=task.get("hints") or [],
                location=Location(**location) if location else None,
                details=task.get("details") or {},
            )
        )
    result = GradeResult(
        submission=document["submission"],
        sha256=document["sha256"],
        layout=document["layout"],
        device=document["device"],
        tasks=tasks,
        integrity=document.get("integrity") or [],
        seed=document.get("seed"),
        duration_s=document.get("duration_s", 0.0),
    )
    return render_text(result)


def main(argv: list[str]) -> int:
    if argv == ["task-ids"]:
        print(json.dumps(task_ids()))
        return 0
    if argv[:1] == ["text"] and (len(argv) == 2 or (len(argv) == 4 and argv[2] == "--lang")):
        import grader.report.text  # noqa: F401  (the slow imports, before waiting for a path on stdin)
        from grader.core.i18n import resolve, set_language

        # the report's words in the grade's language: --lang as given to the CLI, else the same locale it read
        set_language(resolve(argv[3] if len(argv) == 4 else None))
        path = sys.stdin.readline().strip() if argv[1] == "-" else argv[1]
        with open(path, encoding="utf-8") as report:
            print(text_report(json.load(report)))
        return 0
    print(
        "usage: python -m dli_grade.grader_side task-ids | text REPORT.json | text - (the path on stdin) [--lang LANG]",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
