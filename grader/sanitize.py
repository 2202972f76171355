"""Text that came from student code, made safe to print: one line, bounded, no control codes.

Exception messages and names come from the student's process. On a terminal an escape
sequence could move the cursor and overwrite the grader's own lines, and a newline could
print a fake PASS line; in a CI log a line starting with "::" is a workflow command.
"""

from __future__ import annotations

import math
import re

ANSI_ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def one_line(text, limit: int = 500) -> str:
    """`text` without escape sequences or control characters, on one line, at most `limit` long."""
    text = ANSI_ESCAPE.sub("", str(text))
    text = CONTROL.sub(" ", text)
    text = re.sub(r" {2,}", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def strict_json_value(value, notes: list[str], path: str = ""):
    """A copy of `value` that strict JSON accepts: NaN and infinities become None, with a note."""
    if isinstance(value, float) and not math.isfinite(value):
        notes.append(f"{path or 'a value'} was {value} (written as null)")
        return None
    if isinstance(value, dict):
        return {str(key): strict_json_value(item, notes, f"{path}.{key}" if path else str(key))
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json_value(item, notes, f"{path}[{index}]") for index, item in enumerate(value)]
    return value
