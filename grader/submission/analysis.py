"""What each cell of a submission defines, imports and calls, found by AST (never by position)."""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field

from grader.submission.blanking import blank_side_effects
from grader.submission.cell_facts import CellFacts
from grader.submission.cells import Cell, Submission
from grader.submission.syntax import dotted_name, module_scope
from grader.submission.training_cell import find_training_cell, trainer_call, trainers

_GRADER_PACKAGES = {"grader", "tasks", "reference"}


@dataclass
class Analysis:
    cells: list[CellFacts]
    layout: str  # "A" (UNet_utils.UNet), "B" (bare UNet) or "unknown"
    _found_trainers: dict[str, CellFacts] | None = field(default=None, init=False, repr=False)

    def defining(self, name: str) -> CellFacts | None:
        """The last cell that defines `name` by def, class or top-level assignment."""
        for facts in reversed(self.cells):
            if name in facts.functions or name in facts.classes or name in facts.assigned:
                return facts
        return None

    def _trainers(self) -> dict[str, CellFacts]:
        """The functions that train, found once: looking them up again for every cell made grading
        a notebook take time growing with the square of its cell count (20,000 cells: minutes)."""
        if self._found_trainers is None:
            self._found_trainers = trainers(self.cells)
        return self._found_trainers

    def training_cell(self) -> CellFacts | None:
        """The cell that trains the model (see `grader.submission.training_cell`), or None."""
        return find_training_cell(self.cells)

    def executable_code(self, facts: CellFacts) -> str:
        """The cell's code with training, plotting and other side-effect statements blanked out;
        calls of a function that trains (`losses = train()`) run only in the training harness."""
        found = self._trainers()
        calls = [stmt for stmt in facts.tree.body if trainer_call(stmt, found) is not None] if facts.tree else []
        return blank_side_effects(facts.cell.code, facts.tree, also=calls)


def analyse(submission: Submission) -> Analysis:
    """Collect the facts of every code cell and detect the notebook's layout."""
    cells = [_cell_facts(cell) for cell in submission.cells]
    return Analysis(cells=cells, layout=_layout(cells))


def _cell_facts(cell: Cell) -> CellFacts:
    """Parse one cell and record what it defines, imports and calls."""
    facts = CellFacts(cell=cell, fixmes=_fixme_lines(cell.code))
    try:
        tree = ast.parse(cell.code, filename=f"cell {cell.number}")
    except SyntaxError as exc:
        where = f"cell {cell.number}" + (f", line {exc.lineno}" if exc.lineno else "")
        facts.syntax_error = f"{type(exc).__name__}: {exc.msg} ({where})"
        return facts
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        facts.syntax_error = f"SyntaxError: {exc or type(exc).__name__} (cell {cell.number})"
        return facts
    facts.tree = tree
    for stmt in module_scope(tree.body):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            facts.functions.add(stmt.name)
        elif isinstance(stmt, ast.ClassDef):
            facts.classes[stmt.name] = stmt
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            facts.imported.update(_imported_names(stmt))
        else:
            facts.assigned.update(_assigned_names(stmt))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = dotted_name(node.func)
            if name:
                facts.calls.add(name)
            if _dynamic_grader_import(node):
                facts.imports_grader = True
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and _imports_grader(node):
            facts.imports_grader = True
    return facts


def _assigned_names(stmt: ast.stmt) -> set[str]:
    """Names bound by an assignment statement (unpacking included)."""
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif (isinstance(stmt, ast.AnnAssign) and stmt.value is not None) or isinstance(stmt, ast.AugAssign):
        targets = [stmt.target]
    else:
        return set()
    return set().union(*(_bound_by_target(target) for target in targets))


def _bound_by_target(target: ast.expr) -> set[str]:
    """Names bound by one target, ignoring attribute and subscript stores."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*(_bound_by_target(elt) for elt in target.elts))
    if isinstance(target, ast.Starred):
        return _bound_by_target(target.value)
    return set()


def _imported_names(stmt: ast.Import | ast.ImportFrom) -> set[str]:
    """Names an import binds (`import a.b` binds `a`; star imports bind nothing we can name)."""
    if isinstance(stmt, ast.Import):
        return {alias.asname or alias.name.split(".")[0] for alias in stmt.names}
    return {alias.asname or alias.name for alias in stmt.names if alias.name != "*"}


def _imports_grader(node: ast.Import | ast.ImportFrom) -> bool:
    """True when an import reaches into the grader's own packages."""
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] in _GRADER_PACKAGES for alias in node.names)
    return node.level == 0 and (node.module or "").split(".")[0] in _GRADER_PACKAGES


def _dynamic_grader_import(call: ast.Call) -> bool:
    """True for `__import__("grader")` or `importlib.import_module("tasks.x")`."""
    if dotted_name(call.func) not in ("__import__", "importlib.import_module", "import_module"):
        return False
    first = call.args[0] if call.args else None
    return (
        isinstance(first, ast.Constant)
        and isinstance(first.value, str)
        and first.value.split(".")[0] in _GRADER_PACKAGES
    )


def _fixme_lines(code: str) -> list[int]:
    """Lines where FIXME is a live name token (comments, strings and docstrings don't count)."""
    lines = set()
    tokens = tokenize.generate_tokens(io.StringIO(code).readline)
    try:
        for token in tokens:
            if token.type == tokenize.NAME and token.string == "FIXME":
                lines.add(token.start[0])
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass  # keep what was found before the cell stopped tokenizing
    return sorted(lines)


def _layout(cells: list[CellFacts]) -> str:
    """A if a model is built with UNet_utils.UNet, B if with a bare UNet, else unknown."""
    course_unet = _unet_imported_from_course(cells)
    bare = False
    for facts in cells:
        for name in _assigned_call_names(facts):
            if name == "UNet_utils.UNet" or name.endswith(".UNet_utils.UNet"):
                return "A"
            bare = bare or name == "UNet"
    if bare:
        # `from utils.UNet_utils import UNet` with no UNet class of their own is still layout A.
        return "A" if course_unet else "B"
    return "unknown"


def _assigned_call_names(facts: CellFacts) -> Iterator[str]:
    """Dotted names of calls inside the values of assignments anywhere in the cell."""
    if facts.tree is None:
        return
    for node in ast.walk(facts.tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Call):
                    yield dotted_name(sub.func)


def _unet_imported_from_course(cells: list[CellFacts]) -> bool:
    """True when `UNet` comes from a UNet_utils import and no cell defines its own UNet class."""
    imported = False
    for facts in cells:
        if "UNet" in facts.classes:
            return False
        for stmt in module_scope(facts.tree.body if facts.tree else []):
            if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").split(".")[-1] == "UNet_utils":
                imported = imported or any(a.name in ("UNet", "*") and not a.asname for a in stmt.names)
    return imported
