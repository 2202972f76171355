"""IPython-only syntax (magics, shell escapes, `obj?` help) made into plain Python, line for line.

The child runs cells with plain `exec`, and every finding points at a cell's line, so each
IPython line becomes `pass` (or `name = None` where it bound a name) and no line moves.
"""

from __future__ import annotations

import re

# Cell magics whose body is ordinary Python that still runs under IPython.
_BODY_KEEPING_CELL_MAGICS = {"time", "timeit", "capture"}

# `x = !ls`, `a, b = %time f()`: IPython binds the target, so the name must still exist.
_MAGIC_ASSIGNMENT = re.compile(r"^(?P<indent>\s*)(?P<target>[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)\s*=\s*[%!]")


def neutralise(source: str) -> str:
    """Return `source` with IPython-only syntax made into plain Python, keeping every line number.

    Not IPython's own TransformerManager: it folds a `%%time` cell into one `run_cell_magic`
    line and joins backslash-continued magics, which moves the lines findings point at, and it
    emits `get_ipython()` calls the child would have to stub.
    """
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].startswith("%%"):
        magic = re.match(r"%%(\w*)", lines[first])
        if magic is None or magic.group(1) not in _BODY_KEEPING_CELL_MAGICS:
            return "\n".join("" for _ in lines)
        lines[first] = ""
    scanner = _LineScanner()
    out: list[str] = []
    blank_continuation = False
    for line in lines:
        if blank_continuation:  # a magic continued with a trailing backslash
            out.append("")
            blank_continuation = line.rstrip().endswith("\\")
            continue
        replaced = _neutralise_line(line) if scanner.at_statement_start() else None
        if replaced is None:
            scanner.feed(line)
            out.append(line)
        else:
            out.append(replaced)
            blank_continuation = line.rstrip().endswith("\\")
    return "\n".join(out)


def _neutralise_line(line: str) -> str | None:
    """Return the replacement for one IPython-only line, or None when it is plain Python."""
    stripped = line.lstrip()
    indent = line[: len(line) - len(stripped)]
    if stripped.startswith(("%", "!", "?")):
        return indent + "pass"
    match = _MAGIC_ASSIGNMENT.match(line)
    if match:
        return f"{match['indent']}{match['target']} = None"
    probe = _LineScanner()
    code_end = probe.feed(line)
    if probe.at_statement_start() and line[:code_end].rstrip().endswith("?"):
        return indent + "pass"  # `obj?` / `obj??` help
    return None


class _LineScanner:
    """Tracks brackets, open strings and backslash continuations across lines.

    Only lines that start a new statement may be IPython syntax; a `%` that continues an
    expression inside brackets is the modulo operator.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.quote: str | None = None
        self.continued = False

    def at_statement_start(self) -> bool:
        """True when the next line begins a new logical line."""
        return self.depth == 0 and self.quote is None and not self.continued

    def feed(self, line: str) -> int:
        """Consume one line; return where its code ends (the start of a comment, or its length)."""
        i, n, code_end = 0, len(line), len(line)
        while i < n:
            char = line[i]
            if self.quote:
                if char == "\\":
                    i += 2
                elif line.startswith(self.quote, i):
                    i += len(self.quote)
                    self.quote = None
                else:
                    i += 1
                continue
            if char == "#":
                code_end = i
                break
            if char in "'\"":
                self.quote = line[i : i + 3] if line[i : i + 3] in ('"""', "'''") else char
                i += len(self.quote)
                continue
            if char in "([{":
                self.depth += 1
            elif char in ")]}":
                self.depth = max(0, self.depth - 1)
            i += 1
        ends_with_backslash = code_end == n and line.endswith("\\")
        if self.quote in ("'", '"') and not ends_with_backslash:
            self.quote = None  # an unterminated one-line string; Python will report it
        self.continued = ends_with_backslash and self.quote is None
        return code_end
