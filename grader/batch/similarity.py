"""Fingerprints of a submission's answer cells, to find identical or near-identical submissions.

Only the cells that define what the FIXMEs ask for are compared (the rest is the course's
given code, the same for everyone). `exact` hashes each such cell's AST, so comments,
blank lines, formatting and docstrings do not matter; `renamed` also replaces local names
by their order of appearance, so renaming variables does not hide a copy either.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
from pathlib import Path

from grader.core.errors import UnusableInput
from grader.submission.cells import load_submission
from tasks import all_tasks


def answer_names() -> frozenset[str]:
    """Names the assessment's FIXME cells define: every task declaration's answers (tasks/declaration.py)."""
    # all_tasks() is cached, so this is cheap; not cached itself, so a task found later counts too
    return frozenset(name for task in all_tasks() for name in task.answer_names)


MAX_CELL_CHARS = 100_000  # an answer cell is a few hundred characters; longer ones are not compared
MAX_CELLS = 2_000  # the assessment has about 60 code cells
# Names kept as written when locals are renamed (with the answers): a copy renames its own variables, not these.
KEEP = frozenset(dir(builtins)) | {"torch", "nn", "F", "math", "np", "Rearrange", "self", "device", "T"}


def _bound_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


class _Strip(ast.NodeTransformer):
    """Drop docstrings: they carry no behaviour."""

    def _body(self, node):
        self.generic_visit(node)
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(getattr(body[0], "value", None), ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Module = _body


class _Rename(ast.NodeTransformer):
    def __init__(self):
        self.names: dict[str, str] = {}

    def _alias(self, name: str) -> str:
        if name in KEEP or name in answer_names():
            return name
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node):
        node.id = self._alias(node.id)
        return node

    def visit_arg(self, node):
        node.arg = self._alias(node.arg)
        node.annotation = None
        return node


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def fingerprints(path: Path) -> dict:
    """{"exact": h, "renamed": h, "cells": n} over the answer cells; {} when nothing can be read.

    This runs in the batch's own process on the student's text, so nothing in it may raise:
    a cell too long, too deep for the parser or the tree walks (RecursionError, MemoryError)
    is compared by its text without blanks instead, and a submission with absurdly many cells
    gets no fingerprint at all.
    """
    try:
        submission = load_submission(path)
    except (UnusableInput, OSError, ValueError, RecursionError, MemoryError):
        return {}
    if len(submission.cells) > MAX_CELLS:
        return {}
    exact, renamed = [], []
    for cell in submission.cells:
        dumps = _cell_dumps(cell.code)
        if dumps:
            exact.append(dumps[0])
            renamed.append(dumps[1])
    if not exact:
        return {}
    return {"exact": _digest(exact), "renamed": _digest(renamed), "cells": len(exact)}


def _cell_dumps(code: str) -> tuple[str, str] | None:
    """(exact, renamed) forms of an answer cell; None for a cell that defines no answer."""
    try:
        if len(code) > MAX_CELL_CHARS:
            raise ValueError("too long to compare by its tree")
        tree = ast.parse(code)
        if not (_bound_names(tree) & answer_names()):
            return None
        tree = _Strip().visit(tree)
        exact = ast.dump(tree, annotate_fields=False)
        return exact, ast.dump(_Rename().visit(tree), annotate_fields=False)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # a cell that does not parse (or is too deep to walk) still counts, by its text without blanks
        if any(name in code for name in ("def q(", "def reverse_q(", "def get_loss(", "def sample_w(")):
            text = "".join(code.split())
            return text, text
        return None


def groups(records: list[dict], key: str) -> list[list[dict]]:
    """Records sharing the fingerprint `key`, largest groups first; singletons left out."""
    by_hash: dict[str, list[dict]] = {}
    for record in records:
        value = (record.get("fingerprints") or {}).get(key)
        if value:
            by_hash.setdefault(value, []).append(record)
    found = [members for members in by_hash.values() if len(members) > 1]
    return sorted(found, key=lambda members: (-len(members), members[0]["student"]))
