"""Report formats beyond text and JSON, one module each, all rendering the result document.

Every renderer takes the `dli-grade/result/v1` document (a dict, as `GradeResult.to_json()`
returns and as `--format json` prints) so the batch can render reports from saved results
and unknown extra fields (`sandbox`, `profile`, ...) are simply ignored.
"""

from __future__ import annotations

FORMATS = ("text", "json", "gradescope", "junit", "github", "html")
