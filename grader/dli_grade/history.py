"""The cells this kernel has run, as a notebook the grader can read.

The source is IPython's raw input history (`In`), not the notebook file: the kernel does not
reliably know which file it serves, and the file holds what was saved, not what was run (cells
never run, edited after running, or run out of order). The history is exactly the code behind
the names the student's kernel holds now. Cell N of the notebook written here is `In [N]`, so a
location the grader reports ("cell 5, line 2") points at the cell whose execution count is 5.
"""

from __future__ import annotations

import ast
import json

CLIENT = "dli_grade"
NOTEBOOK_NAME = "kernel-history.ipynb"


def executed_cells(shell) -> list[str]:
    """Raw sources of `In [1]` up to the cell now running, which is left out (it is not run yet)."""
    raw = list(shell.history_manager.input_hist_raw)
    return raw[1 : shell.execution_count]


def _client_names(tree: ast.Module) -> set[str]:
    """Names an import of the client binds (`import dli_grade as dg`, `from dli_grade import check`)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(
                (alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name.split(".")[0] == CLIENT
            )
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == CLIENT:
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def _uses_client(statement: ast.stmt, names: set[str]) -> bool:
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and node.id in names:
            return True
        if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == CLIENT for alias in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == CLIENT:
            return True
    return False


def _python_of(source: str, transform) -> ast.Module | None:
    """The cell's syntax tree, IPython syntax translated first when it keeps the line count."""
    code = transform(source) if transform else source
    if code.rstrip("\n").count("\n") != source.rstrip("\n").count("\n"):
        return None  # a cell magic folded the cell into one call: its lines no longer match
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


def without_client(sources: list[str], transform=None) -> list[str]:
    """The cells with every top-level statement that imports or calls this client blanked.

    Earlier checks (and the imports of the client) must not run again in the grader's child,
    where the client is not importable. Blanked lines stay as empty lines, so line numbers keep
    pointing at the student's code. `transform` turns IPython syntax into Python (the kernel's
    `transform_cell`); a cell that still does not parse is kept as it is.
    """
    trees = [_python_of(source, transform) for source in sources]
    names = {CLIENT}
    for tree in trees:
        if tree is not None:
            names |= _client_names(tree)
    cleaned = []
    for source, tree in zip(sources, trees, strict=True):
        if tree is None:
            cleaned.append(source)
            continue
        lines = source.split("\n")
        for statement in tree.body:
            if _uses_client(statement, names):
                assert statement.end_lineno is not None  # ast.parse sets it on every statement
                for index in range(statement.lineno - 1, min(statement.end_lineno, len(lines))):
                    lines[index] = ""
        cleaned.append("\n".join(lines))
    return cleaned


def notebook_json(sources: list[str]) -> str:
    """An nbformat 4 notebook with one code cell per source, in order."""
    cells: list[dict[str, object]] = [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
        for source in sources
    ]
    notebook = {"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": cells}
    return json.dumps(notebook, indent=1)
