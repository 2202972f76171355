"""What each cell of a submission defines, imports and calls, found by AST (never by position)."""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass, field, replace

from grader.submission import Cell, Submission

# Calls the unit-task grader must not run: training, data loading, plotting, compiling, the
# assessment itself. Matched on the last dotted component, so `ddpm_utils.sample_w` or
# `torchvision.datasets.MNIST` count too.
_SKIPPED_CALLS = {
    "run_assessment", "sample_w", "sample_images", "load_transformed_MNIST", "load_MNIST",
    "load_transformed_fashionMNIST", "DataLoader", "MNIST", "save_animation",
    "show_tensor_image", "plot_generated_images", "get_ipython",
}
_SKIPPED_EXACT = {"torch.compile"}
_SKIPPED_MODULES = {"plt", "other_utils", "matplotlib"}  # any call through these names
_SKIPPED_METHODS = {"backward", "step"}  # `loss.backward()`, `optimizer.step()`, `opt.step()`

_GRADER_PACKAGES = {"grader", "tasks", "reference"}
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_BLOCKS = _LOOPS + (ast.With, ast.AsyncWith)


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


@dataclass
class Analysis:
    cells: list[CellFacts]
    layout: str  # "A" (UNet_utils.UNet), "B" (bare UNet) or "unknown"

    def defining(self, name: str) -> CellFacts | None:
        """The last cell that defines `name` by def, class or top-level assignment."""
        for facts in reversed(self.cells):
            if name in facts.functions or name in facts.classes or name in facts.assigned:
                return facts
        return None

    def training_cell(self) -> CellFacts | None:
        """The last cell whose top-level loop trains (calls .backward(), optimizer.step() or get_loss);
        else a function that trains, called at top level: its cell with that call appended."""
        for facts in reversed(self.cells):
            if facts.tree and any(_is_training_loop(stmt) for stmt in _module_scope(facts.tree.body)):
                return facts
        return self._training_function_cell()

    def _training_function_cell(self) -> CellFacts | None:
        trainers = self._trainers()
        for facts in reversed(self.cells):
            for stmt in _module_scope(facts.tree.body) if facts.tree else ():
                call = _trainer_call(stmt, trainers)
                if call is not None:
                    home = trainers[call.func.id]
                    # Line numbers of the function's own cell stay right; the call comes after them.
                    code = f"{home.cell.code}\n{ast.unparse(call)}\n"
                    return replace(home, cell=replace(home.cell, code=code), tree=ast.parse(code))
        return None

    def _trainers(self) -> dict[str, CellFacts]:
        """Top-level functions whose body has a training loop, with the cell defining each."""
        return {stmt.name: facts for facts in self.cells if facts.tree for stmt in _module_scope(facts.tree.body)
                if isinstance(stmt, ast.FunctionDef) and any(_is_training_loop(inner) for inner in ast.walk(stmt))}

    def executable_code(self, facts: CellFacts) -> str:
        """The cell's code with training, plotting and other side-effect statements blanked out."""
        lines = facts.cell.code.split("\n")
        if facts.tree is None:
            return "\n".join("" for _ in lines)
        # Calls of a function that trains (`losses = train()`) run only in the training harness.
        trainers = self._trainers()
        blanks = set(_statements_to_blank(facts.tree.body))
        blanks |= {stmt for stmt in facts.tree.body if _trainer_call(stmt, trainers) is not None}
        # Right to left, so blanking one statement never shifts the columns of another.
        for stmt in sorted(blanks, key=_position, reverse=True):
            _blank(lines, stmt)
        code = "\n".join(lines)
        try:
            ast.parse(code)
        except SyntaxError:  # a statement sharing its last line with another (`f(\n); g()`)
            return "\n".join("" for _ in lines)
        return code


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
    for stmt in _module_scope(tree.body):
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


