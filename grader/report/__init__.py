"""Reporting a grade: the text table and JSON (`text`), the other formats one module each
(`github`, `gradescope`, `html`, `junit`), where each goes (`output`), and progress on stderr.

Every renderer takes the `dli-grade/result/v1` document (a dict, as `GradeResult.to_json()`
returns and as `--format json` prints) so the batch can render reports from saved results
and unknown extra fields (`sandbox`, `profile`, ...) are simply ignored.

May import `grader.core` and `grader.grading.result`; never the sandbox or the tasks.
"""

from __future__ import annotations

FORMATS = ("text", "json", "gradescope", "junit", "github", "html")
