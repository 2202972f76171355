"""What one cell defines, imports and calls: the record `analysis` fills and `training_cell` reads.

It has a module of its own so that both can import it without importing each other.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from grader.submission.cells import Cell


@dataclass
class CellFacts:
    cell: Cell
    syntax_error: str | None = None  # e.g. "SyntaxError: invalid syntax (cell 12, line 3)"
    functions: set[str] = field(default_factory=set)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    assigned: set[str] = field(default_factory=set)
    imported: set[str] = field(default_factory=set)
    calls: set[str] = field(default_factory=set)
    fixmes: list[int] = field(default_factory=list)
    imports_grader: bool = False
    tree: ast.Module | None = field(default=None, repr=False)  # None when the cell does not parse