def _module_scope(body: list[ast.stmt]):
    """Yield module-scope statements, looking inside if/try blocks (they bind globals) but not loops."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If):
            yield from _module_scope(stmt.body)
            yield from _module_scope(stmt.orelse)
        elif isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            for block in (stmt.body, stmt.orelse, stmt.finalbody, *(h.body for h in stmt.handlers)):
                yield from _module_scope(block)


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


def _assigned_names(stmt: ast.stmt) -> set[str]:
    """Names bound by an assignment statement (unpacking included)."""
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        targets = [stmt.target]
    elif isinstance(stmt, ast.AugAssign):
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


def _assigned_call_names(facts: CellFacts):
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
        for stmt in _module_scope(facts.tree.body if facts.tree else []):
            if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").split(".")[-1] == "UNet_utils":
                imported = imported or any(a.name in ("UNet", "*") and not a.asname for a in stmt.names)
    return imported


def _is_skipped_call(name: str) -> bool:
    """True for a call the unit-task grader must not run."""
    parts = name.split(".")
    if name in _SKIPPED_EXACT or parts[-1] in _SKIPPED_CALLS:
        return True
    if any(part in _SKIPPED_MODULES for part in parts[:-1]):
        return True
    return len(parts) > 1 and parts[-1] in _SKIPPED_METHODS


def _calls_run_now(node: ast.AST):
    """Dotted names of calls evaluated when `node` runs (function and lambda bodies wait)."""
    stack = [node]
    while stack:  # explicit stack: a long `a + a + ...` chain nests deeper than Python recurses
        node = stack.pop()
        if isinstance(node, ast.Call):
            yield dotted_name(node.func)
        for decorator in getattr(node, "decorator_list", []):
            yield dotted_name(decorator)  # `@torch.compile` calls torch.compile on the function
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            parts = [*getattr(node, "decorator_list", []), *node.args.defaults, *node.args.kw_defaults]
        else:
            parts = list(ast.iter_child_nodes(node))
        stack.extend(part for part in parts if part is not None)


def _runs_skipped_call(node: ast.AST) -> bool:
    """True when running `node` would call something on the skip list."""
    return any(_is_skipped_call(name) for name in _calls_run_now(node) if name)


def _statements_to_blank(body: list[ast.stmt]) -> list[ast.stmt]:
    """Top-level statements (or bare expressions inside kept if/try blocks) to replace by `pass`."""
    blanked = []
    for stmt in body:
        inner = _inner_blanks(stmt)
        if inner is None:
            blanked.append(stmt)
        else:
            blanked.extend(inner)
    return blanked


def _inner_blanks(stmt: ast.stmt) -> list[ast.stmt] | None:
    """None if `stmt` must be skipped whole, else the bare expressions inside it to blank."""
    # Loops, with-blocks, bare expressions and asserts bind nothing the tasks need.
    if isinstance(stmt, _BLOCKS + (ast.Expr, ast.Assert)):
        return None
    if isinstance(stmt, ast.If):
        heads, blocks = [stmt.test], [stmt.body, stmt.orelse]
    elif isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try))):
        heads = [h.type for h in stmt.handlers if h.type is not None]
        blocks = [stmt.body, stmt.orelse, stmt.finalbody, *(h.body for h in stmt.handlers)]
    else:
        return None if _runs_skipped_call(stmt) else []
    if any(_runs_skipped_call(head) for head in heads):
        return None
    blanks = []
    for block in blocks:
        for inner in block:
            if isinstance(inner, ast.Expr) and not _runs_skipped_call(inner):
                blanks.append(inner)  # a print inside an if binds nothing: drop it alone
                continue
            nested = _inner_blanks(inner)
            if nested is None:
                return None  # an if/try holding a skipped statement is skipped whole
            blanks.extend(nested)
    return blanks


def _blank(lines: list[str], stmt: ast.stmt) -> None:
    """Replace a statement by `pass` where it starts and blank its other lines."""
    first = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])]) - 1
    last = stmt.end_lineno - 1
    start = _char_col(lines[first], stmt.col_offset) if first == stmt.lineno - 1 else None
    if start is None:  # a decorator line: keep its indentation
        line = lines[first]
        start = len(line) - len(line.lstrip())
    if first == last:
        end = _char_col(lines[last], stmt.end_col_offset)
        lines[first] = lines[first][:start] + "pass" + lines[first][end:]
        return
    lines[first] = lines[first][:start] + "pass"
    for index in range(first + 1, last + 1):
        lines[index] = ""


def _position(stmt: ast.stmt) -> tuple[int, int]:
    """Where a statement starts, for ordering edits."""
    return stmt.lineno, stmt.col_offset


def _char_col(line: str, byte_col: int) -> int:
    """Convert an AST column (UTF-8 bytes) to a string index."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", "ignore"))


def _trainer_call(stmt: ast.stmt, trainers: dict) -> ast.Call | None:
    """The call in `stmt` (`train()` or `x = train()`) when it calls one of `trainers` by name."""
    call = getattr(stmt, "value", None)
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in trainers:
        return call
    return None


def _is_training_loop(stmt: ast.stmt) -> bool:
    """True for a loop whose body calls .backward(), .step() on an optimizer, or get_loss."""
    if not isinstance(stmt, _LOOPS):
        return False
    for node in ast.walk(stmt):
        if isinstance(node, ast.Call):
            parts = dotted_name(node.func).split(".")
            if parts[-1] == "get_loss" or (len(parts) > 1 and parts[-1] in _SKIPPED_METHODS):
                return True
    return False
