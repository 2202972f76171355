"""Small AST helpers shared by the analyses of a submission's cells."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator

LOOPS = (ast.For, ast.AsyncFor, ast.While)
if sys.version_info >= (3, 11):
    TRIES = (ast.Try, ast.TryStar)  # try/except and try/except*
else:
    TRIES = (ast.Try,)


def module_scope(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Yield module-scope statements, looking inside if/try blocks (they bind globals) but not loops."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If):
            yield from module_scope(stmt.body)
            yield from module_scope(stmt.orelse)
        elif isinstance(stmt, TRIES):
            for block in (stmt.body, stmt.orelse, stmt.finalbody, *(h.body for h in stmt.handlers)):
                yield from module_scope(block)


def dotted_name(node: ast.expr) -> str:
    """Render a call target as a dotted name: `a.b.c`, `get_loss().backward`, `xs[].to`."""
    suffix = ""
    while True:  # a loop, not recursion: hostile cells can chain thousands of attributes
        if isinstance(node, ast.Name):
            return node.id + suffix
        if isinstance(node, ast.Attribute):
            suffix, node = f".{node.attr}{suffix}", node.value
        elif isinstance(node, ast.Call):
            suffix, node = f"(){suffix}", node.func
        elif isinstance(node, ast.Subscript):
            suffix, node = f"[]{suffix}", node.value
        else:
            return suffix


def char_col(line: str, byte_col: int) -> int:
    """Convert an AST column (UTF-8 bytes) to a string index."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", "ignore"))


def defining_line(tree: ast.Module | None, name: str) -> int | None:
    """Line of the last top-level statement (or one inside a top-level if/try) that binds `name`."""
    if tree is None:
        return None
    found = None
    pending = list(tree.body)
    while pending:
        statement = pending.pop(0)
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if statement.name == name:
                found = statement.lineno
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t)):
                found = statement.lineno
        elif isinstance(statement, (ast.If, ast.Try)):
            pending[:0] = [
                *statement.body,
                *getattr(statement, "orelse", []),
                *getattr(statement, "finalbody", []),
                *[s for h in getattr(statement, "handlers", []) for s in h.body],
            ]
    return found
