"""Make student-derived text safe to show: one line, bounded, no control characters or ANSI codes.

Messages and hints quote what a student wrote (names, values, exception text). Every report
format passes them through `one_line` before use, so a submission cannot forge report lines,
move a terminal's cursor, or smuggle workflow commands into a CI log.

`safe_text` (strings) and `safe_json` (documents) are the one place that makes any text
writable: a lone surrogate (an exception message holding "\\ud800", a file name that is not
UTF-8) cannot be encoded as UTF-8, so writing it crashes a report, and JSON's "\\ud800" escape
is rejected by strict readers. Every format and every file the batch writes goes through them.
"""

from __future__ import annotations

import math
import re
from typing import Any

# CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ESC \) and two-byte ESC sequences.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators and bidi overrides.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")
# Surrogate code points: valid in a Python str, never in UTF-8 or in a strict JSON reader.
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def safe_text(text: object) -> str:
    """`str(text)` with every surrogate code point replaced by U+FFFD, so any UTF-8 writer accepts it."""
    return _SURROGATE.sub(REPLACEMENT, str(text))


def safe_json(value: Any) -> Any:
    """A copy of a JSON-like value whose strings (keys included) are all `safe_text`."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_text(key): safe_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [safe_json(item) for item in value]
    return value


def encodable(text: str, encoding: str | None = "utf-8") -> str:
    """`text` with what `encoding` cannot write (a console that is not UTF-8) replaced by '?'."""
    encoding = encoding or "utf-8"
    return safe_text(text).encode(encoding, "replace").decode(encoding)


def strip_controls(text: str) -> str:
    """Remove ANSI escape sequences, then turn every other control character into a space."""
    return _CONTROL.sub(" ", _ANSI.sub("", text))


def one_line(text: object, limit: int = 500) -> str:
    """`text` as one line of at most `limit` characters (an ellipsis marks a cut)."""
    flat = _SPACES.sub(" ", strip_controls(safe_text(text if text is not None else ""))).strip()
    if len(flat) > limit:
        return flat[: max(limit - 1, 0)] + "\u2026"
    return flat


# CI log commands: GitHub's `::error::`, `::add-mask::`, `::stop-commands::` (at a line's start), Azure's
# `##vso[...]` and `##[...]`, TeamCity's `##teamcity[...]` (anywhere in a line).
_LOG_COMMANDS = re.compile(r"::|##")


def inert(text: object, limit: int = 500) -> str:
    """`one_line(text, limit)` that no CI log reads as a command: `::` and `##` get a space inside.

    Split after the escapes are gone (`:\x1b[0m:` becomes `::` only then)."""
    flat = one_line(text, limit)
    return one_line(_LOG_COMMANDS.sub(lambda match: match.group()[0] + " " + match.group()[1], flat), limit)


# XML 1.0 allows tab, newline, carriage return and these ranges; anything else is a parse error.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: object) -> str:
    """`text` with the characters XML 1.0 forbids removed."""
    return _XML_ILLEGAL.sub("", str(text))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A spreadsheet-safe cell: a string that a spreadsheet would read as a formula gets a leading '."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def strict_json_value(value: Any, notes: list[str], path: str = "") -> Any:
    """A copy of `value` that strict JSON accepts: NaN and infinities become None, with a note;
    strings (keys too) are `safe_text`."""
    if isinstance(value, float) and not math.isfinite(value):
        notes.append(f"{safe_text(path) or 'a value'} was {value} (written as null)")
        return None
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {
            safe_text(key): strict_json_value(item, notes, f"{path}.{key}" if path else str(key))
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [strict_json_value(item, notes, f"{path}[{index}]") for index, item in enumerate(value)]
    return value
